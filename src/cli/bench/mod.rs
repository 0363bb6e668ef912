//! `roomstream bench [SCENARIO…] [--full]`: one harness for every performance figure roomstream
//! quotes. These machines are shared and noisy, so every figure stands beside a **baseline measured
//! in the same run** on the same data — something simpler that does part of the same work — and is
//! quoted as a ratio to it; where the project set a target, the figure says whether it met it.
//!
//! | scenario | measures | baseline |
//! |---|---|---|
//! | [`throughput`] | events/s of the core alone, and of the whole processor from the broker | JSON decoding alone; a do-nothing rdkafka consumer |
//! | [`replay`] | rebuilding the state from the raw events on 2 cores: wall time, peak RSS, bytes per listing | reading and decoding the same events on the same cores |
//! | [`incremental`] | one change rescored vs a full recompute; a day of changes applied vs the seed's recompute-and-replace | the batch way, in the same run |
//! | [`freshness`] | a crawl event's produce → visible through the API, p50/p99, at a steady rate | the broker alone: produce → a do-nothing consumer |
//! | [`api`] | search and detail latency and throughput under `wrk` in a second process | `/healthz` on the same server |
//! | [`sinks`] | MySQL and PostgreSQL sink rows/s by batch size | a plain multi-row INSERT of the same values |
//!
//! Without `--full` every scenario runs at a size meant to fit in about ten minutes on 2 cores; `--full`
//! runs the sizes the targets are stated for. Each scenario prints its table and writes
//! `<out>/<scenario>.json`; the run ends with `<out>/summary.md` (the README's table) and
//! `summary.json`. Build with `--release` (`scripts/bench.sh` does): a debug build says so in every table.

mod api;
mod feed;
mod freshness;
mod incremental;
mod partitions;
mod replay;
pub mod report;
mod sinks;
mod throughput;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use crate::config::Config;
use report::{Machine, Report};

/// `roomstream bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenarios to run, in this order (all of them when none is named).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// The target sizes: 10,000,000 events replayed, 1,000,000 listings rescored… (tens of minutes).
    #[arg(long, conflicts_with = "smoke")]
    full: bool,
    /// Tiny sizes that only check the harness works end to end (the test suite runs this).
    #[arg(long, hide = true)]
    smoke: bool,
    /// Where the JSON reports go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Run nothing: rewrite `summary.md` and `summary.json` from the reports already in `--out`
    /// (after re-running one scenario alone, say).
    #[arg(long)]
    summary_only: bool,
}

/// A benchmark scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Throughput,
    Replay,
    Incremental,
    Freshness,
    Api,
    Sinks,
}

impl Scenario {
    const ALL: [Scenario; 6] = [
        Scenario::Throughput,
        Scenario::Replay,
        Scenario::Incremental,
        Scenario::Freshness,
        Scenario::Api,
        Scenario::Sinks,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Throughput => "throughput",
            Scenario::Replay => "replay",
            Scenario::Incremental => "incremental",
            Scenario::Freshness => "freshness",
            Scenario::Api => "api",
            Scenario::Sinks => "sinks",
        }
    }
}

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Checks the harness only (seconds; figures meaningless).
    Smoke,
    /// Meant to take about ten minutes for every scenario on 2 cores.
    Quick,
    /// The sizes the targets are stated for.
    Full,
}

impl Size {
    /// One of three values by size.
    pub fn pick<T>(self, smoke: T, quick: T, full: T) -> T {
        match self {
            Size::Smoke => smoke,
            Size::Quick => quick,
            Size::Full => full,
        }
    }
}

/// What every scenario is given.
pub struct Ctx {
    pub cfg: Config,
    pub size: Size,
    pub out: PathBuf,
    pub machine: Machine,
}

