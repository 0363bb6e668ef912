//! The processor's subcommands: `process`, `replay`, `state hash|dump`, `eval dedup`, `dlq replay`. Each is a thin call into [`crate::process`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use rdkafka::Offset;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;

use crate::config::Config;
use crate::health::Health;
use crate::kafka::{EventSink, KafkaSink, client_config};
use crate::process::checkpoint::CheckpointStore;
use crate::process::engine::{Engine, EngineConfig};
use crate::process::metrics::Metrics;
use crate::process::runtime::{self, RunOptions};
use crate::process::{eval as dedup, state as pstate};
use crate::topics::TopicKind;
use crate::topics::envelope::DlqEvent;

/// `roomstream process` options.
#[derive(Debug, Args, Default)]
pub struct ProcessArgs {
    /// Stop once every owned input partition is consumed to its end and checkpointed.
    #[arg(long)]
    exit_when_idle: bool,
    /// Show a progress bar.
    #[arg(long)]
    progress: bool,
}

impl ProcessArgs {
    /// A live run without a progress bar (`roomstream run`, `replay --from-archive`).
    pub fn live(exit_when_idle: bool) -> Self {
        ProcessArgs {
            exit_when_idle,
            progress: false,
        }
    }

    /// What `roomstream replay` runs with.
    pub fn replay() -> Self {
        ProcessArgs {
            exit_when_idle: true,
            progress: true,
        }
    }
}

/// `roomstream state …`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the deterministic state hash: the total, then one line per region.
    Hash,
    /// Write the canonical listings as JSON lines (default: stdout).
    Dump {
        /// Output file.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Export each partition's fair-rent model (fitted on its current listings), as JSON lines.
    Model,
}

/// `roomstream eval …`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Precision and recall of the merges against the simulator's truth file, beside the seed's rule.
    Dedup {
        /// The truth file written by `crawl synthetic --truth`.
        #[arg(long, value_name = "FILE")]
        truth: PathBuf,
    },
    /// Mean absolute error of the fair-rent model on held-out listings, beside the per-구 median.
    Model {
        /// Share of listings held out (by a hash of their id).
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
    },
    /// Precision and recall of the bait (허위매물) warning against the simulator's truth file.
    Bait {
        /// The truth file written by `crawl synthetic --truth`.
        #[arg(long, value_name = "FILE")]
        truth: PathBuf,
    },
}

/// `roomstream dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Re-feed DLQ events to the topics they came from (after a fix), once: progress is kept in the
    /// consumer group `<namespace>.dlq-replay`.
    Replay {
        /// Only events with this reason (e.g. `implausible`).
        #[arg(long)]
        reason: Option<String>,
        /// Count what would be re-fed, send nothing, keep no progress.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(super) fn engine_config(cfg: &Config) -> EngineConfig {
    EngineConfig {
        removal_sweeps: cfg.process.removal_sweeps,
        history_len: cfg.process.history_len,
        merge_threshold: cfg.process.merge_threshold,
        score: crate::process::score::Params {
            deposit_rate: cfg.score.deposit_rate,
            epsilon: cfg.score.epsilon,
        },
    }
}

/// An engine with the configured score query (`[score] queries`, else the built-in one), planned now:
/// a query that does not plan stops the command here, naming its file.
pub(super) fn make_engine(cfg: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Engine> {
    use crate::process::score::sql::{Query, SCORE_SQL, load};
    let (name, sql) = load(&cfg.score.queries, "score.sql", SCORE_SQL)?;
    let query = Query::plan_score(&name, &sql)?;
    Ok(Engine::with_query(
        engine_config(cfg),
        metrics,
        Arc::new(query),
    ))
}

/// `process` and `replay`.
pub async fn run(cfg: &Config, args: ProcessArgs, replay: bool) -> anyhow::Result<ExitCode> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
    run_until(cfg, args, replay, stop).await
}

