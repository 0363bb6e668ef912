//! One partition of the processor: its state (what a checkpoint holds) and the steps that change it —
//! release waiting sweeps, re-link a source listing, track what scoring must see, build canonical
//! listings. [`super::engine`] routes each input to its partition, calls these, and flushes the scored
//! micro-batch.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::detect::{self, Change, SourceState, SweepLog};
use super::engine::EngineConfig;
use super::fingerprint::FixedHasher;
use super::metrics::Metrics;
use super::model::SourceKey;
use super::publish::{self, CanonicalListing, Link, Version};
use super::resolve::{Clusters, Touched};
use super::score::Params;
use super::score::features::Row;
use super::score::live::Live;
use super::verify::{BrokerTable, Verification};

/// Everything kept for one partition; this is what a checkpoint holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Partition number.
    pub partition: i32,
    /// Next offset of `observed.v1` to read.
    pub observed_next: i64,
    /// Next offset of `sweeps.v1` to read.
    pub sweeps_next: i64,
    /// Every source listing ever seen (removed ones too, for relisting). A hash map with a fixed hasher:
    /// looked up on every input; where order matters (the state hash) the keys are sorted.
    pub sources: SourceMap,
    /// Complete sweeps.
    pub sweeps: SweepLog,
    /// The clustering of live listings.
    pub clusters: Clusters,
    /// Content hash of what was last published per canonical id.
    pub published: BTreeMap<String, [u8; 16]>,
    /// The latest `observed_at` among the observations read (Unix seconds).
    pub observed_until: i64,
    /// Sweep markers read but not applied yet: a marker waits until the observations read have passed
    /// its end, so that reading the small sweeps topic ahead of the observations (as a consumer that
    /// is behind does) never removes a listing whose sighting is simply not read yet.
    pub pending_sweeps: Vec<PendingSweep>,
}

/// A sweep marker waiting to be applied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PendingSweep {
    /// When the sweep ended (Unix seconds): it is applied once observations reach this time.
    pub ended_at: i64,
    /// When it started.
    pub started_at: i64,
    /// Region key.
    pub region: String,
    /// Crawler.
    pub source: crate::topics::envelope::Source,
    /// Platform swept.
    pub platform: crate::topics::envelope::Platform,
}

/// The map of source listings. Each state is boxed: a hash table keeps spare slots (up to half of them
/// right after it grows), and a spare slot of an unboxed state is ~700 bytes. Serialized as the state
/// itself.
pub type SourceMap = std::collections::HashMap<
    SourceKey,
    Box<SourceState>,
    std::hash::BuildHasherDefault<FixedHasher>,
>;

/// An owned partition at run time.
#[derive(Debug, Default)]
pub struct Part {
    /// Its state.
    pub state: PartitionState,
    /// While true, nothing is published (restore or replay in progress).
    pub catching_up: bool,
    /// Canonical ids touched by the input being applied.
    pub(super) dirty: BTreeSet<String>,
    /// Canonical ids that ended with the input being applied.
    pub(super) ended: BTreeSet<String>,
    /// Source listings re-linked by the input being applied.
    pub(super) touched_sources: BTreeSet<SourceKey>,
    /// Canonical ids gone since the last flush (tombstones to publish).
    pub(super) gone: BTreeSet<String>,
    /// A full rescore was requested (`roomstream rescore --full`): the next flush scores everything.
    pub(super) rescore: bool,
    /// Registration number → source listings naming it (derived, for re-verification).
    pub(super) by_broker: BTreeMap<String, BTreeSet<SourceKey>>,
    /// Scoring's derived state.
    pub live: Live,
}

impl Part {
    /// A part from a restored (or empty) state; rebuilds what scoring derives from it.
    pub fn new(state: PartitionState, catching_up: bool, params: &Params) -> Part {
        let mut by_broker: BTreeMap<String, BTreeSet<SourceKey>> = BTreeMap::new();
        for (k, s) in &state.sources {
            if let Some(b) = &s.listing.broker {
                by_broker
                    .entry(b.registration_number.clone())
                    .or_default()
                    .insert(k.clone());
            }
        }
        let mut part = Part {
            state,
            catching_up,
            by_broker,
            ..Part::default()
        };
        let PartitionState {
            clusters, sources, ..
        } = &mut part.state;
        clusters.reindex(sources.values().filter(|s| s.alive).map(|s| &s.listing));
        for (k, s) in &part.state.sources {
            part.live.rebuild_photo(k, s.listing.image_url.as_deref());
        }
        let rows: Vec<(String, Row)> = part
            .state
            .clusters
            .members
            .keys()
            .filter_map(|id| row_of(&part, id, params).map(|r| (id.clone(), r)))
            .collect();
        part.live.rebuild(rows, params);
        part
    }
}

/// When a listing was posted or last changed: the latest over its members of (posted, else first
/// seen) and their last price change.
pub(super) fn fresh_since(part: &Part, id: &str) -> i64 {
    part.state
        .clusters
        .members
        .get(id)
        .into_iter()
        .flatten()
        .filter_map(|k| part.state.sources.get(k))
        .map(|s| {
            let posted = s.listing.posted_at.unwrap_or(s.first_seen);
            let changed = s
                .history
                .iter()
                .skip(1)
                .map(|r| r.from)
                .max()
                .unwrap_or(posted);
            posted.max(changed)
        })
        .max()
        .unwrap_or_default()
}

/// The scoring row of a live canonical listing.
pub(super) fn row_of(part: &Part, id: &str, params: &Params) -> Option<Row> {
    let l = view(part, &BrokerTable::default(), id, Version::default(), 0.0)?;
    Some(Row::of(&l, fresh_since(part, id), params.deposit_rate))
}

