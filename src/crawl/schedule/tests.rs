//! Tests of the crawl schedule: slots, jitter bounds, retry delays, the planner's rules over random
//! run histories, and the driver with a manual clock (runs, retries, stops between and during runs).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use time::OffsetDateTime;
use time::macros::datetime;

use super::*;

const MIN: Duration = Duration::from_secs(60);
const T0: OffsetDateTime = datetime!(2026-05-01 00:00:00 UTC);

fn hourly() -> Schedule {
    Schedule::new(60 * MIN, Some(10 * MIN), Some(10 * MIN)).expect("valid")
}

fn at(minutes: u32) -> OffsetDateTime {
    T0 + minutes * MIN
}

#[test]
fn defaults_and_bad_schedules_are_refused_naming_the_flag() {
    // Arrange, Act
    let s = Schedule::new(60 * MIN, None, None).expect("valid");
    // Assert
    assert_eq!((s.jitter(), s.retry_after()), (6 * MIN, 10 * MIN));
    let short = Schedule::new(Duration::from_secs(20), None, None).expect("valid");
    assert_eq!(
        (short.jitter(), short.retry_after()),
        (Duration::from_secs(2), Duration::from_secs(5)),
        "a quarter of a short period"
    );
    for (every, jitter, retry, flag) in [
        (Duration::from_millis(500), None, None, "--every"),
        (Duration::ZERO, None, None, "--every"),
        (60 * MIN, Some(60 * MIN), None, "--jitter"),
        (60 * MIN, Some(61 * MIN), None, "--jitter"),
        (60 * MIN, None, Some(Duration::ZERO), "--retry-after"),
        (60 * MIN, None, Some(61 * MIN), "--retry-after"),
    ] {
        let err = Schedule::new(every, jitter, retry).expect_err("refused");
        assert!(
            err.to_string().starts_with(flag),
            "{every:?} {jitter:?} {retry:?}: {err}"
        );
    }
}

#[test]
fn the_next_slot_is_the_first_that_starts_strictly_after_the_time() {
    let s = hourly();
    for (t, want) in [
        (at(0), 1),
        (at(59), 1),
        (at(59) + Duration::from_millis(59_999), 1),
        (at(60), 2),
        (at(61), 2),
        (at(190), 4),
        (T0 - MIN, 0),
    ] {
        assert_eq!(s.next_slot_after(T0, t), want, "after {t}");
    }
    assert_eq!(s.slot_start(T0, 3), at(180));
    assert_eq!(
        s.slot_start(T0, u64::MAX),
        OffsetDateTime::new_utc(time::Date::MAX, time::Time::MAX),
        "saturates instead of overflowing"
    );
}

#[test]
fn retry_delays_double_per_failure_and_stop_growing_at_the_period() {
    let s = hourly();
    let delays: Vec<Duration> = (1..=6).map(|n| s.retry_delay(n)).collect();
    assert_eq!(
        delays,
        [10 * MIN, 20 * MIN, 40 * MIN, 60 * MIN, 60 * MIN, 60 * MIN]
    );
    assert_eq!(
        s.retry_delay(40),
        60 * MIN,
        "no overflow after many failures"
    );
    assert_eq!(s.retry_delay(0), 10 * MIN, "0 is read as the first");
}

#[test]
fn jitter_stays_in_its_bounds_and_spreads_over_them() {
    // Arrange
    let s = hourly();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // Act
    let draws: Vec<Duration> = (0..2000).map(|_| s.draw_jitter(&mut rng)).collect();
    // Assert
    let (min, max) = (
        draws.iter().min().copied().unwrap_or_default(),
        draws.iter().max().copied().unwrap_or_default(),
    );
    assert!(max < 10 * MIN, "max {max:?}");
    assert!(
        min < MIN && max > 9 * MIN,
        "spread over [0, 10m): {min:?}..{max:?}"
    );
    let none = Schedule::new(60 * MIN, Some(Duration::ZERO), None).expect("valid");
    assert!((0..100).all(|_| none.draw_jitter(&mut rng).is_zero()));
}

