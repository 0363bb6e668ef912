//! Scenario `replay`: rebuilding every listing's state from the raw events, as `roomstream replay`
//! does after a change of code or of `queries/score.sql`, on 2 cores, at several sizes of the world.
//!
//! The simulator's feed is spooled once to one file per input partition (`<out>/feeds/`, kept for the
//! next run, with the simulator's ground truth), so the measurement reads events as a consumer of each
//! partition would, without holding them in memory. Two threads each run the processor's engine over
//! their input partitions — balanced by bytes, what two processor instances in one group do — and the
//! registry, catching up silently as `roomstream replay` does, then reconciling every partition (all
//! listings scored and published). Measured per size: wall time, peak resident memory of the process
//! during the rebuild (`VmHWM`, reset before it), the state's bytes per listing as checkpoints store it,
//! dedup precision and recall against the truth, and merges, splits and flaps per 1,000 inputs; across
//! sizes, the rate at the largest against the smallest (linear growth keeps it at 1). Baseline: the
//! same threads reading the same files and decoding each event's JSON, nothing else.

use std::time::Instant;

use anyhow::Context;

use super::Ctx;
use super::feed::{Core, Spool};
use super::partitions::{Budget, THREADS, balance, per_thread};
use super::report::{self, Better, Figure, Report};
use crate::topics::TopicKind;

/// A rebuild still running after this long (10× the 60 s target) is stopped and reported unfinished,
/// so that `--full` always ends.
const BUDGET_SECS: f64 = 600.0;
/// … or once the process holds this much memory (8× the 1.5 GB target; a third of this machine).
const BUDGET_RSS: u64 = 12_000_000_000;

/// One size's rebuild, measured.
struct Measured {
    listings: u32,
    events: u64,
    bytes: u64,
    /// Wall time of reading and decoding alone (the baseline), s.
    baseline: f64,
    /// Wall time of the rebuild, s.
    secs: f64,
    /// Inputs the rebuild applied (fewer than `events` when it was stopped).
    inputs: u64,
    peak: u64,
    /// The most resident memory seen as a thread finished catching up (before its reconcile).
    caught_up: u64,
    rss_before: u64,
    reset: bool,
    stopped: Option<String>,
    sources: usize,
    canonical: usize,
    state: usize,
    merges: u64,
    splits: u64,
    flaps: u64,
    dedup: Option<crate::process::eval::DedupEval>,
    /// The state hash of what was rebuilt (`roomstream state hash` prints the same of checkpoints).
    hash: String,
    spooled: Option<f64>,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.inputs as f64 / self.secs
    }

    fn per_1000(&self, n: u64) -> f64 {
        1000.0 * n as f64 / self.inputs.max(1) as f64
    }
}

/// Runs the scenario: the rebuild at each size, smallest first, so that the figures show how the
/// rate holds up as the world grows.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let sizes: Vec<(u32, u32)> = ctx.size.pick(
        vec![(300, 4), (1_000, 4)],
        vec![(30_000, 12), (100_000, 12)],
        vec![(100_000, 12), (300_000, 12), (1_000_000, 12)],
    );
    let seed = 11;
    let cfg = ctx.cfg.clone();
    let out = ctx.out.join("feeds");
    let machine = ctx.machine.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let mut done = Vec::new();
        for &(listings, days) in &sizes {
            done.push(measure(&out, &cfg, listings, days, seed)?);
        }
        Ok(report(&done, days_of(&sizes), seed, &machine))
    })
    .await?
}

fn days_of(sizes: &[(u32, u32)]) -> u32 {
    sizes.last().map_or(0, |s| s.1)
}

