//! Crawl schedules: `roomstream crawl zigbang|dabang|vworld --every 1h` repeats a crawl until it is
//! stopped, in place of the seed's daily Airflow DAGs (docs/platforms.md §1).
//!
//! **When.** Runs are due on a grid of slots, `start + k·every`. A regular run starts a random jitter,
//! uniform in `[0, jitter)`, after its slot, so that crawlers (and deployments) do not all hit a site at
//! the same minute of every hour. The first run starts at once. A run that outlasts its slot skips the
//! slots that passed meanwhile (they are counted, not caught up): the next run is due in the first slot
//! after it ended.
//!
//! **Failures.** A run that failed (an error) or left regions incomplete is retried `retry_after` after
//! it ended, doubling with each failure in a row (`retry_after · 2^(n-1)`, at most `every`), but only
//! if that is before the next slot starts; otherwise the next regular run is the retry. So retries are
//! bounded by the schedule: a site that stays down is asked a few times per slot, never in a tight loop.
//! A retry is a whole new crawl with its own crawl id.
//!
//! **Sweep markers.** The schedule itself emits nothing: each run is one ordinary crawl, whose crawler
//! sends a region's marker only when that run listed the region completely ([`super::zigbang`],
//! [`super::dabang`]); an incomplete region stays without a marker until a later run completes it.
//!
//! **Stopping.** [`run`] returns as soon as its `shutdown` future completes (SIGINT or SIGTERM in the
//! CLI), between runs or during one. A run is stopped by being dropped at its next `.await`. In a live
//! crawl every `.await` is an HTTP request made before its first sweep marker — the markers are
//! produced and flushed synchronously at the end — so a stopped run has produced observations at most,
//! never a marker.
//!
//! [`Planner`] is pure; [`run`] takes its [`Clock`] and random source from the caller, so tests drive
//! both (`tests.rs`).

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use time::OffsetDateTime;

/// The shortest period a schedule accepts.
pub const MIN_EVERY: Duration = Duration::from_secs(1);

/// The first retry delay when none is given (or a quarter of the period, if that is shorter).
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(600);

/// A schedule that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The period is below [`MIN_EVERY`].
    #[error("--every {} is too short: give at least 1s", humantime::format_duration(*every))]
    TooOften {
        /// The period asked for.
        every: Duration,
    },
    /// The jitter is not shorter than the period.
    #[error("--jitter {} must be shorter than --every {}", humantime::format_duration(*jitter), humantime::format_duration(*every))]
    JitterTooLong {
        /// The jitter asked for.
        jitter: Duration,
        /// The period.
        every: Duration,
    },
    /// The first retry delay is zero or longer than the period.
    #[error("--retry-after {} must be above 0 and at most --every {}", humantime::format_duration(*retry_after), humantime::format_duration(*every))]
    BadRetry {
        /// The delay asked for.
        retry_after: Duration,
        /// The period.
        every: Duration,
    },
}

/// How often a crawl runs, how much its start varies, and how soon a failed run is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    every: Duration,
    jitter: Duration,
    retry_after: Duration,
}

impl Schedule {
    /// A schedule of one run per `every`; `jitter` defaults to a tenth of the period, `retry_after` to
    /// [`DEFAULT_RETRY_AFTER`] or a quarter of the period, whichever is shorter.
    pub fn new(
        every: Duration,
        jitter: Option<Duration>,
        retry_after: Option<Duration>,
    ) -> Result<Schedule, ScheduleError> {
        if every < MIN_EVERY {
            return Err(ScheduleError::TooOften { every });
        }
        let jitter = jitter.unwrap_or(every / 10);
        if jitter >= every {
            return Err(ScheduleError::JitterTooLong { jitter, every });
        }
        let retry_after = retry_after.unwrap_or(DEFAULT_RETRY_AFTER.min(every / 4));
        if retry_after.is_zero() || retry_after > every {
            return Err(ScheduleError::BadRetry { retry_after, every });
        }
        Ok(Schedule {
            every,
            jitter,
            retry_after,
        })
    }

    /// The period between two slots.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// The longest a regular run starts after its slot (exclusive).
    pub fn jitter(&self) -> Duration {
        self.jitter
    }

