//! The processing core: inputs in, `listings.v1` records and DLQ events out — no Kafka, no I/O.
//!
//! One [`PartitionState`] per owned partition of `observed.v1`/`sweeps.v1` (both keyed by region, so
//! partition p of each holds the same regions), and one global [`BrokerTable`]. Each input runs
//! normalize → detect → resolve → verify and then publishes the canonical listings it touched whose
//! content changed. While a partition is *catching up* (after a restore, or during a replay) nothing is
//! published; [`Engine::reconcile`] then publishes the difference between the state and what
//! `listings.v1` already holds.

use std::collections::BTreeMap;

use super::detect::{self, Change};
use super::fingerprint::{Envelope, digest_of, view_key};
use super::metrics::Metrics;
use super::model::SourceKey;
use super::normalize;
pub use super::partition::{Part, PartitionState, PendingSweep};
use super::partition::{publish_now, release, relink, version, view};
use super::publish::CanonicalListing;
use super::verify::BrokerTable;
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
                let released = release(part, &cfg, false, &self.metrics);
                if changed || released {
                    publish_now(
                        part,
                        &self.brokers,
                        self.brokers_next,
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
        let mut slot = part.state.sources.remove(&skey);
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
        publish_now(
            part,
            &self.brokers,
            self.brokers_next,
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
        let input = Input { at, key, value };
        let cfg = self.cfg.clone();
        let Some(part) = self.parts.get_mut(&at.partition) else {
            return;
        };
        part.state.sweeps_next = part.state.sweeps_next.max(at.offset + 1);
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
        publish_now(
            part,
            &self.brokers,
            self.brokers_next,
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
            publish_now(
                part,
                &self.brokers,
                self.brokers_next,
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
            publish_now(
                part,
                &self.brokers,
                self.brokers_next,
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
        publish_now(
            part,
            &self.brokers,
            self.brokers_next,
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
