//! The configuration's loading, layering and validation, key by key.

use super::*;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_compiled_in_local_profile_is_valid() {
    let cfg = load_with_env(None, env(&[])).expect("local profile loads");
    assert_eq!(cfg.kafka.namespace, "roomstream");
}

#[test]
fn environment_overrides_split_section_from_key_at_the_first_underscore() {
    let cfg = load_with_env(
        None,
        env(&[
            ("ROOMSTREAM_KAFKA_BROKERS", "10.0.0.1:9092"),
            ("ROOMSTREAM_KAFKA_NAMESPACE", "rs_test"),
            ("ROOMSTREAM_API_LISTEN", "0.0.0.0:9999"),
            ("ROOMSTREAM_STORE_URL", "s3://bucket/prefix"),
            ("ROOMSTREAM_STORE_ENDPOINT", "http://127.0.0.1:9000"),
            ("ROOMSTREAM_ZIGBANG_BATCH_SIZE", "10"),
            ("ROOMSTREAM_ZIGBANG_MIN_INTERVAL", "2s"),
            ("ROOMSTREAM_TEST_KAFKA", "ignored"),
            ("ROOMSTREAM_LOG", "debug"),
        ]),
    )
    .expect("overrides apply");
    assert_eq!(cfg.kafka.brokers, "10.0.0.1:9092");
    assert_eq!(cfg.kafka.namespace, "rs_test");
    assert_eq!(cfg.api.listen, "0.0.0.0:9999");
    assert_eq!(cfg.store.url, "s3://bucket/prefix");
    assert_eq!(cfg.store.endpoint, "http://127.0.0.1:9000");
    assert_eq!(cfg.zigbang.batch_size, 10);
    assert_eq!(cfg.zigbang.min_interval, Duration::from_secs(2));

    // Number-like strings stay strings where the key is a string; lists parse.
    let cfg = load_with_env(
        None,
        env(&[
            ("ROOMSTREAM_KAFKA_NAMESPACE", "2024"),
            ("ROOMSTREAM_ZIGBANG_GEOHASHES", r#"["wydm9", "wydmd"]"#),
            ("ROOMSTREAM_SERVICES_DIR", "/tmp/not-config"),
        ]),
    )
    .expect("overrides apply");
    assert_eq!(cfg.kafka.namespace, "2024");
    assert_eq!(cfg.zigbang.geohashes, ["wydm9", "wydmd"]);
}

#[test]
fn bad_keys_and_values_fail_naming_the_key() {
    let cases: [(&[(&str, &str)], &str); 6] = [
        (&[("ROOMSTREAM_KAFKA_BROKR", "x:1")], "brokr"),
        (
            &[("ROOMSTREAM_KAFKA_BROKERS", "nohostport")],
            "kafka.brokers",
        ),
        (&[("ROOMSTREAM_API_LISTEN", "localhost")], "api.listen"),
        (&[("ROOMSTREAM_STORE_URL", "ftp://x")], "store.url"),
        (
            &[("ROOMSTREAM_ZIGBANG_BATCH_SIZE", "16")],
            "zigbang.batch_size",
        ),
        (
            &[("ROOMSTREAM_ZIGBANG_BATCH_SIZE", "many")],
            "zigbang.batch_size (ROOMSTREAM_ZIGBANG_BATCH_SIZE)",
        ),
    ];
    for (vars, key) in cases {
        let err = load_with_env(None, env(vars))
            .expect_err("must fail")
            .to_string();
        assert!(
            err.contains(key),
            "{vars:?}: error {err:?} does not name {key}"
        );
    }
}

#[test]
fn a_profile_missing_a_key_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("broken.toml");
    let without_brokers = LOCAL_PROFILE.replace("brokers = ", "# brokers = ");
    std::fs::write(&path, without_brokers).expect("write");
    let err = load_with_env(Some(&path), env(&[]))
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("brokers"), "{err}");
}

#[test]
fn every_shipped_profile_loads_with_its_required_environment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in ["local.toml", "demo.toml", "production.toml"] {
        let cfg = load_with_env(
            Some(&root.join(name)),
            env(&[
                ("ROOMSTREAM_MYSQL_URL", "mysql://u:secret@db:3306/rs"), // secrets: allow (masking test)
                ("ROOMSTREAM_MYSQL_READER_PASSWORD", "secret2"),
                ("ROOMSTREAM_POSTGRES_READER_PASSWORD", "secret3"),
            ]),
        );
        let cfg = cfg.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            !cfg.to_masked_toml().contains("secret"),
            "{name} leaks a password"
        );
    }
}

#[test]
fn a_reader_user_needs_its_password_from_the_environment() {
    let check = |vars: &[(&str, &str)]| match load_with_env(None, env(vars)) {
        Ok(cfg) => cfg.validate().err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    };
    let err = check(&[("ROOMSTREAM_MYSQL_READER_USER", "api")]).unwrap_or_default();
    assert!(
        err.contains("mysql.reader_user") && err.contains("READER_PASSWORD"),
        "{err}"
    );
    let err = check(&[("ROOMSTREAM_SINK_BATCH_ROWS", "0")]).unwrap_or_default();
    assert!(err.contains("sink.batch_rows"), "{err}");
    assert_eq!(
        check(&[
            ("ROOMSTREAM_MYSQL_READER_USER", "api"),
            ("ROOMSTREAM_MYSQL_READER_PASSWORD", "pw")
        ]),
        None
    );
}
