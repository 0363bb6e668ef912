//! detect: what an observation or a sweep means for one source listing — new, changed (which fields),
//! unchanged, removed, relisted — and a bounded price history.
//!
//! The state of a source listing is a function of the *set* of inputs seen, not of their order, so
//! duplicated, late or re-ordered delivery (and a restart that re-reads some inputs) cannot regress it:
//! - its content is the payload with the latest `observed_at` (ties: the larger content digest);
//! - `first_seen`/`last_seen` are the min/max `observed_at`;
//! - it is **removed** when at least K complete sweeps of its (source, platform, region) *started after*
//!   its last sighting — a sweep that started later and did not see it missed it. One missed sweep is not
//!   a removal (K defaults to 2); a later sighting relists it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::SourceListing;
use crate::topics::envelope::{Platform, Source};

/// How many sweep start times are kept per (source, platform, region); only the last K matter.
const SWEEP_LOG: usize = 16;

/// One run of an unchanged price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceRun {
    /// First sighting at this price (Unix seconds).
    pub from: i64,
    /// Last sighting at this price.
    pub until: i64,
    /// 보증금, 만원.
    pub deposit: u32,
    /// 월세, 만원.
    pub rent: u32,
    /// 관리비, 만원.
    pub fee: Option<f64>,
}

/// Everything the processor keeps of one source listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// The latest content.
    pub listing: SourceListing,
    /// Which crawler saw it last (sweeps are matched per source).
    pub source: Source,
    /// The region key it arrives under (sweeps are matched per region key).
    pub region_key: String,
    /// `observed_at` of the content (Unix seconds).
    pub content_at: i64,
    /// Digest of the content, the tie-break between two payloads observed in the same second.
    pub content_digest: u64,
    /// Digest of the raw payload bytes (and the envelope fields normalize reads) the content came from:
    /// a later observation with the same raw digest is the same content, recognized without parsing.
    pub raw_digest: u64,
    /// Earliest sighting.
    pub first_seen: i64,
    /// Latest sighting.
    pub last_seen: i64,
    /// Price runs, oldest first, at most the configured length.
    pub history: Vec<PriceRun>,
    /// Whether it is listed now (false once K sweeps missed it).
    pub alive: bool,
}

/// What one input did to a source listing.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// First sighting.
    New,
    /// Its content changed; the names of the fields that did.
    Changed(Vec<&'static str>),
    /// Seen again, nothing changed (dropped, counted).
    Unchanged,
    /// Missed by K sweeps.
    Removed,
    /// Seen again after it was removed.
    Relisted,
}

impl Change {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Changed(_) => "changed",
            Change::Unchanged => "unchanged",
            Change::Removed => "removed",
            Change::Relisted => "relisted",
        }
    }
}

/// Complete sweeps seen, by region key and (source, platform): their start times, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepLog {
    /// region → (source, platform) → sorted start times (Unix seconds), at most `SWEEP_LOG`.
    pub starts: BTreeMap<String, BTreeMap<(Source, Platform), Vec<i64>>>,
}

impl SweepLog {
    /// Records a sweep; returns false if it was already known.
    pub fn record(
        &mut self,
        source: Source,
        platform: Platform,
        region: &str,
        started_at: i64,
    ) -> bool {
        let log = self
            .starts
            .entry(region.to_string())
            .or_default()
            .entry((source, platform))
            .or_default();
        match log.binary_search(&started_at) {
            Ok(_) => false,
            Err(at) => {
                log.insert(at, started_at);
                if log.len() > SWEEP_LOG {
                    log.remove(0);
                }
                true
            }
        }
    }

    /// How many recorded sweeps of this listing's kind started after `last_seen`.
    pub fn misses(&self, s: &SourceState) -> usize {
        self.starts
            .get(s.region_key.as_str())
            .and_then(|by| by.get(&(s.source, s.listing.key.platform)))
            .map_or(0, |log| {
                log.len() - log.partition_point(|&t| t <= s.last_seen)
            })
    }
}

/// One sighting of a source listing, normalized.
#[derive(Debug, Clone)]
pub struct Sighting<'a> {
    /// The normalized content.
    pub listing: SourceListing,
    /// Which crawler saw it.
    pub source: Source,
    /// The region key it arrived under.
    pub region_key: &'a str,
    /// When (Unix seconds).
    pub observed_at: i64,
    /// Digest of the content.
    pub digest: u64,
}

/// The removal and history rules.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// K: sweeps that must miss a listing before it is removed.
    pub removal_sweeps: usize,
    /// Price runs kept.
    pub history_len: usize,
}

