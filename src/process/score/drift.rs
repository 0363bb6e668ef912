//! Drift clocks: which listings a refit of the fair-rent model must look at again ([`Live::refit`](super::live::Live::refit)).
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

/// The drift clocks and every listing's deadline (see the module docs): a refit re-evaluates the
/// listings whose group's clock has passed their deadline.
#[derive(Debug)]
pub(super) struct Watch {
    /// The ε the deadlines were computed for (they mean nothing for another).
    pub(super) eps: f64,
    /// The largest |β| of the current fit: `β_max·Σᵢ|xᵢ|` bounds a listing's `Σᵢ|βᵢxᵢ|`.
    pub(super) beta_max: f64,
    /// The listings, by their level features.
    pub(super) groups: Vec<Group>,
    pub(super) group_of: HashMap<Vec<(String, u64)>, usize>,
    /// Id → (its group, its deadline).
    pub(super) due_at: HashMap<String, (usize, u128)>,
}

/// The listings with the same level features and values (say the intercept, 구 A, 동 B, no 전세).
#[derive(Debug)]
pub(super) struct Group {
    /// Its level features, with their values' bits, sorted.
    pub(super) levels: Vec<(String, u64)>,
    /// How far its listings' `p` may have drifted, in ticks, rounded up (plus one tick a fit).
    pub(super) clock: u128,
    /// (deadline, id): the listing is looked at again once the group's clock is past its deadline.
    pub(super) due: BTreeSet<(u128, String)>,
}

/// Ticks of the drift clocks per ln unit (a tick is about 10⁻¹² ln units).
pub(super) const TICKS: f64 = (1u64 << 40) as f64;

/// Relative slack on the drift clocks and the budgets, for their own rounding.
pub(super) const REL_SLACK: f64 = 1e-9;

/// Whether a feature is a level feature: the intercept, the 전세 flag and the place effects — a 구,
/// a 구's 전세 level, a 법정동 (see [`model_features`](super::features::model_features)). They are
/// collinear (the 구 flags of a listing sum to the intercept, its 전세 levels to the 전세 flag), so a
/// fit moves them a lot and in opposite directions, while a listing feels only their sum. Only an
/// economy: any feature may be either kind.
pub(super) fn is_level(name: &str) -> bool {
    name == "1"
        || name == "jeonse"
        || name.starts_with("gu:")
        || name.starts_with("dong:")
        || name.starts_with("jeonse:gu:")
}

/// A feature's family: its name up to the last `:` (`floor:ground` → `floor`), else the name.
pub(super) fn family(name: &str) -> &str {
    name.rfind(':').map_or(name, |i| &name[..i])
}

impl Watch {
    pub(super) fn new(eps: f64, beta_max: f64) -> Watch {
        Watch {
            eps,
            beta_max,
            groups: Vec::new(),
            group_of: HashMap::new(),
            due_at: HashMap::new(),
        }
    }

    /// The group of a row's features (made on first use).
    pub(super) fn group(&mut self, x: &[(String, f64)]) -> usize {
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
    pub(super) fn set(&mut self, id: &str, x: &[(String, f64)], budget: f64) {
        self.unset(id);
        let g = self.group(x);
        let group = &mut self.groups[g];
        let at = group.clock + ticks_down(budget);
        group.due.insert((at, id.to_string()));
        self.due_at.insert(id.to_string(), (g, at));
    }

    pub(super) fn unset(&mut self, id: &str) {
        if let Some((g, at)) = self.due_at.remove(id) {
            self.groups[g].due.remove(&(at, id.to_string()));
        }
    }

    /// Advances the clocks by a fit from `old` to `new` coefficients. False when the drift of the other
    /// features is undefined or reaches ε/2: every listing is due, the full pass is the cheaper way.
    pub(super) fn advance(
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
pub(super) fn ticks_down(ln: f64) -> u128 {
    if ln > 0.0 {
        (ln * TICKS).floor() as u128
    } else {
        0
    }
}

/// Ln units → ticks, rounded up with the relative slack (a drift: never less than it is). `ln` is
/// finite, at most ε.
pub(super) fn ticks_up(ln: f64) -> u128 {
    (ln * (1.0 + REL_SLACK) * TICKS).ceil() as u128
}

/// How far, in ln units, a listing's `p` may still move (by the drift bound) before its cell can
/// change: its distance to the nearest edge of its cell, less the slack for floating point (module
/// docs). `v` is the prediction `exp(p)` as computed, `beta_max` the largest |β| of the fit. 0 when
/// `v` is not a normal positive number (an overflowed, underflowed or undefined prediction): such a
/// listing is looked at every fit.
pub(super) fn budget(v: f64, beta_max: f64, x: &[(String, f64)], eps: f64) -> f64 {
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
pub(super) fn beta_max(coef: &BTreeMap<String, f64>) -> f64 {
    coef.values().fold(0.0, |m, b| m.max(b.abs()))
}

/// Widens `xmax` and `family_max` to a row's features other than the level ones.
pub(super) fn widen(
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
