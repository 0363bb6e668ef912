//! Kafka plumbing shared by every component: client settings and a producer that confirms deliveries.
//!
//! [`EventSink`] is the one way roomstream writes to topics. [`KafkaSink`] is the real one: idempotent,
//! `acks=all`, compressed, keyed with the murmur2 partitioner (Java clients' default, so a Kafka Streams
//! or Connect job keys records to the same partitions). It counts delivery reports; [`EventSink::finish`]
//! flushes and fails unless every record was acknowledged. [`MemorySink`] keeps records in memory for
//! unit tests only.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config::KafkaConfig;
use crate::topics::TopicKind;

/// A produce that failed.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The client could not be created (bad settings).
    #[error("cannot create Kafka producer: {0}")]
    Create(#[source] KafkaError),
    /// librdkafka refused to queue a record.
    #[error("cannot enqueue record for {topic}: {source}")]
    Enqueue {
        /// Target topic.
        topic: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// Some records were not acknowledged by the broker.
    #[error("{failed} of {sent} records were not delivered; first error: {first_error}")]
    Undelivered {
        /// Records handed to the producer.
        sent: u64,
        /// Records that failed or were never acknowledged.
        failed: u64,
        /// The first delivery error seen.
        first_error: String,
    },
}

/// How many records a sink delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Records acknowledged by the broker.
    pub records: u64,
    /// Their value bytes.
    pub bytes: u64,
}

/// Where components write records.
pub trait EventSink {
    /// Queues one record; returns once it is queued, not delivered.
    fn send(&mut self, topic: TopicKind, key: &str, value: &[u8]) -> Result<(), ProduceError>;
    /// Queues a tombstone (a record with no value) for a compacted topic, with headers (name, value)
    /// saying what the missing value cannot (e.g. the version of the deletion).
    fn tombstone(
        &mut self,
        topic: TopicKind,
        key: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), ProduceError>;
    /// Waits until every queued record is acknowledged; fails if any was not.
    fn finish(&mut self) -> Result<Delivered, ProduceError>;
}

/// The `client.id` roomstream's clients give the broker: `<namespace>-roomstream`.
pub fn client_id(cfg: &KafkaConfig) -> String {
    format!("{}-roomstream", cfg.namespace)
}

/// librdkafka settings common to producers, consumers and admin clients.
pub fn client_config(cfg: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.brokers)
        .set("client.id", client_id(cfg))
        .set("log_level", "4");
    c
}

/// A consumer's settings: [`client_config`] with bounded prefetching — at most
/// `kafka.consumer_buffer_kib` fetched and not yet consumed (librdkafka lowers `fetch.max.bytes` to
/// it), and no more than 10,000 messages queued per partition — so a flood on the topics costs the
/// consumer time, never memory. Manual commits; a new group starts at the earliest offset.
pub fn consumer_config(cfg: &KafkaConfig, group: &str) -> ClientConfig {
    let mut c = client_config(cfg);
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.wait.max.ms", "100")
        .set(
            "queued.max.messages.kbytes",
            cfg.consumer_buffer_kib.to_string(),
        )
        .set("queued.min.messages", "10000");
    c
}

/// Watches the broker from a thread of its own for as long as `health` lives: every second, a metadata
/// request for `topic` (2 s timeout); a failure marks the `broker` dependency of `health` down with
/// the error, an answer marks it up. Readiness then follows the broker even while the run itself is
/// blocked — a producer flush waits up to `kafka.message_timeout` for an absent broker.
pub fn watch_broker(
    cfg: &KafkaConfig,
    topic: &str,
    health: &std::sync::Arc<crate::health::Health>,
) -> Result<(), KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let probe: BaseConsumer = client_config(cfg).create()?;
    let (topic, health) = (topic.to_string(), std::sync::Arc::downgrade(health));
    let spawned = std::thread::Builder::new()
        .name("broker-watch".into())
        .spawn(move || {
            while let Some(h) = health.upgrade() {
                let down = probe
                    .fetch_metadata(Some(&topic), Duration::from_secs(2))
                    .err()
                    .map(|e| format!("broker unreachable: {e}"));
                h.set_dependency("broker", down);
                drop(h);
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the broker watch: {e}");
    }
    Ok(())
}

/// Counts delivery reports from librdkafka's callback thread.
#[derive(Default)]
struct DeliveryCounter {
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
}

/// The real sink: an idempotent, `acks=all` producer on the configured broker.
pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryCounter>,
    namespace: String,
    names: [String; 5],
    sent: u64,
    bytes: u64,
    flush_timeout: Duration,
}

