//! The `roomstream` command line: one subcommand per thing an operator does, each a thin call into the
//! module that does the work.
//!
//! ```text
//! roomstream [--config FILE] config check
//! roomstream [--config FILE] topics apply|check
//! roomstream [--config FILE] crawl zigbang|dabang|vworld|fixtures|synthetic|calibrate …
//! roomstream [--config FILE] crawl zigbang|dabang|vworld … --every 1h [--jitter 6m] [--retry-after 10m]
//! roomstream [--config FILE] process [--exit-when-idle] | replay [--from-archive] | run
//! roomstream [--config FILE] sink mysql|s3|redshift [--exit-when-idle] [--replay] · status
//! roomstream [--config FILE] serve
//! roomstream [--config FILE] demo [--listings N --days D --live-every 5s --duration T --resume]
//! roomstream [--config FILE] state hash|dump · eval dedup --truth FILE · dlq replay
//! roomstream [--config FILE] bench [throughput|replay|incremental|freshness|api|sinks]… [--full]
//! roomstream [--config FILE] query "SQL"|--file F [--format table|csv|json] [--snapshot N] · report --out DIR
//! ```
//!
//! Exit codes: 0 success; 1 failure (the reason on stderr; for `topics apply`, a fix the broker
//! refused); 2 a live crawl that finished but left some regions incomplete (their events were
//! produced, their sweep markers were not), drift found by `topics check`, or drift Kafka cannot fix
//! (more partitions than defined).

mod bench;
mod demo;
mod process;
mod query;
mod schedule;
mod score;
mod sink;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::{self, Config};
use crate::crawl::calibration;
use crate::crawl::synthetic::{self, SyntheticArgs};
use crate::crawl::{Emitter, dabang, fixtures, vworld, zigbang};
use crate::kafka::KafkaSink;
use crate::topics::admin;

