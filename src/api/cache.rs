//! Answers to search and recommendation queries, kept for as long as the data they were read from:
//! until the MySQL sink's next commit.
//!
//! The **epoch** is the sum of the MySQL sink's next offsets in `sink_progress` — it moves exactly when a
//! batch commits (invariant 5) — read at most every [`EPOCH_POLL`] by whichever request finds it older.
//! An answer is stored under the epoch read before its query ran and served only while that is still
//! the epoch; a new epoch empties the cache. So an answer is at most one poll (plus its own query time)
//! behind the database, and a popular search costs one query per commit instead of one per request.
//! `api.cache_entries = 0` turns it off. Detail and region answers are not cached: the statistics they
//! include refresh apart from the commits.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::db::{Pool, Sql};
use axum::body::Bytes;

/// How stale the epoch may get.
pub const EPOCH_POLL: Duration = Duration::from_millis(100);
/// Answers larger than this are not kept.
const MAX_BODY: usize = 512 * 1024;

/// The epoch and the answers read at it.
#[derive(Debug)]
pub struct ResponseCache {
    capacity: usize,
    epoch: AtomicI64,
    checked: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
    entries: RwLock<(i64, HashMap<String, Bytes>)>,
}

impl ResponseCache {
    /// A cache of at most `capacity` answers (0: none kept; the epoch is still read).
    pub fn new(capacity: usize) -> Self {
        ResponseCache {
            capacity,
            epoch: AtomicI64::new(-1),
            checked: Mutex::new(None),
            refreshing: AtomicBool::new(false),
            entries: RwLock::new((-1, HashMap::new())),
        }
    }

    /// The current epoch (re-read when older than [`EPOCH_POLL`]; one request reads, the others use
    /// the last value meanwhile). -1 before the sink's first commit or when it cannot be read.
    pub async fn epoch(&self, pool: &Pool) -> i64 {
        let stale = self
            .checked
            .lock()
            .map(|c| c.is_none_or(|at| at.elapsed() >= EPOCH_POLL))
            .unwrap_or(true);
        if stale
            && self
                .refreshing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // MySQL sums BIGINTs as DECIMAL: cast back.
            let int = pool.backend().integer_type();
            let read = pool
                .fetch_optional::<(Option<i64>,)>(&Sql::new(format!(
                    "SELECT CAST(SUM(next_offset) AS {int}) FROM sink_progress WHERE sink = 'mysql'"
                )))
                .await;
            match read.map(|r| r.and_then(|r| r.0)) {
                Ok(v) => {
                    let e = v.unwrap_or(-1);
                    if self.epoch.swap(e, Ordering::AcqRel) != e
                        && let Ok(mut entries) = self.entries.write()
                    {
                        *entries = (e, HashMap::new());
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "Cannot read the epoch; not caching.");
                    self.epoch.store(-1, Ordering::Release);
                }
            }
            if let Ok(mut c) = self.checked.lock() {
                *c = Some(Instant::now());
            }
            self.refreshing.store(false, Ordering::Release);
        }
        self.epoch.load(Ordering::Acquire)
    }

    /// The answer to `key` read at `epoch`, if kept.
    pub fn get(&self, key: &str, epoch: i64) -> Option<Bytes> {
        if self.capacity == 0 || epoch < 0 {
            return None;
        }
        let entries = self.entries.read().ok()?;
        (entries.0 == epoch).then(|| entries.1.get(key).cloned())?
    }

    /// Keeps an answer read at `epoch`, unless the epoch has moved on or the cache is full.
    pub fn put(&self, key: &str, epoch: i64, body: Bytes) {
        if self.capacity == 0 || epoch < 0 || body.len() > MAX_BODY {
            return;
        }
        if let Ok(mut entries) = self.entries.write()
            && entries.0 == epoch
            && entries.1.len() < self.capacity
        {
            entries.1.insert(key.to_string(), body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_live_only_as_long_as_their_epoch() {
        let c = ResponseCache::new(2);
        // Before an epoch is known nothing is kept.
        c.put("a", -1, Bytes::from_static(b"x"));
        assert_eq!(c.get("a", -1), None);
        *c.entries.write().expect("lock") = (7, HashMap::new());
        c.put("a", 7, Bytes::from_static(b"seven"));
        c.put("b", 6, Bytes::from_static(b"older"));
        assert_eq!(c.get("a", 7).as_deref(), Some(&b"seven"[..]));
        assert_eq!(c.get("b", 7), None, "read at another epoch: not kept");
        assert_eq!(c.get("a", 8), None, "a later epoch does not see it");
        c.put("b", 7, Bytes::from_static(b"2"));
        c.put("c", 7, Bytes::from_static(b"3"));
        assert_eq!(c.get("c", 7), None, "full");
        let off = ResponseCache::new(0);
        *off.entries.write().expect("lock") = (7, HashMap::new());
        off.put("a", 7, Bytes::from_static(b"x"));
        assert_eq!(off.get("a", 7), None);
    }
}
