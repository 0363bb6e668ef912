//! `roomstream sink mysql|s3|redshift`, `roomstream status`, `roomstream run` and
//! `roomstream replay --from-archive`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;

use crate::config::Config;
use crate::health::Health;
use crate::process::checkpoint::{Checkpoint, CheckpointStore};
use crate::process::engine::{Engine, Output, PartitionState, Position};
use crate::sink::mysql::MysqlSink;
use crate::sink::postgres::{RedshiftSink, dialect};
use crate::sink::runner::{self, RunOptions, RunSummary};
use crate::sink::s3::{S3Sink, archive, layout};
use crate::sink::{SinkError, SinkKind, status};
use crate::topics::TopicKind;

/// How long `roomstream status` gives the broker and each destination (read side by side).
const STATUS_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// `roomstream sink …`.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Which destination.
    #[arg(value_enum)]
    kind: SinkKind,
    /// Stop once every partition is durable up to its end offset.
    #[arg(long)]
    exit_when_idle: bool,
    /// Read every partition from offset 0 (under a fresh group) instead of the stored positions: rows
    /// already newer are left alone, S3 objects are rewritten with the same bytes.
    #[arg(long)]
    replay: bool,
    /// `redshift` only: print the production Redshift DDL and per-batch script, and exit.
    #[arg(long)]
    print_sql: bool,
}

/// `roomstream status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Only this sink (repeatable; default all): only its destination is read, and the exit status
    /// is its alone — a sink container's health check.
    #[arg(long = "sink", value_enum, value_name = "SINK")]
    sinks: Vec<SinkKind>,
}

/// `roomstream run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Stop once the processor and then every sink have drained their inputs.
    #[arg(long)]
    exit_when_idle: bool,
}

fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            s.store(true, Ordering::Relaxed);
        }
    });
    stop
}

/// Runs one sink on a blocking thread until it stops. After a transient failure — the broker, its
/// database or the store unreachable — it waits, opens the destination again and resumes from the
/// positions the destination holds ([`crate::health::retrying`]; `[retry]`), with `health` unready
/// meanwhile.
pub async fn run_one(
    cfg: &Config,
    kind: SinkKind,
    opts: RunOptions,
    stop: Arc<AtomicBool>,
    health: Arc<Health>,
) -> anyhow::Result<RunSummary> {
    let what = format!("sink {}", kind.name());
    let summary = crate::health::retrying(
        &what,
        &health,
        cfg.retry.backoff(),
        &stop,
        SinkError::is_transient,
        || attempt(cfg, kind, opts, stop.clone(), health.clone()),
    )
    .await
    .with_context(|| what.clone())?;
    Ok(summary.unwrap_or_default())
}

/// One run of a sink: open the destination, consume until stopped or failed.
async fn attempt(
    cfg: &Config,
    kind: SinkKind,
    opts: RunOptions,
    stop: Arc<AtomicBool>,
    health: Arc<Health>,
) -> Result<RunSummary, SinkError> {
    let cfg2 = cfg.clone();
    let joined = match kind {
        SinkKind::Mysql => {
            let d = MysqlSink::open(cfg).await?;
            tokio::task::spawn_blocking(move || runner::run(&cfg2, d, opts, stop, &health)).await
        }
        SinkKind::Redshift => {
            let d = RedshiftSink::open(cfg).await?;
            tokio::task::spawn_blocking(move || runner::run(&cfg2, d, opts, stop, &health)).await
        }
        SinkKind::S3 => {
            let d = S3Sink::open(cfg)?;
            tokio::task::spawn_blocking(move || runner::run(&cfg2, d, opts, stop, &health)).await
        }
    };
    joined.map_err(|e| SinkError::Other(format!("the sink's thread: {e}")))?
}