/// roomstream: a streaming pipeline of one-room listings (Zigbang, Dabang, VWORLD → Kafka → …).
#[derive(Debug, Parser)]
#[command(name = "roomstream", version, about, long_about = None)]
pub struct Cli {
    /// Configuration profile (TOML). Without it, the compiled-in `config/local.toml`. Every key can be
    /// overridden by `ROOMSTREAM_<SECTION>_<KEY>`, e.g. `ROOMSTREAM_KAFKA_BROKERS`.
    #[arg(long, global = true, env = "ROOMSTREAM_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the topics defined in `topics/`.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Produce events from a source.
    #[command(subcommand)]
    Crawl(CrawlCommand),
    /// Run the processor: observed + sweeps + brokers → listings (one consumer group).
    Process(process::ProcessArgs),
    /// Rebuild the state from the earliest offsets under a fresh group (or from the S3 raw zone);
    /// publish only what differs.
    Replay {
        /// Read `observed.v1` and `sweeps.v1` from the S3 sink's archive (history beyond the topics'
        /// retention), then continue from the topics where the archive ends.
        #[arg(long)]
        from_archive: bool,
    },
    /// Run a sink: `listings.v1` (and, for s3, the raw topics and the DLQ) into its destination.
    Sink(sink::SinkArgs),
    /// Each sink's durable position (its epoch), lag and last commit.
    Status(sink::StatusArgs),
    /// The processor, every sink and the API in one process.
    Run(sink::RunArgs),
    /// Serve the API (`/api/v1`) and the web page (`/`) from the production database, read-only.
    Serve,
    /// Everything on this machine: an embedded broker (Tansu), SQLite as the production database, a
    /// local folder as the object store, a simulated crawl going live, the processor, the sinks and
    /// the API with the web page. Ctrl-C stops it; the next run starts clean (or `--resume`s).
    Demo(demo::DemoArgs),
    /// Score every listing again with the current `queries/score.sql` and publish only those whose
    /// score changed; prints `changed: N of M`.
    Rescore {
        /// Over the whole state (the only mode).
        #[arg(long)]
        full: bool,
    },
    /// Read the processor's state from its checkpoints.
    #[command(subcommand)]
    State(process::StateCommand),
    /// Evaluate the processor against the simulator's ground truth.
    #[command(subcommand)]
    Eval(process::EvalCommand),
    /// Work with the dead-letter queue.
    #[command(subcommand)]
    Dlq(process::DlqCommand),
    /// Measure throughput, replay, freshness, API latency and memory, each beside a baseline measured
    /// in the same run.
    Bench(bench::BenchArgs),
    /// Run SQL (DataFusion) over the S3 sink's Parquet: `listings` (the latest snapshot), `changes`
    /// (every version), `snapshot`, `change_rows`.
    Query(query::QueryArgs),
    /// Render SVG charts of `queries/analytics/*.sql` and an index.html into a folder.
    Report(query::ReportArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration, then print it with secrets masked.
    Check,
}

#[derive(Debug, Subcommand)]
enum TopicsCommand {
    /// Create missing topics, add missing partitions, fix drifted configs. Idempotent.
    Apply,
    /// Report drift between `topics/` and the broker; exit 2 if there is any.
    Check,
}

#[derive(Debug, Clone, Subcommand)]
enum CrawlCommand {
    /// Crawl Zigbang's geohash tiles once, or on a schedule with `--every` (`zigbang.*` settings).
    Zigbang(LiveArgs),
    /// Crawl Dabang's room list, region by region.
    Dabang {
        #[command(flatten)]
        live: LiveArgs,
        /// 5-digit 시군구 codes to crawl (repeatable); default every Seoul 구.
        #[arg(long = "region", value_name = "CODE")]
        regions: Vec<String>,
    },
    /// Import the VWORLD broker registry (부동산중개업자 CSV, EUC-KR or UTF-8, plain or zipped).
    Vworld {
        /// Path or http(s) URL of the CSV or ZIP.
        #[arg(long, value_name = "FILE")]
        file: String,
        #[command(flatten)]
        schedule: schedule::ScheduleArgs,
    },
    /// Turn every real fixture file into observations.
    Fixtures {
        /// The fixture folder, e.g. `../shared/fixtures/real`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Simulate a calibrated feed: flats, platforms, price changes, contracts, bait, brokers.
    Synthetic(SyntheticCli),
    /// Re-derive the calibration tables (`data/calibration/*.csv`) from the real fixtures.
    Calibrate {
        /// The fixture folder, e.g. `../shared/fixtures/real`.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Where to write `seoul_gu.csv` and `seoul_dong.csv`.
        #[arg(long, value_name = "DIR", default_value = "data/calibration")]
        out: PathBuf,
    },
}

#[derive(Debug, Clone, Args)]
struct LiveArgs {
    /// Identifier of this crawl, carried by every event; default `<source>-<UTC time>` (one per run
    /// with --every).
    #[arg(long, value_parser = parse_crawl_id, conflicts_with = "every")]
    crawl_id: Option<String>,
    #[command(flatten)]
    schedule: schedule::ScheduleArgs,
}

#[derive(Debug, Clone, Args)]
struct SyntheticCli {
    /// Flats in the simulated world.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    listings: u32,
    /// Days of crawling to simulate.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Seed: the same seed gives the same events, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Pace the output at this many events per second (default: as fast as the broker acknowledges).
    #[arg(long, value_name = "EPS", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Write the ground truth (JSON lines) to this file.
    #[arg(long, value_name = "FILE")]
    truth: Option<PathBuf>,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if let Command::Crawl(CrawlCommand::Calibrate { dir, out }) = &self.command {
            return calibrate(dir, out);
        }
        let cfg = config::load(self.config.as_deref())?;
        cfg.validate()?;
        match self.command {
            Command::Config(ConfigCommand::Check) => {
                print!("{}", cfg.to_masked_toml());
                Ok(ExitCode::SUCCESS)
            }
            Command::Topics(TopicsCommand::Apply) => {
                let applied = admin::apply(&cfg.kafka).await?;
                for change in &applied.changes {
                    println!("{change}");
                }
                for drift in &applied.unfixable {
                    println!("cannot fix: {drift}");
                }
                for (drift, error) in &applied.failed {
                    println!("failed to fix: {drift}: {error}");
                }
                println!(
                    "topics under `{}`: {} change(s)",
                    cfg.kafka.namespace,
                    applied.changes.len()
                );
                Ok(if !applied.failed.is_empty() {
                    ExitCode::FAILURE
                } else if applied.unfixable.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                })
            }
            Command::Topics(TopicsCommand::Check) => {
                let drift = admin::plan(&cfg.kafka).await?;
                for d in &drift {
                    println!("{d}");
                }
                println!(
                    "topics under `{}`: {} drift(s)",
                    cfg.kafka.namespace,
                    drift.len()
                );
                Ok(if drift.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                })
            }
            Command::Crawl(crawl) => schedule::run_crawl(&cfg, crawl).await,
            Command::Process(args) => process::run(&cfg, args, false).await,
            Command::Replay {
                from_archive: false,
            } => process::run(&cfg, process::ProcessArgs::replay(), true).await,
            Command::Replay { from_archive: true } => sink::replay_from_archive(&cfg).await,
            Command::Sink(args) => sink::sink(&cfg, args).await,
            Command::Status(args) => sink::status(&cfg, args).await,
            Command::Run(args) => sink::run_all(&cfg, args).await,
            Command::Demo(args) => demo::run(&cfg, args).await,
            Command::Serve => {
                crate::api::run(&cfg, shutdown_signal()).await?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Rescore { full } => {
                if !full {
                    anyhow::bail!(
                        "say `roomstream rescore --full`: scores are otherwise kept current by `process`"
                    );
                }
                score::rescore(&cfg).await
            }
            Command::State(c) => process::state(&cfg, c).await,
            Command::Eval(c) => process::eval(&cfg, c).await,
            Command::Dlq(c) => process::dlq(&cfg, c).await,
            Command::Bench(args) => bench::run(&cfg, args).await,
            Command::Query(args) => query::query(&cfg, args).await,
            Command::Report(args) => query::report(&cfg, args).await,
        }
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (how `docker stop` and systemd ask a service to end).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A crawl id fits the envelope: 1–128 bytes.
fn parse_crawl_id(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 {
        return Err("a crawl id has 1 to 128 bytes".into());
    }
    Ok(s.to_string())
}

/// A rate is a finite number of events per second above zero.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: give events per second above 0, e.g. 2000"
        )),
    }
}