#[test]
fn the_planner_retries_with_backoff_within_the_slot_then_falls_back_to_the_schedule() {
    // Arrange
    let mut p = Planner::new(hourly(), T0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let failed = RunOutcome::Failed("broker down".into());
    // Act, Assert: slot 0's run fails at 00:05 → retry 10 min later.
    let n = p.after_run(&failed, at(5), &mut rng);
    assert_eq!(n.at, at(15));
    assert_eq!(n.kind, NextKind::Retry { attempt: 1 });
    // Incomplete is a failure too: 20 min after 00:20.
    let n = p.after_run(&RunOutcome::Incomplete, at(20), &mut rng);
    assert_eq!((n.at, n.kind), (at(40), NextKind::Retry { attempt: 2 }));
    // The third retry (40 min after 00:45) would pass 01:00: the regular run of slot 1 instead.
    let n = p.after_run(&failed, at(45), &mut rng);
    assert_eq!(
        n.kind,
        NextKind::Regular {
            slot: 1,
            skipped: 0
        }
    );
    assert!(n.at >= at(60) && n.at < at(70), "{}", n.at);
    assert_eq!(p.failures(), 3);
    // A complete run resets the failures; one that ran past 02:00 skips slot 2.
    let n = p.after_run(&RunOutcome::Complete, at(135), &mut rng);
    assert_eq!(
        n.kind,
        NextKind::Regular {
            slot: 3,
            skipped: 1
        }
    );
    assert!(n.at >= at(180) && n.at < at(190), "{}", n.at);
    assert_eq!(p.failures(), 0);
    // The next failure starts the back-off again from 10 minutes.
    let n = p.after_run(&failed, at(185), &mut rng);
    assert_eq!((n.at, n.kind), (at(195), NextKind::Retry { attempt: 1 }));
}

#[test]
fn over_random_histories_every_next_run_follows_the_rules() {
    let s = Schedule::new(60 * MIN, Some(7 * MIN), Some(3 * MIN)).expect("valid");
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let mut p = Planner::new(s, T0);
    let mut now = T0;
    let (mut retries, mut regular, mut skipped_total) = (0, 0, 0);
    let mut last_slot = 0;
    let mut failures_in_a_row = 0u32;
    for i in 0..5000 {
        // A run of 1 s to 2.5 h that completes, fails or is incomplete.
        let took = Duration::from_secs(rng.random_range(1..9000));
        let outcome = match rng.random_range(0..3) {
            0 => RunOutcome::Complete,
            1 => RunOutcome::Incomplete,
            _ => RunOutcome::Failed("x".into()),
        };
        let ended = now + took;
        let next = p.after_run(&outcome, ended, &mut rng);
        assert!(
            next.at > ended,
            "#{i}: next run {} not after {ended}",
            next.at
        );
        failures_in_a_row = if outcome.is_complete() {
            0
        } else {
            failures_in_a_row + 1
        };
        let next_slot = s.next_slot_after(T0, ended).max(last_slot + 1);
        match next.kind {
            NextKind::Retry { attempt } => {
                retries += 1;
                assert!(
                    !outcome.is_complete(),
                    "#{i}: a complete run is not retried"
                );
                assert_eq!(attempt, failures_in_a_row, "#{i}");
                assert_eq!(next.at, ended + s.retry_delay(attempt), "#{i}");
                assert!(
                    next.at < s.slot_start(T0, next_slot),
                    "#{i}: a retry never passes the next slot"
                );
            }
            NextKind::Regular { slot, skipped } => {
                regular += 1;
                assert_eq!(slot, next_slot, "#{i}");
                assert_eq!(skipped, slot - last_slot - 1, "#{i}");
                skipped_total += skipped;
                let start = s.slot_start(T0, slot);
                assert!(
                    next.at >= start && next.at < start + s.jitter(),
                    "#{i}: {} outside slot {slot}'s jitter window",
                    next.at
                );
                last_slot = slot;
            }
        }
        now = next.at;
    }
    assert!(
        retries > 500 && regular > 500 && skipped_total > 100,
        "every branch taken: {retries} retries, {regular} regular, {skipped_total} skipped"
    );
}

/// A clock that jumps to whatever time is waited for, and that runs advance by hand.
struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    fn new() -> Self {
        ManualClock {
            now: Mutex::new(T0),
        }
    }

    fn advance(&self, d: Duration) {
        *self.now.lock().expect("clock") += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().expect("clock")
    }

    fn sleep_until(&self, at: OffsetDateTime) -> impl Future<Output = ()> + Send {
        let mut now = self.now.lock().expect("clock");
        if at > *now {
            *now = at;
        }
        std::future::ready(())
    }
}

