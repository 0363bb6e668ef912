//! Topic contracts: names, partitioning, retention and value schemas of roomstream's topics.
//!
//! The definitions live in `topics/*.toml` beside their JSON Schemas and are compiled in, so the binary
//! and the files can never disagree. Every topic and consumer-group name is prefixed by
//! `kafka.namespace` (default `roomstream`), which lets tests and tenants share one broker.
//!
//! - [`envelope`]: the value types (observation, sweep marker, broker record, DLQ event);
//! - [`keys`]: message keys and the normalizations behind them;
//! - [`admin`]: `roomstream topics apply|check` against the broker's admin API (with `wire`, the one
//!   request rdkafka lacks: IncrementalAlterConfigs).

pub mod admin;
pub mod envelope;
pub mod keys;
mod wire;

use std::time::Duration;

use serde::Deserialize;

/// Header of a `listings.v1` tombstone: the version clock of the deletion (decimal), so sinks guard a
/// deletion as they guard an upsert (`version.clock` of the value).
pub const HEADER_CLOCK: &str = "roomstream.clock";
/// Header of a `listings.v1` tombstone: the listing's 5-digit 시군구 code, when the processor knew it.
pub const HEADER_REGION: &str = "roomstream.region";

/// The five topics, in flow order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TopicKind {
    /// `observed.v1`: raw observations, keyed by region.
    Observed,
    /// `sweeps.v1`: sweep markers, keyed by region; and control records (key `control`, one per
    /// partition) for the processor.
    Sweeps,
    /// `brokers.v1`: the broker registry, compacted.
    Brokers,
    /// `listings.v1`: the processor's changelog, compacted.
    Listings,
    /// `dlq.v1`: rejected events.
    Dlq,
}

impl TopicKind {
    /// Every topic, in flow order.
    pub const ALL: [TopicKind; 5] = [
        TopicKind::Observed,
        TopicKind::Sweeps,
        TopicKind::Brokers,
        TopicKind::Listings,
        TopicKind::Dlq,
    ];

    /// The compiled-in definition of this topic.
    pub fn def(self) -> &'static TopicDef {
        &definitions()[self as usize]
    }

    /// The full topic name under a namespace: `<namespace>.<suffix>`.
    pub fn name(self, namespace: &str) -> String {
        format!("{namespace}.{}", self.def().suffix)
    }

    /// The JSON Schema of this topic's values, as written in `topics/`.
    pub fn schema_json(self) -> &'static str {
        SOURCES[self as usize].2
    }
}

/// How a topic's old records are cleaned up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CleanupPolicy {
    /// Records older than `retention` are deleted.
    Delete,
    /// Only the latest record per key is kept (tombstones delete the key).
    Compact,
}

impl CleanupPolicy {
    /// The Kafka `cleanup.policy` value.
    pub fn as_kafka(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
        }
    }
}

/// One topic's definition, read from `topics/<suffix>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicDef {
    /// Name after the namespace, e.g. `observed.v1`.
    pub suffix: String,
    /// Partition count. observed.v1 and sweeps.v1 must agree (co-partitioned by region).
    pub partitions: i32,
    /// Cleanup policy.
    pub cleanup_policy: CleanupPolicy,
    /// How long records are kept: a humantime duration (`180d`) or `forever`.
    pub retention: String,
    /// What the message key is, for people.
    pub key: String,
    /// The JSON Schema file of the values, beside the definition.
    pub value_schema: String,
}

impl TopicDef {
    /// Retention as Kafka's `retention.ms` (`-1` for forever).
    pub fn retention_ms(&self) -> i64 {
        parse_retention(&self.retention).unwrap_or(-1)
    }

    /// The topic-level configs roomstream manages: `cleanup.policy` and `retention.ms`.
    pub fn configs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("cleanup.policy", self.cleanup_policy.as_kafka().to_string()),
            ("retention.ms", self.retention_ms().to_string()),
        ]
    }
}

/// `forever` → -1, a humantime duration → its milliseconds, anything else → `None`.
fn parse_retention(text: &str) -> Option<i64> {
    if text == "forever" {
        return Some(-1);
    }
    humantime::parse_duration(text)
        .ok()
        .map(|d: Duration| d.as_millis() as i64)
}

/// (definition file, definition TOML, schema JSON) in [`TopicKind`] order.
const SOURCES: [(&str, &str, &str); 5] = [
    (
        "topics/observed.v1.toml",
        include_str!("../../topics/observed.v1.toml"),
        include_str!("../../topics/observed.v1.schema.json"),
    ),
    (
        "topics/sweeps.v1.toml",
        include_str!("../../topics/sweeps.v1.toml"),
        include_str!("../../topics/sweeps.v1.schema.json"),
    ),
    (
        "topics/brokers.v1.toml",
        include_str!("../../topics/brokers.v1.toml"),
        include_str!("../../topics/brokers.v1.schema.json"),
    ),
    (
        "topics/listings.v1.toml",
        include_str!("../../topics/listings.v1.toml"),
        include_str!("../../topics/listings.v1.schema.json"),
    ),
    (
        "topics/dlq.v1.toml",
        include_str!("../../topics/dlq.v1.toml"),
        include_str!("../../topics/dlq.v1.schema.json"),
    ),
];

/// Parses the compiled-in definitions once.
///
/// # Panics
/// If a file in `topics/` does not parse: a build-time contract, checked by the unit tests below.
fn definitions() -> &'static [TopicDef; 5] {
    static DEFS: std::sync::OnceLock<[TopicDef; 5]> = std::sync::OnceLock::new();
    DEFS.get_or_init(|| {
        SOURCES.map(|(file, text, _)| match toml::from_str::<TopicDef>(text) {
            Ok(def) if parse_retention(&def.retention).is_some() => def,
            Ok(def) => panic!(
                "{file}: retention {:?} is neither `forever` nor a duration",
                def.retention
            ),
            Err(e) => panic!("{file} is not a valid topic definition: {e}"),
        })
    })
}

/// The consumer-group name of a component under a namespace: `<namespace>.<component>`.
pub fn group_name(namespace: &str, component: &str) -> String {
    format!("{namespace}.{component}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_definition_parses_and_names_its_schema_file() {
        for (kind, (file, _, schema)) in TopicKind::ALL.iter().zip(SOURCES) {
            let def = kind.def();
            assert!(file.ends_with(&format!("{}.toml", def.suffix)), "{file}");
            assert_eq!(def.value_schema, format!("{}.schema.json", def.suffix));
            let parsed: serde_json::Value = serde_json::from_str(schema).expect("schema is JSON");
            assert!(
                parsed["$id"]
                    .as_str()
                    .is_some_and(|id| id.contains(&def.suffix)),
                "{file}"
            );
        }
    }

    #[test]
    fn region_keyed_topics_are_co_partitioned() {
        assert_eq!(
            TopicKind::Observed.def().partitions,
            TopicKind::Sweeps.def().partitions
        );
    }

    #[test]
    fn compacted_topics_are_kept_forever_and_names_carry_the_namespace() {
        assert_eq!(
            TopicKind::Brokers.def().cleanup_policy,
            CleanupPolicy::Compact
        );
        assert_eq!(TopicKind::Listings.def().retention_ms(), -1);
        assert_eq!(
            TopicKind::Observed.def().retention_ms(),
            180 * 24 * 3600 * 1000
        );
        assert_eq!(TopicKind::Observed.name("rs_t1"), "rs_t1.observed.v1");
        assert_eq!(group_name("roomstream", "process"), "roomstream.process");
    }
}