    /// The delay before the first retry of a failed run.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }

    /// When slot `k` starts, for slots counted from `origin` (slot 0).
    pub fn slot_start(&self, origin: OffsetDateTime, k: u64) -> OffsetDateTime {
        let nanos = self.every.as_nanos().saturating_mul(u128::from(k));
        let offset = i64::try_from(nanos).map_or(time::Duration::MAX, time::Duration::nanoseconds);
        origin.saturating_add(offset)
    }

    /// The first slot that starts strictly after `t`.
    pub fn next_slot_after(&self, origin: OffsetDateTime, t: OffsetDateTime) -> u64 {
        let elapsed = (t - origin).whole_nanoseconds();
        if elapsed < 0 {
            return 0;
        }
        let whole = elapsed.unsigned_abs() / self.every.as_nanos();
        u64::try_from(whole).map_or(u64::MAX, |k| k.saturating_add(1))
    }

    /// The delay before retry `failures` (1 for the first retry): `retry_after · 2^(failures-1)`, at
    /// most the period.
    pub fn retry_delay(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.retry_after.saturating_mul(factor).min(self.every)
    }

    /// One start delay, uniform in `[0, jitter)` at millisecond grain.
    pub fn draw_jitter(&self, rng: &mut impl Rng) -> Duration {
        let max = u64::try_from(self.jitter.as_millis()).unwrap_or(u64::MAX);
        if max == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(rng.random_range(0..max))
        }
    }
}

/// How one run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Everything it set out to list was listed (every covered region got its sweep marker).
    Complete,
    /// It finished, but some regions got no sweep marker: their observations were produced.
    Incomplete,
    /// It failed; the reason.
    Failed(String),
}

impl RunOutcome {
    /// Whether the run needs no retry.
    pub fn is_complete(&self) -> bool {
        matches!(self, RunOutcome::Complete)
    }

    /// `complete`, `incomplete` or `failed`.
    pub fn label(&self) -> &'static str {
        match self {
            RunOutcome::Complete => "complete",
            RunOutcome::Incomplete => "incomplete",
            RunOutcome::Failed(_) => "failed",
        }
    }
}

/// Why the next run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextKind {
    /// The regular run of slot `slot`; `skipped` slots passed while the runs before it were going.
    Regular {
        /// The slot's number (0 = the first run).
        slot: u64,
        /// Slots that started while a run was still going, and so had no run of their own.
        skipped: u64,
    },
    /// Retry number `attempt` (1 for the first) of a run that failed or was incomplete.
    Retry {
        /// Failures in a row so far.
        attempt: u32,
    },
}

/// The next run: when, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextRun {
    /// When it is due.
    pub at: OffsetDateTime,
    /// Regular or a retry.
    pub kind: NextKind,
}

/// Decides, after each run, when the next one is due (the rules of the module doc). Pure.
#[derive(Debug, Clone)]
pub struct Planner {
    schedule: Schedule,
    origin: OffsetDateTime,
    /// The slot of the last regular run planned.
    slot: u64,
    /// Runs in a row that were not complete.
    failures: u32,
}

impl Planner {
    /// A planner whose slot 0 starts at `origin` (the first run).
    pub fn new(schedule: Schedule, origin: OffsetDateTime) -> Planner {
        Planner {
            schedule,
            origin,
            slot: 0,
            failures: 0,
        }
    }

    /// Runs in a row that were not complete.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The next run after one that ended at `ended` with `outcome`.
    pub fn after_run(
        &mut self,
        outcome: &RunOutcome,
        ended: OffsetDateTime,
        rng: &mut impl Rng,
    ) -> NextRun {
        let s = &self.schedule;
        let next_slot = s
            .next_slot_after(self.origin, ended)
            .max(self.slot.saturating_add(1));
        let slot_start = s.slot_start(self.origin, next_slot);
        let jitter = s.draw_jitter(rng);
        if outcome.is_complete() {
            self.failures = 0;
        } else {
            self.failures = self.failures.saturating_add(1);
            let retry_at = ended.saturating_add(to_time(s.retry_delay(self.failures)));
            if retry_at < slot_start {
                return NextRun {
                    at: retry_at,
                    kind: NextKind::Retry {
                        attempt: self.failures,
                    },
                };
            }
        }
        let skipped = next_slot - self.slot - 1;
        self.slot = next_slot;
        NextRun {
            at: slot_start.saturating_add(to_time(jitter)),
            kind: NextKind::Regular {
                slot: next_slot,
                skipped,
            },
        }
    }
}

