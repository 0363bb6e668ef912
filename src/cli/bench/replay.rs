//! Scenario `replay`: rebuilding every listing's state from the raw events, as `roomstream replay`
//! does after a change of code or of `queries/score.sql`, on 2 cores.
//!
//! The simulator's feed is spooled once to one file per input partition (`<out>/feeds/`, kept for the
//! next run), so the measurement reads events as a consumer of each partition would, without holding
//! them in memory. Two threads each run the processor's engine over half of the input partitions — what
//! two processor instances in one group do — and the registry. Measured: wall time, peak resident
//! memory of the process during the rebuild (`VmHWM`, reset before it), and the state's bytes per
//! listing as checkpoints store it. Baseline: the same two threads reading the same files and decoding
//! each event's JSON, nothing else.

use std::time::Instant;

use anyhow::Context;

use super::Ctx;
use super::feed::{Core, Spool, SpoolReader};
use super::report::{self, Better, Figure, Report};
use crate::topics::TopicKind;

/// Threads (cores) of the rebuild.
const THREADS: i32 = 2;
/// A rebuild still running after this long (10× the 60 s target) is stopped and reported unfinished,
/// so that `--full` always ends.
const BUDGET_SECS: f64 = 600.0;
/// … or once the process holds this much memory (8× the 1.5 GB target; a third of this machine).
const BUDGET_RSS: u64 = 12_000_000_000;
/// Records read from one partition before moving to the next (a consumer's fetch, roughly).
const CHUNK: usize = 500;

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let (listings, days) = ctx.size.pick((1_000, 4), (100_000, 12), (1_000_000, 12));
    let seed = 11;
    let cfg = ctx.cfg.clone();
    let out = ctx.out.join("feeds");
    let machine = ctx.machine.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Report> {
        let started = Instant::now();
        let (spool, written) = Spool::open_or_write(&out, listings, days, seed)?;
        let spooled = started.elapsed().as_secs_f64();
        // Baseline: read and decode, same threads, same files.
        let t = Instant::now();
        let counts = per_thread(
            &spool,
            &Budget::none(),
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
        // The rebuild.
        let rss_before = report::rss().unwrap_or(0);
        let reset = report::reset_peak_rss();
        let t = Instant::now();
        let budget = Budget::new(BUDGET_SECS, BUDGET_RSS);
        let cores = rebuild(&spool, &cfg, &budget)?;
        let secs = t.elapsed().as_secs_f64();
        let stopped = budget.stopped();
        let peak = report::peak_rss().unwrap_or(0);
        let (mut sources, mut canonical, mut state) = (0usize, 0usize, 0usize);
        for c in &cores {
            let (s, l) = c.listings();
            sources += s;
            canonical += l;
            state += c.state_bytes();
        }
        let inputs: u64 = cores.iter().map(|c| c.inputs).sum();
        drop(cores);
        let partitions = TopicKind::Observed.def().partitions;
        let mut r = Report::new(
            "replay",
            format!(
                "simulator: {listings} flats × {days} days (seed {seed}) = {events} events ({:.1} GB raw, mean {:.0} bytes), spooled to {partitions} partition files{}; {THREADS} threads × {} partitions",
                bytes as f64 / 1e9,
                bytes as f64 / events.max(1) as f64,
                if written { format!(" in {spooled:.0} s (kept for the next run)") } else { " (from an earlier run)".into() },
                partitions / THREADS
            ),
            &machine,
        );
        let wall = if stopped.is_some() {
            "rebuild wall time (unfinished: stopped at the budget, a lower bound)"
        } else {
            "rebuild wall time"
        };
        r.push(
            Figure::new(wall, secs, "s", Better::Lower)
                .vs("read + JSON decode only", baseline)
                .target(60.0)
                .headline(),
        );
        r.push(
            Figure::new("rebuild rate, 2 cores", inputs as f64 / secs, "events/s", Better::Higher)
                .vs("read + JSON decode only", events as f64 / baseline),
        );
        r.push(
            Figure::new("peak RSS during the rebuild", peak as f64 / 1e9, "GB", Better::Lower)
                .vs("raw events", bytes as f64 / 1e9)
                .target(1.5)
                .headline(),
        );
        r.push(
            Figure::new(
                "state per listing (checkpoint bytes / canonical listing)",
                state as f64 / canonical.max(1) as f64,
                "bytes",
                Better::Lower,
            )
            .vs("mean raw event", bytes as f64 / events.max(1) as f64)
            .target(600.0)
            .headline(),
        );
        r.push(Figure::new(
            "state per source listing",
            state as f64 / sources.max(1) as f64,
            "bytes",
            Better::Lower,
        ));
        r.push(Figure::new(
            "resident memory per canonical listing",
            (peak.saturating_sub(rss_before)) as f64 / canonical.max(1) as f64,
            "bytes",
            Better::Lower,
        ));
        if let Some(why) = stopped {
            r.note(format!(
                "NOT FINISHED: {why}; {inputs} of {events} events ({:.0} %) rebuilt in {secs:.0} s — the figures are those of the part done",
                100.0 * inputs as f64 / events.max(1) as f64
            ));
        }
        r.note(format!(
            "{canonical} canonical listings from {sources} live source listings; resident memory before the rebuild {:.2} GB{}",
            rss_before as f64 / 1e9,
            if reset { "" } else { " (could not reset the peak: it includes earlier phases)" }
        ));
        Ok(r)
    })
    .await?
}