impl KafkaSink {
    /// Creates the producer. No connection is made until the first record.
    pub fn new(cfg: &KafkaConfig) -> Result<Self, ProduceError> {
        let producer = client_config(cfg)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &cfg.compression)
            .set("linger.ms", cfg.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                cfg.message_timeout.as_millis().to_string(),
            )
            .set("partitioner", "murmur2_random")
            .set("queue.buffering.max.messages", "200000")
            .create_with_context(DeliveryCounter::default())
            .map_err(ProduceError::Create)?;
        Ok(KafkaSink {
            producer,
            namespace: cfg.namespace.clone(),
            names: TopicKind::ALL.map(|t| t.name(&cfg.namespace)),
            sent: 0,
            bytes: 0,
            flush_timeout: cfg.message_timeout + Duration::from_secs(5),
        })
    }

    /// The namespace the topic names are under.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

impl KafkaSink {
    /// Sends a record to one partition explicitly (control records that every partition must see).
    pub fn send_to_partition(
        &mut self,
        topic: TopicKind,
        partition: i32,
        key: &str,
        value: &[u8],
    ) -> Result<(), ProduceError> {
        self.enqueue_at(topic, Some(partition), key, Some(value), &[])
    }

    fn enqueue(
        &mut self,
        topic: TopicKind,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), ProduceError> {
        self.enqueue_at(topic, None, key, value, &[])
    }

    fn enqueue_at(
        &mut self,
        topic: TopicKind,
        partition: Option<i32>,
        key: &str,
        value: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<(), ProduceError> {
        let name = &self.names[topic as usize];
        let mut record = BaseRecord::to(name).key(key);
        if !headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(headers.len());
            for (k, v) in headers {
                h = h.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            record = record.headers(h);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: the local queue is full until the broker acknowledges a batch.
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((source, _)) => {
                    return Err(ProduceError::Enqueue {
                        topic: name.clone(),
                        source,
                    });
                }
            }
        }
        self.sent += 1;
        self.bytes += value.map_or(0, |v| v.len() as u64);
        Ok(())
    }
}

impl EventSink for KafkaSink {
    fn send(&mut self, topic: TopicKind, key: &str, value: &[u8]) -> Result<(), ProduceError> {
        self.enqueue(topic, key, Some(value))
    }

    fn tombstone(
        &mut self,
        topic: TopicKind,
        key: &str,
        headers: &[(&str, &str)],
    ) -> Result<(), ProduceError> {
        self.enqueue_at(topic, None, key, None, headers)
    }

    fn finish(&mut self) -> Result<Delivered, ProduceError> {
        let flushed = self.producer.flush(self.flush_timeout);
        let counter = self.producer.context();
        let ok = counter.ok.load(Ordering::Relaxed);
        let failed = counter.failed.load(Ordering::Relaxed);
        if flushed.is_err() || failed > 0 || ok != self.sent {
            let first_error = counter
                .first_error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .or_else(|| flushed.err().map(|e| e.to_string()))
                .unwrap_or_else(|| "no acknowledgement before the flush timeout".into());
            return Err(ProduceError::Undelivered {
                sent: self.sent,
                failed: self.sent - ok,
                first_error,
            });
        }
        Ok(Delivered {
            records: ok,
            bytes: self.bytes,
        })
    }
}

/// Keeps records in memory, in order. For unit tests only.
#[derive(Debug, Default)]
pub struct MemorySink {
    /// (topic, key, value) in send order.
    pub records: Vec<(TopicKind, String, Vec<u8>)>,
}

impl MemorySink {
    /// The records sent to one topic, values parsed as JSON.
    pub fn values(&self, topic: TopicKind) -> Vec<serde_json::Value> {
        self.records
            .iter()
            .filter(|(t, _, _)| *t == topic)
            .filter_map(|(_, _, v)| serde_json::from_slice(v).ok())
            .collect()
    }

    /// The keys sent to one topic.
    pub fn keys(&self, topic: TopicKind) -> Vec<&str> {
        self.records
            .iter()
            .filter(|(t, _, _)| *t == topic)
            .map(|(_, k, _)| k.as_str())
            .collect()
    }
}

impl EventSink for MemorySink {
    fn send(&mut self, topic: TopicKind, key: &str, value: &[u8]) -> Result<(), ProduceError> {
        self.records.push((topic, key.to_string(), value.to_vec()));
        Ok(())
    }

    /// Recorded with an empty value (headers dropped).
    fn tombstone(
        &mut self,
        topic: TopicKind,
        key: &str,
        _headers: &[(&str, &str)],
    ) -> Result<(), ProduceError> {
        self.records.push((topic, key.to_string(), Vec::new()));
        Ok(())
    }

    fn finish(&mut self) -> Result<Delivered, ProduceError> {
        Ok(Delivered {
            records: self.records.len() as u64,
            bytes: self.records.iter().map(|r| r.2.len() as u64).sum(),
        })
    }
}
