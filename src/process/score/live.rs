//! The live side of one partition's scoring: every listing's [`Row`], the exact group aggregates, the
//! fair-rent model's statistics, coefficients and each listing's fair cost, and the indexes that say
//! whom a change touches. All of it is a function of the partition's current listings (never of the
//! order they arrived in), so a restore rebuilds it and a replay, a restart or another instance count
//! ends in the same scores.
//!
//! At each micro-batch the model is refitted on the exact statistics and every listing's fair cost is
//! recomputed and **quantized** to a grid of step ε in ln units; only listings whose quantized fair
//! cost moved are rescored (near a grid line a listing may flip, but few are near one). The age-band
//! index and the photo index mark the listings whose freshness or photo evidence changed.

use std::collections::{BTreeSet, HashMap};

use super::features::{PHOTO_REUSE_CAP, Row};
use super::groups::Groups;
use super::model::{Stats, predict_with};
use super::{FairMap, Params};
use crate::process::model::SourceKey;

/// Derived scoring state of one partition.
#[derive(Debug, Default)]
pub struct Live {
    /// Every live canonical listing's row.
    pub rows: HashMap<String, Row>,
    /// Exact aggregates.
    pub groups: Groups,
    /// The model's sufficient statistics.
    pub stats: Stats,
    /// Whether the statistics changed since the last fit.
    stats_changed: bool,
    /// The model's coefficients from its last fit, by feature.
    pub coef: std::collections::BTreeMap<String, f64>,
    /// Canonical id → its fair monthly cost, quantized (absent before the first fit).
    pub fair: FairMap,
    /// Fits so far.
    pub fits: u64,
    /// Photo URL → every source listing (alive or gone) that showed it.
    photos: HashMap<String, BTreeSet<SourceKey>>,
    image_of: HashMap<SourceKey, String>,
    /// Photo reuse last scored per listing.
    photo_scored: HashMap<String, u32>,
    /// (time its age band moves, id).
    due: BTreeSet<(i64, String)>,
    due_at: HashMap<String, i64>,
    /// Listings to score at the next flush.
    pub to_score: BTreeSet<String>,
    /// Listings marked for rescoring without a change of their own — their fair cost, photo evidence
    /// or age band moved — for the write-amplification figure. (A listing that also changes itself
    /// before the flush still counts here.)
    pub knock_on: u64,
}

/// A fair cost on the grid of step `eps` in ln units (unchanged with `eps` = 0).
pub fn quantize(v: f64, eps: f64) -> f64 {
    if eps > 0.0 {
        ((v.ln() / eps).round() * eps).exp()
    } else {
        v
    }
}

impl Live {
    fn place(&mut self, row: &Row, add: bool) {
        self.groups
            .apply(&row.gu, &row.dong, row.monthly_cost, row.cost_m2, add);
        self.stats.apply(&row.x, row.y, if add { 1 } else { -1 });
        self.stats_changed = true;
    }

    /// Rebuilds from every live listing at once (a restore): the aggregates are bulk-loaded and
    /// sorted once, the model fitted and every fair cost computed.
    pub fn rebuild(&mut self, rows: Vec<(String, Row)>, params: &Params) {
        self.groups = Groups::build(
            rows.iter()
                .map(|(_, r)| (r.gu.as_str(), r.dong.as_str(), r.monthly_cost, r.cost_m2)),
        );
        self.stats = Stats::default();
        self.rows.clear();
        for (id, row) in rows {
            self.stats.apply(&row.x, row.y, 1);
            self.rows.insert(id, row);
        }
        self.stats_changed = true;
        self.refit(params);
        self.to_score.clear();
        self.knock_on = 0;
    }

    /// Records a source listing's photo while rebuilding.
    pub fn rebuild_photo(&mut self, key: &SourceKey, image: Option<&str>) {
        if let Some(img) = image {
            self.photos
                .entry(img.to_string())
                .or_default()
                .insert(key.clone());
            self.image_of.insert(key.clone(), img.to_string());
        }
    }

    /// A listing's new row (or its first): marks it and gives it its fair cost under the last fit.
    pub fn upsert(&mut self, id: &str, row: Row, params: &Params) {
        self.to_score.insert(id.to_string());
        let old = self.rows.remove(id);
        if old.as_ref() == Some(&row) {
            self.rows.insert(id.to_string(), row);
            return;
        }
        if let Some(o) = &old {
            self.place(o, false);
        }
        self.place(&row, true);
        self.set_fair(id, &row, params);
        self.rows.insert(id.to_string(), row);
    }

    fn set_fair(&mut self, id: &str, row: &Row, params: &Params) {
        if self.coef.is_empty() {
            self.fair.remove(id);
        } else {
            let coef = &self.coef;
            let v = predict_with(|name| coef.get(name).copied(), &row.x);
            self.fair
                .insert(id.to_string(), quantize(v, params.epsilon));
        }
    }

    /// A listing that ended.
    /// Forgets a listing; returns its 시군구 code if it had a row.
    pub fn remove(&mut self, id: &str) -> Option<String> {
        self.to_score.remove(id);
        if let Some(at) = self.due_at.remove(id) {
            self.due.remove(&(at, id.to_string()));
        }
        self.photo_scored.remove(id);
        self.fair.remove(id);
        let old = self.rows.remove(id)?;
        self.place(&old, false);
        Some(old.gu)
    }

