//! The one consumer loop of every sink.
//!
//! A sink is a consumer group (`<namespace>.sink-<name>`) over its topics that never commits offsets to
//! Kafka: the destination holds them ([`Destination::positions`]), written in the same commit as the
//! data ([`Destination::write`]). So:
//! 1. **assign**: read the stored next offset of each assigned partition and seek there;
//! 2. **batch**: per partition, records in offset order until `sink.batch_rows` are waiting, or
//!    `sink.linger` after the first, or the partition runs dry (or the destination asks for a cut, so
//!    that a replay rewrites the same S3 objects);
//! 3. **write**: listings records are decoded first; what does not follow the contract goes to the DLQ
//!    (flushed before the batch commits: a crash re-sends it, never loses it); then the destination
//!    commits rows and the position together. It refuses a batch whose starting position is not what
//!    it holds ([`SinkError::Fenced`]): another instance moved on, so this one re-reads the position;
//! 4. **revoke / stop**: pending batches are written first.
//!
//! `--exit-when-idle` stops once this run has read every assigned partition to its end offset and every
//! partition of every topic is durable up to it, by whichever instance wrote it. `--replay` starts every
//! partition at offset 0 instead of the stored position: the version guard makes it change nothing that
//! is already newer.
//!
//! Positions, one vocabulary: the destination **holds** a *next offset* per partition (what it has made
//! durable); a batch goes **from** the held position, its records span **first**..=last, and **next** =
//! last + 1; after it the destination holds `max(from, next)` ([`Batch::after`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use super::SinkError;
use super::change::{self, Change, Reject};
use crate::config::Config;
use crate::health::Health;
use crate::kafka::{EventSink, KafkaSink, client_config, consumer_config};
use crate::topics::envelope::{DLQ_SCHEMA, DlqEvent};
use crate::topics::{HEADER_CLOCK, HEADER_REGION, TopicKind};

/// One consumed record.
#[derive(Debug, Clone)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes (None: a tombstone).
    pub value: Option<Vec<u8>>,
    /// The record's timestamp (ms since the epoch), as the producer set it.
    pub timestamp_ms: Option<i64>,
}

/// A run of consecutive records of one partition of one topic, written in one commit.
#[derive(Debug)]
pub struct Batch {
    /// The topic.
    pub topic: TopicKind,
    /// Partition.
    pub partition: i32,
    /// The position the destination must hold before this batch (the fence).
    pub from: i64,
    /// Offset of the batch's first record.
    pub first: i64,
    /// The position it holds after: last offset + 1.
    pub next: i64,
    /// The records (not `listings.v1`, whose records arrive decoded in `changes`).
    pub records: Vec<Record>,
    /// `listings.v1` records, decoded, in offset order (the bad ones went to the DLQ).
    pub changes: Vec<Change>,
}

impl Batch {
    /// The position the destination holds after this batch: its `next`, or `from` when a replay
    /// re-delivers records below the stored position (a position never moves back).
    pub fn after(&self) -> i64 {
        self.next.max(self.from)
    }
}

/// Where a sink writes. Every method runs on the sink's thread (through the runtime's `block_on`).
pub trait Destination: Send + 'static {
    /// `mysql`, `s3`, `redshift`.
    fn name(&self) -> &'static str;
    /// The topics it consumes.
    fn topics(&self) -> Vec<TopicKind>;
    /// Next offset made durable, per (topic, partition) it has written (absent: nothing yet).
    fn positions(
        &mut self,
    ) -> impl Future<Output = Result<BTreeMap<(TopicKind, i32), i64>, SinkError>>;
    /// Writes the batch and moves the stored position from `batch.from` to `batch.next`, atomically.
    fn write(&mut self, batch: Batch) -> impl Future<Output = Result<(), SinkError>>;
    /// The committed range `(first, next)` that contains `offset`, if the destination fixed one: a
    /// replay cuts its batches there, so that names derived from positions repeat even where records
    /// have since been compacted away or expired.
    fn cut(&self, _topic: TopicKind, _partition: i32, _offset: i64) -> Option<(i64, i64)> {
        None
    }
    /// Called on assignment, before [`Destination::positions`], with the partitions this instance now
    /// owns (reload their state, clean up after a predecessor that died mid-write).
    fn assigned(
        &mut self,
        _partitions: &[(TopicKind, i32)],
    ) -> impl Future<Output = Result<(), SinkError>> {
        async { Ok(()) }
    }
    /// Periodic work (statistics, snapshots); `idle` when every partition is drained.
    fn tick(&mut self, _idle: bool) -> impl Future<Output = Result<(), SinkError>> {
        async { Ok(()) }
    }
    /// Called once when a run ends, after the last batch (a final snapshot).
    fn close(&mut self) -> impl Future<Output = Result<(), SinkError>> {
        async { Ok(()) }
    }
}

