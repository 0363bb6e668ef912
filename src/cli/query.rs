//! `roomstream query` and `roomstream report`: SQL and charts over the S3 sink's Parquet, through
//! [`crate::analytics`].
//!
//! ```text
//! roomstream query "SELECT gu, COUNT(*) FROM listings GROUP BY gu" [--format table|csv|json] [--snapshot N]
//! roomstream query --file queries/analytics/floor_distribution.sql --format csv
//! roomstream report --out out/report [--snapshot N]
//! ```
//!
//! The answer goes to stdout; which snapshot was read, and the row count, to stderr, so that CSV and
//! JSON stay clean. SQL that DataFusion refuses is an error naming why (exit 1).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::analytics::format::{self, Format};
use crate::analytics::{Analytics, report};
use crate::config::Config;

/// `roomstream query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// One SQL statement over `listings`, `snapshot`, `changes`, `change_rows` and `regions` (see README,
    /// "Analytics"); or give `--file`.
    #[arg(
        value_name = "SQL",
        required_unless_present = "file",
        conflicts_with = "file"
    )]
    pub sql: Option<String>,
    /// Read the statement from this file (e.g. one of `queries/analytics/`).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Read snapshot epoch N instead of the newest complete one.
    #[arg(long, value_name = "N")]
    pub snapshot: Option<u64>,
}

/// `roomstream report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Where to write `index.html` and one SVG chart and CSV answer per query (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Read snapshot epoch N instead of the newest complete one.
    #[arg(long, value_name = "N")]
    pub snapshot: Option<u64>,
}

/// Runs one statement and prints its answer.
pub async fn query(cfg: &Config, args: QueryArgs) -> anyhow::Result<ExitCode> {
    let sql = match (&args.sql, &args.file) {
        (Some(sql), _) => sql.clone(),
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => bail!("give the SQL, or --file FILE"),
    };
    let a = Analytics::open(cfg, args.snapshot).await?;
    let answer = a.sql(sql.trim().trim_end_matches(';')).await?;
    format::write(
        args.format,
        &answer.schema,
        &answer.batches,
        std::io::stdout().lock(),
    )?;
    eprintln!(
        "{} row(s) · snapshot epoch {} ({} live listings) · {} change file(s)",
        answer.rows(),
        a.manifest().epoch,
        a.manifest().rows,
        a.change_files()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the charts of every built-in query and their index.
pub async fn report(cfg: &Config, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let a = Analytics::open(cfg, args.snapshot).await?;
    let drawn = report::write(&a, &args.out).await?;
    for d in &drawn {
        println!("{:<28} {:>6} rows  {}", d.query, d.rows, d.svg.display());
    }
    println!(
        "report of snapshot epoch {}: {}",
        a.manifest().epoch,
        args.out.join("index.html").display()
    );
    Ok(ExitCode::SUCCESS)
}
