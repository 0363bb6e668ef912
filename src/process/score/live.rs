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
//! ## Which listings a refit looks at: drift clocks
//!
//! A refit must leave every listing's fair cost exactly as a pass over the whole partition would
//! (`quantize(predict(β, x), ε)` for the new coefficients β), but a small batch barely moves β, so
//! almost no listing changes cell, and looking at all of them costs the whole partition each flush.
//! Instead each listing carries a *deadline*, and a refit re-evaluates only the listings past theirs:
//!
//! - The prediction is `exp(p)` with `p = Σᵢ βᵢ·xᵢ` (ln units), and the cell is `round(p / ε)`. At its
//!   last exact evaluation, under coefficients β⁽ᵏ⁾, a listing's `p` lay a distance `m` (ln units)
//!   inside its cell: it keeps its cell as long as `p` moves by less than `m`.
//! - Under later coefficients β, `|p − p⁽ᵏ⁾| = |Σᵢ (βᵢ − βᵢ⁽ᵏ⁾)·xᵢ| ≤ Σ_fits Σᵢ |Δβᵢ|·|xᵢ|`, the sum
//!   over the listing's own features only. `|xᵢ| ≤ Xmaxᵢ`, the largest |xᵢ| of any row placed (it only
//!   grows, so it bounds every row evaluated before). A feature without a coefficient counts β = 0.
//! - **Place effects** (구, 전세 level of a 구, 법정동: one-hot, each on few listings, and what a batch
//!   moves most) each keep their own clock `Cⱼ += |Δβⱼ|·Xmaxⱼ` at every fit. The other features share
//!   a **global** clock `G += Σ_families min(Σᵢ tᵢ, k·maxᵢ tᵢ)` with `tᵢ = |Δβᵢ|·Xmaxᵢ`, summed per
//!   family (`floor:…`, `layout:…`) of which a row has at most `k` features (1 for a one-hot family).
//! - The listings are grouped by their set of place effects; a group's clock is `G + Σ_its places Cⱼ`,
//!   which only grows and bounds how far any of its listings' `p` moved since a given time. A listing
//!   evaluated when its group's clock read `K` gets the deadline `K + m`: until the clock passes it,
//!   its cell provably has not moved, and its stored fair cost is bit for bit what a full pass would
//!   compute (same cell, same `exp(k·ε)`). A refit pops, group by group, the listings past their
//!   deadline, re-evaluates them exactly (marking those whose fair cost moved) and gives them a new one.
//! - Floating point: the computed `p`, `ln` and `/ε` err by far less than `10⁻¹²·(Σᵢ|βᵢxᵢ| + 1)`; the
//!   budget `m` is shrunk by that (for the evaluation now and the one at the deadline, whose Σ|βx| is
//!   at most today's plus the drift), by 10⁻⁹, and by a relative 10⁻⁹; the clocks count integer ticks
//!   of 2⁻⁴⁰ ln units with each fit's advance rounded **up** (plus one global tick a fit) and each
//!   budget rounded **down**. Every rounding makes a listing come due earlier, never later. A listing
//!   whose prediction is not a normal positive number gets no budget and is looked at every fit.
//!
//! Nothing here depends on history but the work: which listings are looked at varies, the fair costs
//! never. When the model is first fitted or empties, when ε is 0 (exact: every listing moves with the
//! fit) or changes, and when one fit's global drift reaches ε/2 (past every budget), the refit makes
//! the full pass and restarts the clocks; a rebuild too.

use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    pub coef: BTreeMap<String, f64>,
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

/// The drift clocks and every listing's deadline (see the module docs): a refit re-evaluates the
/// listings whose group's clock has passed their deadline.
#[derive(Debug)]
struct Watch {
    /// The ε the deadlines were computed for (they mean nothing for another).
    eps: f64,
    /// The largest |β| of the current fit: `β_max·Σᵢ|xᵢ|` bounds a listing's `Σᵢ|βᵢxᵢ|`.
    beta_max: f64,
    /// The listings, by their level features.
    groups: Vec<Group>,
    group_of: HashMap<Vec<(String, u64)>, usize>,
    /// Id → (its group, its deadline).
    due_at: HashMap<String, (usize, u128)>,
}

