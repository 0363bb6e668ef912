//! The processor on Kafka: one consumer group over `observed.v1` and `sweeps.v1`, the registry read
//! whole, checkpoints in the object store, output to `listings.v1` and `dlq.v1`.
//!
//! Life of a partition p (p of both input topics: they share keys and partition counts, and the group
//! uses the `range` assignor, so one instance gets p of both — Kafka Streams' co-partitioning):
//! 1. **assign**: restore p's checkpoint (or start empty) and seek both topics to its positions; p is
//!    *catching up*, publishing nothing, until it has read to the end offsets seen at assignment;
//! 2. **reconcile**: read the registry to its end, learn what `listings.v1` holds for p (the checkpoint's
//!    map plus what was published after it, which a crashed owner may have left), and publish only the
//!    difference — so a restart or a replay touches only the rows whose content changed, and every
//!    record it publishes carries a larger input clock than anything published for p before;
//! 3. **run**: each input is applied; the listings it touched wait in a micro-batch that is scored in
//!    one DataFusion run (`score.batch_rows` listings or `score.linger` after the first, or when the
//!    input runs dry) and the canonical listings whose content changed are published;
//!    every `checkpoint_interval` (or `checkpoint_events` inputs) the producer is flushed and
//!    acknowledged, then p's state is written with its positions;
//! 4. **revoke**: flush, checkpoint, let go.
//!
//! Positions live in the checkpoints, not in committed group offsets: a checkpoint is the only
//! statement of "this state reflects inputs up to here", so it is also where the reading resumes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::runtime::Handle;

use super::checkpoint::{Checkpoint, CheckpointStore};
use super::engine::{Engine, Output, PartitionState};
use super::metrics::Metrics;
pub use super::readers::load_registry;
use super::readers::{held_listings, position, read_registry, registry_consumer};
use crate::config::Config;
use crate::kafka::{EventSink, KafkaSink, client_config, consumer_config};
use crate::topics::{HEADER_CLOCK, HEADER_REGION, TopicKind};

/// How `roomstream process` / `replay` run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop once every owned input partition is read to its end and checkpointed.
    pub exit_when_idle: bool,
    /// Rebuild from the earliest offsets under a fresh group, ignoring (and then replacing) the
    /// checkpoints, and publish only what differs from `listings.v1`.
    pub replay: bool,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// Inputs applied.
    pub inputs: u64,
    /// Records published to `listings.v1` (upserts and tombstones).
    pub published: u64,
    /// Events sent to the DLQ.
    pub dlq: u64,
    /// Checkpoints written.
    pub checkpoints: u64,
    /// Bytes of the last checkpoint of every partition, summed.
    pub checkpoint_bytes: u64,
    /// Partitions owned at the end.
    pub partitions: Vec<i32>,
    /// Listings scored (incrementally and in full).
    pub scored: u64,
    /// …of which without a change of their own (fair cost, photo evidence or age band moved).
    pub knock_on: u64,
    /// Partition → (changed, total) of its last full rescore in this run.
    pub rescored: BTreeMap<i32, (u64, u64)>,
}

