//! No credentials in the repository: every tracked file (`git ls-files`, or the tree without `target/`
//! and `.git/` outside a checkout) is scanned for what a leaked credential looks like — cloud access
//! keys, private keys, tokens of the common services, passwords written into URLs, and secret-named
//! settings given a literal value in configuration files. Credentials come from the environment (or
//! files outside the repository); configuration files hold `${VAR}` references or nothing.
//!
//! The exceptions: this file (its second test plants one credential of each kind), [`ALLOWED`] — the
//! throwaway key pair of the S3 server the tests and the demo start on loopback (s3s-fs wants some
//! key; it guards nothing) — and a line that says `secrets: allow` with its reason (a test's made-up
//! password for a user it creates on loopback).

use std::path::{Path, PathBuf};

/// Literal values allowed anywhere, with why.
const ALLOWED: [(&str, &str); 2] = [
    (
        "AKIDTEST",
        "the loopback s3s-fs's test key id (scripts/services.sh)",
    ),
    (
        "SECRETTEST1234",
        "the loopback s3s-fs's test secret (scripts/services.sh)",
    ),
];

/// One suspected credential.
#[derive(Debug, PartialEq)]
struct Finding {
    line: usize,
    rule: &'static str,
}

/// Setting names that hold credentials.
const SECRET_WORDS: [&str; 7] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
];