/// How to run a sink.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Stop once everything is durable up to the end offsets.
    pub exit_when_idle: bool,
    /// Start at offset 0 instead of the stored positions (under a fresh group).
    pub replay: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records consumed.
    pub records: u64,
    /// Batches committed.
    pub batches: u64,
    /// Records sent to the DLQ.
    pub dlq: u64,
    /// Batches refused because another instance had moved the partition on.
    pub fenced: u64,
}

struct Pending {
    records: Vec<Record>,
    changes: Vec<Change>,
    rejects: Vec<Reject>,
    /// Stored position before this batch.
    from: i64,
    first: i64,
    next: i64,
    /// The committed range this batch must reproduce (replay).
    cut: Option<(i64, i64)>,
    since: Instant,
}

struct Shared<D: Destination> {
    dest: D,
    handle: Handle,
    replay: bool,
    names: BTreeMap<TopicKind, String>,
    /// Next position the destination holds, per assigned (topic, partition).
    expected: BTreeMap<(TopicKind, i32), i64>,
    pending: BTreeMap<(TopicKind, i32), Pending>,
    dlq: KafkaSink,
    summary: RunSummary,
    error: Option<String>,
    /// Partitions to seek after a fenced batch.
    reseek: Vec<((TopicKind, i32), i64)>,
    /// Next offset this run has read to, per assigned partition (for `--exit-when-idle`).
    read_to: BTreeMap<(TopicKind, i32), i64>,
    /// Whether a first assignment happened.
    assigned: bool,
}

struct SinkContext<D: Destination> {
    shared: Arc<Mutex<Shared<D>>>,
}

impl<D: Destination> ClientContext for SinkContext<D> {}

impl<D: Destination> ConsumerContext for SinkContext<D> {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut s = lock(&self.shared);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let wanted: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                match s.assign(&wanted) {
                    Ok(positions) => {
                        if let Err(e) = consumer.assign(&positions) {
                            s.error = Some(format!("cannot assign: {e}"));
                        }
                    }
                    Err(e) => s.error = Some(format!("cannot read the stored positions: {e}")),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Err(e) = s.write_all() {
                    s.error = Some(format!("cannot write pending batches on revoke: {e}"));
                }
                s.expected.clear();
                s.pending.clear();
                s.reseek.clear();
                s.read_to.clear();
                if let Err(e) = consumer.unassign() {
                    tracing::warn!("unassign: {e}");
                }
            }
            other => tracing::warn!("rebalance error: {other:?}"),
        }
    }
}