/// Errors that stop the processor.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// Kafka.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// Producing.
    #[error(transparent)]
    Produce(#[from] crate::kafka::ProduceError),
    /// Checkpoints.
    #[error(transparent)]
    Checkpoint(#[from] super::checkpoint::CheckpointError),
    /// The score query.
    #[error(transparent)]
    Score(#[from] super::score::sql::SqlError),
    /// A failure that may pass (the store or the broker during a rebalance, a read that timed out):
    /// the run is worth retrying from the last checkpoint.
    #[error("{0}")]
    Transient(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl ProcessError {
    /// Whether retrying the run later may succeed: the broker, the object store or a timeout, not a
    /// query, a corrupt checkpoint or topics that were recreated under the checkpoints.
    pub fn is_transient(&self) -> bool {
        match self {
            ProcessError::Kafka(_) | ProcessError::Produce(_) | ProcessError::Transient(_) => true,
            ProcessError::Checkpoint(e) => {
                matches!(e, super::checkpoint::CheckpointError::Store(_))
            }
            ProcessError::Score(_) | ProcessError::Other(_) => false,
        }
    }
}

/// Topic names of one namespace.
#[derive(Debug, Clone)]
struct Names {
    observed: String,
    sweeps: String,
    brokers: String,
    listings: String,
}

/// What the rebalance callback and the loop share.
struct Shared {
    engine: Engine,
    producer: KafkaSink,
    store: CheckpointStore,
    handle: Handle,
    names: Names,
    replay: bool,
    /// Partition → (observed end, sweeps end) to reach before reconciling.
    targets: BTreeMap<i32, (i64, i64)>,
    /// Partition → `listings.v1` next offsets its checkpoint recorded (None: read from the start).
    listings_from: BTreeMap<i32, Option<Vec<i64>>>,
    summary: RunSummary,
    last_bytes: BTreeMap<i32, u64>,
    error: Option<ProcessError>,
    /// A plain client for end offsets: librdkafka's watermark query on the group consumer itself can
    /// stall behind its fetch queue, so it is never asked.
    probe: BaseConsumer,
}

struct ProcessContext {
    shared: Arc<Mutex<Shared>>,
}

impl ClientContext for ProcessContext {}

impl ConsumerContext for ProcessContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut shared = lock(&self.shared);
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: BTreeSet<i32> =
                    tpl.elements().iter().map(|e| e.partition()).collect();
                match shared.assign(&partitions) {
                    Ok(positions) => {
                        if let Err(e) = consumer.assign(&positions) {
                            shared.error = Some(ProcessError::Transient(format!(
                                "cannot assign {partitions:?}: {e}"
                            )));
                        }
                    }
                    Err(e) => {
                        let transient = e.is_transient();
                        let e = format!("cannot restore {partitions:?}: {e}");
                        shared.error = Some(if transient {
                            ProcessError::Transient(e)
                        } else {
                            ProcessError::Other(e)
                        });
                    }
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let partitions: Vec<i32> = shared.engine.parts.keys().copied().collect();
                if let Err(e) = shared.checkpoint(&partitions) {
                    shared.error = Some(ProcessError::Transient(format!(
                        "cannot checkpoint on revoke: {e}"
                    )));
                }
                shared.engine.parts.clear();
                shared.targets.clear();
                shared.engine.metrics.clear_lag();
                if let Err(e) = consumer.unassign() {
                    tracing::warn!("unassign: {e}");
                }
            }
            other => tracing::warn!("rebalance error: {other:?}"),
        }
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Restores the assigned partitions and returns where to read each input from.
    fn assign(&mut self, partitions: &BTreeSet<i32>) -> Result<TopicPartitionList, ProcessError> {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            let ckpt = if self.replay {
                None
            } else {
                self.handle.block_on(self.store.load(p))?
            };
            let (state, listings_from) = match ckpt {
                Some(c) => (c.state, c.listings_next),
                None => (
                    PartitionState {
                        partition: p,
                        ..PartitionState::default()
                    },
                    None,
                ),
            };
            tpl.add_partition_offset(&self.names.observed, p, Offset::Offset(state.observed_next))?;
            tpl.add_partition_offset(&self.names.sweeps, p, Offset::Offset(state.sweeps_next))?;
            let timeout = Duration::from_secs(10);
            let (_, obs_end) = self
                .probe
                .fetch_watermarks(&self.names.observed, p, timeout)?;
            let (_, sweeps_end) = self
                .probe
                .fetch_watermarks(&self.names.sweeps, p, timeout)?;
            if state.observed_next > obs_end || state.sweeps_next > sweeps_end {
                return Err(ProcessError::Other(format!(
                    "the checkpoint of partition {p} is ahead of its topics (observed {} > {obs_end} or sweeps {} > {sweeps_end}): \
                     the topics were recreated under the same namespace; run `roomstream replay` to rebuild",
                    state.observed_next, state.sweeps_next
                )));
            }
            tracing::info!(
                partition = p,
                from_observed = state.observed_next,
                from_sweeps = state.sweeps_next,
                obs_end,
                sweeps_end,
                sources = state.sources.len(),
                "assigned"
            );
            self.targets.insert(p, (obs_end, sweeps_end));
            self.listings_from.insert(p, listings_from);
            self.engine.own(state, true);
        }
        Ok(tpl)
    }

    /// Flushes the producer and writes the checkpoints of the given partitions. A partition still
    /// catching up has published nothing since its restore, so its checkpoint keeps the `listings.v1`
    /// positions it was restored with: a restore from it reconciles against the same records.
    fn checkpoint(&mut self, partitions: &[i32]) -> Result<(), ProcessError> {
        self.flush()?;
        let owned: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| self.engine.parts.contains_key(p))
            .collect();
        if owned.is_empty() {
            return Ok(());
        }
        let live = owned.iter().any(|p| {
            self.engine
                .parts
                .get(p)
                .is_some_and(|part| !part.catching_up)
        });
        let ends = if live {
            self.producer.finish()?;
            Some(self.listings_ends()?)
        } else {
            None
        };
        for p in owned {
            let Some(part) = self.engine.parts.get(&p) else {
                continue;
            };
            let listings_next = if part.catching_up {
                self.listings_from.get(&p).cloned().flatten()
            } else {
                ends.clone()
            };
            let ckpt = Checkpoint {
                state: part.state.clone(),
                listings_next,
                brokers_next: self.engine.brokers_next,
            };
            let bytes = self
                .handle
                .block_on(self.store.save(&ckpt, !part.catching_up))?;
            self.last_bytes.insert(p, bytes as u64);
            self.summary.checkpoints += 1;
        }
        self.summary.checkpoint_bytes = self.last_bytes.values().sum();
        self.engine.metrics.checkpointed();
        Ok(())
    }

    fn listings_ends(&self) -> Result<Vec<i64>, ProcessError> {
        let consumer = &self.probe;
        let partitions = TopicKind::Listings.def().partitions;
        (0..partitions)
            .map(|p| {
                consumer
                    .fetch_watermarks(&self.names.listings, p, Duration::from_secs(10))
                    .map(|(_, hi)| hi)
                    .map_err(ProcessError::from)
            })
            .collect()
    }

    /// Scores and publishes the waiting micro-batch.
    fn flush(&mut self) -> Result<(), ProcessError> {
        let mut out = Vec::new();
        self.engine.flush(&mut out)?;
        for r in std::mem::take(&mut self.engine.rescored) {
            self.summary
                .rescored
                .insert(r.partition, (r.changed, r.total));
        }
        self.emit(out)
    }

    /// Produces the engine's outputs.
    fn emit(&mut self, outputs: Vec<Output>) -> Result<(), ProcessError> {
        for o in outputs {
            match o {
                Output::Listing { key, value, ended } => {
                    self.summary.published += 1;
                    match (value, ended) {
                        (Some(v), _) => self.producer.send(TopicKind::Listings, &key, &v)?,
                        (None, ended) => {
                            let clock = ended.as_ref().map(|e| e.clock.to_string());
                            let mut headers = Vec::new();
                            if let Some(c) = &clock {
                                headers.push((HEADER_CLOCK, c.as_str()));
                            }
                            if let Some(r) = ended.as_ref().and_then(|e| e.region.as_deref()) {
                                headers.push((HEADER_REGION, r));
                            }
                            self.producer
                                .tombstone(TopicKind::Listings, &key, &headers)?
                        }
                    }
                }
                Output::Dlq(event) => {
                    self.summary.dlq += 1;
                    // A replay re-reads events the DLQ already holds: count them, do not send twice.
                    if !self.replay {
                        let bytes = serde_json::to_vec(&event).unwrap_or_default();
                        self.producer.send(
                            TopicKind::Dlq,
                            event.key.as_deref().unwrap_or(""),
                            &bytes,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs the processor until stopped (or idle, with `exit_when_idle`).
pub fn run(
    cfg: &Config,
    opts: &RunOptions,
    mut engine: Engine,
    metrics: Arc<Metrics>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    health: &crate::health::Health,
) -> Result<RunSummary, ProcessError> {
    let handle = Handle::current();
    let ns = &cfg.kafka.namespace;
    let names = Names {
        observed: TopicKind::Observed.name(ns),
        sweeps: TopicKind::Sweeps.name(ns),
        brokers: TopicKind::Brokers.name(ns),
        listings: TopicKind::Listings.name(ns),
    };
    let store = CheckpointStore::open(&cfg.store, ns)?;
    if opts.replay {
        handle.block_on(store.clear(TopicKind::Observed.def().partitions))?;
    }
    // The registry first, read to its end, so that the first listings are verified against it.
    let brokers = registry_consumer(cfg, &names.brokers)?;
    let probe: BaseConsumer = client_config(&cfg.kafka).create()?;
    read_registry(&brokers, &probe, &names.brokers, &mut engine, true)?;
    tracing::info!(people = engine.brokers.len(), "broker registry loaded");

    let group = if opts.replay {
        format!(
            "{ns}.replay-{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        )
    } else if !cfg.process.group.is_empty() {
        cfg.process.group.clone()
    } else {
        format!("{ns}.process")
    };
    let shared = Arc::new(Mutex::new(Shared {
        engine,
        producer: KafkaSink::new(&cfg.kafka)?,
        store,
        handle: handle.clone(),
        names: names.clone(),
        replay: opts.replay,
        targets: BTreeMap::new(),
        listings_from: BTreeMap::new(),
        summary: RunSummary::default(),
        last_bytes: BTreeMap::new(),
        error: None,
        probe,
    }));
    let consumer: BaseConsumer<ProcessContext> = consumer_config(&cfg.kafka, &group)
        .set("partition.assignment.strategy", "range")
        .set("max.poll.interval.ms", "120000")
        .create_with_context(ProcessContext {
            shared: shared.clone(),
        })?;
    consumer.subscribe(&[&names.observed, &names.sweeps])?;

    let bar = opts.progress.then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:40}] {pos}/{len} inputs ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(if opts.replay { "replay" } else { "process" });
        b
    });
    let every = cfg.process.checkpoint_interval;
    let mut last_checkpoint = Instant::now();
    let mut since_checkpoint = 0u64;
    let mut last_idle_check = Instant::now();
    // Since when this run has been idle with partitions not done (`--exit-when-idle`).
    let mut unfinished_since: Option<Instant> = None;
    // Micro-batches: score and publish once this many listings wait, or this long after the first.
    let (batch_rows, linger) = (cfg.score.batch_rows, cfg.score.linger);
    let mut waiting_since: Option<Instant> = None;
    // The broker's last error, until a record or the end offsets come through again (librdkafka
    // reconnects by itself; the run goes on and `health` says what is wrong meanwhile).
    let mut broker_down: Option<String> = None;
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        // 1. Inputs (the rebalance callback runs inside poll and takes the lock itself).
        let msg = match consumer.poll(Duration::from_millis(100)) {
            // A fatal consumer error (e.g. fenced by a newer member with the same instance id) does
            // not heal by itself: end the run, and `retrying` starts a new one.
            Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => return Err(e.into()),
            Some(Err(e)) => {
                tracing::warn!("consume: {e}");
                health.set_unready(format!("broker: {e}"));
                broker_down = Some(e.to_string());
                None
            }
            other => other,
        };
        let msg_was_none = msg.is_none();
        {
            let mut s = lock(&shared);
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            if let Some(msg) = msg {
                let msg = msg?;
                broker_down = None;
                let at = position(&msg);
                let mut out = Vec::new();
                if msg.topic() == names.observed {
                    s.engine.observe(at, msg.key(), msg.payload(), &mut out);
                } else {
                    s.engine.sweep(at, msg.key(), msg.payload(), &mut out);
                }
                s.summary.inputs += 1;
                since_checkpoint += 1;
                if let Some(b) = &bar {
                    b.inc(1);
                }
                s.emit(out)?;
            }
            // 2. The registry, as it changes.
            let s = &mut *s;
            let mut out = Vec::new();
            for _ in 0..1000 {
                match brokers.poll(Duration::ZERO) {
                    Some(Ok(m)) => s
                        .engine
                        .broker(position(&m), m.key(), m.payload(), &mut out),
                    Some(Err(e)) => tracing::warn!("registry consumer: {e}"),
                    None => break,
                }
            }
            s.emit(out)?;
            // 3. The micro-batch: full, old enough, or nothing more to read.
            let pending = s.engine.pending();
            if pending == 0 {
                waiting_since = None;
            } else {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                if pending >= batch_rows || since.elapsed() >= linger || msg_was_none {
                    s.flush()?;
                    waiting_since = None;
                }
            }
        }
        // 4. Partitions that have caught up: reconcile with what listings.v1 holds.
        let caught_up: Vec<i32> = {
            let s = lock(&shared);
            s.targets
                .iter()
                .filter(|(p, (o, w))| {
                    s.engine.parts.get(p).is_some_and(|part| {
                        part.catching_up
                            && part.state.observed_next >= *o
                            && part.state.sweeps_next >= *w
                    })
                })
                .map(|(p, _)| *p)
                .collect()
        };
        if !caught_up.is_empty() {
            let mut s = lock(&shared);
            {
                let s = &mut *s;
                read_registry(&brokers, &s.probe, &names.brokers, &mut s.engine, false)?;
            }
            for p in caught_up {
                let from = s.listings_from.get(&p).cloned().flatten();
                let base = s
                    .engine
                    .parts
                    .get(&p)
                    .map(|x| x.state.published.clone())
                    .unwrap_or_default();
                let held = held_listings(cfg, &names.listings, p, from, base)?;
                let mut out = Vec::new();
                s.engine.release_sweeps(p);
                let n = s.engine.reconcile(p, held, &mut out)?;
                for r in std::mem::take(&mut s.engine.rescored) {
                    s.summary.rescored.insert(r.partition, (r.changed, r.total));
                }
                tracing::info!(
                    partition = p,
                    republished = n,
                    "caught up and reconciled with listings.v1"
                );
                s.emit(out)?;
                s.listings_from.remove(&p);
                s.checkpoint(&[p])?;
            }
        }
        // 5. Checkpoints.
        if last_checkpoint.elapsed() >= every || since_checkpoint >= cfg.process.checkpoint_events {
            let mut s = lock(&shared);
            let parts: Vec<i32> = s.engine.parts.keys().copied().collect();
            s.checkpoint(&parts)?;
            last_checkpoint = Instant::now();
            since_checkpoint = 0;
        }
        // 6. Lag, progress, and whether there is nothing left to do.
        if last_idle_check.elapsed() >= Duration::from_millis(500) {
            last_idle_check = Instant::now();
            let mut at_end = Vec::new();
            let mut unreachable = None;
            let (idle, lag_total) = {
                let s = lock(&shared);
                let probe = &s.probe;
                let mut idle = !s.engine.parts.is_empty();
                let mut total = 0i64;
                for (p, part) in &s.engine.parts {
                    let ends = (
                        probe
                            .fetch_watermarks(&names.observed, *p, Duration::from_secs(5))
                            .map(|w| w.1),
                        probe
                            .fetch_watermarks(&names.sweeps, *p, Duration::from_secs(5))
                            .map(|w| w.1),
                    );
                    let (o, w) = match ends {
                        (Ok(o), Ok(w)) => (o, w),
                        (Err(e), _) | (_, Err(e)) => {
                            // One failure says enough: do not wait on every partition's timeout.
                            unreachable = Some(format!("cannot read the end offsets: {e}"));
                            idle = false;
                            break;
                        }
                    };
                    metrics.set_lag(&names.observed, *p, o - part.state.observed_next);
                    metrics.set_lag(&names.sweeps, *p, w - part.state.sweeps_next);
                    total +=
                        (o - part.state.observed_next).max(0) + (w - part.state.sweeps_next).max(0);
                    idle &= !part.catching_up
                        && part.state.observed_next >= o
                        && part.state.sweeps_next >= w;
                    if !part.catching_up
                        && part.state.observed_next >= o
                        && !part.state.pending_sweeps.is_empty()
                    {
                        at_end.push(*p);
                        idle = false;
                    }
                }
                (idle, total)
            };
            let owns = !lock(&shared).engine.parts.is_empty();
            broker_down = unreachable.or(broker_down.filter(|_| !owns));
            match &broker_down {
                Some(e) => health.set_unready(format!("broker: {e}")),
                // Ready once it owns restored partitions (a restore that fails ends the run).
                None if owns => health.set_ready(),
                None => {}
            }
            if !at_end.is_empty() {
                // Observations read to their end: no sighting can still be behind these sweeps.
                let mut s = lock(&shared);
                for p in at_end {
                    s.engine.release_sweeps(p);
                }
                s.flush()?;
            }
            if let Some(b) = &bar {
                b.set_length(b.position() + lag_total.max(0) as u64);
            }
            // With --exit-when-idle, stop only when *every* partition is done — ours consumed to the end,
            // the others checkpointed at their ends by whoever owns them — so that an instance never
            // leaves a partition behind with a member that died holding it.
            if opts.exit_when_idle && (idle || lock(&shared).engine.parts.is_empty()) {
                let s = lock(&shared);
                let owned: BTreeSet<i32> = s.engine.parts.keys().copied().collect();
                if all_done(&s, &owned)? {
                    break;
                }
                // Idle, yet some partition is not done (another instance still reads it, or the
                // broker stalls): give up only after 600 s of this without a break — not 600 s
                // after the start, which a long backlog alone would pass.
                let since = *unfinished_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(600) {
                    return Err(ProcessError::Other(
                        "--exit-when-idle: partitions still not done after 600 s idle".into(),
                    ));
                }
            } else {
                unfinished_since = None;
            }
        }
    }
    let summary = {
        let mut s = lock(&shared);
        let parts: Vec<i32> = s.engine.parts.keys().copied().collect();
        s.checkpoint(&parts)?;
        // Keep the checkpoints: leaving the group must not write them again from an emptied engine.
        s.summary.partitions = parts;
        s.summary.scored = s.engine.flushed.scored;
        s.summary.knock_on = s.engine.flushed.knock_on;
        s.summary.clone()
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    consumer.unsubscribe();
    drop(consumer);
    Ok(summary)
}

/// Whether every input partition not in `owned` has a reconciled checkpoint at the end of its inputs.
fn all_done(s: &Shared, owned: &BTreeSet<i32>) -> Result<bool, ProcessError> {
    let timeout = Duration::from_secs(5);
    for p in 0..TopicKind::Observed.def().partitions {
        if owned.contains(&p) {
            continue;
        }
        let (_, o) = s.probe.fetch_watermarks(&s.names.observed, p, timeout)?;
        let (_, w) = s.probe.fetch_watermarks(&s.names.sweeps, p, timeout)?;
        let done = match s.handle.block_on(s.store.progress(p))? {
            Some(pr) => pr.reconciled && pr.observed_next >= o && pr.sweeps_next >= w,
            None => o == 0 && w == 0,
        };
        if !done {
            return Ok(false);
        }
    }
    Ok(true)
}