fn to_time(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// Where [`run`] reads the time and waits: the wall clock, or a test's.
pub trait Clock {
    /// Now (UTC).
    fn now(&self) -> OffsetDateTime;
    /// Completes at `at` (at once if that has passed).
    fn sleep_until(&self, at: OffsetDateTime) -> impl Future<Output = ()> + Send;
}

/// The system clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep_until(&self, at: OffsetDateTime) -> impl Future<Output = ()> + Send {
        let wait = at - OffsetDateTime::now_utc();
        async move {
            if wait.is_positive() {
                tokio::time::sleep(wait.unsigned_abs()).await;
            }
        }
    }
}

/// What [`run`] reports as it goes (the CLI prints each as one line).
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduleEvent {
    /// Run `run` (1 for the first) started.
    Started {
        /// Its number.
        run: u64,
        /// When.
        at: OffsetDateTime,
        /// `Some(n)` when it is the n-th retry of a failed run.
        retry: Option<u32>,
    },
    /// Run `run` ended; the next is planned.
    Finished {
        /// Its number.
        run: u64,
        /// How it ended.
        outcome: RunOutcome,
        /// How long it took.
        took: Duration,
        /// The next run.
        next: NextRun,
    },
    /// The schedule stopped (shutdown), after `runs` runs; `during_run` if the last one was cut off.
    Stopped {
        /// Runs started.
        runs: u64,
        /// Whether a run was going (and was dropped before producing any sweep marker).
        during_run: bool,
    },
}

/// What a schedule did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleSummary {
    /// Runs started.
    pub runs: u64,
    /// Runs that were complete.
    pub complete: u64,
    /// Runs that left regions incomplete.
    pub incomplete: u64,
    /// Runs that failed.
    pub failed: u64,
    /// Whether the last run was cut off by the shutdown.
    pub stopped_during_run: bool,
}

/// Runs `crawl` (given the run number, from 1) on `schedule` until `shutdown` completes, reporting
/// each step to `on_event`. The first run starts at once.
pub async fn run<C, R, F, Fut>(
    schedule: Schedule,
    clock: &C,
    rng: &mut R,
    shutdown: impl Future<Output = ()>,
    mut crawl: F,
    mut on_event: impl FnMut(&ScheduleEvent),
) -> ScheduleSummary
where
    C: Clock,
    R: Rng,
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = RunOutcome>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    let origin = clock.now();
    let mut planner = Planner::new(schedule, origin);
    let mut summary = ScheduleSummary::default();
    let mut due = NextRun {
        at: origin,
        kind: NextKind::Regular {
            slot: 0,
            skipped: 0,
        },
    };
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                on_event(&ScheduleEvent::Stopped { runs: summary.runs, during_run: false });
                return summary;
            }
            () = clock.sleep_until(due.at) => {}
        }
        summary.runs += 1;
        let run = summary.runs;
        let started = clock.now();
        on_event(&ScheduleEvent::Started {
            run,
            at: started,
            retry: match due.kind {
                NextKind::Retry { attempt } => Some(attempt),
                NextKind::Regular { .. } => None,
            },
        });
        let outcome = tokio::select! {
            biased;
            () = &mut shutdown => {
                summary.stopped_during_run = true;
                on_event(&ScheduleEvent::Stopped { runs: run, during_run: true });
                return summary;
            }
            outcome = crawl(run) => outcome,
        };
        let ended = clock.now();
        match outcome {
            RunOutcome::Complete => summary.complete += 1,
            RunOutcome::Incomplete => summary.incomplete += 1,
            RunOutcome::Failed(_) => summary.failed += 1,
        }
        due = planner.after_run(&outcome, ended, rng);
        on_event(&ScheduleEvent::Finished {
            run,
            outcome,
            took: (ended - started).unsigned_abs(),
            next: due,
        });
    }
}

#[cfg(test)]
mod tests;