#[tokio::test]
async fn the_driver_runs_retries_and_stops_between_runs() {
    // Arrange: five runs of scripted length and outcome; stop once the fifth has finished.
    let clock = ManualClock::new();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let script = [
        (5, RunOutcome::Failed("tile failed".into())),
        (5, RunOutcome::Incomplete),
        (5, RunOutcome::Failed("again".into())),
        (70, RunOutcome::Complete),
        (10, RunOutcome::Complete),
    ];
    let stop = tokio::sync::Notify::new();
    let mut events = Vec::new();
    let mut starts = Vec::new();
    // Act
    let summary = run(
        hourly(),
        &clock,
        &mut rng,
        stop.notified(),
        |n| {
            starts.push(clock.now());
            let (minutes, outcome) = script[(n - 1) as usize].clone();
            clock.advance(minutes * MIN);
            std::future::ready(outcome)
        },
        |e| {
            if matches!(e, ScheduleEvent::Finished { run: 5, .. }) {
                stop.notify_one();
            }
            events.push(e.clone());
        },
    )
    .await;
    // Assert
    assert_eq!(
        summary,
        ScheduleSummary {
            runs: 5,
            complete: 2,
            incomplete: 1,
            failed: 2,
            stopped_during_run: false
        }
    );
    assert_eq!(
        &starts[..3],
        &[at(0), at(15), at(40)],
        "at once, then retries"
    );
    assert!(starts[3] >= at(60) && starts[3] < at(70), "{}", starts[3]);
    assert!(
        starts[4] >= at(180) && starts[4] < at(190),
        "slot 2 skipped: {}",
        starts[4]
    );
    let retries: Vec<Option<u32>> = events
        .iter()
        .filter_map(|e| match e {
            ScheduleEvent::Started { retry, .. } => Some(*retry),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [None, Some(1), Some(2), None, None]);
    assert!(
        matches!(
            events.get(7),
            Some(ScheduleEvent::Finished { run: 4, took, next: NextRun { kind: NextKind::Regular { slot: 3, skipped: 1 }, .. }, .. }) if *took == 70 * MIN
        ),
        "{:?}",
        events.get(7)
    );
    assert_eq!(
        events.last(),
        Some(&ScheduleEvent::Stopped {
            runs: 5,
            during_run: false
        })
    );
}

/// Sets its flag when dropped: tells whether a run's future was dropped.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_shutdown_during_a_run_drops_the_run_and_starts_no_other() {
    // Arrange: the second run hangs (a request that never answers) and the shutdown comes meanwhile.
    let clock = ManualClock::new();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let stop = tokio::sync::Notify::new();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut started = 0;
    let mut events = Vec::new();
    // Act
    let summary = run(
        hourly(),
        &clock,
        &mut rng,
        stop.notified(),
        |n| {
            started += 1;
            let flag = DropFlag(dropped.clone());
            let hang = n == 2;
            if hang {
                stop.notify_one();
            }
            async move {
                let _flag = flag;
                if hang {
                    std::future::pending::<()>().await;
                }
                RunOutcome::Complete
            }
        },
        |e| events.push(e.clone()),
    )
    .await;
    // Assert
    assert_eq!(started, 2);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the hanging run was dropped"
    );
    assert_eq!(
        (summary.runs, summary.complete, summary.stopped_during_run),
        (2, 1, true)
    );
    assert_eq!(
        events.last(),
        Some(&ScheduleEvent::Stopped {
            runs: 2,
            during_run: true
        })
    );
}

#[tokio::test]
async fn a_shutdown_before_the_first_run_runs_nothing() {
    let clock = ManualClock::new();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let mut ran = false;
    let summary = run(
        hourly(),
        &clock,
        &mut rng,
        std::future::ready(()),
        |_| {
            ran = true;
            std::future::ready(RunOutcome::Complete)
        },
        |_| {},
    )
    .await;
    assert!(!ran);
    assert_eq!(summary, ScheduleSummary::default());
}