/// [`run`], stopping when `stop` is set (`roomstream demo` stops everything with one flag).
pub async fn run_until(
    cfg: &Config,
    args: ProcessArgs,
    replay: bool,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ExitCode> {
    super::wait_for_topics(cfg).await?;
    let metrics = Arc::new(Metrics::default());
    let health = Arc::new(Health::new("process"));
    if !cfg.process.metrics_listen.is_empty() {
        let m = metrics.clone();
        let extra = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || async move { m.render() }),
        );
        let key = "process.metrics_listen";
        crate::health::serve(&cfg.process.metrics_listen, key, health.clone(), extra).await?;
        let observed = TopicKind::Observed.name(&cfg.kafka.namespace);
        crate::kafka::watch_broker(&cfg.kafka, &observed, &health)?;
    }
    let opts = RunOptions {
        exit_when_idle: args.exit_when_idle || replay,
        replay,
        progress: args.progress,
    };
    // Planned now, so that a score query that does not plan stops the command at once.
    let mut planned = Some(make_engine(cfg, metrics.clone())?);
    let started = Instant::now();
    // After a transient failure (the broker, the store), run again from the checkpoints.
    let summary = crate::health::retrying(
        if replay { "replay" } else { "process" },
        &health,
        cfg.retry.backoff(),
        &stop,
        runtime::ProcessError::is_transient,
        || {
            let engine = match planned.take() {
                Some(e) => Ok(e),
                None => make_engine(cfg, metrics.clone())
                    .map_err(|e| runtime::ProcessError::Other(format!("{e:#}"))),
            };
            let (cfg, opts, m, stop, health) = (
                cfg.clone(),
                opts.clone(),
                metrics.clone(),
                stop.clone(),
                health.clone(),
            );
            async move {
                let engine = engine?;
                tokio::task::spawn_blocking(move || {
                    runtime::run(&cfg, &opts, engine, m, stop, &health)
                })
                .await
                .map_err(|e| runtime::ProcessError::Other(format!("the processor's thread: {e}")))?
            }
        },
    )
    .await?;
    let Some(summary) = summary else {
        tracing::info!("stopped while waiting to retry");
        return Ok(ExitCode::SUCCESS);
    };
    let secs = started.elapsed().as_secs_f64();
    let mut w = std::io::stdout().lock();
    // Written, not printed: a reader that stops early (`| head -1`) is not an error.
    let _ = writeln!(
        w,
        "{}: {} inputs in {secs:.1} s ({:.0}/s); published {} ({} upserts, {} tombstones, {} suppressed as unchanged); dlq {}; {} checkpoints, {} bytes; partitions {:?}",
        if replay { "replay" } else { "process" },
        summary.inputs,
        summary.inputs as f64 / secs.max(1e-9),
        summary.published,
        metrics.get("published", "upsert"),
        metrics.get("published", "tombstone"),
        metrics.get("published", "suppressed"),
        summary.dlq,
        summary.checkpoints,
        summary.checkpoint_bytes,
        summary.partitions,
    );
    let _ = writeln!(
        w,
        "events: new {} changed {} unchanged {} removed {} relisted {} sweeps {}; merges {} splits {} flaps {}",
        metrics.get("events", "new"),
        metrics.get("events", "changed"),
        metrics.get("events", "unchanged"),
        metrics.get("events", "removed"),
        metrics.get("events", "relisted"),
        metrics.get("events", "sweep"),
        metrics.merges.load(std::sync::atomic::Ordering::Relaxed),
        metrics.splits.load(std::sync::atomic::Ordering::Relaxed),
        metrics.flaps.load(std::sync::atomic::Ordering::Relaxed),
    );
    let _ = writeln!(
        w,
        "scored {} listings ({} without a change of their own: their fair cost, photo evidence or age band moved): {:.3} scored per input",
        summary.scored,
        summary.knock_on,
        summary.scored as f64 / summary.inputs.max(1) as f64,
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn load_states(
    cfg: &Config,
) -> anyhow::Result<BTreeMap<i32, crate::process::engine::PartitionState>> {
    let store = CheckpointStore::open(&cfg.store, &cfg.kafka.namespace)?;
    let states = pstate::load_all(&store, TopicKind::Observed.def().partitions).await?;
    if states.is_empty() {
        bail!(
            "no checkpoint under namespace `{}`: run `roomstream process` or `roomstream replay` first",
            cfg.kafka.namespace
        );
    }
    Ok(states)
}

/// `state hash|dump`.
pub async fn state(cfg: &Config, command: StateCommand) -> anyhow::Result<ExitCode> {
    let states = load_states(cfg).await?;
    match command {
        StateCommand::Hash => {
            let (total, regions) = pstate::hash(&states);
            let sources: usize = states.values().map(|s| s.sources.len()).sum();
            let canonical: usize = states.values().map(|s| s.clusters.members.len()).sum();
            // Written, not printed: a reader that stops early (`| head -1`) is not an error.
            let mut w = std::io::stdout().lock();
            let _ = writeln!(
                w,
                "total {total} ({sources} source listings, {canonical} canonical listings, {} partitions)",
                states.len()
            );
            for (region, h) in regions {
                if writeln!(w, "{region} {h}").is_err() {
                    break;
                }
            }
        }
        StateCommand::Model => {
            let engine = restored_engine(cfg, states).await?;
            let mut w = std::io::stdout().lock();
            for (p, part) in &engine.parts {
                let line = serde_json::json!({
                    "partition": p,
                    "listings": part.live.rows.len(),
                    "coefficients": part.live.coef,
                });
                if writeln!(w, "{line}").is_err() {
                    break;
                }
            }
        }
        StateCommand::Dump { out } => {
            let engine = restored_engine(cfg, states).await?;
            let mut w: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut n = 0;
            let parts: Vec<i32> = engine.parts.keys().copied().collect();
            for p in parts {
                for l in engine.canonical(p)? {
                    serde_json::to_writer(&mut w, &l)?;
                    w.write_all(b"\n")?;
                    n += 1;
                }
            }
            w.flush()?;
            if let Some(path) = out {
                eprintln!("wrote {n} canonical listings to {}", path.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An engine holding every checkpointed partition (not catching up) and the registry, for commands
/// that read the state after the processor stopped.
pub(super) async fn restored_engine(
    cfg: &Config,
    states: BTreeMap<i32, crate::process::engine::PartitionState>,
) -> anyhow::Result<Engine> {
    let cfg2 = cfg.clone();
    let mut engine = make_engine(cfg, Arc::new(Metrics::default()))?;
    engine = tokio::task::spawn_blocking(move || {
        runtime::load_registry(&cfg2, &mut engine).map(|()| engine)
    })
    .await??;
    for (_, s) in states {
        engine.own(s, false);
    }
    Ok(engine)
}

/// `eval dedup`.
pub async fn eval(cfg: &Config, command: EvalCommand) -> anyhow::Result<ExitCode> {
    let truth = match command {
        EvalCommand::Dedup { truth } => truth,
        EvalCommand::Model { holdout } => return super::score::eval_model(cfg, holdout).await,
        EvalCommand::Bait { truth } => return super::score::eval_bait(cfg, &truth).await,
    };
    let states = load_states(cfg).await?;
    let truth = dedup::read_truth(&truth)
        .with_context(|| format!("cannot read truth file {}", truth.display()))?;
    let e = dedup::evaluate(&states, &truth);
    println!(
        "live source listings: {} ({} in the truth file); cross-platform pairs in the truth: {}",
        e.listings, e.known, e.roomstream.truth
    );
    println!(
        "{:<28} {:>9} {:>9} {:>9} {:>9}",
        "method", "predicted", "correct", "precision", "recall"
    );
    for (name, s) in [
        ("roomstream (resolve)", e.roomstream),
        ("seed (exact strings, §7)", e.seed),
    ] {
        println!(
            "{name:<28} {:>9} {:>9} {:>9.4} {:>9.4}",
            s.predicted,
            s.correct,
            s.precision(),
            s.recall()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `dlq replay`.
pub async fn dlq(cfg: &Config, command: DlqCommand) -> anyhow::Result<ExitCode> {
    let DlqCommand::Replay { reason, dry_run } = command;
    super::require_topics(cfg).await?;
    let cfg = cfg.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<ExitCode> {
        let ns = &cfg.kafka.namespace;
        let dlq_topic = TopicKind::Dlq.name(ns);
        let targets: BTreeMap<String, TopicKind> =
            [TopicKind::Observed, TopicKind::Sweeps, TopicKind::Brokers]
                .into_iter()
                .map(|t| (t.name(ns), t))
                .collect();
        let consumer: BaseConsumer = client_config(&cfg.kafka)
            .set("group.id", format!("{ns}.dlq-replay"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()?;
        let partitions = TopicKind::Dlq.def().partitions;
        let mut ends = BTreeMap::new();
        let mut tpl = rdkafka::TopicPartitionList::new();
        let committed = consumer.committed_offsets(
            {
                let mut t = rdkafka::TopicPartitionList::new();
                for p in 0..partitions {
                    t.add_partition(&dlq_topic, p);
                }
                t
            },
            Duration::from_secs(10),
        )?;
        for p in 0..partitions {
            let (_, hi) = consumer.fetch_watermarks(&dlq_topic, p, Duration::from_secs(10))?;
            let from = match committed.find_partition(&dlq_topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => 0,
            };
            if from < hi {
                tpl.add_partition_offset(&dlq_topic, p, Offset::Offset(from))?;
                ends.insert(p, hi);
            }
        }
        let mut sink = KafkaSink::new(&cfg.kafka)?;
        let (mut refed, mut skipped) = (0u64, 0u64);
        if !ends.is_empty() {
            consumer.assign(&tpl)?;
            let mut done = rdkafka::TopicPartitionList::new();
            while !ends.is_empty() {
                let Some(m) = consumer.poll(Duration::from_secs(10)) else {
                    bail!("timed out reading {dlq_topic}")
                };
                let m = m?;
                if m.offset() + 1 >= ends.get(&m.partition()).copied().unwrap_or(0) {
                    ends.remove(&m.partition());
                }
                done.add_partition_offset(
                    &dlq_topic,
                    m.partition(),
                    Offset::Offset(m.offset() + 1),
                )?;
                let Some(event) = m
                    .payload()
                    .and_then(|v| serde_json::from_slice::<DlqEvent>(v).ok())
                else {
                    skipped += 1;
                    continue;
                };
                let target = event.topic.as_ref().and_then(|t| targets.get(t));
                if reason.as_ref().is_some_and(|r| *r != event.reason) || target.is_none() {
                    skipped += 1;
                    continue;
                }
                let bytes = match (&event.value_base64, &event.value) {
                    (Some(b64), _) => {
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
                            .context("value_base64 of a DLQ event is not base64")?
                    }
                    (None, serde_json::Value::String(raw)) => raw.clone().into_bytes(),
                    (None, v) => serde_json::to_vec(v)?,
                };
                if !dry_run && let Some(t) = target {
                    sink.send(*t, event.key.as_deref().unwrap_or(""), &bytes)?;
                }
                refed += 1;
            }
            if !dry_run {
                sink.finish()?;
                consumer.commit(&done, rdkafka::consumer::CommitMode::Sync)?;
            }
        }
        println!(
            "dlq replay: {refed} event(s) {} to their topics, {skipped} skipped",
            if dry_run { "would be re-fed" } else { "re-fed" }
        );
        Ok(ExitCode::SUCCESS)
    })
    .await?
}
