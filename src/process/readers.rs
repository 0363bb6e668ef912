//! The processor's reads of whole topics, beside its consumer group: the broker registry (a global
//! table every instance reads to its end) and what `listings.v1` already holds for a partition (so a
//! restore or replay publishes only the difference).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::engine::{Engine, Position};
use super::publish::CanonicalListing;
use super::runtime::ProcessError;
use crate::config::Config;
use crate::kafka::client_config;
use crate::topics::TopicKind;

/// Where a consumed record came from.
pub(super) fn position<'a>(m: &'a rdkafka::message::BorrowedMessage<'_>) -> Position<'a> {
    Position {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
    }
}

pub(super) fn registry_consumer(cfg: &Config, topic: &str) -> Result<BaseConsumer, ProcessError> {
    let consumer: BaseConsumer = client_config(&cfg.kafka)
        .set("group.id", format!("{}.registry", cfg.kafka.namespace))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let partitions = TopicKind::Brokers.def().partitions;
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(consumer)
}

/// Reads the registry up to its current end (`initial`: from wherever the consumer is, logging).
pub(super) fn read_registry(
    consumer: &BaseConsumer,
    probe: &BaseConsumer,
    topic: &str,
    engine: &mut Engine,
    initial: bool,
) -> Result<(), ProcessError> {
    let (_, end) = probe.fetch_watermarks(topic, 0, Duration::from_secs(10))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = Vec::new();
    while engine.brokers_next < end {
        if Instant::now() > deadline {
            return Err(ProcessError::Transient(format!(
                "could not read {topic} to offset {end} within 120 s"
            )));
        }
        match consumer.poll(Duration::from_millis(200)) {
            // On a compacted topic the last offsets may be gone: the position says how far we are.
            None => {
                if let Some(Offset::Offset(at)) = consumer
                    .position()
                    .ok()
                    .and_then(|tpl| tpl.find_partition(topic, 0).map(|e| e.offset()))
                {
                    engine.brokers_next = engine.brokers_next.max(at);
                }
            }
            Some(Ok(m)) => engine.broker(position(&m), m.key(), m.payload(), &mut out),
            Some(Err(e)) => return Err(e.into()),
        }
    }
    if initial && !out.is_empty() {
        tracing::warn!(
            events = out.len(),
            "registry records rejected while loading"
        );
    }
    // Outputs of the initial load are DLQ events only (no partition is owned yet); re-reading the
    // registry after a catch-up is covered by the reconcile that follows.
    Ok(())
}

/// What `listings.v1` holds for partition `p`: `base` (the checkpoint's map) updated by every record
/// published for p after `from` (every record when `from` is None).
pub(super) fn held_listings(
    cfg: &Config,
    topic: &str,
    p: i32,
    from: Option<Vec<i64>>,
    mut base: BTreeMap<String, [u8; 16]>,
) -> Result<BTreeMap<String, [u8; 16]>, ProcessError> {
    let consumer: BaseConsumer = client_config(&cfg.kafka)
        .set(
            "group.id",
            format!("{}.listings-reader", cfg.kafka.namespace),
        )
        .set("enable.auto.commit", "false")
        .create()?;
    let partitions = TopicKind::Listings.def().partitions;
    if from.is_none() {
        base.clear();
    }
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for lp in 0..partitions {
        let start = from
            .as_ref()
            .and_then(|f| f.get(lp as usize).copied())
            .unwrap_or(0);
        let (_, end) = consumer.fetch_watermarks(topic, lp, Duration::from_secs(10))?;
        if start < end {
            tpl.add_partition_offset(topic, lp, Offset::Offset(start))?;
            ends.insert(lp, end);
        }
    }
    if ends.is_empty() {
        return Ok(base);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ends.is_empty() {
        if Instant::now() > deadline {
            return Err(ProcessError::Transient(format!(
                "could not read {topic} to its end within 300 s"
            )));
        }
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            // On a compacted topic the last offsets may be gone: the position says how far we are.
            if let Ok(tpl) = consumer.position() {
                ends.retain(|lp, end| !matches!(tpl.find_partition(topic, *lp).map(|e| e.offset()), Some(Offset::Offset(at)) if at >= *end));
            }
            continue;
        };
        let m = m?;
        if m.offset() + 1 >= ends.get(&m.partition()).copied().unwrap_or(0) {
            ends.remove(&m.partition());
        }
        let Some(key) = m.key().and_then(|k| std::str::from_utf8(k).ok()) else {
            continue;
        };
        match m.payload() {
            None => {
                base.remove(key);
            }
            Some(v) => {
                if let Ok(mut l) = serde_json::from_slice::<CanonicalListing>(v)
                    && l.version.partition == p
                {
                    base.insert(key.to_string(), l.content_hash());
                }
            }
        }
    }
    Ok(base)
}

/// Reads the whole registry into `engine` (for `state dump`, which verifies brokers as the processor
/// would).
pub fn load_registry(cfg: &Config, engine: &mut Engine) -> Result<(), ProcessError> {
    let topic = TopicKind::Brokers.name(&cfg.kafka.namespace);
    let consumer = registry_consumer(cfg, &topic)?;
    let probe: BaseConsumer = client_config(&cfg.kafka).create()?;
    read_registry(&consumer, &probe, &topic, engine, true)
}
