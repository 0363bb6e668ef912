//! One partition of the processor: its state (what a checkpoint holds) and the steps that change it
//! and publish from it — release waiting sweeps, re-link a source listing, build and flush canonical
//! listings. [`super::engine`] routes each input to its partition and calls these.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::detect::{self, Change, SourceState, SweepLog};
use super::engine::{EngineConfig, Output};
use super::fingerprint::FixedHasher;
use super::metrics::Metrics;
use super::model::SourceKey;
use super::publish::{self, CanonicalListing, Link, Version};
use super::resolve::{Clusters, Touched};
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

/// The map of source listings.
pub type SourceMap =
    std::collections::HashMap<SourceKey, SourceState, std::hash::BuildHasherDefault<FixedHasher>>;

/// An owned partition at run time.
#[derive(Debug, Default)]
pub struct Part {
    /// Its state.
    pub state: PartitionState,
    /// While true, nothing is published (restore or replay in progress).
    pub catching_up: bool,
    /// Canonical ids touched since the last publish.
    pub(super) dirty: BTreeSet<String>,
    /// Canonical ids that ended since the last publish.
    pub(super) ended: BTreeSet<String>,
    /// Registration number → source listings naming it (derived, for re-verification).
    pub(super) by_broker: BTreeMap<String, BTreeSet<SourceKey>>,
}

impl Part {
    /// A part from a restored (or empty) state.
    pub fn new(state: PartitionState, catching_up: bool) -> Part {
        let mut by_broker: BTreeMap<String, BTreeSet<SourceKey>> = BTreeMap::new();
        for (k, s) in &state.sources {
            if let Some(b) = &s.listing.broker {
                by_broker
                    .entry(b.registration_number.clone())
                    .or_default()
                    .insert(k.clone());
            }
        }
        Part {
            state,
            catching_up,
            by_broker,
            ..Part::default()
        }
    }
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
    let sources = &part.state.sources;
    let live = |k: &SourceKey| {
        sources
            .get(k)
            .filter(|s| s.alive)
            .map(|s| (&s.listing, s.first_seen))
    };
    let listing = live(key).map(|(l, _)| l);
    let mut touched = Touched::default();
    part.state
        .clusters
        .update(key, listing, &live, threshold, &mut touched);
    metrics
        .merges
        .fetch_add(touched.merges, std::sync::atomic::Ordering::Relaxed);
    metrics
        .splits
        .fetch_add(touched.splits, std::sync::atomic::Ordering::Relaxed);
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
        .filter_map(|k| part.state.sources.get(k).map(|s| (k, s)))
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

/// [`flush`] with the version of the partition's current positions.
pub(super) fn publish_now(
    part: &mut Part,
    brokers: &BrokerTable,
    brokers_next: i64,
    threshold: f64,
    out: &mut Vec<Output>,
    metrics: &Metrics,
) {
    let version = version(part, brokers_next);
    flush(part, brokers, version, threshold, out, metrics);
}

/// Publishes the dirty canonical listings whose content changed, and tombstones for ended ones.
pub(super) fn flush(
    part: &mut Part,
    brokers: &BrokerTable,
    version: Version,
    threshold: f64,
    out: &mut Vec<Output>,
    metrics: &Metrics,
) {
    if part.catching_up {
        return;
    }
    for id in std::mem::take(&mut part.ended) {
        if part.state.clusters.members.contains_key(&id) {
            part.dirty.insert(id);
        } else if part.state.published.remove(&id).is_some() {
            metrics.published("tombstone");
            out.push(Output::Listing {
                key: id,
                value: None,
            });
        }
    }
    for id in std::mem::take(&mut part.dirty) {
        let Some(listing) = view(part, brokers, &id, version, threshold) else {
            if part.state.published.remove(&id).is_some() {
                metrics.published("tombstone");
                out.push(Output::Listing {
                    key: id,
                    value: None,
                });
            }
            continue;
        };
        let hash = listing.content_hash();
        if part.state.published.get(&id) == Some(&hash) {
            metrics.published("suppressed");
            continue;
        }
        part.state.published.insert(id.clone(), hash);
        metrics.published("upsert");
        out.push(Output::Listing {
            key: id,
            value: serde_json::to_vec(&listing).ok(),
        });
    }
}