/// Fails early, naming the topic, when `topics apply` has not been run.
async fn require_topics(cfg: &Config) -> anyhow::Result<()> {
    let missing = admin::missing(&cfg.kafka).await?;
    if !missing.is_empty() {
        bail!(
            "topic(s) {} do not exist: run `roomstream topics apply` first",
            missing.join(", ")
        );
    }
    Ok(())
}

/// [`require_topics`] for the long-running processor and sinks: a broker that cannot be reached yet
/// (restarting, or started after them) is waited for with `[retry]`'s back-off, for at most
/// `retry.give_up_after`, as an outage mid-run would be; missing topics still fail at once.
async fn wait_for_topics(cfg: &Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut wait = cfg.retry.first;
    loop {
        match admin::missing(&cfg.kafka).await {
            Err(e @ admin::AdminError::Connect { .. })
                if started.elapsed() + wait < cfg.retry.give_up_after =>
            {
                tracing::warn!("{e}; trying again in {}", humantime::format_duration(wait));
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(cfg.retry.max);
            }
            Ok(missing) if missing.is_empty() => return Ok(()),
            // Missing topics (named), or the broker still unreachable at the end.
            _ => return require_topics(cfg).await,
        }
    }
}

fn default_crawl_id(source: &str) -> String {
    let now = OffsetDateTime::now_utc();
    format!(
        "{source}-{}",
        now.format(&Rfc3339)
            .unwrap_or_else(|_| now.unix_timestamp().to_string())
    )
}