/// Spools the feed of one size (once), reads it as the baseline, then rebuilds.
fn measure(
    out: &std::path::Path,
    cfg: &crate::config::Config,
    listings: u32,
    days: u32,
    seed: u64,
) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let (spool, written) = Spool::open_or_write(out, listings, days, seed)?;
    let spooled = written.then(|| started.elapsed().as_secs_f64());
    let threads = balance(&spool)?;
    // Baseline: read and decode, same threads, same files.
    let t = Instant::now();
    let counts = per_thread(
        &spool,
        &threads,
        &Budget::none(),
        None,
        || Ok(Decode::default()),
        |d, _, _, v| {
            d.events += 1;
            d.bytes += v.len() as u64;
            let _ = std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(v));
            Ok(())
        },
        |_| Ok(()),
    )?;
    let baseline = t.elapsed().as_secs_f64();
    let events: u64 = counts.iter().map(|d| d.events).sum();
    let bytes: u64 = counts.iter().map(|d| d.bytes).sum();
    drop(counts);
    // The rebuild, as `roomstream replay` runs it: catch up silently, then reconcile.
    let rss_before = report::rss().unwrap_or(0);
    let reset = report::reset_peak_rss();
    let bar = progress(events, listings);
    let t = Instant::now();
    let budget = Budget::new(BUDGET_SECS, BUDGET_RSS);
    // Resident memory when a thread has caught up, before its reconcile.
    let caught_up = std::sync::atomic::AtomicU64::new(0);
    let cores = per_thread(
        &spool,
        &threads,
        &budget,
        Some(&bar),
        || Core::replaying(cfg),
        |core, topic, key, value| {
            let key = std::str::from_utf8(key).context("key is not UTF-8")?;
            core.feed(topic, key, value)
        },
        |core| {
            let rss = report::rss().unwrap_or(0);
            caught_up.fetch_max(rss, std::sync::atomic::Ordering::Relaxed);
            core.reconcile()
        },
    )?;
    let secs = t.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let stopped = budget.stopped();
    let peak = report::peak_rss().unwrap_or(0);
    let (mut sources, mut canonical, mut state) = (0usize, 0usize, 0usize);
    let (mut merges, mut splits, mut flaps) = (0, 0, 0);
    let mut states = std::collections::BTreeMap::new();
    for c in &cores {
        let (s, l) = c.listings();
        sources += s;
        canonical += l;
        state += c.state_bytes();
        let m = &c.engine.metrics;
        use std::sync::atomic::Ordering::Relaxed;
        merges += m.merges.load(Relaxed);
        splits += m.splits.load(Relaxed);
        flaps += m.flaps.load(Relaxed);
    }
    let inputs: u64 = cores.iter().map(|c| c.inputs).sum();
    for c in cores {
        for (p, part) in c.engine.parts {
            states.insert(p, part.state);
        }
    }
    let hash = crate::process::state::hash(&states).0;
    let dedup = match (&stopped, crate::process::eval::read_truth(&spool.truth())) {
        (None, Ok(truth)) => Some(crate::process::eval::evaluate(&states, &truth)),
        _ => None,
    };
    Ok(Measured {
        listings,
        events,
        bytes,
        baseline,
        secs,
        inputs,
        peak,
        caught_up: caught_up.into_inner(),
        rss_before,
        reset,
        stopped,
        sources,
        canonical,
        state,
        merges,
        splits,
        flaps,
        dedup,
        hash,
        spooled,
    })
}

/// A progress bar on stderr (hidden when stderr is not a terminal): events, events/s and the ETA.
fn progress(events: u64, listings: u32) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(events);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(format!("replay of {listings} flats"));
    bar
}

