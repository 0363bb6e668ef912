//! The live side of one partition's scoring: every listing's [`Row`], the exact group aggregates, the
//! model's statistics and the indexes that say whom a change touches — all derived from the partition
//! state, so a restore rebuilds them — and the decisions that move the [`Refs`] (which *are* state,
//! checkpointed): a 구's median or a listing's fair cost in effect changes only when the live value has
//! moved more than ε from it, and then exactly the listings that use it are marked for rescoring.

use std::collections::{BTreeSet, HashMap};

use super::features::{PHOTO_REUSE_CAP, Row};
use super::groups::Groups;
use super::model::{Stats, predict};
use super::{Params, Refs};
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
    /// 시군구 → its listings (whom a move of the 구's median concerns).
    by_gu: HashMap<String, BTreeSet<String>>,
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
    /// Listings marked for rescoring without a change of their own — a reference they use moved,
    /// their photo evidence or their age band — for the write-amplification figure. (A listing that
    /// also changes itself before the flush still counts here.)
    pub knock_on: u64,
}

fn moved(live: Option<f64>, reference: Option<f64>, eps: f64) -> bool {
    match (live, reference) {
        (Some(l), Some(r)) if eps == 0.0 => l != r,
        (Some(l), Some(r)) => (l / r - 1.0).abs() > eps,
        (None, None) => false,
        _ => true,
    }
}

impl Live {
    fn mark_all(&mut self, ids: Option<&BTreeSet<String>>) {
        for id in ids.into_iter().flatten() {
            if self.to_score.insert(id.clone()) {
                self.knock_on += 1;
            }
        }
    }

    fn place(&mut self, id: &str, row: &Row, add: bool) {
        self.groups
            .apply(&row.gu, &row.dong, row.monthly_cost, row.cost_m2, add);
        self.stats.apply(&row.x, row.y, if add { 1 } else { -1 });
        let index = |map: &mut HashMap<String, BTreeSet<String>>, key: &str| {
            if key.is_empty() {
                return;
            }
            if add {
                map.entry(key.to_string())
                    .or_default()
                    .insert(id.to_string());
            } else if let Some(set) = map.get_mut(key) {
                set.remove(id);
                if set.is_empty() {
                    map.remove(key);
                }
            }
        };
        index(&mut self.by_gu, &row.gu);
    }

    /// Rebuilds from every live listing at once (a restore, a full recompute): the aggregates are
    /// bulk-loaded and sorted once. Replaces the rows, aggregates, statistics and group indexes.
    pub fn rebuild(&mut self, rows: Vec<(String, Row)>) {
        self.groups = Groups::build(
            rows.iter()
                .map(|(_, r)| (r.gu.as_str(), r.dong.as_str(), r.monthly_cost, r.cost_m2)),
        );
        self.stats = Stats::default();
        self.by_gu.clear();
        self.rows.clear();
        for (id, row) in rows {
            self.stats.apply(&row.x, row.y, 1);
            self.by_gu
                .entry(row.gu.clone())
                .or_default()
                .insert(id.clone());
            self.rows.insert(id, row);
        }
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

    /// A listing's new row (or its first); marks it, and moves the references it touches.
    pub fn upsert(&mut self, id: &str, row: Row, refs: &mut Refs, params: &Params) {
        self.to_score.insert(id.to_string());
        let old = self.rows.remove(id);
        if old.as_ref() == Some(&row) {
            self.rows.insert(id.to_string(), row);
            return;
        }
        let model_changed = old.as_ref().is_none_or(|o| o.x != row.x || o.y != row.y);
        let mut touched = vec![row.gu.clone()];
        if let Some(o) = &old {
            self.place(id, o, false);
            touched.push(o.gu.clone());
        }
        // Its fair cost under the coefficients of the last fit (the listing is rescored anyway).
        match predict(&refs.coef, &row.x) {
            Some(v) => refs.fair.insert(id.to_string(), v),
            None => refs.fair.remove(id),
        };
        self.place(id, &row, true);
        self.rows.insert(id.to_string(), row);
        if model_changed {
            refs.changes_since_fit += 1;
        }
        self.after_change(touched, refs, params);
    }

    /// A listing that ended.
    pub fn remove(&mut self, id: &str, refs: &mut Refs, params: &Params) {
        self.to_score.remove(id);
        if let Some(at) = self.due_at.remove(id) {
            self.due.remove(&(at, id.to_string()));
        }
        self.photo_scored.remove(id);
        refs.fair.remove(id);
        let Some(old) = self.rows.remove(id) else {
            return;
        };
        self.place(id, &old, false);
        refs.changes_since_fit += 1;
        self.after_change(vec![old.gu], refs, params);
    }

    fn after_change(&mut self, touched: Vec<String>, refs: &mut Refs, params: &Params) {
        for gu in touched {
            let live = self.groups.gu.get(&gu).and_then(|g| g.cost.median());
            if moved(live, refs.gu_cost.get(&gu).copied(), params.epsilon) {
                match live {
                    Some(v) => refs.gu_cost.insert(gu.clone(), v),
                    None => refs.gu_cost.remove(&gu),
                };
                let ids = self.by_gu.get(&gu).cloned();
                self.mark_all(ids.as_ref());
            }
        }
        self.maybe_refit(refs, params);
    }

    /// Refits the model once enough training rows changed (every change while the partition is
    /// small: at most an eighth of its listings); then each listing whose fair cost under the new
    /// coefficients is more than ε from the one in effect gets the new one and is rescored.
    fn maybe_refit(&mut self, refs: &mut Refs, params: &Params) {
        let n = self.stats.n.max(0) as u64;
        let every = params.refit_every.min(n / 8).max(1);
        if refs.changes_since_fit < every {
            return;
        }
        refs.changes_since_fit = 0;
        refs.fits += 1;
        refs.coef = self.stats.fit();
        let mut moved_ids = Vec::new();
        for (id, row) in &self.rows {
            let live = predict(&refs.coef, &row.x);
            if moved(live, refs.fair.get(id).copied(), params.epsilon) {
                moved_ids.push((id.clone(), live));
            }
        }
        for (id, live) in moved_ids {
            match live {
                Some(v) => refs.fair.insert(id.clone(), v),
                None => refs.fair.remove(&id),
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

    /// The live references, computed from scratch: what the references would be with ε = 0 and a fit
    /// at every change (the batch answer the property test compares against).
    pub fn fresh_refs(&self) -> Refs {
        let coef = self.stats.fit();
        Refs {
            gu_cost: self
                .groups
                .gu
                .iter()
                .filter_map(|(k, g)| g.cost.median().map(|m| (k.clone(), m)))
                .collect(),
            fair: self
                .rows
                .iter()
                .filter_map(|(id, r)| predict(&coef, &r.x).map(|v| (id.clone(), v)))
                .collect(),
            coef,
            ..Refs::default()
        }
    }
}
