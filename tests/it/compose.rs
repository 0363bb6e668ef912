//! `docker-compose.yml`, checked without a Docker engine (these machines have none): against the
//! Compose Specification JSON schema (`tests/compose-spec/`, vendored; see its NOTICE.md) and against
//! roomstream's own rules — every roomstream service's command (and health-check command) parses as a
//! `roomstream` command line; every `${VAR}` is required (`:?`) or defaulted (`:-`) and listed in
//! `.env.example`; no literal secret in the file, the example or the profile; the `ROOMSTREAM_*`
//! variables each service sets are configuration keys `config/production.toml` accepts; every
//! long-running service has a health check, and an HTTP one probes the port and path the profile serves;
//! `depends_on` targets exist, can meet their condition and form no cycle; scaled services publish no
//! host port; the profile's hosts, users, database and bucket are the compose file's; the API's MySQL
//! user is created by the `mysql` service's init script under the profile's name, never by the MySQL
//! sink (its account has no CREATE USER); the API waits for nothing on the Redshift staging side. The
//! second test breaks the file in many ways and expects each break to be named.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Parser;
use roomstream::cli::Cli;
use roomstream::config::{self, Config};
use serde_json::{Map, Value};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// How a variable is referenced.
#[derive(Debug, Clone, PartialEq)]
enum Var {
    /// `${NAME:?message}`: Compose stops when it is unset or empty.
    Required,
    /// `${NAME:-default}`.
    Defaulted(String),
    /// `${NAME}` or `$NAME`: silently empty when unset.
    Bare,
}

/// Environment keys that look like credentials but are flags.
const NOT_SECRETS: [&str; 1] = ["MYSQL_RANDOM_ROOT_PASSWORD"];

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    !NOT_SECRETS.contains(&k.as_str())
        && ["PASSWORD", "SECRET", "ACCESS_KEY", "TOKEN", "ROOT_USER"]
            .iter()
            .any(|w| k.contains(w))
}

/// Interpolates one string as Compose does (`$$` is a `$`), a stand-in for each required or bare
/// variable; records every reference and every malformed one.
fn interpolate(
    s: &str,
    refs: &mut BTreeMap<String, Vec<Var>>,
    problems: &mut Vec<String>,
    at: &str,
) -> String {
    let name_len = |t: &str| {
        t.char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphanumeric() && (*i > 0 || !c.is_ascii_digit()) || *c == '_'
            })
            .count()
    };
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        let (before, dollar) = rest.split_at(i);
        out.push_str(before);
        let after = dollar.strip_prefix('$').unwrap_or(dollar);
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                problems.push(format!("{at}: unterminated `${{` in {s:?}"));
                return out;
            };
            let (inner, close) = body.split_at(end);
            let n = name_len(inner);
            let (name, op) = inner.split_at(n);
            let var = if op.is_empty() {
                Var::Bare
            } else if op.starts_with(":?") || op.starts_with('?') {
                Var::Required
            } else if let Some(d) = op.strip_prefix(":-").or(op.strip_prefix('-')) {
                Var::Defaulted(d.to_string())
            } else {
                problems.push(format!("{at}: cannot read `${{{inner}}}`"));
                Var::Bare
            };
            if n == 0 {
                problems.push(format!("{at}: `${{{inner}}}` names no variable"));
            }
            out.push_str(&match &var {
                Var::Defaulted(d) => d.clone(),
                _ => format!("x_{}", name.to_ascii_lowercase()),
            });
            refs.entry(name.to_string()).or_default().push(var);
            rest = close.strip_prefix('}').unwrap_or(close);
        } else if name_len(after) > 0 {
            let n = name_len(after);
            let (name, tail) = after.split_at(n);
            out.push_str(&format!("x_{}", name.to_ascii_lowercase()));
            refs.entry(name.to_string()).or_default().push(Var::Bare);
            rest = tail;
        } else {
            problems.push(format!(
                "{at}: `$` not followed by a variable in {s:?} (write `$$` for a literal `$`)"
            ));
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Applies YAML merge keys (`<<: *anchor`): the anchor's entries fill what the mapping lacks.
fn merge_keys(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for child in m.values_mut() {
                merge_keys(child);
            }
            if let Some(base) = m.remove("<<") {
                let bases = match base {
                    Value::Array(a) => a,
                    other => vec![other],
                };
                for b in bases {
                    if let Value::Object(bm) = b {
                        for (k, bv) in bm {
                            m.entry(k).or_insert(bv);
                        }
                    }
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(merge_keys),
        _ => {}
    }
}

fn interpolate_all(
    v: &Value,
    refs: &mut BTreeMap<String, Vec<Var>>,
    problems: &mut Vec<String>,
    at: &str,
) -> Value {
    match v {
        Value::String(s) => Value::String(interpolate(s, refs, problems, at)),
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| interpolate_all(x, refs, problems, &format!("{at}[{i}]")))
                .collect(),
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    (
                        k.clone(),
                        interpolate_all(x, refs, problems, &format!("{at}.{k}")),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A service's environment as name → value (map or `NAME=value` list form).
fn environment(svc: &Value) -> BTreeMap<String, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    match &svc["environment"] {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

/// Every string in a value.
fn all_strings<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(a) => a.iter().for_each(|x| all_strings(x, out)),
        Value::Object(m) => m.values().for_each(|x| all_strings(x, out)),
        _ => {}
    }
}

/// The password of every `scheme://user:<password>@` in `s` that is not a `${…}` reference.
fn literal_url_passwords(s: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in s.match_indices("://") {
        let authority = s
            .split_at(i + 3)
            .1
            .split(|c: char| c == '/' || c.is_whitespace() || c == '"')
            .next()
            .unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, pw)) = userinfo.split_once(':')
            && !(pw.starts_with("${") && pw.ends_with('}'))
        {
            found.push(pw.to_string());
        }
    }
    found
}

/// `(host, port)` of `http://127.0.0.1:PORT/PATH`-like URLs, with the path.
fn local_http(s: &str) -> Option<(u16, String)> {
    let rest = s
        .strip_prefix("http://127.0.0.1:")
        .or(s.strip_prefix("http://localhost:"))?;
    let (port, path) = rest.split_once('/').unwrap_or((rest, ""));
    Some((port.parse().ok()?, format!("/{path}")))
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':')?.1.parse().ok()
}