/// Runs the scenarios asked for, one after another (they share the 2 cores; never two at once).
pub async fn run(cfg: &Config, args: BenchArgs) -> anyhow::Result<ExitCode> {
    let scenarios = if args.summary_only {
        Vec::new()
    } else if args.scenarios.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.scenarios
    };
    let ctx = Ctx {
        cfg: cfg.clone(),
        size: if args.full {
            Size::Full
        } else if args.smoke {
            Size::Smoke
        } else {
            Size::Quick
        },
        out: args.out,
        machine: Machine::read(),
    };
    println!(
        "roomstream bench {} ({}): {}",
        scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(" "),
        ctx.size.pick(
            "smoke sizes",
            "quick sizes; --full for the target sizes",
            "full sizes"
        ),
        ctx.machine.line()
    );
    if ctx.machine.profile == "debug" {
        println!("note: a debug build — figures are not the product's; build with --release");
    }
    let mut reports = Vec::new();
    let mut failed = Vec::new();
    for s in scenarios {
        let started = Instant::now();
        let result = match s {
            Scenario::Throughput => throughput::run(&ctx).await,
            Scenario::Replay => replay::run(&ctx).await,
            Scenario::Incremental => incremental::run(&ctx).await,
            Scenario::Freshness => freshness::run(&ctx).await,
            Scenario::Api => api::run(&ctx).await,
            Scenario::Sinks => sinks::run(&ctx).await,
        };
        match result {
            Ok(mut r) => {
                r.seconds = started.elapsed().as_secs_f64();
                println!("\n{}", r.table());
                r.write(&ctx.out)?;
                reports.push(r);
            }
            Err(e) => {
                eprintln!("\nbench {}: failed: {e:#}", s.name());
                failed.push(s.name());
            }
        }
    }
    // The summary covers every scenario whose report is in the folder: this run's, and an earlier
    // run's for a scenario not run now (a scenario re-run alone keeps the others' figures).
    let mut all: Vec<Report> = Vec::new();
    for s in Scenario::ALL {
        if let Some(r) = reports.iter().find(|r| r.scenario == s.name()) {
            all.push(r.clone());
        } else if let Ok(bytes) = std::fs::read(ctx.out.join(format!("{}.json", s.name())))
            && let Ok(r) = serde_json::from_slice::<Report>(&bytes)
        {
            all.push(r);
        }
    }
    let reports = all;
    let summary = report::summary(&reports);
    std::fs::create_dir_all(&ctx.out)?;
    std::fs::write(ctx.out.join("summary.md"), &summary)?;
    std::fs::write(
        ctx.out.join("summary.json"),
        serde_json::to_vec_pretty(&reports)?,
    )?;
    println!(
        "\n== summary ({}) ==\n{summary}\nwritten to {}",
        ctx.machine.line(),
        ctx.out.display()
    );
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("failed: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}

/// The configuration with a namespace of its own (topics, consumer groups, checkpoints, databases).
pub fn fresh_namespace(cfg: &Config, scenario: &str) -> Config {
    let mut c = cfg.clone();
    let ns = format!(
        "bench_{scenario}_{}",
        time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000
    );
    c.kafka.namespace = ns.clone();
    c.mysql.url = replace_database(&cfg.mysql.url, &ns);
    c.postgres.url = replace_database(&cfg.postgres.url, &ns);
    c
}

/// A database URL naming another database.
pub fn replace_database(url: &str, db: &str) -> String {
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

/// Drops a namespace's scratch databases (best effort). Its topics stay: deleting topics on Tansu 0.6
/// while other clients use the broker coincided with other namespaces' partitions going missing
/// ("Unknown partition") in a test run, so the harness leaves them to the broker's retention.
pub async fn drop_namespace(cfg: &Config) {
    use sqlx::migrate::MigrateDatabase;
    if cfg.mysql.url.starts_with("mysql:") {
        let _ = sqlx::MySql::drop_database(&cfg.mysql.url).await;
    }
    if cfg.postgres.url.starts_with("postgres") {
        let _ = sqlx::Postgres::force_drop_database(&cfg.postgres.url).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_namespace_renames_topics_and_databases_alike() {
        let mut cfg =
            crate::config::load_with_env(None, std::collections::HashMap::<String, String>::new())
                .expect("the local profile loads");
        cfg.mysql.url = "mysql://root@127.0.0.1:3306/roomstream?ssl-mode=disabled".into();
        cfg.postgres.url = "postgres://postgres@127.0.0.1:5432/roomstream".into();
        let c = fresh_namespace(&cfg, "api");
        assert!(c.kafka.namespace.starts_with("bench_api_"));
        assert_eq!(
            c.mysql.url,
            format!(
                "mysql://root@127.0.0.1:3306/{}?ssl-mode=disabled",
                c.kafka.namespace
            )
        );
        assert!(c.postgres.url.ends_with(&format!("/{}", c.kafka.namespace)));
    }
}