/// The report: the largest size's headline figures, then the rate, memory and state of every size
/// beside the smallest's, and the clustering's quality and churn.
fn report(done: &[Measured], days: u32, seed: u64, machine: &report::Machine) -> Report {
    let (Some(first), Some(last)) = (done.first(), done.last()) else {
        return Report::new("replay", "nothing measured".into(), machine);
    };
    let partitions = TopicKind::Observed.def().partitions;
    let sizes: Vec<String> = done
        .iter()
        .map(|m| {
            format!(
                "{} flats = {} events ({:.1} GB raw){}",
                m.listings,
                m.events,
                m.bytes as f64 / 1e9,
                m.spooled
                    .map_or(String::new(), |s| format!(", spooled in {s:.0} s"))
            )
        })
        .collect();
    let mut r = Report::new(
        "replay",
        format!(
            "simulator × {days} days (seed {seed}): {}; mean event {:.0} bytes; {partitions} partition files over {THREADS} threads balanced by bytes; caught up silently, then every partition reconciled with an empty listings.v1 (all scored and published), as `roomstream replay` runs",
            sizes.join("; "),
            last.bytes as f64 / last.events.max(1) as f64,
        ),
        machine,
    );
    let wall = if last.stopped.is_some() {
        "rebuild wall time (unfinished: stopped at the budget, a lower bound)"
    } else {
        "rebuild wall time"
    };
    let at = |m: &Measured| format!("{} events", m.events);
    let peak = |m: &Measured| {
        Figure::new(
            &format!("peak RSS during the rebuild, {}", at(m)),
            m.peak as f64 / 1e9,
            "GB",
            Better::Lower,
        )
        .vs("raw events", m.bytes as f64 / 1e9)
    };
    let state = |m: &Measured| {
        Figure::new(
            &format!(
                "state per listing (checkpoint bytes / canonical listing), {}",
                at(m)
            ),
            m.state as f64 / m.canonical.max(1) as f64,
            "bytes",
            Better::Lower,
        )
        .vs("mean raw event", m.bytes as f64 / m.events.max(1) as f64)
    };
    r.push(
        Figure::new(
            &format!("{wall}, {}", at(last)),
            last.secs,
            "s",
            Better::Lower,
        )
        .vs("read + JSON decode only", last.baseline)
        .target(60.0)
        .headline(),
    );
    r.push(peak(last).target(1.5).headline());
    r.push(state(last).target(600.0).headline());
    r.push(
        Figure::new(
            &format!("resident memory per canonical listing, {}", at(last)),
            last.peak.saturating_sub(last.rss_before) as f64 / last.canonical.max(1) as f64,
            "bytes",
            Better::Lower,
        )
        .target(1500.0),
    );
    if done.len() > 1 {
        r.push(
            Figure::new(
                &format!("rebuild rate at {} ÷ at {}", at(last), at(first)),
                last.rate() / first.rate(),
                "×",
                Better::Higher,
            )
            .vs("linear: the same rate", 1.0)
            .target_ratio(0.75)
            .headline(),
        );
    }
    for m in done {
        r.push(
            Figure::new(
                &format!("rebuild rate, {THREADS} cores, {}", at(m)),
                m.rate(),
                "events/s",
                Better::Higher,
            )
            .vs("read + JSON decode only", m.events as f64 / m.baseline),
        );
        if !std::ptr::eq(m, last) {
            r.push(peak(m));
            r.push(state(m));
        }
        if let Some(d) = m.dedup {
            r.push(
                Figure::new(
                    &format!(
                        "dedup precision (cross-platform pairs), {} flats",
                        m.listings
                    ),
                    d.roomstream.precision(),
                    "",
                    Better::Higher,
                )
                .target(0.98),
            );
            r.push(
                Figure::new(
                    &format!("dedup recall, {} flats", m.listings),
                    d.roomstream.recall(),
                    "",
                    Better::Higher,
                )
                .target(0.95),
            );
        }
        for (what, n) in [
            ("merges", m.merges),
            ("splits", m.splits),
            ("flaps", m.flaps),
        ] {
            r.push(Figure::new(
                &format!("{what} per 1,000 inputs, {}", at(m)),
                m.per_1000(n),
                what,
                Better::Lower,
            ));
        }
        r.note(format!(
            "{}: state hash {}; {} canonical listings from {} source listings; per 1,000 inputs {:.2} merges, {:.2} splits, {:.3} flaps (a link back after the evidence took it away); resident before the rebuild {:.2} GB, when caught up {:.2} GB{}{}",
            at(m),
            m.hash,
            m.canonical,
            m.sources,
            m.per_1000(m.merges),
            m.per_1000(m.splits),
            m.per_1000(m.flaps),
            m.rss_before as f64 / 1e9,
            m.caught_up as f64 / 1e9,
            if m.reset { "" } else { " (could not reset the peak: it includes earlier phases)" },
            m.dedup.map_or(String::new(), |d| format!(
                "; dedup P {:.4} R {:.4} ({} of {} true pairs, {} predicted; the seed's rule: {} of {} predicted right)",
                d.roomstream.precision(),
                d.roomstream.recall(),
                d.roomstream.correct,
                d.roomstream.truth,
                d.roomstream.predicted,
                d.seed.correct,
                d.seed.predicted
            )),
        ));
        if let Some(why) = &m.stopped {
            r.note(format!(
                "NOT FINISHED at {}: {why}; {} of {} events ({:.0} %) rebuilt in {:.0} s — its figures are those of the part done",
                at(m),
                m.inputs,
                m.events,
                100.0 * m.inputs as f64 / m.events.max(1) as f64,
                m.secs
            ));
        }
    }
    r
}

#[derive(Default)]
struct Decode {
    events: u64,
    bytes: u64,
}
