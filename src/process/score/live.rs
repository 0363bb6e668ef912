//! The live side of one partition's scoring: every listing's [`Row`], the exact group aggregates, the
//! fair-rent model's statistics, coefficients and each listing's fair cost, and the indexes that say
//! whom a change touches. All of it is a function of the partition's current listings (never of the
//! order they arrived in), so a restore rebuilds it and a replay, a restart or another instance count
//! ends in the same scores.
//!
//! At each micro-batch the model is refitted on the exact statistics, and every listing's fair cost is
//! **quantized** to a grid of step ε in ln units; only listings whose quantized fair cost moved are
//! rescored (near a grid line a listing may flip, but few are near one). The age-band index and the
//! photo index mark the listings whose freshness or photo evidence changed.
//!
//! Which listings a refit looks at — the drift clocks and deadlines — is [`drift`](super::drift).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::drift::{Watch, beta_max, budget, ticks_down, widen};

use super::features::{PHOTO_REUSE_CAP, Row};
use super::groups::Groups;
use super::model::{Stats, predict_with};
use super::{FairMap, Params};
use crate::process::model::SourceKey;
use crate::process::vecmap::VecSet;

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
    pub coef: BTreeMap<String, f64>,
    /// Canonical id → its fair monthly cost, quantized (absent before the first fit).
    pub fair: FairMap,
    /// Fits so far.
    pub fits: u64,
    /// Photo URL → every source listing (alive or gone) that showed it.
    photos: HashMap<String, VecSet<SourceKey>>,
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
    /// Listings whose fair cost the last fit re-evaluated (the whole partition on a full pass, only
    /// those past their deadline otherwise).
    pub rechecked: u64,
    /// Feature other than a level one → the largest |value| (summed, should a row name it twice) of
    /// any row placed since the last rebuild: the drift bound's `Xmax`.
    xmax: HashMap<String, f64>,
    /// Family of features other than level ones → the most features of it a row placed since the last
    /// rebuild has (1 for a one-hot family).
    family_max: HashMap<String, u32>,
    /// The drift clocks and the deadlines, while the model is fitted and ε > 0.
    watch: Option<Watch>,
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
        if add {
            widen(&mut self.xmax, &mut self.family_max, &row.x);
        }
        self.stats_changed = true;
    }

    /// Rebuilds from every live listing at once (a restore): the aggregates are bulk-loaded and
    /// sorted once, the model fitted and every fair cost computed (a full pass, restarting the
    /// deadlines).
    pub fn rebuild(&mut self, rows: Vec<(String, Row)>, params: &Params) {
        self.groups = Groups::build(
            rows.iter()
                .map(|(_, r)| (r.gu.as_str(), r.dong.as_str(), r.monthly_cost, r.cost_m2)),
        );
        self.stats = Stats::default();
        self.rows.clear();
        self.watch = None;
        self.xmax.clear();
        self.family_max.clear();
        for (id, row) in rows {
            self.stats.apply(&row.x, row.y, 1);
            widen(&mut self.xmax, &mut self.family_max, &row.x);
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

    /// Evaluates a listing exactly under the last fit, and gives it its deadline.
    fn set_fair(&mut self, id: &str, row: &Row, params: &Params) {
        if self.coef.is_empty() {
            self.fair.remove(id);
            if let Some(w) = &mut self.watch {
                w.unset(id);
            }
        } else {
            let coef = &self.coef;
            let v = predict_with(|name| coef.get(name).copied(), &row.x);
            self.fair
                .insert(id.to_string(), quantize(v, params.epsilon));
            match &mut self.watch {
                Some(w) if w.eps == params.epsilon => {
                    let b = budget(v, w.beta_max, &row.x, w.eps);
                    w.set(id, &row.x, b);
                }
                // Deadlines for another ε: the next refit makes the full pass.
                Some(_) => self.watch = None,
                None => {}
            }
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
        if let Some(w) = &mut self.watch {
            w.unset(id);
        }
        let old = self.rows.remove(id)?;
        self.place(&old, false);
        Some(old.gu)
    }

    /// Refits the model if its statistics changed since the last fit (once per micro-batch), and
    /// rescores every listing whose quantized fair cost moved. The fit depends only on the statistics,
    /// which depend only on the current listings; the listings looked at are those the drift clock
    /// says may have moved (module docs), or all of them.
    pub fn refit(&mut self, params: &Params) {
        if !self.stats_changed {
            return;
        }
        self.stats_changed = false;
        self.fits += 1;
        let old = std::mem::replace(&mut self.coef, self.stats.fit());
        let eps = params.epsilon;
        let incremental = match &mut self.watch {
            Some(w) if w.eps == eps && !old.is_empty() && !self.coef.is_empty() => {
                w.advance(&old, &self.coef, &self.xmax, &self.family_max)
            }
            _ => false,
        };
        if incremental {
            self.recheck_due(eps);
        } else {
            self.full_pass(eps);
        }
    }

    /// Re-evaluates the listings whose group's clock has passed their deadline (the clocks advanced).
    fn recheck_due(&mut self, eps: f64) {
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        w.beta_max = beta_max(&self.coef);
        // A hash lookup per feature, not an ordered-map search.
        let coef: HashMap<&str, f64> = self.coef.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut n = 0;
        for (g, group) in w.groups.iter_mut().enumerate() {
            while let Some((at, _)) = group.due.first() {
                if *at >= group.clock {
                    break;
                }
                let Some((_, id)) = group.due.pop_first() else {
                    break;
                };
                n += 1;
                let Some(row) = self.rows.get(&id) else {
                    w.due_at.remove(&id);
                    continue;
                };
                let v = predict_with(|name| coef.get(name).copied(), &row.x);
                let live = quantize(v, eps);
                // The new deadline is at or after the clock: not popped again in this fit.
                let at = group.clock + ticks_down(budget(v, w.beta_max, &row.x, eps));
                group.due.insert((at, id.clone()));
                w.due_at.insert(id.clone(), (g, at));
                if self.fair.get(&id).copied() != Some(live) {
                    self.fair.insert(id.clone(), live);
                    if self.to_score.insert(id) {
                        self.knock_on += 1;
                    }
                }
            }
        }
        self.rechecked = n;
    }

    /// Re-evaluates every listing, and restarts the clocks and deadlines when ε > 0 and the model is
    /// fitted.
    fn full_pass(&mut self, eps: f64) {
        let beta_max = beta_max(&self.coef);
        let mut watch = (!self.coef.is_empty() && eps > 0.0 && eps.is_finite())
            .then(|| Watch::new(eps, beta_max));
        // One pass over the partition: a hash lookup per feature, not an ordered-map search.
        let coef: HashMap<&str, f64> = self.coef.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let mut moved = Vec::new();
        for (id, row) in &self.rows {
            let live = (!coef.is_empty()).then(|| {
                let v = predict_with(|name| coef.get(name).copied(), &row.x);
                if let Some(w) = &mut watch {
                    w.set(id, &row.x, budget(v, beta_max, &row.x, eps));
                }
                quantize(v, eps)
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
        self.rechecked = self.rows.len() as u64;
        self.watch = watch;
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
    pub fn fresh_fair(&self, params: &Params) -> (BTreeMap<String, f64>, FairMap) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A listing in one of 4 구 and 48 동, with the features the model sees in production (flags,
    /// one-hot 구 and 동, log area and subway distance).
    fn random_row(rng: &mut ChaCha8Rng) -> Row {
        let gu = rng.random_range(0..4u32);
        let dong = rng.random_range(0..12u32);
        let area: f64 = rng.random_range(12.0..90.0);
        let ln_area = (area / 30.0).ln();
        let mut x: Vec<(String, f64)> = vec![("1".into(), 1.0)];
        let jeonse = rng.random_bool(0.3);
        if jeonse {
            x.push(("jeonse".into(), 1.0));
        }
        if rng.random_bool(0.2) {
            x.push(("floor:ground".into(), 1.0));
        }
        if rng.random_bool(0.1) {
            x.push(("fee:unknown".into(), 1.0));
        }
        x.push((format!("gu:{gu}"), 1.0));
        if jeonse {
            x.push((format!("jeonse:gu:{gu}"), 1.0));
        }
        x.push((format!("dong:{gu}-{dong}"), 1.0));
        x.push(("ln_area".into(), ln_area));
        let subway = if rng.random_bool(0.8) {
            let s = (f64::from(rng.random_range(50..2500u32)) / 500.0).ln();
            x.push(("ln_subway".into(), s));
            s
        } else {
            x.push(("subway:unknown".into(), 1.0));
            0.1
        };
        let y = 4.0
            + 0.6 * ln_area
            + 0.1 * f64::from(gu)
            + 0.02 * f64::from(dong)
            + if jeonse { -0.3 } else { 0.0 }
            - 0.05 * subway
            + rng.random_range(-0.3..0.3);
        let cost = y.exp();
        Row {
            gu: gu.to_string(),
            dong: format!("{gu}-{dong}"),
            monthly_cost: cost,
            cost_m2: Some(cost / area),
            x,
            y,
            fresh_since: 0,
            members: Vec::new(),
        }
    }

    fn params(epsilon: f64) -> Params {
        Params {
            epsilon,
            ..Params::default()
        }
    }

    /// Refits and checks the result against the full pass the refit replaces: the fair costs are a
    /// from-scratch fit's, and exactly the listings whose quantized fair cost moved were marked (with
    /// the knock-on count the full pass gives). Returns whether the refit took the incremental path.
    fn refit_and_check(live: &mut Live, p: &Params, when: &str) -> bool {
        let fair_before = live.fair.clone();
        let marked_before = live.to_score.clone();
        let knock_on_before = live.knock_on;
        let fits_before = live.fits;
        live.refit(p);
        let (coef, fresh) = live.fresh_fair(p);
        assert_eq!(live.coef, coef, "{when}: coefficients = a from-scratch fit");
        for (id, v) in &fresh {
            assert_eq!(
                live.fair.get(id).map(|f| f.to_bits()),
                Some(v.to_bits()),
                "{when}: listing {id}: fair cost = a from-scratch fit's, bit for bit"
            );
        }
        assert_eq!(
            live.fair, fresh,
            "{when}: fair costs = a from-scratch fit's"
        );
        if live.fits == fits_before {
            assert_eq!(live.to_score, marked_before, "{when}: no fit, no mark");
            return false;
        }
        let moved: BTreeSet<String> = live
            .rows
            .keys()
            .filter(|id| fresh.get(*id) != fair_before.get(*id))
            .cloned()
            .collect();
        let expected: BTreeSet<String> = marked_before.union(&moved).cloned().collect();
        assert_eq!(
            live.to_score, expected,
            "{when}: the marked listings = the ones marked before and those whose fair cost moved"
        );
        assert_eq!(
            live.knock_on,
            knock_on_before + moved.difference(&marked_before).count() as u64,
            "{when}: knock-on count"
        );
        (live.rechecked as usize) < live.rows.len()
    }

    /// Random upserts (new, changed, unchanged rows), removes and refits over a few hundred listings,
    /// with batches of a few to a few dozen changes, sometimes emptying the partition or switching ε:
    /// after every refit the fair costs and marks equal the full pass's.
    #[test]
    fn refits_equal_the_full_pass() {
        // (seed, ε, refits per 1000 operations)
        for (seed, eps, rate) in [
            (1u64, 0.05, 60),
            (2, 0.01, 300),
            (3, 0.2, 60),
            (4, 0.0, 150),
            (5, 0.05, 200),
            (6, 0.002, 300),
            (7, 0.05, 500),
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut live = Live::default();
            let mut p = params(eps);
            let mut next_id = 0u32;
            let (mut refits, mut incremental, mut incremental_moves) = (0, 0, 0);
            for step in 0..6000 {
                let when = format!("seed {seed}, ε {}, step {step}", p.epsilon);
                // Sorted: the picks depend on the seed only, not on the hash order.
                let mut ids: Vec<String> = live.rows.keys().cloned().collect();
                ids.sort_unstable();
                if rng.random_range(0..1000) < rate || ids.len() < 20 && rng.random_bool(0.5) {
                    // A batch ends: refit, and the engine takes the marks.
                    let fair = live.fair.clone();
                    if refit_and_check(&mut live, &p, &when) {
                        incremental += 1;
                        if live.fair != fair {
                            incremental_moves += 1;
                        }
                    }
                    refits += 1;
                    live.to_score.clear();
                    continue;
                }
                let roll = rng.random_range(0..1000u32);
                if roll < 2 {
                    // Everyone leaves (the model empties), then the partition refills.
                    for id in ids {
                        live.remove(&id);
                    }
                    refit_and_check(&mut live, &p, &when);
                } else if roll < 3 && seed == 5 {
                    // ε changes (the deadlines of the old one mean nothing).
                    p = params(if p.epsilon == 0.05 { 0.03 } else { 0.05 });
                } else if roll < 500 && live.rows.len() < 400 || ids.is_empty() {
                    let row = random_row(&mut rng);
                    live.upsert(&format!("L{next_id}"), row, &p);
                    next_id += 1;
                } else if roll < 800 {
                    let id = &ids[rng.random_range(0..ids.len())];
                    let row = if rng.random_bool(0.1) {
                        live.rows[id].clone()
                    } else {
                        random_row(&mut rng)
                    };
                    live.upsert(id, row, &p);
                } else {
                    let id = &ids[rng.random_range(0..ids.len())];
                    live.remove(id);
                }
            }
            eprintln!(
                "seed {seed}, ε {eps}: {incremental} of {refits} refits incremental, \
                 {incremental_moves} of them moving a fair cost"
            );
            if eps > 0.0 {
                assert!(
                    incremental_moves > 0,
                    "seed {seed}: no incremental refit moved a fair cost ({incremental} of \
                     {refits} incremental)"
                );
            } else {
                assert_eq!(incremental, 0, "ε = 0: every refit is the full pass");
            }
        }
    }

    /// A rebuild, then single changes in a large partition: each refit re-evaluates a small fraction
    /// of the listings and still equals the full pass.
    #[test]
    fn a_small_change_rechecks_few_listings() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let p = params(0.05);
        let n = 20_000;
        let rows: Vec<(String, Row)> = (0..n)
            .map(|i| (format!("L{i}"), random_row(&mut rng)))
            .collect();
        let mut live = Live::default();
        live.rebuild(rows, &p);
        assert_eq!(live.rechecked, n as u64, "a rebuild evaluates everyone");
        assert_eq!(live.fair, live.fresh_fair(&p).1);
        let mut total = 0;
        for round in 0..20 {
            let id = format!("L{}", rng.random_range(0..n));
            if round % 5 == 4 {
                live.remove(&id);
            } else {
                live.upsert(&id, random_row(&mut rng), &p);
            }
            assert!(
                refit_and_check(&mut live, &p, &format!("round {round}")),
                "round {round}: incremental"
            );
            assert!(
                live.rechecked < n as u64 / 20,
                "round {round}: {} of {n} listings re-evaluated for one change",
                live.rechecked
            );
            total += live.rechecked;
            live.to_score.clear();
        }
        eprintln!("{total} re-evaluations in 20 single-change refits of {n} listings");
        assert!(total < n as u64 / 2, "{total} re-evaluations in 20 refits");
    }

    /// Coefficients nudged by tiny steps, fit after fit: the drift piles up on the clocks until the
    /// listings it carries across a grid line are looked at again — each refit equals the full pass,
    /// while most refits look at few listings.
    #[test]
    fn tiny_drifts_across_grid_lines_are_caught() {
        let p = params(0.05);
        let mut live = Live::default();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let rows: Vec<(String, Row)> = (0..300)
            .map(|i| (format!("L{i}"), random_row(&mut rng)))
            .collect();
        live.rebuild(rows, &p);
        // One listing's target creeps by 10⁻³ each batch: the fit drifts by a few 10⁻⁶ a step, so
        // some listings cross a grid line eventually.
        let mut row = live.rows["L0"].clone();
        let (mut flips, mut rechecked) = (0, 0);
        for step in 0..400 {
            row.y += 1e-3;
            live.upsert("L0", row.clone(), &p);
            live.to_score.clear();
            let before = live.fair.clone();
            assert!(
                refit_and_check(&mut live, &p, &format!("step {step}")),
                "step {step}: incremental"
            );
            rechecked += live.rechecked;
            flips += live
                .fair
                .iter()
                .filter(|(id, v)| *id != "L0" && before.get(*id) != Some(*v))
                .count();
        }
        assert!(flips > 0, "the drift moved some listing across a grid line");
        assert!(
            rechecked < 400 * 300 / 10,
            "{rechecked} re-evaluations in 400 refits of 300 listings"
        );
    }
}
