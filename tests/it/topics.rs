//! `topics apply|check` against the real broker.

use roomstream::topics::{TopicKind, admin};

use crate::support::{roomstream_with, spawn_env};

#[tokio::test(flavor = "multi_thread")]
async fn apply_creates_every_topic_once_and_check_then_finds_no_drift() {
    let env = spawn_env(&[]).await; // applies once
    let again = admin::apply(&env.cfg.kafka).await.expect("second apply");
    assert!(
        again.changes.is_empty(),
        "second apply changed {:?}",
        again.changes
    );
    let drift = admin::plan(&env.cfg.kafka).await.expect("plan");
    assert!(drift.is_empty(), "drift right after apply: {drift:?}");
    assert!(
        admin::missing(&env.cfg.kafka)
            .await
            .expect("metadata")
            .is_empty()
    );

    // The CLI says the same, and exits 0.
    let out = env.roomstream(&["topics", "check"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 drift(s)"));
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_missing_topics_and_crawls_refuse_to_start_without_them() {
    let env = spawn_env(&[]).await;
    let mut kafka = env.cfg.kafka.clone();
    kafka.namespace = format!("{}_empty", kafka.namespace);
    let drift = admin::plan(&kafka).await.expect("plan");
    assert_eq!(drift.len(), TopicKind::ALL.len(), "{drift:?}");
    assert!(
        drift
            .iter()
            .all(|d| matches!(d, admin::Drift::Missing { .. }))
    );

    let vars = [
        ("ROOMSTREAM_KAFKA_NAMESPACE", kafka.namespace.as_str()),
        ("ROOMSTREAM_KAFKA_BROKERS", &kafka.brokers),
    ];
    let out = roomstream_with(&vars, &["topics", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = roomstream_with(
        &vars,
        &["crawl", "synthetic", "--listings", "10", "--days", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("roomstream topics apply"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crawl_against_an_unreachable_broker_exits_non_zero_naming_it() {
    let out = roomstream_with(
        &[("ROOMSTREAM_KAFKA_BROKERS", "127.0.0.1:1")],
        &["crawl", "synthetic", "--listings", "10", "--days", "1"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:1"),
        "the error names the broker: {stderr}"
    );
}
