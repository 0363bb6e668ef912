//! The processing core: inputs in, `listings.v1` records and DLQ events out — no Kafka, no I/O.
//!
//! One [`PartitionState`] per owned partition of `observed.v1`/`sweeps.v1` (both keyed by region, so
//! partition p of each holds the same regions), and one global [`BrokerTable`]. Each input runs
//! normalize → detect → resolve → verify and then publishes the canonical listings it touched whose
//! content changed. While a partition is *catching up* (after a restore, or during a replay) nothing is
//! published; [`Engine::reconcile`] then publishes the difference between the state and what
//! `listings.v1` already holds.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::detect::{self, Change, SourceState, SweepLog};
use super::metrics::Metrics;
use super::model::SourceKey;
use super::normalize;
use super::publish::{self, CanonicalListing, Link, Version};
use super::resolve::{Clusters, Touched};
use super::verify::{BrokerTable, Verification};
use crate::topics::envelope::{BrokerRecord, DLQ_SCHEMA, DlqEvent, Observation, SweepMarker};

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// K: complete sweeps that must miss a listing before it is removed.
    pub removal_sweeps: usize,
    /// Price runs kept per source listing.
    pub history_len: usize,
    /// Evidence score a link needs.
    pub merge_threshold: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            removal_sweeps: 2,
            history_len: 16,
            merge_threshold: 0.72,
        }
    }
}

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

/// A hasher with fixed keys (the FxHash mix): the same on every run and build, and fast on short keys.
#[derive(Debug, Default, Clone, Copy)]
pub struct FixedHasher(u64);

impl std::hash::Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = mix(self.0, bytes);
    }
}

/// An owned partition at run time.
#[derive(Debug, Default)]
pub struct Part {
    /// Its state.
    pub state: PartitionState,
    /// While true, nothing is published (restore or replay in progress).
    pub catching_up: bool,
    /// Canonical ids touched since the last publish.
    dirty: BTreeSet<String>,
    /// Canonical ids that ended since the last publish.
    ended: BTreeSet<String>,
    /// Registration number → source listings naming it (derived, for re-verification).
    by_broker: BTreeMap<String, BTreeSet<SourceKey>>,
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

/// A record to produce.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `listings.v1`: key = canonical id; `None` = tombstone.
    Listing {
        /// Canonical id.
        key: String,
        /// JSON, or None for a tombstone.
        value: Option<Vec<u8>>,
    },
    /// `dlq.v1`.
    Dlq(Box<DlqEvent>),
}

/// Where an input came from.
#[derive(Debug, Clone, Copy)]
pub struct Position<'a> {
    /// Topic name.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// The core.
pub struct Engine {
    /// Tunables.
    pub cfg: EngineConfig,
    /// Owned partitions.
    pub parts: BTreeMap<i32, Part>,
    /// The broker registry.
    pub brokers: BrokerTable,
    /// Next offset of `brokers.v1` to read.
    pub brokers_next: i64,
    /// Counters.
    pub metrics: std::sync::Arc<Metrics>,
}

impl Engine {
    /// A core with no partitions.
    pub fn new(cfg: EngineConfig, metrics: std::sync::Arc<Metrics>) -> Engine {
        Engine {
            cfg,
            parts: BTreeMap::new(),
            brokers: BrokerTable::default(),
            brokers_next: 0,
            metrics,
        }
    }