    /// Refits the model if its statistics changed since the last fit (once per micro-batch), and
    /// rescores every listing whose quantized fair cost moved. The fit depends only on the statistics,
    /// which depend only on the current listings.
    pub fn refit(&mut self, params: &Params) {
        if !self.stats_changed {
            return;
        }
        self.stats_changed = false;
        self.fits += 1;
        self.coef = self.stats.fit();
        // One pass over the partition: a hash lookup per feature, not an ordered-map search.
        let coef: HashMap<&str, f64> = self.coef.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut moved = Vec::new();
        for (id, row) in &self.rows {
            let live = (!coef.is_empty()).then(|| {
                quantize(
                    predict_with(|name| coef.get(name).copied(), &row.x),
                    params.epsilon,
                )
            });
            if live != self.fair.get(id).copied() {
                moved.push((id.clone(), live));
            }
        }
        for (id, live) in moved {
            match live {
                Some(v) => self.fair.insert(id.clone(), v),
                None => self.fair.remove(&id),
            };
            if self.to_score.insert(id) {
                self.knock_on += 1;
            }
        }
    }

    /// A source listing was (re)seen, changed or removed: keeps the photo index and marks the listings
    /// whose photo evidence it changes. `listing_of` maps a live source listing to its canonical id.
    pub fn photo(
        &mut self,
        key: &SourceKey,
        image: Option<&str>,
        listing_of: &dyn Fn(&SourceKey) -> Option<String>,
    ) {
        let old = self.image_of.get(key).cloned();
        if old.as_deref() == image {
            return;
        }
        let mut affected: Vec<(SourceKey, bool)> = Vec::new();
        if let Some(old) = old {
            if let Some(set) = self.photos.get_mut(&old) {
                set.remove(key);
                affected.extend(set.iter().map(|k| (k.clone(), true)));
                if set.is_empty() {
                    self.photos.remove(&old);
                }
            }
            self.image_of.remove(key);
        }
        if let Some(img) = image {
            let set = self.photos.entry(img.to_string()).or_default();
            affected.extend(set.iter().map(|k| (k.clone(), false)));
            set.insert(key.clone());
            self.image_of.insert(key.clone(), img.to_string());
        }
        for (k, fewer) in affected {
            let Some(id) = listing_of(&k) else { continue };
            let capped = self.photo_scored.get(&id).copied().unwrap_or(0) >= PHOTO_REUSE_CAP;
            if (fewer || !capped) && self.to_score.insert(id) {
                self.knock_on += 1;
            }
        }
    }

    /// Photo reuse of a listing: other source listings (alive or gone) sharing a member's photo, capped.
    pub fn photo_count(&self, members: &[SourceKey]) -> u32 {
        let mut others: BTreeSet<&SourceKey> = BTreeSet::new();
        for m in members {
            if let Some(set) = self.image_of.get(m).and_then(|img| self.photos.get(img)) {
                others.extend(set.iter().filter(|k| !members.contains(k)));
                if others.len() >= PHOTO_REUSE_CAP as usize {
                    break;
                }
            }
        }
        (others.len() as u32).min(PHOTO_REUSE_CAP)
    }

    /// Remembers the photo reuse a listing was scored with (a listing at the cap need not be marked
    /// when one more source listing shows its photo).
    pub fn remember_photos(&mut self, id: &str, n: u32) {
        self.photo_scored.insert(id.to_string(), n);
    }

    /// Sets when a listing's age band next moves.
    pub fn schedule(&mut self, id: &str, at: Option<i64>) {
        if let Some(old) = self.due_at.remove(id) {
            self.due.remove(&(old, id.to_string()));
        }
        if let Some(at) = at {
            self.due.insert((at, id.to_string()));
            self.due_at.insert(id.to_string(), at);
        }
    }

    /// Marks the listings whose age band has moved by `now`.
    pub fn advance(&mut self, now: i64) {
        while let Some((at, _)) = self.due.first() {
            if *at > now {
                break;
            }
            let Some((_, id)) = self.due.pop_first() else {
                break;
            };
            self.due_at.remove(&id);
            if self.to_score.insert(id) {
                self.knock_on += 1;
            }
        }
    }

    /// The coefficients and fair costs computed from scratch from the rows (the batch answer the
    /// property test compares against).
    pub fn fresh_fair(
        &self,
        params: &Params,
    ) -> (std::collections::BTreeMap<String, f64>, FairMap) {
        let mut stats = Stats::default();
        for row in self.rows.values() {
            stats.apply(&row.x, row.y, 1);
        }
        let coef = stats.fit();
        let fair = if coef.is_empty() {
            FairMap::default()
        } else {
            self.rows
                .iter()
                .map(|(id, r)| {
                    let v = predict_with(|name| coef.get(name).copied(), &r.x);
                    (id.clone(), quantize(v, params.epsilon))
                })
                .collect()
        };
        (coef, fair)
    }
}
