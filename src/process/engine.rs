//! The processing core: inputs in, `listings.v1` records and DLQ events out — no Kafka, no I/O.
//!
//! One [`PartitionState`] per owned partition of `observed.v1`/`sweeps.v1` (both keyed by region, so
//! partition p of each holds the same regions), and one global [`BrokerTable`]. Each input runs
//! normalize → detect → resolve → verify and hands the canonical listings it touched to scoring;
//! [`Engine::flush`] then scores the micro-batch of listings whose inputs changed in one DataFusion run
//! and publishes those whose content changed. While a partition is *catching up* (after a restore, or
//! during a replay) nothing is published; [`Engine::reconcile`] then scores everything and publishes the
//! difference between the state and what `listings.v1` already holds.

use std::collections::BTreeMap;

use super::detect::{self, Change};
use super::fingerprint::{Envelope, digest_of, view_key};
use super::metrics::Metrics;
use super::model::SourceKey;
use super::normalize;
pub use super::partition::{Part, PartitionState, PendingSweep};
use super::partition::{fresh_since, release, relink, track, version, view};
use super::publish::CanonicalListing;
use super::score::features::Row;
use super::score::sql::{InputRow, Query, SCORE_SQL, SqlError};
use super::score::{self, Params};
use super::verify::BrokerTable;
use crate::topics::envelope::{
    BrokerRecord, CONTROL_SCHEMA, ControlRecord, DLQ_SCHEMA, DlqEvent, Observation, SweepMarker,
};

/// Only the schema id of a record, to tell control records from sweep markers.
#[derive(serde::Deserialize)]
struct SchemaOnly {
    schema: String,
}

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// K: complete sweeps that must miss a listing before it is removed.
    pub removal_sweeps: usize,
    /// Price runs kept per source listing.
    pub history_len: usize,
    /// Evidence score a link needs.
    pub merge_threshold: f64,
    /// Scoring.
    pub score: Params,
}

impl EngineConfig {
    /// The rules [`detect`] applies.
    fn rules(&self) -> detect::Rules {
        detect::Rules {
            removal_sweeps: self.removal_sweeps,
            history_len: self.history_len,
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            removal_sweeps: 2,
            history_len: 16,
            merge_threshold: 0.72,
            score: Params::default(),
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
        /// For a tombstone, which carries no value: its version clock and 시군구 code (when known),
        /// sent as the record headers [`crate::topics::HEADER_CLOCK`] and
        /// [`crate::topics::HEADER_REGION`] so sinks can guard and place the deletion.
        ended: Option<Ended>,
    },
    /// `dlq.v1`.
    Dlq(Box<DlqEvent>),
}

/// What a tombstone says besides its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    /// The partition's version clock when the listing ended.
    pub clock: i64,
    /// The listing's 시군구 code, if this instance still knew it.
    pub region: Option<String>,
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
    /// `queries/score.sql`, planned once.
    pub query: std::sync::Arc<Query>,
    /// Full rescores done (by request or on reconcile) since the last look.
    pub rescored: Vec<Rescored>,
    /// What every flush so far did, summed.
    pub flushed: Flushed,
}

/// What a full rescore of a partition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescored {
    /// The partition.
    pub partition: i32,
    /// Listings published because their content (score included) differed from what was published.
    pub changed: u64,
    /// Listings scored.
    pub total: u64,
}

/// What a flush did (or, in [`Engine::flushed`], every flush so far).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Listings scored.
    pub scored: u64,
    /// …of which marked without a change of their own: their fair cost, photo evidence or age band
    /// moved.
    pub knock_on: u64,
    /// Records published (upserts and tombstones).
    pub published: u64,
}

impl Engine {
    /// A core with no partitions and the built-in score query.
    pub fn new(cfg: EngineConfig, metrics: std::sync::Arc<Metrics>) -> Engine {
        let query = Query::plan_score("queries/score.sql", SCORE_SQL)
            .expect("the built-in score query plans");
        Engine::with_query(cfg, metrics, std::sync::Arc::new(query))
    }