fn lock<D: Destination>(m: &Mutex<Shared<D>>) -> MutexGuard<'_, Shared<D>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<D: Destination> Shared<D> {
    fn kind(&self, topic: &str) -> Option<TopicKind> {
        self.names
            .iter()
            .find(|(_, n)| n.as_str() == topic)
            .map(|(k, _)| *k)
    }

    fn assign(&mut self, wanted: &[(String, i32)]) -> Result<TopicPartitionList, SinkError> {
        let owned: Vec<(TopicKind, i32)> = wanted
            .iter()
            .filter_map(|(t, p)| self.kind(t).map(|k| (k, *p)))
            .collect();
        self.reseek.clear();
        self.handle.block_on(self.dest.assigned(&owned))?;
        let stored = self.handle.block_on(self.dest.positions())?;
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in wanted {
            let Some(kind) = self.kind(topic) else {
                continue;
            };
            let at = if self.replay {
                0
            } else {
                stored.get(&(kind, *p)).copied().unwrap_or(0)
            };
            // In a replay the destination still holds its own position: the fence compares with it.
            let holds = stored.get(&(kind, *p)).copied().unwrap_or(0);
            self.expected.insert((kind, *p), holds);
            self.read_to.insert((kind, *p), at);
            tpl.add_partition_offset(topic, *p, Offset::Offset(at))?;
        }
        self.assigned = true;
        tracing::info!(
            sink = self.dest.name(),
            partitions = wanted.len(),
            "assigned"
        );
        Ok(tpl)
    }

    /// Adds a record to its partition's pending batch; returns whether that batch is due.
    fn push(
        &mut self,
        kind: TopicKind,
        m: &rdkafka::message::BorrowedMessage<'_>,
        rows: usize,
    ) -> bool {
        let key = (kind, m.partition());
        let held = self.expected.get(&key).copied().unwrap_or(0);
        let offset = m.offset();
        self.read_to.insert(key, offset + 1);
        if !self.replay && offset < held {
            return false; // already durable (a re-delivery)
        }
        let cut = match self.pending.get(&key) {
            Some(p) => p.cut,
            None => self.dest.cut(kind, m.partition(), offset),
        };
        let pending = self.pending.entry(key).or_insert_with(|| Pending {
            records: Vec::new(),
            changes: Vec::new(),
            rejects: Vec::new(),
            from: held,
            first: cut.map_or(offset, |c| c.0),
            next: offset,
            cut,
            since: Instant::now(),
        });
        // A replayed range ends where the first run ended it, whatever is left of its records.
        pending.next = match pending.cut {
            Some((_, next)) => next,
            None => offset + 1,
        };
        if kind == TopicKind::Listings {
            let (clock, region) = tombstone_headers(m);
            match change::decode(m.partition(), offset, m.key(), m.payload(), (clock, region)) {
                Ok(c) => pending.changes.push(c),
                Err(r) => pending.rejects.push(r),
            }
        } else {
            pending.records.push(Record {
                partition: m.partition(),
                offset,
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp_ms: m.timestamp().to_millis(),
            });
        }
        let n = pending.records.len() + pending.changes.len() + pending.rejects.len();
        match pending.cut {
            Some((_, next)) => offset + 1 >= next,
            None => n >= rows,
        }
    }

    fn write(&mut self, key: (TopicKind, i32)) -> Result<(), SinkError> {
        let Some(p) = self.pending.remove(&key) else {
            return Ok(());
        };
        let (kind, partition) = key;
        if !p.rejects.is_empty() {
            let topic = self.names.get(&kind).cloned().unwrap_or_default();
            for r in &p.rejects {
                let event = dlq_event(&topic, self.dest.name(), r);
                let bytes =
                    serde_json::to_vec(&event).map_err(|e| SinkError::Other(e.to_string()))?;
                self.dlq
                    .send(TopicKind::Dlq, r.key.as_deref().unwrap_or(""), &bytes)?;
            }
            self.dlq.finish()?;
            self.summary.dlq += p.rejects.len() as u64;
        }
        let n = (p.records.len() + p.changes.len()) as u64;
        let mut changes = p.changes;
        change::fill_clocks(&mut changes);
        let batch = Batch {
            topic: kind,
            partition,
            from: p.from,
            first: p.first,
            next: p.next,
            records: p.records,
            changes,
        };
        let next = batch.after();
        match self.handle.block_on(self.dest.write(batch)) {
            Ok(()) => {
                self.expected.insert(key, next);
                self.summary.batches += 1;
                self.summary.records += n + p.rejects.len() as u64;
                Ok(())
            }
            Err(SinkError::Fenced { stored, .. }) => {
                tracing::warn!(
                    sink = self.dest.name(),
                    partition,
                    stored,
                    "fenced: re-reading from the stored position"
                );
                self.summary.fenced += 1;
                self.expected.insert(key, stored);
                self.pending.retain(|k, _| *k != key);
                self.reseek.push((key, stored));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the batches waiting at least `linger` (all with zero). A batch whose end the destination
    /// fixed waits for it (or for a record beyond it) unless `force`.
    fn write_due(&mut self, linger: Duration, force: bool) -> Result<(), SinkError> {
        let due: Vec<(TopicKind, i32)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= linger && (force || p.cut.is_none()))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            self.write(k)?;
        }
        Ok(())
    }

    fn write_all(&mut self) -> Result<(), SinkError> {
        self.write_due(Duration::ZERO, true)
    }

    /// Whether a record at `offset` falls beyond the fixed end of the waiting batch (records removed
    /// by compaction): that batch is written first.
    fn beyond_cut(&self, key: (TopicKind, i32), offset: i64) -> bool {
        self.pending
            .get(&key)
            .and_then(|p| p.cut)
            .is_some_and(|(_, next)| offset >= next)
    }
}

