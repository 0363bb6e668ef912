//! The live side of one partition's scoring: every listing's [`Row`], the exact group aggregates, the
//! model's statistics and the indexes that say whom a change touches — all derived from the partition
//! state, so a restore rebuilds them — and the decisions that move the [`Refs`] (which *are* state,
//! checkpointed): a group median or a model coefficient in effect changes only when the live value has
//! moved more than ε from it, and then exactly the listings that use it are marked for rescoring.

use std::collections::{BTreeSet, HashMap};

use super::features::{PHOTO_REUSE_CAP, Row};
use super::groups::Groups;
use super::model::Stats;
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
    by_gu: HashMap<String, BTreeSet<String>>,
    by_dong: HashMap<String, BTreeSet<String>>,
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
    /// Rows rescored because a group or model reference moved (not their own change), for the
    /// write-amplification figure.
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
        index(&mut self.by_dong, &row.dong);
    }

    /// Adds a listing while rebuilding (no references move, nothing is marked).
    pub fn rebuild_row(&mut self, id: String, row: Row) {
        self.place(&id, &row, true);
        self.rows.insert(id, row);
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
        self.by_dong.clear();
        self.rows.clear();
        for (id, row) in rows {
            self.stats.apply(&row.x, row.y, 1);
            self.by_gu
                .entry(row.gu.clone())
                .or_default()
                .insert(id.clone());
            if !row.dong.is_empty() {
                self.by_dong
                    .entry(row.dong.clone())
                    .or_default()
                    .insert(id.clone());
            }
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
        let mut touched: Vec<(String, String)> = vec![(row.gu.clone(), row.dong.clone())];
        if let Some(o) = &old {
            self.place(id, o, false);
            touched.push((o.gu.clone(), o.dong.clone()));
        }
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
        let Some(old) = self.rows.remove(id) else {
            return;
        };
        self.place(id, &old, false);
        refs.changes_since_fit += 1;
        self.after_change(vec![(old.gu, old.dong)], refs, params);
    }

    fn after_change(&mut self, touched: Vec<(String, String)>, refs: &mut Refs, params: &Params) {
        for (gu, dong) in touched {
            let live = self.groups.gu.get(&gu).and_then(|g| g.cost.median());
            if moved(live, refs.gu_cost.get(&gu).copied(), params.epsilon) {
                match live {
                    Some(v) => refs.gu_cost.insert(gu.clone(), v),
                    None => refs.gu_cost.remove(&gu),
                };
                let ids = self.by_gu.get(&gu).cloned();
                self.mark_all(ids.as_ref());
            }
            if dong.is_empty() {
                continue;
            }
            let live = self.groups.dong.get(&dong).and_then(|g| g.cost_m2.median());
            if moved(live, refs.dong_cost_m2.get(&dong).copied(), params.epsilon) {
                match live {
                    Some(v) => refs.dong_cost_m2.insert(dong.clone(), v),
                    None => refs.dong_cost_m2.remove(&dong),
                };
                let ids = self.by_dong.get(&dong).cloned();
                self.mark_all(ids.as_ref());
            }
        }
        self.maybe_refit(refs, params);
    }

    /// Refits the model once enough training rows changed (every change while the partition is
    /// small: at most an eighth of its listings), and moves the coefficients that drifted past ε.
    fn maybe_refit(&mut self, refs: &mut Refs, params: &Params) {
        let n = self.stats.n.max(0) as u64;
        let every = params.refit_every.min(n / 8).max(1);
        if refs.changes_since_fit < every {
            return;
        }
        refs.changes_since_fit = 0;
        refs.fits += 1;
        let fitted = self.stats.fit();
        let names: BTreeSet<String> = fitted.keys().chain(refs.coef.keys()).cloned().collect();
        let mut shared = false;
        for name in names {
            let (live, old) = (fitted.get(&name).copied(), refs.coef.get(&name).copied());
            let drift = match (live, old) {
                (Some(l), Some(o)) if params.epsilon == 0.0 => l != o,
                (Some(l), Some(o)) => (l - o).abs() > params.epsilon,
                (None, None) => false,
                _ => true,
            };
            if !drift {
                continue;
            }
            match live {
                Some(v) => refs.coef.insert(name.clone(), v),
                None => refs.coef.remove(&name),
            };
            if let Some(g) = name
                .strip_prefix("gu:")
                .or_else(|| name.strip_prefix("jeonse:gu:"))
            {
                let ids = self.by_gu.get(g).cloned();
                self.mark_all(ids.as_ref());
            } else if let Some(d) = name.strip_prefix("dong:") {
                let ids = self.by_dong.get(d).cloned();
                self.mark_all(ids.as_ref());
            } else {
                shared = true;
            }
        }
        if shared {
            let all: BTreeSet<String> = self.rows.keys().cloned().collect();
            self.mark_all(Some(&all));
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

    /// Photo reuse of a listing: other source listings sharing a member's photo, capped; remembered.
    pub fn photo_reuse(&mut self, id: &str, members: &[SourceKey]) -> u32 {
        let mut others: BTreeSet<&SourceKey> = BTreeSet::new();
        for m in members {
            if let Some(set) = self.image_of.get(m).and_then(|img| self.photos.get(img)) {
                others.extend(set.iter().filter(|k| !members.contains(k)));
                if others.len() >= PHOTO_REUSE_CAP as usize {
                    break;
                }
            }
        }
        let n = (others.len() as u32).min(PHOTO_REUSE_CAP);
        self.photo_scored.insert(id.to_string(), n);
        n
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
        Refs {
            gu_cost: self
                .groups
                .gu
                .iter()
                .filter_map(|(k, g)| g.cost.median().map(|m| (k.clone(), m)))
                .collect(),
            dong_cost_m2: self
                .groups
                .dong
                .iter()
                .filter_map(|(k, g)| g.cost_m2.median().map(|m| (k.clone(), m)))
                .collect(),
            coef: self.stats.fit(),
            ..Refs::default()
        }
    }
}

/// Group medians in a map, for explanations.
pub fn dong_median(refs: &Refs, dong: &str) -> Option<f64> {
    refs.dong_cost_m2.get(dong).copied()
}