/// The listings with the same level features and values (say the intercept, 구 A, 동 B, no 전세).
#[derive(Debug)]
struct Group {
    /// Its level features, with their values' bits, sorted.
    levels: Vec<(String, u64)>,
    /// How far its listings' `p` may have drifted, in ticks, rounded up (plus one tick a fit).
    clock: u128,
    /// (deadline, id): the listing is looked at again once the group's clock is past its deadline.
    due: BTreeSet<(u128, String)>,
}

/// Ticks of the drift clocks per ln unit (a tick is about 10⁻¹² ln units).
const TICKS: f64 = (1u64 << 40) as f64;

/// Relative slack on the drift clocks and the budgets, for their own rounding.
const REL_SLACK: f64 = 1e-9;

/// Whether a feature is a level feature: the intercept, the 전세 flag and the place effects — a 구,
/// a 구's 전세 level, a 법정동 (see [`model_features`](super::features::model_features)). They are
/// collinear (the 구 flags of a listing sum to the intercept, its 전세 levels to the 전세 flag), so a
/// fit moves them a lot and in opposite directions, while a listing feels only their sum. Only an
/// economy: any feature may be either kind.
fn is_level(name: &str) -> bool {
    name == "1"
        || name == "jeonse"
        || name.starts_with("gu:")
        || name.starts_with("dong:")
        || name.starts_with("jeonse:gu:")
}

/// A feature's family: its name up to the last `:` (`floor:ground` → `floor`), else the name.
fn family(name: &str) -> &str {
    name.rfind(':').map_or(name, |i| &name[..i])
}

impl Watch {
    fn new(eps: f64, beta_max: f64) -> Watch {
        Watch {
            eps,
            beta_max,
            groups: Vec::new(),
            group_of: HashMap::new(),
            due_at: HashMap::new(),
        }
    }

    /// The group of a row's features (made on first use).
    fn group(&mut self, x: &[(String, f64)]) -> usize {
        let mut levels: Vec<(String, u64)> = x
            .iter()
            .filter(|(n, _)| is_level(n))
            .map(|(n, v)| (n.clone(), v.to_bits()))
            .collect();
        levels.sort_unstable();
        if let Some(&g) = self.group_of.get(&levels) {
            return g;
        }
        let g = self.groups.len();
        self.groups.push(Group {
            levels: levels.clone(),
            clock: 0,
            due: BTreeSet::new(),
        });
        self.group_of.insert(levels, g);
        g
    }

    /// A listing just evaluated exactly, with `budget` ln units before it can change cell.
    fn set(&mut self, id: &str, x: &[(String, f64)], budget: f64) {
        self.unset(id);
        let g = self.group(x);
        let group = &mut self.groups[g];
        let at = group.clock + ticks_down(budget);
        group.due.insert((at, id.to_string()));
        self.due_at.insert(id.to_string(), (g, at));
    }

    fn unset(&mut self, id: &str) {
        if let Some((g, at)) = self.due_at.remove(id) {
            self.groups[g].due.remove(&(at, id.to_string()));
        }
    }

    /// Advances the clocks by a fit from `old` to `new` coefficients. False when the drift of the other
    /// features is undefined or reaches ε/2: every listing is due, the full pass is the cheaper way.
    fn advance(
        &mut self,
        old: &BTreeMap<String, f64>,
        new: &BTreeMap<String, f64>,
        xmax: &HashMap<String, f64>,
        family_max: &HashMap<String, u32>,
    ) -> bool {
        // Δβ of the level features; per family of the others, Σ and max of |Δβᵢ|·Xmaxᵢ.
        let mut levels: HashMap<&str, f64> = HashMap::new();
        let mut families: HashMap<&str, (f64, f64)> = HashMap::new();
        let changed = new
            .iter()
            .map(|(n, &b)| (n, old.get(n).copied().unwrap_or(0.0), b))
            .chain(
                old.iter()
                    .filter(|(n, _)| !new.contains_key(*n))
                    .map(|(n, &a)| (n, a, 0.0)),
            )
            // An unchanged coefficient moves no prediction (and 0·∞ must not be NaN).
            .filter(|(_, a, b)| a != b);
        for (name, a, b) in changed {
            if is_level(name) {
                levels.insert(name, b - a);
                continue;
            }
            let t = (b - a).abs() * xmax.get(name).copied().unwrap_or(0.0);
            if t.is_nan() {
                return false;
            }
            let f = families.entry(family(name)).or_insert((0.0, 0.0));
            f.0 += t;
            f.1 = f.1.max(t);
        }
        // A row has at most k features of a family, so they moved it by at most k·max.
        let others: f64 = families
            .iter()
            .map(|(f, (sum, max))| {
                let k = family_max.get(*f).copied().unwrap_or(1);
                sum.min(f64::from(k) * max)
            })
            .sum();
        if !(others < self.eps / 2.0) {
            return false;
        }
        let base = ticks_up(others) + 1;
        for g in &mut self.groups {
            // Every listing of the group has exactly these level values: its `p` moved by exactly
            // Σ Δβⱼ·vⱼ from them — up to rounding, far below 10⁻¹² of Σ|Δβⱼ·vⱼ|.
            let (mut sum, mut abs) = (0.0f64, 0.0f64);
            for (name, bits) in &g.levels {
                if let Some(d) = levels.get(name.as_str()) {
                    let t = d * f64::from_bits(*bits);
                    sum += t;
                    abs += t.abs();
                }
            }
            let d = sum.abs() + 1e-12 * abs;
            // Past ε/2 every listing of the group is due anyway (so NaN and ∞ count as ε).
            let d = if d < self.eps { d } else { self.eps };
            g.clock += base + ticks_up(d);
        }
        true
    }
}