/// The tombstone headers of a `listings.v1` record: clock and region.
fn tombstone_headers(m: &rdkafka::message::BorrowedMessage<'_>) -> (Option<i64>, Option<String>) {
    let (mut clock, mut region) = (None, None);
    if let Some(h) = m.headers() {
        for hdr in h.iter() {
            let v = hdr.value.and_then(|v| std::str::from_utf8(v).ok());
            match hdr.key {
                HEADER_CLOCK => clock = v.and_then(|v| v.parse().ok()),
                HEADER_REGION => region = v.map(str::to_string),
                _ => {}
            }
        }
    }
    (clock, region)
}

fn dlq_event(topic: &str, sink: &str, r: &Reject) -> DlqEvent {
    let value = r.value.as_deref().map_or(serde_json::Value::Null, |v| {
        serde_json::from_slice(v)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(v).into_owned()))
    });
    DlqEvent {
        schema: DLQ_SCHEMA.into(),
        stage: format!("sink.{sink}"),
        reason: "contract_violation".into(),
        error: r.reason.clone(),
        topic: Some(topic.to_string()),
        partition: Some(r.partition),
        offset: Some(r.offset),
        key: r.key.clone(),
        value,
        value_base64: r
            .value
            .as_deref()
            .filter(|v| std::str::from_utf8(v).is_err())
            .map(|v| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v)),
        rejected_at: crate::topics::envelope::now(),
    }
}

/// (low, high) watermarks per (topic, partition).
type Watermarks = BTreeMap<(TopicKind, i32), (i64, i64)>;

/// (low, high) watermarks of every partition of the given topics.
fn watermarks(
    probe: &BaseConsumer,
    names: &BTreeMap<TopicKind, String>,
) -> Result<Watermarks, SinkError> {
    let mut out = BTreeMap::new();
    for (kind, name) in names {
        for p in 0..kind.def().partitions {
            out.insert(
                (*kind, p),
                probe.fetch_watermarks(name, p, Duration::from_secs(10))?,
            );
        }
    }
    Ok(out)
}