/// `roomstream sink …`.
pub async fn sink(cfg: &Config, args: SinkArgs) -> anyhow::Result<ExitCode> {
    if args.print_sql {
        anyhow::ensure!(
            args.kind == SinkKind::Redshift,
            "--print-sql is for `sink redshift`"
        );
        let schema = &cfg.sink.redshift_schema;
        let script = dialect::batch_script(
            dialect::Dialect::Redshift,
            schema,
            "s3://<bucket>/<prefix>/redshift/part-<p>-<first>-<last>.parquet",
            "<iam role arn>",
        );
        // Written, not printed: a reader that stops early (`| head`) is not an error.
        let _ = writeln!(
            std::io::stdout().lock(),
            "-- Redshift (generated, not run here)\n{}\n{script}",
            dialect::create_tables(dialect::Dialect::Redshift, schema)
        );
        return Ok(ExitCode::SUCCESS);
    }
    super::wait_for_topics(cfg).await?;
    let started = Instant::now();
    let opts = RunOptions {
        exit_when_idle: args.exit_when_idle,
        replay: args.replay,
    };
    let health = Arc::new(Health::new(args.kind.component()));
    if !cfg.sink.ops_listen.is_empty() {
        crate::health::serve(
            &cfg.sink.ops_listen,
            "sink.ops_listen",
            health.clone(),
            axum::Router::new(),
        )
        .await?;
        let listings = TopicKind::Listings.name(&cfg.kafka.namespace);
        crate::kafka::watch_broker(&cfg.kafka, &listings, &health)?;
    }
    let s = run_one(cfg, args.kind, opts, stop_on_ctrl_c(), health).await?;
    let secs = started.elapsed().as_secs_f64();
    let _ = writeln!(
        std::io::stdout().lock(),
        "sink {}: {} records in {} batches in {secs:.1} s ({:.0}/s); dlq {}; fenced {}",
        args.kind.name(),
        s.records,
        s.batches,
        s.records as f64 / secs.max(1e-9),
        s.dlq,
        s.fenced
    );
    Ok(ExitCode::SUCCESS)
}