    /// Applies one record of `observed.v1`.
    pub fn observe(
        &mut self,
        at: Position<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        out: &mut Vec<Output>,
    ) {
        let cfg = self.cfg.clone();
        let Some(part) = self.parts.get_mut(&at.partition) else {
            return;
        };
        part.state.observed_next = part.state.observed_next.max(at.offset + 1);
        // Fast path: most observations re-sight a listing with the very payload it already holds.
        let fast = value.and_then(Envelope::split);
        let raw = fast.as_ref().map(Envelope::raw_digest);
        if let (Some(Envelope { head: env, .. }), Some(raw)) = (&fast, raw) {
            let skey = SourceKey {
                platform: env.platform,
                id: env.source_listing_id.clone(),
            };
            let rules = detect::Rules {
                removal_sweeps: cfg.removal_sweeps,
                history_len: cfg.history_len,
            };
            if let Some(state) = part
                .state
                .sources
                .get_mut(&skey)
                .filter(|s| s.raw_digest == raw && fast.as_ref().is_some_and(Envelope::fits))
            {
                let seen_at = env.observed_at.unix_timestamp();
                let before = view_key(state);
                let change = detect::resight(
                    state,
                    env.source,
                    env.observed_at.unix_timestamp(),
                    &part.state.sweeps,
                    rules,
                );
                let changed = view_key(state) != before;
                self.metrics.event(change.label());
                part.state.observed_until = part.state.observed_until.max(seen_at);
                if changed {
                    relink(part, &skey, cfg.merge_threshold, &self.metrics);
                }
                let released = release(part, &cfg, false, &self.metrics);
                if changed || released {
                    let version = version(part, self.brokers_next);
                    flush(
                        part,
                        &self.brokers,
                        version,
                        cfg.merge_threshold,
                        out,
                        &self.metrics,
                    );
                }
                return;
            }
        }
        let obs: Observation = match decode(value) {
            Ok(o) => o,
            Err(e) => {
                return dlq(
                    out,
                    &self.metrics,
                    at,
                    key,
                    value,
                    "process.decode",
                    e.0,
                    e.1,
                );
            }
        };
        if let Some(why) = obs.contract_violation() {
            return dlq(
                out,
                &self.metrics,
                at,
                key,
                value,
                "process.decode",
                "contract_violation",
                why,
            );
        }
        let listing = match normalize::normalize(&obs) {
            Ok(l) => l,
            Err(r) => {
                return dlq(
                    out,
                    &self.metrics,
                    at,
                    key,
                    value,
                    "process.normalize",
                    r.reason,
                    r.detail,
                );
            }
        };
        let digest = digest_of(&listing);
        let skey = listing.key.clone();
        if let Some(b) = &listing.broker {
            part.by_broker
                .entry(b.registration_number.clone())
                .or_default()
                .insert(skey.clone());
        }
        let mut slot = part.state.sources.remove(&skey);
        let before = slot.as_ref().map(view_key);
        let seen = detect::Sighting {
            listing,
            source: obs.source,
            region_key: &obs.region_code,
            observed_at: obs.observed_at.unix_timestamp(),
            digest,
        };
        let rules = detect::Rules {
            removal_sweeps: cfg.removal_sweeps,
            history_len: cfg.history_len,
        };
        let change = detect::observe(&mut slot, seen, &part.state.sweeps, rules);
        let after = slot.as_ref().map(view_key);
        if let Some(mut s) = slot {
            if let Some(raw) = raw
                && (s.content_at, s.content_digest) == (obs.observed_at.unix_timestamp(), digest)
            {
                s.raw_digest = raw;
            }
            part.state.sources.insert(skey.clone(), s);
        }
        self.metrics.event(change.label());
        if let Change::Changed(fields) = &change {
            for f in fields {
                self.metrics.changed_field(f);
            }
        }
        if before != after {
            relink(part, &skey, cfg.merge_threshold, &self.metrics);
        }
        part.state.observed_until = part
            .state
            .observed_until
            .max(obs.observed_at.unix_timestamp());
        release(part, &cfg, false, &self.metrics);
        let version = version(part, self.brokers_next);
        flush(
            part,
            &self.brokers,
            version,
            cfg.merge_threshold,
            out,
            &self.metrics,
        );
    }

    /// Applies one record of `sweeps.v1`.
    pub fn sweep(
        &mut self,
        at: Position<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        out: &mut Vec<Output>,
    ) {
        let cfg = self.cfg.clone();
        let Some(part) = self.parts.get_mut(&at.partition) else {
            return;
        };
        part.state.sweeps_next = part.state.sweeps_next.max(at.offset + 1);
        let marker: SweepMarker = match decode(value) {
            Ok(m) => m,
            Err(e) => {
                return dlq(
                    out,
                    &self.metrics,
                    at,
                    key,
                    value,
                    "process.decode",
                    e.0,
                    e.1,
                );
            }
        };
        self.metrics.event("sweep");
        part.state.pending_sweeps.push(PendingSweep {
            ended_at: marker.ended_at.unix_timestamp(),
            started_at: marker.started_at.unix_timestamp(),
            region: marker.region_code,
            source: marker.source,
            platform: marker.platform,
        });
        release(part, &cfg, false, &self.metrics);
        let version = version(part, self.brokers_next);
        flush(
            part,
            &self.brokers,
            version,
            cfg.merge_threshold,
            out,
            &self.metrics,
        );
    }

    /// Applies every sweep marker still waiting in a partition (its observations are read to their
    /// current end, so nothing more of the sweeps can be behind), then publishes.
    pub fn release_sweeps(&mut self, partition: i32, out: &mut Vec<Output>) {
        let cfg = self.cfg.clone();
        let Some(part) = self.parts.get_mut(&partition) else {
            return;
        };
        if release(part, &cfg, true, &self.metrics) {
            let version = version(part, self.brokers_next);
            flush(
                part,
                &self.brokers,
                version,
                cfg.merge_threshold,
                out,
                &self.metrics,
            );
        }
    }