/// What the scanner finds in one file's text. `config` says whether the file is configuration
/// (TOML, YAML, .env, shell, SQL, JSON), where a secret-named key with a literal value is a finding;
/// in code such names are field names and types.
fn scan(text: &str, config: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.contains("secrets: allow") {
            continue;
        }
        let mut hit = |rule| out.push(Finding { line: i + 1, rule });
        if has_token(line, &["AKIA", "ASIA"], 16, |c| {
            c.is_ascii_uppercase() || c.is_ascii_digit()
        }) {
            hit("AWS access key id");
        }
        if line.contains("-----BEGIN") && line.contains("PRIVATE KEY-----") {
            hit("private key");
        }
        if has_token(line, &["ghp_", "gho_", "ghs_", "github_pat_"], 30, is_word) {
            hit("GitHub token");
        }
        if has_token(line, &["xoxb-", "xoxp-", "xoxa-"], 20, |c| {
            is_word(c) || c == '-'
        }) {
            hit("Slack token");
        }
        if has_token(line, &["sk_live_", "rk_live_"], 20, is_word) {
            hit("Stripe key");
        }
        if url_password(line).is_some_and(|p| !is_placeholder(p)) {
            hit("password in a URL");
        }
        if config
            && let Some(v) = secret_setting(line)
            && !is_placeholder(v)
        {
            hit("secret-named setting with a literal value");
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `line` holds one of `prefixes` followed by at least `min` characters of `class`.
fn has_token(line: &str, prefixes: &[&str], min: usize, class: impl Fn(char) -> bool) -> bool {
    prefixes.iter().any(|p| {
        line.match_indices(p).any(|(at, _)| {
            let before = line[..at].chars().next_back();
            before.is_none_or(|c| !is_word(c))
                && line[at + p.len()..]
                    .chars()
                    .take_while(|c| class(*c))
                    .count()
                    >= min
        })
    })
}

/// The password of the first `scheme://user:password@host` in `line`.
fn url_password(line: &str) -> Option<&str> {
    line.match_indices("://").find_map(|(at, _)| {
        let rest = &line[at + 3..];
        let end = rest
            .find(|c: char| c.is_whitespace() || "\"'`/".contains(c))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let (userinfo, _) = authority.rsplit_once('@')?;
        let (_, password) = userinfo.split_once(':')?;
        Some(password)
    })
}

/// The value of a `secret_name = value` / `SECRET_NAME: value` / `SECRET_NAME=value` setting.
fn secret_setting(line: &str) -> Option<&str> {
    let t = line
        .trim_start()
        .trim_start_matches("export ")
        .trim_start_matches("- ");
    if t.starts_with('#') || t.starts_with("--") || t.starts_with("//") {
        return None;
    }
    let at = t.find(['=', ':'])?;
    let (name, value) = (t[..at].trim().trim_matches('"'), t[at + 1..].trim());
    let lower = name.to_ascii_lowercase();
    if name.is_empty() || !name.chars().all(|c| is_word(c) || c == '.' || c == '-') {
        return None;
    }
    SECRET_WORDS
        .iter()
        .any(|w| lower.contains(w))
        .then(|| value.trim_matches(|c| c == '"' || c == '\''))
}

/// Empty, a reference to the environment (`${VAR}`, `$VAR`, `${VAR:?…}`), a flag (`"yes"`, `1`), the
/// start of a structure (a JSON schema's `"secrets": {`), or an allowed value.
fn is_placeholder(v: &str) -> bool {
    let v = v.trim().trim_end_matches(',');
    v.is_empty()
        || ["yes", "no", "true", "false", "0", "1"].contains(&v.to_ascii_lowercase().as_str())
        || v.starts_with('{')
        || v.starts_with('[')
        || v.starts_with('$')
        || v.starts_with("<") && v.ends_with('>')
        || ALLOWED
            .iter()
            .any(|(a, _)| v == *a || v.contains(&format!("${{{a}")))
        || ALLOWED
            .iter()
            .any(|(a, _)| v.split(|c: char| !is_word(c)).any(|w| w == *a))
}

/// The repository's files: `git ls-files`, or a walk of the tree outside a checkout.
fn repository_files(root: &Path) -> Vec<PathBuf> {
    let git = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output();
    if let Ok(o) = git
        && o.status.success()
    {
        return o
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .collect();
    }
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if ["target", ".git", "node_modules", "out"].contains(&name.as_str()) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn is_config(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.starts_with(".env")
        || name == "Dockerfile"
        || [
            "toml", "yml", "yaml", "sh", "sql", "json", "env", "cfg", "ini",
        ]
        .contains(&ext.as_str())
}

#[test]
fn the_repository_holds_no_credentials() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = repository_files(root);
    assert!(
        files.len() > 50,
        "found only {} files under {}",
        files.len(),
        root.display()
    );
    let mut findings = Vec::new();
    let mut scanned = 0;
    // This file plants an example of each kind of credential for the second test.
    let own = root.join(file!().trim_start_matches("./"));
    for f in files.iter().filter(|f| **f != own) {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue; // binary
        };
        scanned += 1;
        for x in scan(&text, is_config(f)) {
            findings.push(format!(
                "{}:{}: {}",
                f.strip_prefix(root).unwrap_or(f).display(),
                x.line,
                x.rule
            ));
        }
    }
    println!("scanned {scanned} text files of {} tracked", files.len());
    assert!(
        findings.is_empty(),
        "credentials in the repository:\n{}",
        findings.join("\n")
    );
}

#[test]
fn planted_credentials_are_found_and_references_are_not() {
    let rules = |text: &str, config: bool| -> Vec<&'static str> {
        scan(text, config).into_iter().map(|f| f.rule).collect()
    };
    // Caught.
    assert_eq!(
        rules("key = \"AKIAIOSFODNN7EXAMPLE\"", false),
        ["AWS access key id"]
    );
    assert_eq!(
        rules("-----BEGIN RSA PRIVATE KEY-----", false),
        ["private key"]
    );
    assert_eq!(
        rules("-----BEGIN OPENSSH PRIVATE KEY-----", true),
        ["private key"]
    );
    assert_eq!(
        rules("t = ghp_0123456789abcdefghijABCDEFGHIJ012345", false),
        ["GitHub token"]
    );
    assert_eq!(
        rules("hook: xoxb-1234567890-abcdefghijkl", false),
        ["Slack token"]
    );
    assert_eq!(
        rules("url = \"mysql://root:hunter2@db:3306/x\"", false),
        ["password in a URL"]
    );
    assert_eq!(
        rules("ROOMSTREAM_POSTGRES_URL=postgres://u:pa55@h/db", false),
        ["password in a URL"]
    );
    assert_eq!(
        rules("reader_password = \"letmein\"", true),
        ["secret-named setting with a literal value"]
    );
    assert_eq!(
        rules("  MINIO_ROOT_PASSWORD: minio123", true),
        ["secret-named setting with a literal value"]
    );
    assert_eq!(
        rules("export AWS_SECRET_ACCESS_KEY=abc123xyz", true),
        ["secret-named setting with a literal value"]
    );
    // Not caught: references, empty values, code, the loopback test key, prose.
    assert!(
        rules(
            "url = \"mysql://roomstream:${MYSQL_PASSWORD}@mysql:3306/rs\"",
            true
        )
        .is_empty()
    );
    assert!(rules("reader_password = \"\"", true).is_empty());
    assert!(
        rules(
            "  MINIO_ROOT_PASSWORD: ${MINIO_ROOT_PASSWORD:?set it}",
            true
        )
        .is_empty()
    );
    assert!(rules("    pub reader_password: String,", false).is_empty());
    assert!(rules(": \"${AWS_SECRET_ACCESS_KEY:=SECRETTEST1234}\"", true).is_empty());
    assert!(rules("url = \"mysql://root@127.0.0.1:3306/test\"", true).is_empty());
    assert!(rules("# password: set it in the environment", true).is_empty());
    assert!(rules("see https://example.com/a:b@c for AKIA docs", false).is_empty());
    assert!(rules("      MARIADB_ALLOW_EMPTY_ROOT_PASSWORD: \"1\"", true).is_empty());
    assert!(rules("    \"secrets\": {", true).is_empty());
    assert!(
        rules(
            "mysql://u:pw@h/db // secrets: allow (a test's user on loopback)",
            false
        )
        .is_empty()
    );
}