/// Every problem with a compose file, its `.env.example` and the Dockerfile (empty: none).
fn problems(compose: &str, env_example: &str, dockerfile: &str) -> Vec<String> {
    let mut p: Vec<String> = Vec::new();
    let mut raw: Value = match yaml_serde::from_str(compose) {
        Ok(v) => v,
        Err(e) => return vec![format!("not YAML: {e}")],
    };
    merge_keys(&mut raw);
    let mut refs = BTreeMap::new();
    let doc = interpolate_all(&raw, &mut refs, &mut p, "");

    // 1. The Compose Specification.
    let mut schema: Value = serde_json::from_str(&read("tests/compose-spec/compose_spec.json"))
        .expect("schema is JSON");
    // The file names its draft as `http://…/draft/2019-09/schema#`, which the validator would fetch;
    // the canonical URI of the same draft is built in (the vendored file stays as shipped).
    schema["$schema"] = "https://json-schema.org/draft/2019-09/schema".into();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft201909)
        .build(&schema)
        .expect("the Compose schema compiles");
    for e in validator.iter_errors(&doc) {
        p.push(format!("schema: {e} (at {})", e.instance_path));
    }
    let Some(services) = doc["services"].as_object() else {
        p.push("no services".into());
        return p;
    };
    let raw_services = raw["services"].as_object().cloned().unwrap_or_default();

    // 2. Variables: required or defaulted, one way only, listed in .env.example, credentials left empty.
    let documented: BTreeMap<String, String> = env_example
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    for (name, uses) in &refs {
        if uses.contains(&Var::Bare) {
            p.push(format!(
                "`${{{name}}}` is neither required (`${{{name}:?…}}`) nor defaulted (`${{{name}:-…}}`): unset, it is silently empty"
            ));
        }
        let required = uses.contains(&Var::Required);
        if required && uses.iter().any(|u| matches!(u, Var::Defaulted(_))) {
            p.push(format!("`{name}` is both required and defaulted"));
        }
        match documented.get(name) {
            None => p.push(format!("`{name}` is used but not in .env.example")),
            Some(v) if required && !v.is_empty() => p.push(format!(
                ".env.example gives the credential `{name}` a value: leave it empty"
            )),
            _ => {}
        }
    }
    for name in documented.keys() {
        if !refs.contains_key(name) {
            p.push(format!(
                ".env.example lists `{name}`, which docker-compose.yml does not use"
            ));
        }
    }

    // 3. No literal secrets: credential-like keys are required variables; URLs carry no password.
    for (name, svc) in &raw_services {
        for (key, value) in environment(svc) {
            let is_ref = value.starts_with("${")
                && value.ends_with('}')
                && value.strip_prefix("${").is_some_and(|v| v.contains(":?"))
                && value.matches("${").count() == 1;
            if looks_secret(&key) && !is_ref {
                p.push(format!(
                    "{name}: environment {key} is a literal, not `${{VAR:?…}}` (credentials come from the environment)"
                ));
            }
        }
    }
    let mut texts = Vec::new();
    all_strings(&raw, &mut texts);
    for s in texts {
        for pw in literal_url_passwords(s) {
            p.push(format!(
                "a URL carries the literal password {pw:?}: use `${{VAR:?…}}`"
            ));
        }
    }

    // 4. Services: commands, configuration, health checks, dependencies, scaling.
    let profile_path = root().join("config/production.toml");
    let entrypoint_ok = dockerfile
        .lines()
        .any(|l| l.trim() == r#"ENTRYPOINT ["roomstream"]"#);
    if !entrypoint_ok {
        p.push("Dockerfile: the entrypoint must be `ENTRYPOINT [\"roomstream\"]`: services give the subcommand as their command".into());
    }
    let is_roomstream = |svc: &Value| {
        svc.get("build").is_some() || svc["image"].as_str() == Some("roomstream:local")
    };
    let has_health = |svc: &Value| {
        svc.get("healthcheck")
            .is_some_and(|h| h["disable"].as_bool() != Some(true) && h.get("test").is_some())
    };
    let mut configs: BTreeMap<String, Config> = BTreeMap::new();
    for (name, svc) in services {
        let command = strings(&svc["command"]);
        let health_test = strings(&svc["healthcheck"]["test"]);
        if is_roomstream(svc) {
            if !svc["command"].is_array() {
                p.push(format!("{name}: give the command as a list (exec form)"));
            }
            let line = std::iter::once("roomstream".to_string()).chain(command.iter().cloned());
            if let Err(e) = Cli::try_parse_from(line) {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                p.push(format!(
                    "{name}: command {command:?} is not a roomstream command line: {first}"
                ));
            }
            if health_test.get(1).map(String::as_str) == Some("roomstream")
                && let Err(e) = Cli::try_parse_from(&health_test[1..])
            {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                p.push(format!(
                    "{name}: health check {health_test:?} is not a roomstream command line: {first}"
                ));
            }
            if command.first().map(String::as_str) == Some("crawl")
                && ["zigbang", "dabang", "vworld"]
                    .contains(&command.get(1).map_or("", String::as_str))
                && !command.iter().any(|a| a == "--every")
            {
                p.push(format!(
                    "{name}: runs a one-shot `crawl` as a service, restarted back to back: give it --every"
                ));
            }
            // The profile it mounts, loaded with its environment: every ROOMSTREAM_* key must exist.
            let env = environment(svc);
            let mounted: Vec<String> = strings(&svc["volumes"])
                .iter()
                .filter_map(|v| {
                    let mut parts = v.split(':');
                    (parts.next() == Some("./config/production.toml"))
                        .then(|| parts.next().unwrap_or("").to_string())
                })
                .collect();
            match env.get("ROOMSTREAM_CONFIG") {
                Some(c) if mounted.contains(c) => {}
                other => p.push(format!(
                    "{name}: ROOMSTREAM_CONFIG is {other:?}, not where ./config/production.toml is mounted ({mounted:?})"
                )),
            }
            match config::load_with_env(Some(&profile_path), env.clone()) {
                Ok(cfg) => {
                    configs.insert(name.clone(), cfg);
                }
                Err(e) => p.push(format!(
                    "{name}: config/production.toml with this service's environment: {e}"
                )),
            }
        }
        // Health checks: every long-running service has one, or says why not.
        let one_shot = svc["restart"].as_str() == Some("no");
        let excused = svc["x-no-healthcheck"]
            .as_str()
            .is_some_and(|r| !r.trim().is_empty());
        if !has_health(svc) && !one_shot && !excused {
            p.push(format!(
                "{name}: no healthcheck (add one, or `x-no-healthcheck: <why>`)"
            ));
        }
        if health_test.iter().any(|a| a == "curl")
            && is_roomstream(svc)
            && !dockerfile.contains(" curl")
        {
            p.push(format!(
                "{name}: its health check runs curl, which the Dockerfile does not install"
            ));
        }
        // An HTTP probe must hit what this command serves, per the profile.
        if let (Some(cfg), Some((port, path))) = (
            configs.get(name),
            health_test.iter().find_map(|a| local_http(a)),
        ) {
            let served: Vec<(Option<u16>, Vec<&str>, &str)> =
                match command.first().map(String::as_str) {
                    Some("serve") if cfg.api.ops_listen.is_empty() => vec![(
                        port_of(&cfg.api.listen),
                        vec!["/healthz", "/readyz", "/metrics"],
                        "api.listen",
                    )],
                    Some("serve") => vec![
                        (
                            port_of(&cfg.api.listen),
                            vec!["/healthz", "/readyz"],
                            "api.listen",
                        ),
                        (
                            port_of(&cfg.api.ops_listen),
                            vec!["/healthz", "/readyz", "/metrics"],
                            "api.ops_listen",
                        ),
                    ],
                    Some("process") => vec![(
                        port_of(&cfg.process.metrics_listen),
                        vec!["/metrics", "/healthz", "/readyz"],
                        "process.metrics_listen",
                    )],
                    Some("sink") => vec![(
                        port_of(&cfg.sink.ops_listen),
                        vec!["/healthz", "/readyz"],
                        "sink.ops_listen",
                    )],
                    _ => vec![],
                };
            if !served
                .iter()
                .any(|(p2, paths, _)| *p2 == Some(port) && paths.contains(&path.as_str()))
            {
                let keys: Vec<String> = served
                    .iter()
                    .map(|(p2, paths, key)| format!("{key} :{} {paths:?}", p2.unwrap_or(0)))
                    .collect();
                p.push(format!(
                    "{name}: health check probes :{port}{path}, which `roomstream {}` does not serve ({})",
                    command.join(" "),
                    keys.join("; ")
                ));
            }
        }
        // Published ports of the API: the container side is a port the profile listens on.
        if let Some(cfg) = configs.get(name)
            && command.first().map(String::as_str) == Some("serve")
        {
            let listening = [port_of(&cfg.api.listen), port_of(&cfg.api.ops_listen)];
            for mapping in strings(&svc["ports"]) {
                let inner = mapping
                    .rsplit(':')
                    .next()
                    .and_then(|p2| p2.parse::<u16>().ok());
                if !listening.contains(&inner) {
                    p.push(format!(
                        "{name}: publishes {mapping:?}, but the API listens on {} and {}",
                        cfg.api.listen, cfg.api.ops_listen
                    ));
                }
            }
        }
        // Scaled services: several copies must be able to run.
        if is_roomstream(svc)
            && matches!(
                command.first().map(String::as_str),
                Some("process" | "sink")
            )
        {
            for key in ["ports", "container_name"] {
                if svc.get(key).is_some() {
                    p.push(format!(
                        "{name} scales (`--scale {name}=N`): it must not set `{key}`"
                    ));
                }
            }
        }
        // Dependencies exist and can meet their condition.
        let deps: Vec<(String, String)> = match &svc["depends_on"] {
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .map(|d| (d.to_string(), "service_started".to_string()))
                .collect(),
            Value::Object(m) => m
                .iter()
                .map(|(d, c)| (d.clone(), c["condition"].as_str().unwrap_or("").to_string()))
                .collect(),
            _ => vec![],
        };
        for (dep, condition) in deps {
            let Some(target) = services.get(&dep) else {
                p.push(format!("{name} depends on {dep}, which does not exist"));
                continue;
            };
            if condition == "service_healthy" && !has_health(target) {
                p.push(format!(
                    "{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
                ));
            }
            if condition == "service_completed_successfully"
                && target["restart"].as_str() != Some("no")
            {
                p.push(format!(
                    "{name} waits for {dep} to complete, but {dep} is long-running (restart: {})",
                    target["restart"]
                ));
            }
        }
    }
    if let Some(cycle) = dependency_cycle(services) {
        p.push(format!("depends_on cycle: {}", cycle.join(" → ")));
    }

    // 5. The profile agrees with the compose file: hosts, users, database, bucket; no secrets in it.
    let profile: toml::Table = read("config/production.toml")
        .parse()
        .expect("profile is TOML");
    let mut profile_strings = Vec::new();
    collect_toml_strings(
        &toml::Value::Table(profile.clone()),
        "",
        &mut profile_strings,
    );
    for (key, s) in &profile_strings {
        if key.contains("password") && !s.is_empty() {
            p.push(format!(
                "config/production.toml sets `{key}`: credentials come from the environment"
            ));
        }
        for pw in literal_url_passwords(s) {
            p.push(format!(
                "config/production.toml `{key}` carries the password {pw:?}"
            ));
        }
    }
    let get = |section: &str, key: &str| {
        profile
            .get(section)
            .and_then(|s| s.get(key))
            .and_then(toml::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    for broker in get("kafka", "brokers").split(',') {
        let host = broker.trim().rsplit_once(':').map_or("", |(h, _)| h);
        match services.get(host) {
            None => p.push(format!(
                "kafka.brokers names {host}, which is not a service"
            )),
            Some(k)
                if !environment(k)
                    .get("KAFKA_ADVERTISED_LISTENERS")
                    .is_some_and(|l| l.contains(&format!("//{}", broker.trim()))) =>
            {
                p.push(format!(
                    "{host} does not advertise {broker} (kafka.brokers)"
                ))
            }
            _ => {}
        }
    }
    for (key, user_var, db_var) in [
        ("mysql", "MYSQL_USER", "MYSQL_DATABASE"),
        ("postgres", "POSTGRES_USER", "POSTGRES_DB"),
    ] {
        let Ok(url) = url::Url::parse(&get(key, "url")) else {
            p.push(format!("{key}.url is not a URL"));
            continue;
        };
        let host = url.host_str().unwrap_or("");
        let Some(svc) = services.get(host) else {
            p.push(format!("{key}.url names {host}, which is not a service"));
            continue;
        };
        let env = environment(svc);
        let db = url.path().trim_start_matches('/');
        if env.get(user_var).map(String::as_str) != Some(url.username())
            || env.get(db_var).map(String::as_str) != Some(db)
        {
            p.push(format!(
                "{key}.url is {}@…/{db}, but {host} creates {:?}@…/{:?}",
                url.username(),
                env.get(user_var),
                env.get(db_var)
            ));
        }
        if get(key, "reader_user").is_empty() {
            p.push(format!(
                "{key}.reader_user is empty: the API would read as the sink's user"
            ));
        }
    }
    let endpoint_host = url::Url::parse(&get("store", "endpoint"))
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if !services.contains_key(&endpoint_host) {
        p.push(format!(
            "store.endpoint names {endpoint_host:?}, which is not a service"
        ));
    }
    let bucket = url::Url::parse(&get("store", "url"))
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let creates_bucket = services.values().any(|svc| {
        let mut s = Vec::new();
        all_strings(&svc["command"], &mut s);
        s.iter().any(|c| {
            c.lines()
                .any(|l| l.contains("mc mb") && l.trim_end().ends_with(&format!("/{bucket}")))
        })
    });
    if !creates_bucket {
        p.push(format!(
            "no service creates the bucket {bucket:?} of store.url (`mc mb …/{bucket}`)"
        ));
    }

    // 6. The API's MySQL user: created by the database's own init script (as root), under the name
    //    the profile gives, so the sink's account needs no CREATE USER; no MySQL sink tries to create
    //    it; the API reads as it.
    let reader = get("mysql", "reader_user");
    let mysql_host = url::Url::parse(&get("mysql", "url"))
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if let (Some(db), Some(raw_db)) = (services.get(&mysql_host), raw_services.get(&mysql_host)) {
        let env = environment(db);
        let created = env.get("ROOMSTREAM_MYSQL_READER_USER");
        if created != Some(&reader) {
            p.push(format!(
                "{mysql_host} creates the read-only user {created:?} (ROOMSTREAM_MYSQL_READER_USER), but mysql.reader_user is {reader:?}"
            ));
        }
        if !env.contains_key("ROOMSTREAM_MYSQL_READER_PASSWORD") {
            p.push(format!(
                "{mysql_host}: no ROOMSTREAM_MYSQL_READER_PASSWORD for the read-only user it creates"
            ));
        }
        // Init scripts as mounted (before interpolation: the source is a path in this repository).
        let scripts: Vec<String> = strings(&raw_db["volumes"])
            .iter()
            .filter_map(|v| {
                let mut parts = v.split(':');
                let (src, dst) = (parts.next()?, parts.next()?);
                dst.starts_with("/docker-entrypoint-initdb.d/")
                    .then(|| src.to_string())
            })
            .collect();
        let mut creates_reader = false;
        for src in &scripts {
            let path = root().join(src.trim_start_matches("./"));
            let Ok(text) = std::fs::read_to_string(&path) else {
                p.push(format!("{mysql_host} mounts {src}, which does not exist"));
                continue;
            };
            creates_reader |= text.contains("ROOMSTREAM_MYSQL_READER_USER");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).map_or(0, |m| m.permissions().mode());
                if src.ends_with(".sh") && mode & 0o111 != 0 {
                    p.push(format!(
                        "{src} is executable: the image would run it, not source it with its functions"
                    ));
                }
            }
        }
        if !creates_reader {
            p.push(format!(
                "{mysql_host}: no init script in /docker-entrypoint-initdb.d creates the read-only user (ROOMSTREAM_MYSQL_READER_USER)"
            ));
        }
    }
    for (name, cfg) in &configs {
        let command = strings(&services[name]["command"]);
        let command: Vec<&str> = command.iter().map(String::as_str).collect();
        if command.starts_with(&["sink", "mysql"]) && !cfg.mysql.reader_user.is_empty() {
            p.push(format!(
                "{name}: mysql.reader_user is {:?}, so the sink would CREATE USER, which its account may not ({mysql_host} creates the user): set ROOMSTREAM_MYSQL_READER_USER: \"\"",
                cfg.mysql.reader_user
            ));
        }
        if command.first() == Some(&"serve") && cfg.mysql.reader_user.is_empty() {
            p.push(format!(
                "{name}: mysql.reader_user is empty: the API would read as the sink's user"
            ));
        }
    }

    // 7. The API waits for nothing on the Redshift staging side (its sink, PostgreSQL), directly or
    //    not: a broken staging database must not keep production from serving.
    let postgres_host = url::Url::parse(&get("postgres", "url"))
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    let staging = |dep: &str| {
        dep == postgres_host
            || services.get(dep).is_some_and(|svc| {
                is_roomstream(svc)
                    && strings(&svc["command"]).starts_with(&["sink".into(), "redshift".into()])
            })
    };
    for (name, svc) in services {
        if !(is_roomstream(svc)
            && strings(&svc["command"]).first().map(String::as_str) == Some("serve"))
        {
            continue;
        }
        let (mut seen, mut todo) = (BTreeSet::new(), depends_on(svc));
        while let Some(dep) = todo.pop() {
            if !seen.insert(dep.clone()) {
                continue;
            }
            if staging(&dep) {
                p.push(format!(
                    "{name} waits for {dep} (Redshift staging): a broken staging database would keep the API from starting"
                ));
            }
            todo.extend(services.get(&dep).map(depends_on).unwrap_or_default());
        }
    }
    p
}