/// Runs a sink until `stop` (or until idle, with `exit_when_idle`); returns what it did. Runs on a
/// blocking thread: the destination's futures are driven with `Handle::block_on`. `health` is ready
/// while the destination answers and the broker does; an error of either ends the run (the caller
/// retries, [`crate::health::retrying`]) except the broker's, which librdkafka rides out by itself
/// (reconnecting), reported unready until a record or the metadata comes through again.
pub fn run<D: Destination>(
    cfg: &Config,
    dest: D,
    opts: RunOptions,
    stop: Arc<AtomicBool>,
    health: &Health,
) -> Result<RunSummary, SinkError> {
    let handle = Handle::current();
    let ns = &cfg.kafka.namespace;
    let name = dest.name();
    let names: BTreeMap<TopicKind, String> =
        dest.topics().into_iter().map(|k| (k, k.name(ns))).collect();
    let group = if opts.replay {
        format!(
            "{ns}.sink-{name}-replay-{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        )
    } else if !cfg.sink.group.is_empty() {
        cfg.sink.group.clone()
    } else {
        format!("{ns}.sink-{name}")
    };
    let shared = Arc::new(Mutex::new(Shared {
        dest,
        handle: handle.clone(),
        replay: opts.replay,
        names: names.clone(),
        expected: BTreeMap::new(),
        pending: BTreeMap::new(),
        dlq: KafkaSink::new(&cfg.kafka)?,
        summary: RunSummary::default(),
        error: None,
        reseek: Vec::new(),
        read_to: BTreeMap::new(),
        assigned: false,
    }));
    let consumer: BaseConsumer<SinkContext<D>> = consumer_config(&cfg.kafka, &group)
        .set("max.poll.interval.ms", "300000")
        .create_with_context(SinkContext {
            shared: shared.clone(),
        })?;
    let topic_names: Vec<&str> = names.values().map(String::as_str).collect();
    consumer.subscribe(&topic_names)?;
    let probe: BaseConsumer = client_config(&cfg.kafka).create()?;
    let (rows, linger) = (cfg.sink.batch_rows.max(1), cfg.sink.linger);
    let mut last_tick = Instant::now();
    let mut last_idle_check = Instant::now();
    let mut waiting_since = Instant::now();
    // The broker's last error, until a record or a metadata request comes through again.
    let mut broker_down: Option<String> = None;
    let health_topic = names.values().next().cloned().unwrap_or_default();
    loop {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let mut s = lock(&shared);
        if !s.assigned && waiting_since.elapsed() >= Duration::from_secs(60) {
            // Say so rather than wait in silence: the group may still hold dead members.
            tracing::warn!(sink = name, group = %group, "no partitions assigned after 60 s; still waiting for the group coordinator");
            waiting_since = Instant::now();
        }
        if let Some(e) = s.error.take() {
            return Err(SinkError::Other(e));
        }
        let mut reseeked = false;
        for ((kind, p), at) in std::mem::take(&mut s.reseek) {
            if let Some(topic) = s.names.get(&kind) {
                if let Err(e) = consumer.seek(topic, p, Offset::Offset(at), Duration::from_secs(10))
                {
                    tracing::warn!(sink = name, partition = p, "seek after a fence: {e}");
                }
                s.read_to.insert((kind, p), at);
                reseeked = true;
            }
        }
        let idle = match polled {
            // Fetched before the seek: it will come again from the stored position.
            Some(Ok(_)) if reseeked => false,
            Some(Ok(m)) => {
                broker_down = None;
                if let Some(kind) = s.kind(m.topic())
                    && s.expected.contains_key(&(kind, m.partition()))
                {
                    let key = (kind, m.partition());
                    if s.beyond_cut(key, m.offset()) {
                        s.write(key)?;
                    }
                    if s.push(kind, &m, rows) {
                        s.write(key)?;
                    }
                }
                false
            }
            // Fatal: it does not heal by itself; end the run and let `retrying` start a new one.
            Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => return Err(e.into()),
            Some(Err(e)) => {
                tracing::warn!(sink = name, "consume: {e}");
                health.set_unready(format!("broker: {e}"));
                broker_down = Some(e.to_string());
                false
            }
            None => {
                s.write_due(Duration::ZERO, false)?;
                true
            }
        };
        s.write_due(linger, false)?;
        if idle || last_tick.elapsed() >= Duration::from_secs(1) {
            let handle = s.handle.clone();
            handle.block_on(s.dest.tick(idle))?;
            last_tick = Instant::now();
            if broker_down.is_some()
                && probe
                    .fetch_metadata(Some(&health_topic), Duration::from_secs(1))
                    .is_ok()
            {
                broker_down = None;
            }
            match &broker_down {
                Some(e) => health.set_unready(format!("broker: {e}")),
                None => health.set_ready(),
            }
        }
        if opts.exit_when_idle
            && idle
            && s.assigned
            && s.pending.is_empty()
            && last_idle_check.elapsed() >= Duration::from_millis(500)
        {
            last_idle_check = Instant::now();
            let stored = handle.block_on(s.dest.positions())?;
            let marks = watermarks(&probe, &s.names)?;
            // Empty or expired partitions (low = high) are done; the others must be read to their end
            // by this run (where it owns them) and durable up to it (whoever owns them).
            let done = marks.iter().all(|(k, &(low, high))| {
                low == high
                    || (stored.get(k).is_some_and(|at| *at >= high)
                        && s.read_to.get(k).is_none_or(|r| *r >= high))
            });
            if done {
                break;
            }
        }
    }
    let mut s = lock(&shared);
    s.write_all()?;
    let handle = s.handle.clone();
    handle.block_on(s.dest.tick(true))?;
    handle.block_on(s.dest.close())?;
    let summary = s.summary.clone();
    drop(s);
    consumer.unsubscribe();
    tracing::info!(sink = name, ?summary, "stopped");
    Ok(summary)
}
