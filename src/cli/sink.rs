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
use crate::process::checkpoint::{Checkpoint, CheckpointStore};
use crate::process::engine::{Engine, Output, PartitionState, Position};
use crate::sink::mysql::MysqlSink;
use crate::sink::postgres::{RedshiftSink, dialect};
use crate::sink::runner::{self, RunOptions, RunSummary};
use crate::sink::s3::{S3Sink, archive, layout};
use crate::sink::{SinkKind, status};
use crate::topics::TopicKind;

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

/// Runs one sink on a blocking thread until it stops.
pub async fn run_one(
    cfg: &Config,
    kind: SinkKind,
    opts: RunOptions,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<RunSummary> {
    let cfg2 = cfg.clone();
    let summary = match kind {
        SinkKind::Mysql => {
            let d = MysqlSink::open(cfg).await.context("mysql sink")?;
            tokio::task::spawn_blocking(move || runner::run(&cfg2, d, opts, stop)).await??
        }
        SinkKind::Redshift => {
            let d = RedshiftSink::open(cfg).await.context("redshift sink")?;
            tokio::task::spawn_blocking(move || runner::run(&cfg2, d, opts, stop)).await??
        }
        SinkKind::S3 => {
            let d = S3Sink::open(cfg).context("s3 sink")?;
            tokio::task::spawn_blocking(move || runner::run(&cfg2, d, opts, stop)).await??
        }
    };
    Ok(summary)
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
    super::require_topics(cfg).await?;
    let started = Instant::now();
    let opts = RunOptions {
        exit_when_idle: args.exit_when_idle,
        replay: args.replay,
    };
    let s = run_one(cfg, args.kind, opts, stop_on_ctrl_c()).await?;
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
        status::collect(cfg).await
    } else {
        status::collect_some(cfg, &args.sinks).await
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
                        r.lag,
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
        sinks.spawn(async move { (kind, run_one(&cfg, kind, sink_opts, stop).await) });
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

/// A listing value as `listings.v1` carries it, varied by `i` (two members for every third listing,
/// a price history of two steps, four facilities), at version `clock`.
fn bench_value(i: u32, clock: i64) -> (String, Vec<u8>) {
    const REGIONS: [&str; 5] = ["11620", "11680", "11440", "11410", "11215"];
    let id = format!("L{:016x}", u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let rent = 30 + i64::from(i % 70) + clock % 3;
    let mut members = vec![
        serde_json::json!({"platform": "zigbang", "source_listing_id": format!("{i}"),
        "source": "synthetic", "url": format!("https://sp.zigbang.com/share/oneroom/{i}"), "deposit": 1000,
        "rent": rent, "fee": 7.0, "title": "신축 풀옵션 원룸, 역세권 5분", "first_seen_at": "2026-11-01T09:00:00+09:00"}),
    ];
    if i.is_multiple_of(3) {
        members.push(serde_json::json!({"platform": "dabang", "source_listing_id": format!("d{i:023x}"),
            "source": "synthetic", "url": format!("https://www.dabangapp.com/room/d{i:023x}"), "deposit": 1000,
            "rent": rent, "fee": null, "title": "역세권 풀옵션 원룸", "first_seen_at": "2026-11-02T09:00:00+09:00"}));
    }
    let v = serde_json::json!({
        "schema": "roomstream.listing/1", "listing_id": id, "region_code": REGIONS[(i % 5) as usize],
        "version": {"partition": 0, "clock": clock, "observed": 0, "sweeps": 0, "brokers": 0},
        "gu": "관악구", "dong": "신림동", "bjd_code": format!("{}10100", REGIONS[(i % 5) as usize]),
        "lease": "monthly", "deposit": 1000, "rent": rent, "fee": 7.0, "area_m2": 19.8 + f64::from(i % 20),
        "area_pyeong": 6.0, "floor": {"level": 2 + (i % 5)}, "building_floors": 5, "layout": "one_room",
        "building": "villa", "direction": "S", "location": {"lat": 37.48, "lng": 126.93, "precision": "exact"},
        "facilities": {"subway": 420.0, "convenience_store": 90.0, "cafe": 150.0, "hospital": 700.0},
        "subway_stations": ["신림"], "title": "신축 풀옵션 원룸, 역세권 5분", "image_url": "https://img.example/1.jpg",
        "first_seen_at": "2026-11-01T09:00:00+09:00",
        "broker": {"status": "verified", "registration_number": "11620-2020-00001", "person": "김중개", "office": "신림공인", "reason": "licensed"},
        "members": members,
        "price_history": [{"from": "2026-11-01T09:00:00+09:00", "deposit": 1000, "rent": rent + 5, "fee": 7.0},
                          {"from": "2026-11-10T09:00:00+09:00", "deposit": 1000, "rent": rent, "fee": 7.0}],
        "merge": {"threshold": 0.72, "links": []},
        "score": {"total": 61.5, "components": {"cost": 50.0, "value": 62.0, "facilities": 80.0, "floor": 70.0,
                  "direction": 100.0, "broker": 100.0, "freshness": 40.0},
                  "bait": {"risk": 0.0, "warning": false, "evidence": []},
                  "explanation": {"monthly_cost": 61.2, "deposit_rate": 0.05, "fair_cost": 58.0, "cost_m2": 2.1,
                                  "facilities": {}, "age": "7-14d", "unknown": []}}
    });
    (id, serde_json::to_vec(&v).unwrap_or_default())
}

fn bench_changes(rows: u32, clock: i64, first_offset: i64) -> Vec<crate::sink::change::Change> {
    (0..rows)
        .filter_map(|i| {
            let (id, v) = bench_value(i, clock);
            crate::sink::change::decode(
                0,
                first_offset + i64::from(i),
                Some(id.as_bytes()),
                Some(&v),
                (None, None),
            )
            .ok()
        })
        .collect()
}

/// Writes `rows` listings in batches of `size` through a destination (inserts, then the same listings
/// with a newer version: updates); returns (insert rows/s, update rows/s).
async fn bench_one<D: runner::Destination>(
    dest: &mut D,
    rows: u32,
    size: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut rates = Vec::new();
    for pass in 0..2i64 {
        let changes = bench_changes(rows, 10 + pass, pass * i64::from(rows));
        let started = Instant::now();
        let mut from = pass * i64::from(rows);
        for chunk in changes.chunks(size) {
            let next = chunk.last().map_or(from, |c| c.offset + 1);
            dest.write(runner::Batch {
                topic: TopicKind::Listings,
                partition: 0,
                from,
                first: chunk.first().map_or(from, |c| c.offset),
                next,
                records: Vec::new(),
                changes: chunk.to_vec(),
            })
            .await?;
            from = next;
        }
        rates.push(f64::from(rows) / started.elapsed().as_secs_f64());
    }
    Ok((rates[0], rates[1]))
}

/// `roomstream bench sinks`.
pub async fn bench(cfg: &Config, rows: u32, sizes: &[usize]) -> anyhow::Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "sink write path: {rows} listings (mean value {} bytes) inserted, then updated with a newer version; one transaction per batch incl. guard and progress; {cores} cores",
        bench_value(1, 1).1.len()
    );
    println!(
        "{:<10} {:>7} {:>14} {:>14}",
        "sink", "batch", "insert rows/s", "update rows/s"
    );
    for &size in sizes {
        let db = format!(
            "rs_bench_{}",
            time::OffsetDateTime::now_utc().unix_timestamp_nanos()
        );
        let mut c = cfg.clone();
        c.kafka.namespace = db.clone();
        c.mysql.url = replace_database(&cfg.mysql.url, &db);
        c.postgres.url = replace_database(&cfg.postgres.url, &db);
        let mut m = MysqlSink::open(&c).await.context("mysql")?;
        let (ins, upd) = bench_one(&mut m, rows, size).await?;
        println!("{:<10} {:>7} {:>14.0} {:>14.0}", "mysql", size, ins, upd);
        let mut r = RedshiftSink::open(&c).await.context("postgres")?;
        let (ins, upd) = bench_one(&mut r, rows, size).await?;
        println!("{:<10} {:>7} {:>14.0} {:>14.0}", "postgres", size, ins, upd);
        drop_databases(&c.mysql.url, &c.postgres.url).await;
    }
    Ok(ExitCode::SUCCESS)
}

fn replace_database(url: &str, db: &str) -> String {
    match url.rsplit_once('/') {
        Some((head, tail)) => {
            let query = tail
                .split_once('?')
                .map(|(_, q)| format!("?{q}"))
                .unwrap_or_default();
            format!("{head}/{db}{query}")
        }
        None => url.to_string(),
    }
}

/// Drops the benchmark's scratch databases (best effort).
async fn drop_databases(mysql: &str, postgres: &str) {
    use sqlx::migrate::MigrateDatabase;
    let _ = sqlx::MySql::drop_database(mysql).await;
    let _ = sqlx::Postgres::force_drop_database(postgres).await;
}