    /// Applies one record of `brokers.v1` and re-verifies the listings that name its office.
    pub fn broker(
        &mut self,
        at: Position<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        out: &mut Vec<Output>,
    ) {
        self.brokers_next = self.brokers_next.max(at.offset + 1);
        let number = match value {
            None => key
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| self.brokers.remove(k)),
            Some(_) => match decode::<BrokerRecord>(value) {
                Ok(r) => Some(self.brokers.apply(&r)),
                Err(e) => {
                    return dlq(
                        out,
                        &self.metrics,
                        at,
                        key,
                        value,
                        "process.decode",
                        e.0,
                        e.1,
                    );
                }
            },
        };
        let Some(number) = number else { return };
        for part in self.parts.values_mut() {
            let ids: Vec<String> = part
                .by_broker
                .get(&number)
                .into_iter()
                .flatten()
                .filter_map(|k| part.state.clusters.of.get(k).cloned())
                .collect();
            part.dirty.extend(ids);
            let version = version(part, self.brokers_next);
            flush(
                part,
                &self.brokers,
                version,
                self.cfg.merge_threshold,
                out,
                &self.metrics,
            );
        }
    }

    /// Ends a partition's catch-up: publishes every canonical listing whose content differs from `held`
    /// (what `listings.v1` holds for this partition, by canonical id) and a tombstone for every id held
    /// that no longer exists. Returns how many records it produced.
    pub fn reconcile(
        &mut self,
        partition: i32,
        held: BTreeMap<String, [u8; 16]>,
        out: &mut Vec<Output>,
    ) -> usize {
        let Some(part) = self.parts.get_mut(&partition) else {
            return 0;
        };
        part.catching_up = false;
        part.state.published = held;
        part.dirty = part.state.clusters.members.keys().cloned().collect();
        part.ended = part
            .state
            .published
            .keys()
            .filter(|id| !part.state.clusters.members.contains_key(*id))
            .cloned()
            .collect();
        let before = out.len();
        let version = version(part, self.brokers_next);
        flush(
            part,
            &self.brokers,
            version,
            self.cfg.merge_threshold,
            out,
            &self.metrics,
        );
        out.len() - before
    }

    /// The canonical listings of a partition, built now (for `state dump` and the hash).
    pub fn canonical(&self, partition: i32) -> Vec<CanonicalListing> {
        let Some(part) = self.parts.get(&partition) else {
            return Vec::new();
        };
        let version = version(part, self.brokers_next);
        part.state
            .clusters
            .members
            .keys()
            .filter_map(|id| view(part, &self.brokers, id, version, self.cfg.merge_threshold))
            .collect()
    }
}

/// Bump when `normalize` changes what it makes of a payload: raw digests stored under another version
/// no longer match, so a restored state re-parses re-sighted payloads instead of keeping the old reading.
const NORMALIZE_VERSION: u64 = 1;

/// The envelope of an observation with the payload left as raw bytes: enough to recognize a re-sighting
/// without parsing (or even validating) the payload.
struct Envelope<'a> {
    head: Head,
    payload: &'a [u8],
}

/// Every envelope field but the payload.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    #[allow(dead_code)]
    schema: serde::de::IgnoredAny,
    source: crate::topics::envelope::Source,
    platform: crate::topics::envelope::Platform,
    source_listing_id: String,
    #[serde(with = "time::serde::rfc3339")]
    observed_at: time::OffsetDateTime,
    crawl_id: String,
    region_code: String,
    payload_format: crate::topics::envelope::PayloadFormat,
}

impl<'a> Envelope<'a> {
    /// Splits `{…head…,"payload":<payload>}` — the layout `Observation` serializes to, payload last.
    /// The byte sequence `,"payload":` cannot occur inside a JSON string (its quote would be escaped),
    /// so its first occurrence is the key; the head is then parsed strictly. Anything else (another
    /// field order, bad JSON) returns `None` and takes the full path, which validates everything.
    fn split(v: &'a [u8]) -> Option<Envelope<'a>> {
        const KEY: &[u8] = b",\"payload\":";
        let at = v.windows(KEY.len()).position(|w| w == KEY)?;
        let end = v.iter().rposition(|b| !b.is_ascii_whitespace())?;
        if v[end] != b'}' {
            return None;
        }
        let payload = v.get(at + KEY.len()..end)?.trim_ascii();
        let mut head = Vec::with_capacity(at + 1);
        head.extend_from_slice(v.get(..at)?);
        head.push(b'}');
        let head: Head = serde_json::from_slice(&head).ok()?;
        Some(Envelope { head, payload })
    }
}

impl Envelope<'_> {
    /// Digest of what normalize reads: the payload bytes, format, region, platform and id.
    fn raw_digest(&self) -> u64 {
        let parts: [&[u8]; 5] = [
            self.payload,
            self.head.payload_format.as_str().as_bytes(),
            self.head.region_code.as_bytes(),
            self.head.platform.as_str().as_bytes(),
            self.head.source_listing_id.as_bytes(),
        ];
        parts
            .iter()
            .fold(NORMALIZE_VERSION, |h, p| mix(mix(h, p), &[0xff]))
    }