/// One crawl; `Ok(false)` when it finished but left regions incomplete (without sweep markers).
async fn crawl_once(cfg: &Config, command: CrawlCommand) -> anyhow::Result<bool> {
    require_topics(cfg).await?;
    let mut sink = KafkaSink::new(&cfg.kafka)?;
    let mut complete = true;
    let report = match command {
        CrawlCommand::Zigbang(live) => {
            let crawl_id = live.crawl_id.unwrap_or_else(|| default_crawl_id("zigbang"));
            let mut emitter = Emitter::new(&mut sink, None);
            let outcome = zigbang::crawl(cfg, &crawl_id, &mut emitter).await?;
            let report = emitter.finish()?;
            println!(
                "zigbang {crawl_id}: {} requests, {} regions swept, {} incomplete {:?}, {} not fully covered by the tiles {:?}, {} tiles failed, {} batches failed",
                outcome.requests,
                outcome.regions_swept.len(),
                outcome.regions_incomplete.len(),
                outcome.regions_incomplete,
                outcome.regions_uncovered.len(),
                outcome.regions_uncovered,
                outcome.tiles_failed.len(),
                outcome.batches_failed
            );
            complete = outcome.regions_incomplete.is_empty();
            report
        }
        CrawlCommand::Dabang { live, regions } => {
            let crawl_id = live.crawl_id.unwrap_or_else(|| default_crawl_id("dabang"));
            let mut emitter = Emitter::new(&mut sink, None);
            let outcome = dabang::crawl(cfg, &regions, &crawl_id, &mut emitter).await?;
            let report = emitter.finish()?;
            println!(
                "dabang {crawl_id}: {} requests, {} pages, {} splits, {} regions swept, {} incomplete",
                outcome.requests,
                outcome.pages,
                outcome.splits,
                outcome.regions_swept.len(),
                outcome.regions_incomplete.len()
            );
            for (region, error) in &outcome.regions_incomplete {
                println!("  incomplete {region}: {error}");
            }
            complete = outcome.regions_incomplete.is_empty();
            report
        }
        CrawlCommand::Vworld { file, .. } => {
            let mut emitter = Emitter::new(&mut sink, None);
            let outcome = vworld::import(cfg, &file, &mut emitter).await?;
            let report = emitter.finish()?;
            println!(
                "vworld {file}: {} rows ({}), {} brokers, {} rejected to the DLQ",
                outcome.rows, outcome.encoding, outcome.brokers, outcome.rejected
            );
            report
        }
        CrawlCommand::Fixtures { dir } => {
            let mut emitter = Emitter::new(&mut sink, None);
            let outcome = fixtures::emit_all(&dir, &mut emitter)?;
            let report = emitter.finish()?;
            for (file, rows, observations, sweeps) in &outcome.files {
                println!("{file}: {rows} rows → {observations} observations, {sweeps} sweeps");
            }
            if !outcome.skipped.is_empty() {
                println!("not listing files, skipped: {}", outcome.skipped.join(", "));
            }
            println!(
                "fixtures: {} of {} rows became observations ({:.1} %)",
                outcome.observations(),
                outcome.rows(),
                100.0 * outcome.observations() as f64 / outcome.rows().max(1) as f64
            );
            report
        }
        CrawlCommand::Synthetic(s) => {
            let args = SyntheticArgs {
                listings: s.listings,
                days: s.days,
                seed: s.seed,
                rate: s.rate,
                truth: s.truth,
            };
            let mut emitter = Emitter::new(&mut sink, args.rate)
                .with_progress(synthetic::estimate_events(&args), "synthetic");
            let world = synthetic::run(&args, &mut emitter)?;
            let report = emitter.finish()?;
            println!("{}", synthetic::describe(&world));
            if let Some(path) = &args.truth {
                println!("ground truth: {}", path.display());
            }
            report
        }
        CrawlCommand::Calibrate { .. } => {
            unreachable!("handled before the configuration is loaded")
        }
    };
    println!("{}", report.summary());
    Ok(complete)
}

fn calibrate(dir: &std::path::Path, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    let cal = calibration::derive(dir)
        .with_context(|| format!("deriving calibration from {}", dir.display()))?;
    let (gu, dong) = cal.to_csv();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, text) in [("seoul_gu.csv", gu), ("seoul_dong.csv", dong)] {
        let path = out.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_refused_before_anything_runs() {
        for args in [
            &["roomstream", "crawl", "synthetic", "--rate", "0"][..],
            &["roomstream", "crawl", "synthetic", "--rate", "NaN"],
            &["roomstream", "crawl", "synthetic", "--listings", "0"],
            &["roomstream", "crawl", "zigbang", "--crawl-id", ""],
        ] {
            let err = Cli::try_parse_from(args).expect_err("refused");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}: {err}"
            );
        }
        assert!(
            Cli::try_parse_from(["roomstream", "crawl", "synthetic", "--rate", "2000"]).is_ok()
        );
    }
}
