//! `topics apply|check` against the real broker.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use roomstream::kafka::client_config;
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

/// A sink (or the processor) started before its broker waits for it with `[retry]`'s back-off, then
/// gives up after `retry.give_up_after` naming it — unlike a one-shot crawl, which fails at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_sink_waits_for_an_unreachable_broker_then_gives_up_naming_it() {
    let started = std::time::Instant::now();
    let out = roomstream_with(
        &[
            ("ROOMSTREAM_KAFKA_BROKERS", "127.0.0.1:1"),
            ("ROOMSTREAM_RETRY_FIRST", "200ms"),
            ("ROOMSTREAM_RETRY_GIVE_UP_AFTER", "20s"),
        ],
        &["sink", "mysql", "--exit-when-idle"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("trying again"), "it waited: {stderr}");
    assert!(
        stderr.contains("127.0.0.1:1"),
        "the error names the broker: {stderr}"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "gave up after {:?}",
        started.elapsed()
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn check_finds_drifted_partitions_and_configs_and_apply_repairs_what_kafka_allows() {
    let env = spawn_env(&[]).await;
    let mut kafka = env.cfg.kafka.clone();
    kafka.namespace = format!("{}_drift", kafka.namespace);
    // Someone created observed.v1 by hand: 2 partitions, a week's retention.
    let admin_client: AdminClient<DefaultClientContext> =
        client_config(&kafka).create().expect("admin");
    let observed = TopicKind::Observed.name(&kafka.namespace);
    let topic = NewTopic::new(&observed, 2, TopicReplication::Fixed(1))
        .set("cleanup.policy", "delete")
        .set("retention.ms", "604800000");
    let created = admin_client
        .create_topics([&topic], &AdminOptions::new())
        .await
        .expect("create");
    assert!(created.iter().all(Result::is_ok), "{created:?}");

    let drift = admin::plan(&kafka).await.expect("plan");
    let lines: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(
        lines.contains(&format!("{observed}: 2 partitions, definition says 8")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{observed}: retention.ms = 604800000"))),
        "{lines:?}"
    );
    assert_eq!(
        drift
            .iter()
            .filter(|d| matches!(d, admin::Drift::Missing { .. }))
            .count(),
        4
    );

    let applied = admin::apply(&kafka).await.expect("apply");
    eprintln!(
        "changes: {:#?}\nfailed: {:#?}",
        applied.changes, applied.failed
    );
    assert!(applied.unfixable.is_empty());
    assert_eq!(
        applied
            .changes
            .iter()
            .filter(|c| c.starts_with("created "))
            .count(),
        4,
        "missing topics created"
    );
    // Whatever apply did not fix, it said so: the drift left is exactly the drift it reported as failed
    // (on Tansu 0.6: the partitions, which it cannot add — the broker's answer is in the message).
    let after: Vec<String> = admin::plan(&kafka)
        .await
        .expect("plan again")
        .iter()
        .map(ToString::to_string)
        .collect();
    let failed: Vec<String> = applied.failed.iter().map(|(d, _)| d.to_string()).collect();
    assert_eq!(after, failed);
    assert!(
        !after.iter().any(|l| l.contains("retention.ms")),
        "configs are fixed: {after:?}"
    );
    assert!(applied.failed.iter().all(|(_, why)| !why.is_empty()));
}