/// Ln units → ticks, rounded down (a budget: never more than it is).
fn ticks_down(ln: f64) -> u128 {
    if ln > 0.0 {
        (ln * TICKS).floor() as u128
    } else {
        0
    }
}

/// Ln units → ticks, rounded up with the relative slack (a drift: never less than it is). `ln` is
/// finite, at most ε.
fn ticks_up(ln: f64) -> u128 {
    (ln * (1.0 + REL_SLACK) * TICKS).ceil() as u128
}

/// How far, in ln units, a listing's `p` may still move (by the drift bound) before its cell can
/// change: its distance to the nearest edge of its cell, less the slack for floating point (module
/// docs). `v` is the prediction `exp(p)` as computed, `beta_max` the largest |β| of the fit. 0 when
/// `v` is not a normal positive number (an overflowed, underflowed or undefined prediction): such a
/// listing is looked at every fit.
fn budget(v: f64, beta_max: f64, x: &[(String, f64)], eps: f64) -> f64 {
    if !(f64::MIN_POSITIVE..f64::INFINITY).contains(&v) {
        return 0.0;
    }
    // Exactly the cell `quantize` takes.
    let r = v.ln() / eps;
    let m = (0.5 - (r - r.round()).abs()) * eps;
    // Rounding of a sum of n products, of exp, ln and the division: far below c·(Σ|βx| + 1).
    let c = 1e-15 * (x.len() as f64 + 1000.0);
    if 2.0 * c > REL_SLACK {
        return 0.0;
    }
    // Σ|βᵢxᵢ| now is at most s; at the next evaluation at most s plus the drift, whose share of the
    // error, 2c·drift, the relative slack covers.
    let s = beta_max * x.iter().map(|(_, v)| v.abs()).sum::<f64>();
    let b = (m - c * (4.0 * s + 2.0) - 1e-9) * (1.0 - REL_SLACK);
    if b > 0.0 { b } else { 0.0 }
}

/// The largest |β| of a fit.
fn beta_max(coef: &BTreeMap<String, f64>) -> f64 {
    coef.values().fold(0.0, |m, b| m.max(b.abs()))
}

/// Widens `xmax` and `family_max` to a row's features other than the level ones.
fn widen(
    xmax: &mut HashMap<String, f64>,
    family_max: &mut HashMap<String, u32>,
    x: &[(String, f64)],
) {
    for (a, (name, _)) in x.iter().enumerate() {
        if is_level(name) {
            continue;
        }
        // With the later entries of the same name (a feature named twice adds up in a prediction).
        let total: f64 = x[a..]
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.abs())
            .sum();
        match xmax.get_mut(name.as_str()) {
            Some(m) => {
                if total > *m {
                    *m = total;
                }
            }
            None => {
                xmax.insert(name.clone(), total);
            }
        }
        let f = family(name);
        let k = x
            .iter()
            .filter(|(n, _)| !is_level(n) && family(n) == f)
            .count() as u32;
        match family_max.get_mut(f) {
            Some(m) => *m = (*m).max(k),
            None => {
                family_max.insert(f.to_string(), k);
            }
        }
    }
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