    /// The envelope checks that do not depend on the payload (see `Observation::contract_violation`).
    fn fits(&self) -> bool {
        let h = &self.head;
        !h.crawl_id.is_empty() && h.crawl_id.len() <= 128
    }
}

/// The parts of a source state that show in the canonical listing — content digest, first sighting,
/// liveness and price steps — folded into one number (not `last_seen`, which moves on every sighting:
/// an unchanged listing must not be republished).
fn view_key(s: &SourceState) -> u64 {
    let mut h = mix(0xcbf2_9ce4_8422_2325, &s.content_digest.to_le_bytes());
    h = mix(h, s.source.as_str().as_bytes());
    h = mix(h, s.region_key.as_bytes());
    h = mix(h, &s.first_seen.to_le_bytes());
    h = mix(h, &[u8::from(s.alive)]);
    for r in &s.history {
        h = mix(h, &r.from.to_le_bytes());
        h = mix(h, &r.deposit.to_le_bytes());
        h = mix(h, &r.rent.to_le_bytes());
        h = mix(h, &r.fee.map_or(u64::MAX, f64::to_bits).to_le_bytes());
    }
    h
}

/// A fixed, fast, non-cryptographic hash step (the FxHash mix, eight bytes at a time). Digests built
/// with it live in the state, so it must never change with a compiler or library release — hence not
/// `std`'s hasher.
fn mix(mut h: u64, bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    let rest = chunks.remainder();
    tail[..rest.len()].copy_from_slice(rest);
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    (h.rotate_left(5) ^ bytes.len() as u64).wrapping_mul(K)
}

/// The version of what a partition publishes now. `clock` is twice the sum of the consumed offsets, plus
/// one once no sweep is waiting: so a publish that only releases pending sweeps (no offset moved) is
/// still newer than the publish before it, and the clock depends only on what was consumed.
fn version(part: &Part, brokers_next: i64) -> Version {
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
fn release(part: &mut Part, cfg: &EngineConfig, force: bool, metrics: &Metrics) -> bool {
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

fn relink(part: &mut Part, key: &SourceKey, threshold: f64, metrics: &Metrics) {
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

fn view(
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

/// Publishes the dirty canonical listings whose content changed, and tombstones for ended ones.
fn flush(
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

/// Digest of the listing's postcard bytes (see [`mix`]).
fn digest_of(l: &super::model::SourceListing) -> u64 {
    mix(
        0xcbf2_9ce4_8422_2325,
        &postcard::to_allocvec(l).unwrap_or_default(),
    )
}

/// (reason, detail) of an input that cannot be read.
struct Undecodable(&'static str, String);

/// One pass straight into the type; only on failure is the input parsed again, to tell bad JSON from
/// JSON of the wrong shape.
fn decode<T: serde::de::DeserializeOwned>(value: Option<&[u8]>) -> Result<T, Undecodable> {
    let bytes =
        value.ok_or_else(|| Undecodable("empty_value", "the record has no value".into()))?;
    serde_json::from_slice(bytes).map_err(|e| {
        match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Undecodable("schema_mismatch", e.to_string()),
            Err(_) => Undecodable("malformed_json", e.to_string()),
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn dlq(
    out: &mut Vec<Output>,
    metrics: &Metrics,
    at: Position<'_>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    stage: &str,
    reason: &str,
    error: String,
) {
    metrics.dlq(reason);
    let raw = value;
    let value = value.map_or(serde_json::Value::Null, |v| {
        serde_json::from_slice(v)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(v).into_owned()))
    });
    out.push(Output::Dlq(Box::new(DlqEvent {
        schema: DLQ_SCHEMA.into(),
        stage: stage.into(),
        reason: reason.into(),
        error,
        topic: Some(at.topic.to_string()),
        partition: Some(at.partition),
        offset: Some(at.offset),
        key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
        value,
        value_base64: raw
            .filter(|v| std::str::from_utf8(v).is_err())
            .map(|v| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, v)),
        rejected_at: crate::topics::envelope::now(),
    })));
}
