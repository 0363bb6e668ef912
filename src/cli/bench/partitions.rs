//! Reading a spooled feed's input partitions on threads, as processor instances of one group would:
//! the partitions balanced by bytes, each thread interleaving its own, under a budget of time and
//! memory (the `replay` scenario's harness).

use std::time::Instant;

use super::feed::{Spool, SpoolReader};
use super::report;
use crate::topics::TopicKind;

/// Threads (cores) of the rebuild.
pub(super) const THREADS: i32 = 2;
/// Records read from one partition before moving to the next (a consumer's fetch, roughly).
const CHUNK: usize = 500;

/// A limit on a rebuild's time and memory: the threads stop reading when it is reached.
pub(super) struct Budget {
    started: Instant,
    secs: f64,
    rss: u64,
    /// Why it stopped, once it did.
    stopped: std::sync::Mutex<Option<String>>,
    stop: std::sync::atomic::AtomicBool,
}

impl Budget {
    pub(super) fn new(secs: f64, rss: u64) -> Budget {
        Budget {
            started: Instant::now(),
            secs,
            rss,
            stopped: Default::default(),
            stop: Default::default(),
        }
    }

    pub(super) fn none() -> Budget {
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

    pub(super) fn stopped(&self) -> Option<String> {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The input partitions of each thread: the largest files first, each to the thread with the fewest
/// bytes so far (regions hash unevenly, so `p mod threads` leaves one core idle at the end).
pub(super) fn balance(spool: &Spool) -> anyhow::Result<Vec<Vec<i32>>> {
    let mut sizes: Vec<(u64, i32)> = (0..TopicKind::Observed.def().partitions)
        .map(|p| Ok((std::fs::metadata(spool.partition(p))?.len(), p)))
        .collect::<anyhow::Result<_>>()?;
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let mut threads: Vec<(u64, Vec<i32>)> = vec![(0, Vec::new()); THREADS as usize];
    for (bytes, p) in sizes {
        if let Some(t) = threads.iter_mut().min_by_key(|t| t.0) {
            t.0 += bytes;
            t.1.push(p);
        }
    }
    Ok(threads.into_iter().map(|t| t.1).collect())
}

/// Runs `step` over every record of each thread's partitions (the registry first), one thread per
/// entry of `threads`, then `end`; returns each thread's state. Stops reading early once `budget` is
/// exceeded; advances `bar` as records are read.
pub(super) fn per_thread<S: Send>(
    spool: &Spool,
    threads: &[Vec<i32>],
    budget: &Budget,
    bar: Option<&indicatif::ProgressBar>,
    init: impl Fn() -> anyhow::Result<S> + Sync,
    step: impl Fn(&mut S, TopicKind, &[u8], &[u8]) -> anyhow::Result<()> + Sync,
    end: impl Fn(&mut S) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Vec<S>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = threads
            .iter()
            .map(|partitions| {
                let (init, step, end) = (&init, &step, &end);
                scope.spawn(move || -> anyhow::Result<S> {
                    let mut state = init()?;
                    each_record(spool, partitions, budget, bar, |topic, key, value| {
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

/// Calls `f` on the registry, then on `partitions` interleaved [`CHUNK`] records at a time, until
/// they end or `budget` is exceeded.
fn each_record(
    spool: &Spool,
    partitions: &[i32],
    budget: &Budget,
    bar: Option<&indicatif::ProgressBar>,
    mut f: impl FnMut(TopicKind, &[u8], &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut brokers = SpoolReader::open(&spool.brokers())?;
    while let Some(topic) = brokers.next()? {
        f(topic, &brokers.key, &brokers.value)?;
    }
    let mut readers: Vec<SpoolReader> = partitions
        .iter()
        .map(|p| SpoolReader::open(&spool.partition(*p)))
        .collect::<anyhow::Result<_>>()?;
    while !readers.is_empty() && !budget.exceeded() {
        let mut i = 0;
        while i < readers.len() {
            let mut ended = false;
            if let Some(bar) = bar {
                bar.inc(CHUNK as u64);
            }
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
