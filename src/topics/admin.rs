//! `roomstream topics apply|check`: make the broker match `topics/`, or report where it does not.
//!
//! [`plan`] compares each definition with what the broker has (metadata for partitions,
//! `DescribeConfigs` for `cleanup.policy` and `retention.ms`) and lists the [`Drift`]. [`apply`] then
//! creates missing topics, adds partitions where there are too few and alters drifted configs; running
//! it twice changes nothing the second time. Partitions are never removed (Kafka cannot), so a topic with
//! more partitions than its definition is reported, not "fixed".

use std::fmt;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::metadata::{Metadata, MetadataTopic};
use rdkafka::types::RDKafkaErrorCode;

use super::{TopicKind, wire};
use crate::config::KafkaConfig;
use crate::kafka::{client_config, client_id};

/// How long one admin request may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// An admin operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The admin client could not be created or reach the broker.
    #[error("cannot talk to the broker at {brokers}: {source}")]
    Connect {
        /// `kafka.brokers`.
        brokers: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// The broker refused an operation on a topic.
    #[error("{operation} {topic} failed: {reason}")]
    Refused {
        /// What was attempted.
        operation: &'static str,
        /// The topic.
        topic: String,
        /// The broker's error.
        reason: String,
    },
}

/// One difference between a definition and the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Drift {
    /// The topic does not exist.
    Missing {
        /// Full topic name.
        topic: String,
    },
    /// The topic has a different partition count.
    Partitions {
        /// Full topic name.
        topic: String,
        /// Partitions on the broker.
        actual: i32,
        /// Partitions in the definition.
        expected: i32,
    },
    /// A managed config differs.
    Config {
        /// Full topic name.
        topic: String,
        /// Config name, e.g. `retention.ms`.
        key: &'static str,
        /// Value on the broker (`None`: not reported).
        actual: Option<String>,
        /// Value from the definition.
        expected: String,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::Missing { topic } => write!(f, "{topic}: missing"),
            Drift::Partitions {
                topic,
                actual,
                expected,
            } => {
                write!(
                    f,
                    "{topic}: {actual} partitions, definition says {expected}"
                )
            }
            Drift::Config {
                topic,
                key,
                actual,
                expected,
            } => write!(
                f,
                "{topic}: {key} = {}, definition says {expected}",
                actual.as_deref().unwrap_or("(not reported)")
            ),
        }
    }
}

/// Connects an admin client to `kafka.brokers`.
fn admin(cfg: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, AdminError> {
    client_config(cfg)
        .create()
        .map_err(|source| AdminError::Connect {
            brokers: cfg.brokers.clone(),
            source,
        })
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

/// Lists every difference between the definitions and the broker, in topic order.
pub async fn plan(cfg: &KafkaConfig) -> Result<Vec<Drift>, AdminError> {
    let admin = admin(cfg)?;
    Ok(plan_with(&admin, cfg)
        .await?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

/// The full names of roomstream's topics that do not exist on the broker (metadata only, no configs).
pub async fn missing(cfg: &KafkaConfig) -> Result<Vec<String>, AdminError> {
    let admin = admin(cfg)?;
    let metadata = fetch_metadata(&admin, cfg)?;
    Ok(TopicKind::ALL
        .into_iter()
        .map(|k| k.name(&cfg.namespace))
        .filter(|name| topic_meta(&metadata, name).is_none())
        .collect())
}

/// Every topic's metadata, or a connection error naming `kafka.brokers`.
fn fetch_metadata(
    admin: &AdminClient<DefaultClientContext>,
    cfg: &KafkaConfig,
) -> Result<Metadata, AdminError> {
    admin
        .inner()
        .fetch_metadata(None, TIMEOUT)
        .map_err(|source| AdminError::Connect {
            brokers: cfg.brokers.clone(),
            source,
        })
}

/// A topic's metadata, if it exists without error.
fn topic_meta<'m>(metadata: &'m Metadata, name: &str) -> Option<&'m MetadataTopic> {
    metadata
        .topics()
        .iter()
        .find(|t| t.name() == name && t.error().is_none())
}

/// The drift, each with the topic it belongs to.
async fn plan_with(
    admin: &AdminClient<DefaultClientContext>,
    cfg: &KafkaConfig,
) -> Result<Vec<(TopicKind, Drift)>, AdminError> {
    let metadata = fetch_metadata(admin, cfg)?;
    let mut drift = Vec::new();
    for kind in TopicKind::ALL {
        let topic = kind.name(&cfg.namespace);
        let def = kind.def();
        let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
            drift.push((kind, Drift::Missing { topic }));
            continue;
        };
        if let Some(error) = meta.error() {
            // Listed but unreadable (a leader election, say): neither missing nor comparable.
            return Err(refused("read metadata of", &topic, format!("{error:?}")));
        }
        let actual = meta.partitions().len() as i32;
        if actual != def.partitions {
            drift.push((
                kind,
                Drift::Partitions {
                    topic: topic.clone(),
                    actual,
                    expected: def.partitions,
                },
            ));
        }
        let described = admin
            .describe_configs([&ResourceSpecifier::Topic(&topic)], &options())
            .await
            .map_err(|e| refused("describe configs of", &topic, e))?;
        let resource = described
            .into_iter()
            .next()
            .ok_or_else(|| refused("describe configs of", &topic, "empty answer"))?
            .map_err(|code| refused("describe configs of", &topic, code))?;
        for (key, expected) in def.configs() {
            let actual = resource.get(key).and_then(|e| e.value.clone());
            if actual.as_deref() != Some(expected.as_str()) {
                drift.push((
                    kind,
                    Drift::Config {
                        topic: topic.clone(),
                        key,
                        actual,
                        expected,
                    },
                ));
            }
        }
    }
    Ok(drift)
}

fn refused(operation: &'static str, topic: &str, reason: impl fmt::Display) -> AdminError {
    AdminError::Refused {
        operation,
        topic: topic.to_string(),
        reason: reason.to_string(),
    }
}

/// What [`apply`] did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Changes made, one line each.
    pub changes: Vec<String>,
    /// Drift that Kafka cannot fix (more partitions than defined: partitions are never removed).
    pub unfixable: Vec<Drift>,
    /// Drift the broker refused to fix, with its answer (Tansu 0.6, for one, has no CreatePartitions).
    pub failed: Vec<(Drift, String)>,
}