/// Applies a sighting to a source listing (creating it if new).
pub fn observe(
    slot: &mut Option<SourceState>,
    seen: Sighting<'_>,
    sweeps: &SweepLog,
    rules: Rules,
) -> Change {
    let Sighting {
        listing,
        source,
        region_key,
        observed_at,
        digest,
    } = seen;
    let (removal_sweeps, history_len) = (rules.removal_sweeps, rules.history_len);
    let Some(state) = slot else {
        let mut s = SourceState {
            history: vec![PriceRun {
                from: observed_at,
                until: observed_at,
                deposit: listing.deposit,
                rent: listing.rent,
                fee: listing.fee,
            }],
            listing,
            source,
            region_key: region_key.to_string(),
            content_at: observed_at,
            content_digest: digest,
            raw_digest: 0,
            first_seen: observed_at,
            last_seen: observed_at,
            alive: true,
        };
        s.alive = sweeps.misses(&s) < removal_sweeps;
        *slot = Some(s);
        return Change::New;
    };
    let was_alive = state.alive;
    record_price(&mut state.history, observed_at, &listing, history_len);
    state.first_seen = state.first_seen.min(observed_at);
    let mut fields = Vec::new();
    if (observed_at, digest, source, region_key)
        > (
            state.content_at,
            state.content_digest,
            state.source,
            state.region_key.as_str(),
        )
    {
        fields = changed_fields(&state.listing, &listing);
        state.listing = listing;
        state.source = source;
        state.region_key = region_key.to_string();
        state.content_at = observed_at;
        state.content_digest = digest;
    }
    state.last_seen = state.last_seen.max(observed_at);
    state.alive = sweeps.misses(state) < removal_sweeps;
    match (was_alive, state.alive) {
        (false, true) => Change::Relisted,
        (true, false) => Change::Removed,
        _ if !fields.is_empty() => Change::Changed(fields),
        _ => Change::Unchanged,
    }
}

/// Applies a sighting whose payload is byte-for-byte the one the current content came from (so
/// normalizing it would give the same listing): only the times, the history and liveness move.
pub fn resight(
    state: &mut SourceState,
    source: Source,
    observed_at: i64,
    sweeps: &SweepLog,
    rules: Rules,
) -> Change {
    let was_alive = state.alive;
    record_price(
        &mut state.history,
        observed_at,
        &state.listing,
        rules.history_len,
    );
    state.first_seen = state.first_seen.min(observed_at);
    if (observed_at, source) > (state.content_at, state.source) {
        state.content_at = observed_at;
        state.source = source;
    }
    state.last_seen = state.last_seen.max(observed_at);
    state.alive = sweeps.misses(state) < rules.removal_sweeps;
    match (was_alive, state.alive) {
        (false, true) => Change::Relisted,
        (true, false) => Change::Removed,
        _ => Change::Unchanged,
    }
}

/// Re-evaluates removal after a sweep was recorded; returns the change if its status flipped.
pub fn after_sweep(
    state: &mut SourceState,
    sweeps: &SweepLog,
    removal_sweeps: usize,
) -> Option<Change> {
    let alive = sweeps.misses(state) < removal_sweeps;
    let change = match (state.alive, alive) {
        (true, false) => Some(Change::Removed),
        (false, true) => Some(Change::Relisted),
        _ => None,
    };
    state.alive = alive;
    change
}

/// Records a sighting in the price history: one entry per distinct price with its first and last
/// sighting, in order of first sighting; at most `len` prices (the one seen least recently goes). The
/// entries are min/max over the sightings, so the history does not depend on the order they arrive in
/// (short of a price dropped by the bound coming back). A price that returns (A → B → A) keeps its
/// first sighting: the history lists each price once.
fn record_price(runs: &mut Vec<PriceRun>, at: i64, l: &SourceListing, len: usize) {
    let same = |r: &PriceRun| r.deposit == l.deposit && r.rent == l.rent && r.fee == l.fee;
    if let Some(k) = runs.iter().position(same) {
        let mut r = runs.remove(k);
        r.from = r.from.min(at);
        r.until = r.until.max(at);
        let at = runs.partition_point(|x| (x.from, x.until) <= (r.from, r.until));
        runs.insert(at, r);
        return;
    }
    let r = PriceRun {
        from: at,
        until: at,
        deposit: l.deposit,
        rent: l.rent,
        fee: l.fee,
    };
    let k = runs.partition_point(|x| (x.from, x.until) <= (r.from, r.until));
    runs.insert(k, r);
    if runs.len() > len
        && let Some(stale) = (0..runs.len()).min_by_key(|&k| (runs[k].until, runs[k].from))
    {
        runs.remove(stale);
    }
}

