//! `roomstream crawl zigbang|dabang|vworld` once, or with `--every` on a schedule
//! ([`crate::crawl::schedule`]) until SIGINT or SIGTERM, one line per run on stdout.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use time::format_description::well_known::Rfc3339;

use super::CrawlCommand;
use crate::config::Config;
use crate::crawl::schedule::{
    self, NextKind, RunOutcome, Schedule, ScheduleError, ScheduleEvent, SystemClock,
};

/// The schedule flags of the live crawlers.
#[derive(Debug, Clone, Default, Args)]
pub struct ScheduleArgs {
    /// Repeat the crawl forever, one run per period (`1h`, `30m`, `1d`), until SIGINT/SIGTERM; the
    /// first run starts at once. Without it, crawl once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// With --every: start each run a random delay below this after its slot [default: a tenth of
    /// the period].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "every")]
    pub jitter: Option<Duration>,
    /// With --every: retry a failed or incomplete run this long after it ended, doubling with each
    /// failure in a row, never past the next slot [default: 10m, or a quarter of the period].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "every")]
    pub retry_after: Option<Duration>,
}

impl ScheduleArgs {
    /// The schedule asked for, if any.
    pub fn schedule(&self) -> Result<Option<Schedule>, ScheduleError> {
        self.every
            .map(|every| Schedule::new(every, self.jitter, self.retry_after))
            .transpose()
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 1h, 30m, 90s)"))
}

impl CrawlCommand {
    /// The schedule flags, for the crawlers that take them.
    fn schedule_args(&self) -> Option<&ScheduleArgs> {
        match self {
            CrawlCommand::Zigbang(live) | CrawlCommand::Dabang { live, .. } => Some(&live.schedule),
            CrawlCommand::Vworld { schedule, .. } => Some(schedule),
            _ => None,
        }
    }

    fn source(&self) -> &'static str {
        match self {
            CrawlCommand::Zigbang(_) => "zigbang",
            CrawlCommand::Dabang { .. } => "dabang",
            CrawlCommand::Vworld { .. } => "vworld",
            CrawlCommand::Fixtures { .. } => "fixtures",
            CrawlCommand::Synthetic(_) => "synthetic",
            CrawlCommand::Calibrate { .. } => "calibrate",
        }
    }
}

/// `roomstream crawl …`: once (exit 0, or 2 when regions were left incomplete), or on the schedule of
/// `--every` until stopped (exit 0).
pub(super) async fn run_crawl(cfg: &Config, command: CrawlCommand) -> anyhow::Result<ExitCode> {
    let Some(schedule) = command
        .schedule_args()
        .map(ScheduleArgs::schedule)
        .transpose()?
        .flatten()
    else {
        let complete = super::crawl_once(cfg, command).await?;
        return Ok(if complete {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    };
    let source = command.source();
    println!(
        "crawl {source}: every {}, jitter below {}, first retry after {}; stop with SIGINT or SIGTERM",
        human(schedule.every()),
        human(schedule.jitter()),
        human(schedule.retry_after())
    );
    // Jitter only needs to differ between processes and restarts, not to be unpredictable.
    let seed = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u64
        ^ u64::from(std::process::id()).rotate_left(32);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let summary = schedule::run(
        schedule,
        &SystemClock,
        &mut rng,
        super::shutdown_signal(),
        |_| {
            let command = command.clone();
            async move {
                match super::crawl_once(cfg, command).await {
                    Ok(true) => RunOutcome::Complete,
                    Ok(false) => RunOutcome::Incomplete,
                    Err(e) => RunOutcome::Failed(format!("{e:#}")),
                }
            }
        },
        |event| println!("{}", describe(source, event)),
    )
    .await;
    println!(
        "crawl {source}: stopped after {} run(s): {} complete, {} incomplete, {} failed",
        summary.runs, summary.complete, summary.incomplete, summary.failed
    );
    Ok(ExitCode::SUCCESS)
}

/// One line per schedule event; failures are also logged as warnings.
fn describe(source: &str, event: &ScheduleEvent) -> String {
    match event {
        ScheduleEvent::Started { run, retry, .. } => match retry {
            Some(n) => format!("crawl {source}: run {run} started (retry {n})"),
            None => format!("crawl {source}: run {run} started"),
        },
        ScheduleEvent::Finished {
            run,
            outcome,
            took,
            next,
        } => {
            let what = match outcome {
                RunOutcome::Complete => "complete".to_string(),
                RunOutcome::Incomplete => {
                    "incomplete (regions without a sweep marker, see above)".to_string()
                }
                RunOutcome::Failed(e) => format!("failed: {e}"),
            };
            if !outcome.is_complete() {
                tracing::warn!(
                    source,
                    run,
                    outcome = outcome.label(),
                    "Crawl run not complete; it will be retried."
                );
            }
            let when = next.at.format(&Rfc3339).unwrap_or_default();
            let wait = human((next.at - time::OffsetDateTime::now_utc()).unsigned_abs());
            let why = match next.kind {
                NextKind::Retry { attempt } => format!("retry {attempt}"),
                NextKind::Regular { skipped: 0, .. } => "regular".to_string(),
                NextKind::Regular { skipped, .. } => {
                    format!("regular; {skipped} slot(s) skipped while it ran")
                }
            };
            format!(
                "crawl {source}: run {run} {what} in {}; next run at {when} ({why}, in {wait})",
                human(*took)
            )
        }
        ScheduleEvent::Stopped { runs, during_run } => {
            if *during_run {
                format!(
                    "crawl {source}: stop requested during run {runs}: run dropped before any sweep marker"
                )
            } else {
                format!("crawl {source}: stop requested between runs")
            }
        }
    }
}

/// A duration to the second (`1h 2m 3s`).
fn human(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::Cli;

    #[test]
    fn schedule_flags_parse_and_need_every() {
        for ok in [
            &["roomstream", "crawl", "zigbang", "--every", "1h"][..],
            &[
                "roomstream",
                "crawl",
                "dabang",
                "--region",
                "11620",
                "--every",
                "30m",
                "--jitter",
                "5m",
            ],
            &[
                "roomstream",
                "crawl",
                "vworld",
                "--file",
                "x.zip",
                "--every",
                "1d",
                "--retry-after",
                "1h",
            ],
        ] {
            assert!(Cli::try_parse_from(ok).is_ok(), "{ok:?}");
        }
        for (bad, kind) in [
            (
                &["roomstream", "crawl", "zigbang", "--jitter", "5m"][..],
                clap::error::ErrorKind::MissingRequiredArgument,
            ),
            (
                &["roomstream", "crawl", "zigbang", "--every", "soon"],
                clap::error::ErrorKind::ValueValidation,
            ),
            (
                &[
                    "roomstream",
                    "crawl",
                    "zigbang",
                    "--every",
                    "1h",
                    "--crawl-id",
                    "x",
                ],
                clap::error::ErrorKind::ArgumentConflict,
            ),
            (
                &[
                    "roomstream",
                    "crawl",
                    "fixtures",
                    "--dir",
                    "d",
                    "--every",
                    "1h",
                ],
                clap::error::ErrorKind::UnknownArgument,
            ),
        ] {
            let err = Cli::try_parse_from(bad).expect_err("refused");
            assert_eq!(err.kind(), kind, "{bad:?}: {err}");
        }
    }
}