/// Creates or updates every topic so the broker matches `topics/`. Idempotent. Each drift is fixed on
/// its own: one the broker refuses is reported in [`Applied::failed`] and the others still go ahead.
/// Fails only if the broker cannot be reached or described.
pub async fn apply(cfg: &KafkaConfig) -> Result<Applied, AdminError> {
    let admin = admin(cfg)?;
    let mut applied = Applied::default();
    for (kind, drift) in plan_with(&admin, cfg).await? {
        match fix(&admin, cfg, kind, &drift).await {
            Ok(Some(change)) => applied.changes.push(change),
            Ok(None) => applied.unfixable.push(drift),
            Err(e) => applied.failed.push((drift, e.to_string())),
        }
    }
    Ok(applied)
}

/// Fixes one drift; `Ok(None)` if Kafka cannot (too many partitions).
async fn fix(
    admin: &AdminClient<DefaultClientContext>,
    cfg: &KafkaConfig,
    kind: TopicKind,
    drift: &Drift,
) -> Result<Option<String>, AdminError> {
    let def = kind.def();
    let configs = def.configs();
    match drift {
        Drift::Missing { topic } => {
            let replication = TopicReplication::Fixed(cfg.replication_factor);
            let mut new = NewTopic::new(topic, def.partitions, replication);
            for (key, value) in &configs {
                new = new.set(key, value);
            }
            let results = admin.create_topics([&new], &options()).await;
            // Another `apply` may win the race: fine, the topic exists now.
            all_ok(
                results,
                "create",
                topic,
                Some(RDKafkaErrorCode::TopicAlreadyExists),
            )?;
            Ok(Some(format!(
                "created {topic} ({} partitions, {})",
                def.partitions,
                describe(&configs)
            )))
        }
        Drift::Partitions {
            topic,
            actual,
            expected,
        } if actual < expected => {
            let new = NewPartitions::new(topic, *expected as usize);
            let results = admin.create_partitions([&new], &options()).await;
            all_ok(results, "add partitions to", topic, None)?;
            Ok(Some(format!("{topic}: partitions {actual} → {expected}")))
        }
        Drift::Partitions { .. } => Ok(None),
        Drift::Config {
            topic,
            key,
            actual,
            expected,
        } => {
            // AlterConfigs replaces the topic's whole dynamic config: send every managed key.
            let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
            for (k, v) in &configs {
                alter = alter.set(k, v);
            }
            let results = admin.alter_configs([&alter], &options()).await;
            if matches!(
                results,
                Err(KafkaError::AdminOp(RDKafkaErrorCode::UnsupportedFeature))
            ) {
                // A broker with only the incremental request (Tansu 0.6): send that one instead.
                wire::incremental_alter_configs(
                    &cfg.brokers,
                    &client_id(cfg),
                    topic,
                    &configs,
                    TIMEOUT,
                )
                .await
                .map_err(|e| refused("alter configs of", topic, e))?;
            } else {
                all_ok(results, "alter configs of", topic, None)?;
            }
            let actual = actual.as_deref().unwrap_or("(not reported)");
            Ok(Some(format!("{topic}: {key} {actual} → {expected}")))
        }
    }
}

/// What an admin request returns: per resource, its name or (name, error).
type AdminResults<T, R> = Result<Vec<Result<T, (R, RDKafkaErrorCode)>>, KafkaError>;

/// Fails on the request's error or any per-resource error other than `tolerated`.
fn all_ok<T, R>(
    results: AdminResults<T, R>,
    operation: &'static str,
    topic: &str,
    tolerated: Option<RDKafkaErrorCode>,
) -> Result<(), AdminError> {
    for result in results.map_err(|e| refused(operation, topic, e))? {
        match result {
            Err((_, code)) if Some(code) != tolerated => {
                return Err(refused(operation, topic, code));
            }
            _ => {}
        }
    }
    Ok(())
}

fn describe(configs: &[(&'static str, String)]) -> String {
    configs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_reads_as_one_line_naming_topic_and_values() {
        let d = Drift::Config {
            topic: "rs.observed.v1".into(),
            key: "retention.ms",
            actual: Some("604800000".into()),
            expected: "15552000000".into(),
        };
        assert_eq!(
            d.to_string(),
            "rs.observed.v1: retention.ms = 604800000, definition says 15552000000"
        );
    }
}