    /// A core with no partitions and the given score query.
    pub fn with_query(
        cfg: EngineConfig,
        metrics: std::sync::Arc<Metrics>,
        query: std::sync::Arc<Query>,
    ) -> Engine {
        Engine {
            cfg,
            parts: BTreeMap::new(),
            brokers: BrokerTable::default(),
            brokers_next: 0,
            metrics,
            query,
            rescored: Vec::new(),
            flushed: Flushed::default(),
        }
    }

    /// Takes a partition over from its (restored or empty) state.
    pub fn own(&mut self, state: PartitionState, catching_up: bool) {
        let part = Part::new(state, catching_up, &self.cfg.score);
        self.parts.insert(part.state.partition, part);
    }

    /// Takes partitions `0..n` over from empty states, live (in-memory runs: the benchmark, tests).
    pub fn own_empty(&mut self, n: i32) {
        for p in 0..n {
            self.own(
                PartitionState {
                    partition: p,
                    ..PartitionState::default()
                },
                false,
            );
        }
    }

    /// Listings waiting to be scored and published.
    pub fn pending(&self) -> usize {
        self.parts
            .values()
            .map(|p| p.live.to_score.len() + p.gone.len())
            .sum()
    }

    /// Applies one record of `observed.v1`.
    pub fn observe(
        &mut self,
        at: Position<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        out: &mut Vec<Output>,
    ) {
        let input = Input { at, key, value };
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
            let rules = cfg.rules();
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
                release(part, &cfg, false, &self.metrics);
                track(part);
                return;
            }
        }
        let obs: Observation = match decode(value) {
            Ok(o) => o,
            Err(e) => {
                return input.reject(out, &self.metrics, "process.decode", e.0, e.1);
            }
        };
        if let Some(why) = obs.contract_violation() {
            return input.reject(
                out,
                &self.metrics,
                "process.decode",
                "contract_violation",
                why,
            );
        }
        let listing = match normalize::normalize(&obs) {
            Ok(l) => l,
            Err(r) => {
                return input.reject(out, &self.metrics, "process.normalize", r.reason, r.detail);
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
        let mut slot = part.state.sources.remove(&skey).map(|s| *s);
        let before = slot.as_ref().map(view_key);
        let seen = detect::Sighting {
            listing,
            source: obs.source,
            region_key: &obs.region_code,
            observed_at: obs.observed_at.unix_timestamp(),
            digest,
        };
        let rules = cfg.rules();
        let change = detect::observe(&mut slot, seen, &part.state.sweeps, rules);
        let after = slot.as_ref().map(view_key);
        if let Some(mut s) = slot {
            if let Some(raw) = raw
                && (s.content_at, s.content_digest) == (obs.observed_at.unix_timestamp(), digest)
            {
                s.raw_digest = raw;
            }
            part.state.sources.insert(skey.clone(), Box::new(s));
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
        track(part);
    }

    /// Applies one record of `sweeps.v1`.
    pub fn sweep(
        &mut self,
        at: Position<'_>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        out: &mut Vec<Output>,
    ) {
        let input = Input { at, key, value };
        let cfg = self.cfg.clone();
        let Some(part) = self.parts.get_mut(&at.partition) else {
            return;
        };
        part.state.sweeps_next = part.state.sweeps_next.max(at.offset + 1);
        if value.is_some_and(|v| {
            serde_json::from_slice::<SchemaOnly>(v).is_ok_and(|h| h.schema == CONTROL_SCHEMA)
        }) {
            return match decode::<ControlRecord>(value) {
                Ok(c) if c.command == "rescore_full" => {
                    self.metrics.event("control");
                    part.rescore = true;
                }
                Ok(c) => input.reject(
                    out,
                    &self.metrics,
                    "process.control",
                    "unknown_command",
                    format!(
                        "unknown control command `{}` (known: rescore_full)",
                        c.command
                    ),
                ),
                Err(e) => input.reject(out, &self.metrics, "process.decode", e.0, e.1),
            };
        }
        let marker: SweepMarker = match decode(value) {
            Ok(m) => m,
            Err(e) => {
                return input.reject(out, &self.metrics, "process.decode", e.0, e.1);
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
        track(part);
    }

    /// Applies every sweep marker still waiting in a partition (its observations are read to their
    /// current end, so nothing more of the sweeps can be behind); the next flush publishes the result.
    pub fn release_sweeps(&mut self, partition: i32) {
        let cfg = self.cfg.clone();
        let Some(part) = self.parts.get_mut(&partition) else {
            return;
        };
        if release(part, &cfg, true, &self.metrics) {
            track(part);
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
        let input = Input { at, key, value };
        self.brokers_next = self.brokers_next.max(at.offset + 1);
        let number = match value {
            None => key
                .and_then(|k| std::str::from_utf8(k).ok())
                .and_then(|k| self.brokers.remove(k)),
            Some(_) => match decode::<BrokerRecord>(value) {
                Ok(r) => Some(self.brokers.apply(&r)),
                Err(e) => {
                    return input.reject(out, &self.metrics, "process.decode", e.0, e.1);
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
            track(part);
        }
    }

    /// Ends a partition's catch-up: scores every listing in full and publishes each whose content
    /// differs from `held` (what `listings.v1` holds for this partition, by canonical id), and a
    /// tombstone for every id held that no longer exists. Returns how many records it produced.
    pub fn reconcile(
        &mut self,
        partition: i32,
        held: BTreeMap<String, [u8; 16]>,
        out: &mut Vec<Output>,
    ) -> Result<usize, SqlError> {
        let Some(part) = self.parts.get_mut(&partition) else {
            return Ok(0);
        };
        part.catching_up = false;
        part.state.published = held;
        let gone: Vec<String> = part
            .state
            .published
            .keys()
            .filter(|id| !part.state.clusters.members.contains_key(*id))
            .cloned()
            .collect();
        part.gone.extend(gone);
        part.rescore = true;
        let before = out.len();
        self.flush(out)?;
        Ok(out.len() - before)
    }

    /// Scores the micro-batch — every listing whose inputs changed since the last flush, in all owned
    /// partitions, in one run of the planned query — and publishes those whose content changed, and
    /// tombstones for listings that ended. A partition still catching up publishes nothing (its
    /// reconcile scores everything).
    pub fn flush(&mut self, out: &mut Vec<Output>) -> Result<Flushed, SqlError> {
        let mut done = Flushed::default();
        let mut batch = Batch::default();
        let mut full: BTreeMap<i32, u64> = BTreeMap::new();
        let partitions: Vec<i32> = self.parts.keys().copied().collect();
        for p in partitions {
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            let knock_on = std::mem::take(&mut part.live.knock_on);
            if part.catching_up {
                part.live.to_score.clear();
                part.gone.clear();
                continue;
            }
            done.knock_on += knock_on;
            let version = version(part, self.brokers_next);
            for id in std::mem::take(&mut part.gone) {
                if part.state.clusters.members.contains_key(&id) {
                    continue; // ended, then formed again within the batch: scored below
                }
                done.published += end(part, id, version.clock, &self.metrics, out);
            }
            // Each listing of the batch built once; its row enters the statistics. A full rescore
            // rebuilds the scoring state from every listing instead, and builds each listing again
            // when its chunk is scored (holding every built listing of a partition at once would
            // make a reconcile's memory grow with the partition).
            let mut views: BTreeMap<String, CanonicalListing> = BTreeMap::new();
            let mut rescored: Vec<String> = Vec::new();
            if std::mem::take(&mut part.rescore) {
                let ids: Vec<String> = part.state.clusters.members.keys().cloned().collect();
                full.insert(p, ids.len() as u64);
                let mut rows = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(l) =
                        view(part, &self.brokers, &id, version, self.cfg.merge_threshold)
                    {
                        let since = fresh_since(part, &id);
                        rows.push((id.clone(), Row::of(&l, since, self.cfg.score.deposit_rate)));
                        rescored.push(id);
                    }
                }
                part.live.rebuild(rows, &self.cfg.score);
            }
            for id in std::mem::take(&mut part.live.to_score) {
                match view(part, &self.brokers, &id, version, self.cfg.merge_threshold) {
                    Some(l) => {
                        let row = Row::of(&l, fresh_since(part, &id), self.cfg.score.deposit_rate);
                        part.live.upsert(&id, row, &self.cfg.score);
                        views.insert(id, l);
                    }
                    None => done.published += end(part, id, version.clock, &self.metrics, out),
                }
            }
            // The model refitted for this batch: listings whose fair cost moved join it.
            part.live.refit(&self.cfg.score);
            done.knock_on += std::mem::take(&mut part.live.knock_on);
            for id in std::mem::take(&mut part.live.to_score) {
                if !views.contains_key(&id)
                    && let Some(l) =
                        view(part, &self.brokers, &id, version, self.cfg.merge_threshold)
                {
                    views.insert(id, l);
                }
            }
            rescored.retain(|id| !views.contains_key(id));
            for (_, listing) in views {
                batch.add(part, p, listing);
            }
            // The rest of a full rescore, chunk by chunk.
            let mut rest = rescored.into_iter().peekable();
            while rest.peek().is_some() {
                if let Some(part) = self.parts.get_mut(&p) {
                    while batch.inputs.len() < SCORE_CHUNK
                        && let Some(id) = rest.next()
                    {
                        if let Some(l) =
                            view(part, &self.brokers, &id, version, self.cfg.merge_threshold)
                        {
                            batch.add(part, p, l);
                        }
                    }
                }
                if batch.inputs.len() >= SCORE_CHUNK {
                    self.score_and_publish(&mut batch, &mut done, out)?;
                }
            }
        }
        self.score_and_publish(&mut batch, &mut done, out)?;
        for (p, total) in full {
            self.rescored.push(Rescored {
                partition: p,
                changed: batch.changed.get(&p).copied().unwrap_or(0),
                total,
            });
        }
        self.metrics.scored(done.scored, done.knock_on);
        self.flushed.scored += done.scored;
        self.flushed.knock_on += done.knock_on.min(done.scored);
        self.flushed.published += done.published;
        Ok(done)
    }

    /// Scores what waits in `batch` in one run of the query, and publishes each listing whose content
    /// differs from what was last published for it.
    fn score_and_publish(
        &mut self,
        batch: &mut Batch,
        done: &mut Flushed,
        out: &mut Vec<Output>,
    ) -> Result<(), SqlError> {
        if batch.inputs.is_empty() {
            return Ok(());
        }
        let inputs = std::mem::take(&mut batch.inputs);
        done.scored += inputs.len() as u64;
        let scored = self.attach(std::mem::take(&mut batch.listings), &inputs)?;
        for (p, mut listing) in scored {
            let Some(part) = self.parts.get_mut(&p) else {
                continue;
            };
            let hash = listing.content_hash();
            if part.state.published.get(&listing.listing_id) == Some(&hash) {
                self.metrics.published("suppressed");
                continue;
            }
            part.state
                .published
                .insert(listing.listing_id.clone(), hash);
            self.metrics.published("upsert");
            done.published += 1;
            *batch.changed.entry(p).or_default() += 1;
            out.push(Output::Listing {
                key: listing.listing_id.clone(),
                value: serde_json::to_vec(&listing).ok(),
                ended: None,
            });
        }
        Ok(())
    }

    /// Runs the score query over `inputs` and attaches each result to its listing (the query returns
    /// one row per input row, in order; [`Query::score`] checks it).
    fn attach(
        &self,
        batch: Vec<(i32, CanonicalListing)>,
        inputs: &[InputRow],
    ) -> Result<Vec<(i32, CanonicalListing)>, SqlError> {
        let outputs = self.query.score(inputs)?;
        let mut done = Vec::with_capacity(batch.len());
        for (((p, mut listing), input), o) in batch.into_iter().zip(inputs).zip(&outputs) {
            listing.score = Some(score::assemble(&listing, input, o, &self.cfg.score));
            done.push((p, listing));
        }
        Ok(done)
    }

    /// The canonical listings of a partition, built and scored in full now, in id order — for `state
    /// dump`, the evaluations and the equality checks. Reads the state only.
    pub fn canonical(&self, partition: i32) -> Result<Vec<CanonicalListing>, SqlError> {
        let Some(part) = self.parts.get(&partition) else {
            return Ok(Vec::new());
        };
        let version = version(part, self.brokers_next);
        let (mut batch, mut inputs) = (Vec::new(), Vec::new());
        for id in part.state.clusters.members.keys() {
            let Some(listing) = view(part, &self.brokers, id, version, self.cfg.merge_threshold)
            else {
                continue;
            };
            if let Some((input, _, _)) = input_for(part, &listing) {
                batch.push((partition, listing));
                inputs.push(input);
            }
        }
        Ok(self
            .attach(batch, &inputs)?
            .into_iter()
            .map(|(_, l)| l)
            .collect())
    }
}

/// Listings scored in one run of the score query at most. A full rescore (a reconcile after a replay,
/// `roomstream rescore --full`) scores and publishes a partition chunk by chunk, so its memory is
/// bounded by the chunk, not by the partition.
const SCORE_CHUNK: usize = 20_000;

/// Built listings waiting for the score query, with their `score_input` rows.
#[derive(Default)]
struct Batch {
    listings: Vec<(i32, CanonicalListing)>,
    inputs: Vec<InputRow>,
    /// Listings published per partition by this flush.
    changed: BTreeMap<i32, u64>,
}

impl Batch {
    /// Adds a built listing of partition `p` (one without a scoring row is not scored).
    fn add(&mut self, part: &mut Part, p: i32, listing: CanonicalListing) {
        if let Some((input, next, photos)) = input_for(part, &listing) {
            let id = &listing.listing_id;
            part.live.schedule(id, next);
            part.live.remember_photos(id, photos);
            self.listings.push((p, listing));
            self.inputs.push(input);
        }
    }
}

/// A listing that no longer exists leaves scoring, and gets a tombstone if it was published.
/// Returns the records produced (0 or 1).
fn end(part: &mut Part, id: String, clock: i64, metrics: &Metrics, out: &mut Vec<Output>) -> u64 {
    let region = part.live.remove(&id);
    if part.state.published.remove(&id).is_none() {
        return 0;
    }
    metrics.published("tombstone");
    out.push(Output::Listing {
        key: id,
        value: None,
        ended: Some(Ended { clock, region }),
    });
    1
}

/// A built listing's `score_input` row, when its age band next moves, and its photo reuse.
fn input_for(part: &Part, listing: &CanonicalListing) -> Option<(InputRow, Option<i64>, u32)> {
    let id = &listing.listing_id;
    let row = part.live.rows.get(id)?;
    let photos = part.live.photo_count(&row.members);
    let (input, next) = score::input_row(
        listing,
        row,
        part.live.fair.get(id).copied(),
        part.state.observed_until,
        photos,
    );
    Some((input, next, photos))
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

/// A record as read, for the DLQ.
#[derive(Clone, Copy)]
struct Input<'a> {
    at: Position<'a>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
}

impl Input<'_> {
    /// Sends the record to the DLQ with its provenance, and counts it.
    fn reject(
        &self,
        out: &mut Vec<Output>,
        metrics: &Metrics,
        stage: &str,
        reason: &str,
        error: String,
    ) {
        let Input { at, key, value } = *self;
        metrics.dlq(reason);
        let raw = value;
        let value = value.map_or(serde_json::Value::Null, |v| {
            serde_json::from_slice(v).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(v).into_owned())
            })
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
}