fn collect_toml_strings(v: &toml::Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        toml::Value::String(s) => out.push((at.to_string(), s.clone())),
        toml::Value::Table(t) => {
            for (k, x) in t {
                let key = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                collect_toml_strings(x, &key, out);
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|x| collect_toml_strings(x, at, out)),
        _ => {}
    }
}

/// The services a service names in `depends_on` (list or map form).
fn depends_on(svc: &Value) -> Vec<String> {
    match &svc["depends_on"] {
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Value::Object(m) => m.keys().cloned().collect(),
        _ => vec![],
    }
}

/// A `depends_on` cycle, if any.
fn dependency_cycle(services: &Map<String, Value>) -> Option<Vec<String>> {
    fn visit(
        name: &str,
        services: &Map<String, Value>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == name) {
            let mut cycle = path[i..].to_vec();
            cycle.push(name.to_string());
            return Some(cycle);
        }
        if done.contains(name) {
            return None;
        }
        path.push(name.to_string());
        for d in services.get(name).map(depends_on).unwrap_or_default() {
            if let Some(c) = visit(&d, services, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(name.to_string());
        None
    }
    let mut done = BTreeSet::new();
    services
        .keys()
        .find_map(|n| visit(n, services, &mut Vec::new(), &mut done))
}

#[test]
fn the_compose_file_passes_the_compose_schema_and_roomstreams_rules() {
    // Arrange
    let (compose, env_example, dockerfile) = (
        read("docker-compose.yml"),
        read(".env.example"),
        read("Dockerfile"),
    );
    // Act
    let found = problems(&compose, &env_example, &dockerfile);
    // Assert
    assert!(
        found.is_empty(),
        "docker-compose.yml:\n  {}",
        found.join("\n  ")
    );
    let doc: Value = yaml_serde::from_str(&compose).expect("YAML");
    println!(
        "compose: {} services valid against the Compose Specification schema and roomstream's rules (not run: no Docker engine here)",
        doc["services"].as_object().map_or(0, Map::len)
    );
}

#[test]
fn a_broken_compose_file_is_caught_naming_what_is_wrong() {
    let (compose, env_example, dockerfile) = (
        read("docker-compose.yml"),
        read(".env.example"),
        read("Dockerfile"),
    );
    // (what, in which file, replace this, with that, a problem must contain)
    let breaks: [(&str, &str, &str, &str, &str); 18] = [
        (
            "unknown subcommand",
            "compose",
            r#"["sink", "mysql"]"#,
            r#"["sink", "mysqll"]"#,
            "sink-mysql: command",
        ),
        (
            "misspelt key",
            "compose",
            "stop_grace_period: 1m",
            "stop_grace_periode: 1m",
            "schema:",
        ),
        (
            "wrong type",
            "compose",
            "retries: 12",
            "retries: many",
            "schema:",
        ),
        (
            "missing dependency",
            "compose",
            "sink-mysql:\n        condition: service_healthy",
            "sink-mysqll:\n        condition: service_healthy",
            "depends on sink-mysqll, which does not exist",
        ),
        (
            "API waiting for the staging sink",
            "compose",
            "      sink-mysql:\n        condition: service_healthy\n",
            "      sink-mysql:\n        condition: service_healthy\n      sink-redshift:\n        condition: service_healthy\n",
            "api waits for sink-redshift (Redshift staging)",
        ),
        (
            "MySQL sink creating the read-only user",
            "compose",
            "      ROOMSTREAM_MYSQL_READER_USER: \"\"\n",
            "",
            "sink-mysql: mysql.reader_user is \"roomstream_api\", so the sink would CREATE USER",
        ),
        (
            "read-only user other than the profile's",
            "compose",
            "ROOMSTREAM_MYSQL_READER_USER: roomstream_api",
            "ROOMSTREAM_MYSQL_READER_USER: roomstream_reader",
            "mysql creates the read-only user Some(\"roomstream_reader\")",
        ),
        (
            "no init script creating the read-only user",
            "compose",
            "      - ./deploy/mysql/01-reader-user.sh:/docker-entrypoint-initdb.d/01-reader-user.sh:ro\n",
            "",
            "mysql: no init script in /docker-entrypoint-initdb.d creates the read-only user",
        ),
        (
            "healthy wait on a service without a health check",
            "compose",
            "      topics:\n        condition: service_completed_successfully\n\n  crawl-dabang:",
            "      crawl-dabang:\n        condition: service_healthy\n\n  crawl-dabang:",
            "crawl-dabang has no healthcheck",
        ),
        (
            "literal password",
            "compose",
            "${MYSQL_PASSWORD:?set MYSQL_PASSWORD (.env)}@mysql",
            "hunter2@mysql",
            "literal password \"hunter2\"",
        ),
        (
            "literal credential",
            "compose",
            "AWS_SECRET_ACCESS_KEY: ${S3_READER_SECRET_KEY:?set S3_READER_SECRET_KEY (.env)}",
            "AWS_SECRET_ACCESS_KEY: SECRETTEST1234",
            "api: environment AWS_SECRET_ACCESS_KEY is a literal",
        ),
        (
            "undocumented variable",
            "compose",
            "ROOMSTREAM_LOG: info",
            "ROOMSTREAM_LOG: ${LOG_LEVEL:-info}",
            "`LOG_LEVEL` is used but not in .env.example",
        ),
        (
            "variable that may be silently empty",
            "compose",
            "${API_PORT:-8080}",
            "${API_PORT}",
            "`${API_PORT}` is neither required",
        ),
        (
            "unknown configuration key",
            "compose",
            "ROOMSTREAM_LOG: info",
            "ROOMSTREAM_LOG: info\n  ROOMSTREAM_KAFKA_BROKER: kafka:9092",
            "(ROOMSTREAM_KAFKA_BROKER)",
        ),
        (
            "health check on the wrong port",
            "compose",
            "http://127.0.0.1:9464/readyz",
            "http://127.0.0.1:9465/readyz",
            "processor: health check probes :9465/readyz",
        ),
        (
            "one-shot crawl as a service",
            "compose",
            r#""--every", "24h", "#,
            "",
            "crawl-vworld: runs a one-shot `crawl`",
        ),
        (
            "variable missing from the example",
            "env",
            "OPS_PORT=\n",
            "",
            "`OPS_PORT` is used but not in .env.example",
        ),
        (
            "secret in the example",
            "env",
            "MYSQL_PASSWORD=\n",
            "MYSQL_PASSWORD=hunter2\n",
            "gives the credential `MYSQL_PASSWORD` a value",
        ),
    ];
    for (what, file, from, to, expect) in breaks {
        let (mut c, mut e) = (compose.clone(), env_example.clone());
        let target = if file == "compose" { &mut c } else { &mut e };
        assert!(
            target.contains(from),
            "{what}: the fixture text {from:?} is gone; update this test"
        );
        *target = target.replacen(from, to, 1);
        let found = problems(&c, &e, &dockerfile);
        let named = found.iter().find(|f| f.contains(expect));
        assert!(
            named.is_some(),
            "{what}: expected a problem containing {expect:?}, got:\n  {}",
            found.join("\n  ")
        );
        eprintln!("{what}: {}", named.map_or("", String::as_str));
    }
    let found = problems(
        &compose,
        &env_example,
        &dockerfile.replace(r#"ENTRYPOINT ["roomstream"]"#, "ENTRYPOINT [\"sh\"]"),
    );
    assert!(
        found.iter().any(|f| f.starts_with("Dockerfile:")),
        "{found:?}"
    );
}

#[test]
fn compose_interpolation_reads_every_form_and_refuses_a_lone_dollar() {
    let (mut refs, mut p) = (BTreeMap::new(), Vec::new());
    let out = interpolate(
        "a=${A:?set A} b=${B:-x:y} c=$C d=$$D e=${E}",
        &mut refs,
        &mut p,
        "t",
    );
    assert_eq!(out, "a=x_a b=x:y c=x_c d=$D e=x_e");
    assert_eq!(refs["A"], [Var::Required]);
    assert_eq!(refs["B"], [Var::Defaulted("x:y".into())]);
    assert_eq!(
        (refs["C"].clone(), refs["E"].clone()),
        (vec![Var::Bare], vec![Var::Bare])
    );
    assert!(p.is_empty(), "{p:?}");
    interpolate("grep \"$1\"", &mut refs, &mut p, "t");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(
        literal_url_passwords("mysql://u:${P:?x}@h/db postgres://u:pw@h/db s3://bucket/x"), // secrets: allow
        ["pw"]
    );
}