/// `roomstream status`.
pub async fn status(cfg: &Config, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let rows = if args.sinks.is_empty() {
        status::collect(cfg, STATUS_WITHIN).await
    } else {
        status::collect_some(cfg, &args.sinks, STATUS_WITHIN).await
    };
    let mut w = std::io::stdout().lock();
    if args.json {
        let _ = writeln!(w, "{}", serde_json::to_string_pretty(&rows)?);
    } else {
        let _ = writeln!(
            w,
            "{:<9} {:<12} {:>10} {:>8} {:<28} partitions",
            "sink", "topic", "position", "lag", "committed_at"
        );
        for r in &rows {
            match &r.error {
                Some(e) => {
                    let _ = writeln!(w, "{:<9} {:<12} unreachable: {e}", r.sink, r.topic);
                }
                None => {
                    let _ = writeln!(
                        w,
                        "{:<9} {:<12} {:>10} {:>8} {:<28} {:?}",
                        r.sink,
                        r.topic,
                        r.positions.values().sum::<i64>(),
                        r.lag.map_or("?".to_string(), |l| l.to_string()),
                        r.committed_at.as_deref().unwrap_or("-"),
                        r.positions
                    );
                }
            }
        }
    }
    Ok(if rows.iter().any(|r| r.error.is_some()) {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// `roomstream run`: the processor and the three sinks in one process. With `--exit-when-idle` the
/// processor drains first, then the sinks.
pub async fn run_all(cfg: &Config, args: RunArgs) -> anyhow::Result<ExitCode> {
    super::require_topics(cfg).await?;
    let stop = stop_on_ctrl_c();
    let sink_opts = RunOptions {
        exit_when_idle: args.exit_when_idle,
        replay: false,
    };
    let process = {
        let cfg = cfg.clone();
        let exit = args.exit_when_idle;
        tokio::spawn(async move {
            super::process::run(&cfg, super::process::ProcessArgs::live(exit), false).await
        })
    };
    let process = if args.exit_when_idle {
        process.await??;
        None
    } else {
        Some(process)
    };
    // The API serves while the pipeline runs (not in a run that ends when idle).
    let api = (!args.exit_when_idle).then(|| {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        tokio::spawn(async move {
            let watched = stop.clone();
            let until_stopped = async move {
                while !watched.load(Ordering::Relaxed) {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            };
            let served = crate::api::run(&cfg, until_stopped).await;
            // An API that cannot serve (its port taken) stops the pipeline rather than run unseen.
            if served.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            served
        })
    });
    let mut sinks = tokio::task::JoinSet::new();
    for kind in SinkKind::ALL {
        let (cfg, stop) = (cfg.clone(), stop.clone());
        let health = Arc::new(Health::new(kind.component()));
        sinks.spawn(async move { (kind, run_one(&cfg, kind, sink_opts, stop, health).await) });
    }
    // The first sink to fail stops the others.
    let mut failed = false;
    while let Some(done) = sinks.join_next().await {
        match done? {
            (kind, Ok(s)) => println!(
                "sink {}: {} records, {} batches, dlq {}",
                kind.name(),
                s.records,
                s.batches,
                s.dlq
            ),
            (kind, Err(e)) => {
                eprintln!("sink {}: {e:#}", kind.name());
                failed = true;
                stop.store(true, Ordering::Relaxed);
            }
        }
    }
    if let Some(p) = process {
        p.await??;
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(api) = api {
        api.await??;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `roomstream replay --from-archive`: rebuilds every partition's state from the S3 sink's raw zone,
/// writes it as checkpoints at the archive's positions, then runs the processor, which continues from
/// the topics there and publishes only what differs from `listings.v1`.
pub async fn replay_from_archive(cfg: &Config) -> anyhow::Result<ExitCode> {
    super::require_topics(cfg).await?;
    let ns = &cfg.kafka.namespace;
    let (store, prefix) = crate::store::open(&cfg.store)?;
    let root = layout::root(&prefix, ns);
    let metrics = Arc::new(crate::process::metrics::Metrics::default());
    let mut engine = super::process::make_engine(cfg, metrics)?;
    tokio::task::block_in_place(|| crate::process::readers::load_registry(cfg, &mut engine))?;
    // Read (and check) the archive before touching the checkpoints.
    let (observed, obs_next) = archive::read(&store, &root, TopicKind::Observed).await?;
    let (sweeps, sweeps_next) = archive::read(&store, &root, TopicKind::Sweeps).await?;
    let checkpoints = CheckpointStore::open(&cfg.store, ns)?;
    let partitions = TopicKind::Observed.def().partitions;
    checkpoints.clear(partitions).await?;
    let (obs_name, sweeps_name) = (TopicKind::Observed.name(ns), TopicKind::Sweeps.name(ns));
    let mut inputs = 0u64;
    for p in 0..partitions {
        engine.own(
            PartitionState {
                partition: p,
                ..PartitionState::default()
            },
            true,
        );
        let mut out = Vec::new();
        type Apply = fn(&mut Engine, Position<'_>, Option<&[u8]>, Option<&[u8]>, &mut Vec<Output>);
        type Archive = BTreeMap<i32, Vec<archive::Archived>>;
        let inputs_of: [(&str, &Archive, Apply); 2] = [
            (&obs_name, &observed, Engine::observe),
            (&sweeps_name, &sweeps, Engine::sweep),
        ];
        for (topic, archived, apply) in inputs_of {
            for r in archived.get(&p).into_iter().flatten() {
                let at = Position {
                    topic,
                    partition: p,
                    offset: r.offset,
                };
                apply(
                    &mut engine,
                    at,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &mut out,
                );
                inputs += 1;
            }
        }
        let Some(part) = engine.parts.remove(&p) else {
            continue;
        };
        let mut state = part.state;
        // Positions are the archive's, even where its last records were filtered.
        state.observed_next = state
            .observed_next
            .max(obs_next.get(&p).copied().unwrap_or(0));
        state.sweeps_next = state
            .sweeps_next
            .max(sweeps_next.get(&p).copied().unwrap_or(0));
        let ckpt = Checkpoint {
            state,
            listings_next: None,
            brokers_next: engine.brokers_next,
        };
        checkpoints.save(&ckpt, false).await?;
    }
    println!(
        "replay --from-archive: {inputs} archived inputs read into {partitions} partitions (observed up to {}, sweeps up to {}); continuing from the topics",
        obs_next.values().sum::<i64>(),
        sweeps_next.values().sum::<i64>()
    );
    super::process::run(cfg, super::process::ProcessArgs::live(true), false).await
}