#[derive(Default)]
struct Decode {
    events: u64,
    bytes: u64,
}

/// A limit on a rebuild's time and memory: the threads stop reading when it is reached.
struct Budget {
    started: Instant,
    secs: f64,
    rss: u64,
    /// Why it stopped, once it did.
    stopped: std::sync::Mutex<Option<String>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Budget {
    fn new(secs: f64, rss: u64) -> Budget {
        Budget {
            started: Instant::now(),
            secs,
            rss,
            stopped: Default::default(),
            stop: Default::default(),
        }
    }

    fn none() -> Budget {
        Budget::new(f64::INFINITY, u64::MAX)
    }

    /// Whether to stop now (checked between chunks: a clock read and, every time, `/proc` once).
    fn exceeded(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.stop.load(Ordering::Relaxed) {
            return true;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let why = if secs > self.secs {
            format!("still running after the {:.0} s budget", self.secs)
        } else if self.rss != u64::MAX
            && let Some(rss) = report::rss().filter(|r| *r > self.rss)
        {
            format!(
                "resident memory {:.1} GB passed the {:.0} GB budget",
                rss as f64 / 1e9,
                self.rss as f64 / 1e9
            )
        } else {
            return false;
        };
        self.stop.store(true, Ordering::Relaxed);
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why);
        true
    }

    fn stopped(&self) -> Option<String> {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Runs `step` over every record of each thread's partitions (the registry first) on [`THREADS`]
/// threads, then `end`; returns each thread's state. Stops reading early once `budget` is exceeded.
fn per_thread<S: Send>(
    spool: &Spool,
    budget: &Budget,
    init: impl Fn() -> anyhow::Result<S> + Sync,
    step: impl Fn(&mut S, TopicKind, &[u8], &[u8]) -> anyhow::Result<()> + Sync,
    end: impl Fn(&mut S) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Vec<S>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (init, step, end) = (&init, &step, &end);
                scope.spawn(move || -> anyhow::Result<S> {
                    let mut state = init()?;
                    each_record(spool, t, budget, |topic, key, value| {
                        step(&mut state, topic, key, value)
                    })?;
                    end(&mut state)?;
                    Ok(state)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a thread panicked"))?)
            .collect()
    })
}

/// The processor's engine over each thread's partitions.
fn rebuild(
    spool: &Spool,
    cfg: &crate::config::Config,
    budget: &Budget,
) -> anyhow::Result<Vec<Core>> {
    per_thread(
        spool,
        budget,
        || Core::new(cfg),
        |core, topic, key, value| {
            let key = std::str::from_utf8(key).context("key is not UTF-8")?;
            core.feed(topic, key, value)
        },
        Core::finish,
    )
}

/// Calls `f` on the registry, then on thread `t`'s partitions (p ≡ t mod THREADS) interleaved
/// [`CHUNK`] records at a time, until they end or `budget` is exceeded.
fn each_record(
    spool: &Spool,
    t: i32,
    budget: &Budget,
    mut f: impl FnMut(TopicKind, &[u8], &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut brokers = SpoolReader::open(&spool.brokers())?;
    while let Some(topic) = brokers.next()? {
        f(topic, &brokers.key, &brokers.value)?;
    }
    let partitions = TopicKind::Observed.def().partitions;
    let mut readers: Vec<SpoolReader> = (0..partitions)
        .filter(|p| p % THREADS == t)
        .map(|p| SpoolReader::open(&spool.partition(p)))
        .collect::<anyhow::Result<_>>()?;
    while !readers.is_empty() && !budget.exceeded() {
        let mut i = 0;
        while i < readers.len() {
            let mut ended = false;
            for _ in 0..CHUNK {
                let r = &mut readers[i];
                match r.next()? {
                    Some(topic) => f(topic, &r.key, &r.value)?,
                    None => {
                        ended = true;
                        break;
                    }
                }
            }
            if ended {
                readers.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
    Ok(())
}