/// The fields of a listing that differ, by name.
pub fn changed_fields(a: &SourceListing, b: &SourceListing) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut check = |name: &'static str, differs: bool| {
        if differs {
            out.push(name);
        }
    };
    check("deposit", a.deposit != b.deposit);
    check("rent", a.rent != b.rent);
    check("fee", a.fee != b.fee);
    check("area", a.area_m2 != b.area_m2);
    check("floor", a.floor != b.floor);
    check("layout", a.layout != b.layout);
    check("building", a.building != b.building);
    check("direction", a.direction != b.direction);
    check(
        "address",
        (&a.gu, &a.dong, &a.lot, &a.bjd_code) != (&b.gu, &b.dong, &b.lot, &b.bjd_code),
    );
    check("location", a.location != b.location);
    check(
        "facilities",
        a.facilities != b.facilities || a.subway_stations != b.subway_stations,
    );
    check("broker", a.broker != b.broker);
    check("title", a.title != b.title);
    check("links", a.url != b.url || a.image_url != b.image_url);
    check(
        "times",
        (a.posted_at, a.updated_at) != (b.posted_at, b.updated_at),
    );
    check("format", a.format != b.format);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::model::{Building, Floor, Layout, SourceKey};
    use crate::topics::envelope::Platform;

    fn listing(rent: u32) -> SourceListing {
        let key = SourceKey {
            platform: Platform::Zigbang,
            id: "1".into(),
        };
        SourceListing {
            fee: Some(5.0),
            area_m2: Some(20.0),
            floor: Floor::Level(2),
            layout: Layout::OneRoom,
            building: Building::OneRoomHouse,
            region_code: "11620".into(),
            dong: Some("신림동".into()),
            ..SourceListing::new(key, "zigbang.list", 1000, rent)
        }
    }

    const RULES: Rules = Rules {
        removal_sweeps: 2,
        history_len: 3,
    };

    fn see(slot: &mut Option<SourceState>, rent: u32, at: i64, sweeps: &SweepLog) -> Change {
        let seen = Sighting {
            listing: listing(rent),
            source: Source::Synthetic,
            region_key: "11620",
            observed_at: at,
            digest: u64::from(rent),
        };
        observe(slot, seen, sweeps, RULES)
    }

    #[test]
    fn one_missed_sweep_is_not_a_removal_two_are_and_a_sighting_relists() {
        let mut sweeps = SweepLog::default();
        let mut slot = None;
        assert_eq!(see(&mut slot, 50, 100, &sweeps), Change::New);
        let sweep =
            |log: &mut SweepLog, at| log.record(Source::Synthetic, Platform::Zigbang, "11620", at);
        let state = slot.as_mut().expect("state");
        assert!(sweep(&mut sweeps, 200));
        assert_eq!(after_sweep(state, &sweeps, 2), None, "one missed sweep");
        assert!(!sweep(&mut sweeps, 200), "the same sweep twice counts once");
        assert!(sweep(&mut sweeps, 300));
        assert_eq!(after_sweep(state, &sweeps, 2), Some(Change::Removed));
        assert_eq!(see(&mut slot, 50, 400, &sweeps), Change::Relisted);
        // A sweep that started before the last sighting did not miss it.
        assert!(sweep(&mut sweeps, 350));
        assert_eq!(after_sweep(slot.as_mut().expect("state"), &sweeps, 2), None);
    }

    #[test]
    fn changes_name_their_fields_and_old_sightings_do_not_regress() {
        let sweeps = SweepLog::default();
        let mut slot = None;
        see(&mut slot, 50, 100, &sweeps);
        assert_eq!(
            see(&mut slot, 45, 200, &sweeps),
            Change::Changed(vec!["rent"])
        );
        assert_eq!(
            see(&mut slot, 50, 150, &sweeps),
            Change::Unchanged,
            "an older sighting"
        );
        let s = slot.as_ref().expect("state");
        assert_eq!(s.listing.rent, 45, "the latest content stays");
        let runs: Vec<(i64, u32)> = s.history.iter().map(|r| (r.from, r.rent)).collect();
        assert_eq!(runs, vec![(100, 50), (200, 45)], "history is in time order");
        for (i, rent) in [40, 41, 42, 43].into_iter().enumerate() {
            see(&mut slot, rent, 300 + i as i64, &sweeps);
        }
        assert_eq!(slot.as_ref().map(|s| s.history.len()), Some(3), "bounded");
    }

    #[test]
    fn price_history_does_not_depend_on_arrival_order() {
        let sweeps = SweepLog::default();
        let history = |order: &[(u32, i64)]| {
            let mut slot = None;
            for &(rent, at) in order {
                see(&mut slot, rent, at, &sweeps);
            }
            slot.map(|s| s.history).unwrap_or_default()
        };
        let sightings = [(50, 1), (50, 10), (45, 5), (45, 5), (40, 7)];
        let want = history(&sightings);
        let mut reversed = sightings;
        reversed.reverse();
        assert_eq!(history(&reversed), want);
        assert_eq!(history(&[(45, 5), (40, 7), (50, 10), (50, 1)]), want);
        assert!(want.iter().all(|r| r.from <= r.until));
    }
}