/// Hands what the input just applied changed to scoring: the photos of re-linked source listings,
/// the canonical listings it touched or ended (scored, or tombstoned, at the next flush, which also
/// brings their rows into the statistics), and the age bands that moved. No view is built here: a
/// listing touched by many inputs of a micro-batch is built once, at the flush.
pub(super) fn track(part: &mut Part) {
    for key in std::mem::take(&mut part.touched_sources) {
        let image = part
            .state
            .sources
            .get(&key)
            .and_then(|s| s.listing.image_url.clone());
        let clusters = &part.state.clusters;
        let sources = &part.state.sources;
        let listing_of = |k: &SourceKey| {
            sources
                .get(k)
                .filter(|s| s.alive)
                .and_then(|_| clusters.of.get(k).cloned())
        };
        part.live.photo(&key, image.as_deref(), &listing_of);
    }
    for id in std::mem::take(&mut part.ended) {
        if part.state.clusters.members.contains_key(&id) {
            part.dirty.insert(id);
        } else {
            part.gone.insert(id);
        }
    }
    part.live.to_score.extend(std::mem::take(&mut part.dirty));
    part.live.advance(part.state.observed_until);
}

/// The version of what a partition publishes now. `clock` is twice the sum of the consumed offsets, plus
/// one once no sweep is waiting: so a publish that only releases pending sweeps (no offset moved) is
/// still newer than the publish before it, and the clock depends only on what was consumed.
pub(super) fn version(part: &Part, brokers_next: i64) -> Version {
    let sum = part.state.observed_next + part.state.sweeps_next + brokers_next;
    Version {
        partition: part.state.partition,
        clock: 2 * sum + i64::from(part.state.pending_sweeps.is_empty()),
        observed: part.state.observed_next,
        sweeps: part.state.sweeps_next,
        brokers: brokers_next,
    }
}

/// Applies the pending sweeps whose end the observations have passed (all of them with `force`), in
/// (end, start, region, source, platform) order. Returns whether any was applied.
pub(super) fn release(part: &mut Part, cfg: &EngineConfig, force: bool, metrics: &Metrics) -> bool {
    let until = part.state.observed_until;
    if !part
        .state
        .pending_sweeps
        .iter()
        .any(|p| force || p.ended_at < until)
    {
        return false;
    }
    let (mut due, keep): (Vec<PendingSweep>, Vec<PendingSweep>) =
        std::mem::take(&mut part.state.pending_sweeps)
            .into_iter()
            .partition(|p| force || p.ended_at < until);
    part.state.pending_sweeps = keep;
    due.sort();
    for sweep in due {
        if !part.state.sweeps.record(
            sweep.source,
            sweep.platform,
            &sweep.region,
            sweep.started_at,
        ) {
            continue;
        }
        let flipped: Vec<(SourceKey, Change)> = part
            .state
            .sources
            .iter_mut()
            .filter(|(k, s)| {
                k.platform == sweep.platform
                    && s.source == sweep.source
                    && s.region_key == sweep.region
            })
            .filter_map(|(k, s)| {
                detect::after_sweep(s, &part.state.sweeps, cfg.removal_sweeps)
                    .map(|c| (k.clone(), c))
            })
            .collect();
        for (k, change) in flipped {
            metrics.event(change.label());
            relink(part, &k, cfg.merge_threshold, metrics);
        }
    }
    true
}

pub(super) fn relink(part: &mut Part, key: &SourceKey, threshold: f64, metrics: &Metrics) {
    part.touched_sources.insert(key.clone());
    let sources = &part.state.sources;
    let live = |k: &SourceKey| {
        sources
            .get(k)
            .filter(|s| s.alive)
            .map(|s| (&s.listing, s.first_seen))
    };
    let listing = live(key).map(|(l, _)| l);
    let mut touched = Touched::default();
    let partition = part.state.partition;
    part.state
        .clusters
        .update(partition, key, listing, &live, threshold, &mut touched);
    metrics
        .merges
        .fetch_add(touched.merges, std::sync::atomic::Ordering::Relaxed);
    metrics
        .splits
        .fetch_add(touched.splits, std::sync::atomic::Ordering::Relaxed);
    metrics
        .flaps
        .fetch_add(touched.flaps, std::sync::atomic::Ordering::Relaxed);
    part.dirty.extend(touched.live);
    part.ended.extend(touched.ended);
}

pub(super) fn view(
    part: &Part,
    brokers: &BrokerTable,
    id: &str,
    version: Version,
    threshold: f64,
) -> Option<CanonicalListing> {
    let keys = part.state.clusters.members.get(id)?;
    let members: Vec<(&SourceKey, &SourceState)> = keys
        .iter()
        .filter_map(|k| part.state.sources.get(k).map(|s| (k, &**s)))
        .collect();
    if members.is_empty() {
        return None;
    }
    let verdicts: Vec<Verification> = members
        .iter()
        .filter(|m| m.1.listing.broker.is_some())
        .map(|m| brokers.verify(m.1.listing.broker.as_ref()))
        .collect();
    let verdict = verdicts
        .iter()
        .find(|v| v.verified())
        .or(verdicts.first())
        .cloned()
        .unwrap_or_else(|| brokers.verify(None));
    let links = part
        .state
        .clusters
        .links(id)
        .into_iter()
        .map(|(a, b, e)| Link {
            a: a.to_string(),
            b: b.to_string(),
            evidence: e.clone(),
        })
        .collect();
    Some(publish::build(
        id, &members, links, threshold, verdict, version,
    ))
}
