//! `roomstream eval model` and `roomstream eval bait`: the fair-rent model's error on held-out
//! listings beside the per-구 median, and the bait warning's precision and recall against the
//! simulator's truth.
//!
//! **Split** (model): a listing is held out when the first byte of SHA-256 of its canonical id falls in
//! the held-out share — deterministic, independent of region, price and arrival order, and the same
//! listings on every run. Each partition's model is fitted on its training listings only (as in
//! production, where a partition's model sees its own regions), and the baseline is the median monthly
//! cost of the training listings of the same 구.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::features::{Row, model_features, monthly_cost};
use super::groups::Multiset;
use super::model::{Stats, predict};
use crate::process::model::SourceKey;
use crate::process::publish::CanonicalListing;
use crate::topics::envelope::Platform;

/// Mean absolute errors of the model and the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelEval {
    /// Training listings.
    pub train: usize,
    /// Held-out listings.
    pub held_out: usize,
    /// MAE of the fair-rent model, 만원 a month.
    pub model_mae: f64,
    /// MAE of the per-구 median.
    pub baseline_mae: f64,
    /// Median absolute percentage error of the model.
    pub model_mdape: f64,
    /// …of the baseline.
    pub baseline_mdape: f64,
}

fn held_out(id: &str, share: f64) -> bool {
    let d = Sha256::digest(id.as_bytes());
    f64::from(d[0]) < share * 256.0
}

/// Evaluates the model on the listings of each partition (`by_partition`), holding out `share`.
pub fn model(
    by_partition: &BTreeMap<i32, Vec<CanonicalListing>>,
    share: f64,
    rate: f64,
) -> ModelEval {
    let (mut errs_m, mut errs_b, mut pct_m, mut pct_b) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut train_n = 0;
    for listings in by_partition.values() {
        let mut stats = Stats::default();
        let mut gu: HashMap<&str, Multiset> = HashMap::new();
        let (train, test): (Vec<&CanonicalListing>, Vec<&CanonicalListing>) = listings
            .iter()
            .partition(|l| !held_out(&l.listing_id, share));
        train_n += train.len();
        for l in &train {
            let row = Row::of(l, 0, rate);
            stats.apply(&row.x, row.y, 1);
            gu.entry(l.region_code.as_str())
                .or_default()
                .insert(row.monthly_cost);
        }
        let coef = stats.fit();
        for l in test {
            let actual = monthly_cost(l.deposit, l.rent, l.fee, rate).max(1.0);
            let (Some(m), Some(b)) = (
                predict(&coef, &model_features(l)),
                gu.get(l.region_code.as_str()).and_then(Multiset::median),
            ) else {
                continue;
            };
            errs_m.push((m - actual).abs());
            errs_b.push((b - actual).abs());
            pct_m.push((m - actual).abs() / actual);
            pct_b.push((b - actual).abs() / actual);
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    ModelEval {
        train: train_n,
        held_out: errs_m.len(),
        model_mae: mean(&errs_m),
        baseline_mae: mean(&errs_b),
        model_mdape: median(&mut pct_m),
        baseline_mdape: median(&mut pct_b),
    }
}

/// Reads the truth file's bait flats: every source listing of a flat of kind `bait`, and every source
/// listing it knows.
pub fn read_bait_truth(path: &Path) -> std::io::Result<(BTreeSet<SourceKey>, BTreeSet<SourceKey>)> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let (mut bait, mut known) = (BTreeSet::new(), BTreeSet::new());
    for line in file.lines() {
        let v: serde_json::Value = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
        let is_bait = v["kind"].as_str() == Some("bait");
        for l in v["listings"].as_array().into_iter().flatten() {
            let platform = match l["platform"].as_str() {
                Some("zigbang") => Platform::Zigbang,
                Some("dabang") => Platform::Dabang,
                _ => continue,
            };
            let key = SourceKey {
                platform,
                id: l["source_listing_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            };
            if is_bait {
                bait.insert(key.clone());
            }
            known.insert(key);
        }
    }
    Ok((bait, known))
}

/// Precision and recall of the bait warning at one risk threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaitEval {
    /// Risk from which a listing is flagged.
    pub threshold: f64,
    /// Live canonical listings judged (those with a member in the truth file).
    pub listings: usize,
    /// Flagged (`predicted`), bait (`truth`: a member is a bait flat's listing), flagged and bait
    /// (`correct`).
    pub counts: crate::process::eval::Score,
}

/// The bait warning against the truth, at each threshold.
pub fn bait(
    listings: &[CanonicalListing],
    truth: &(BTreeSet<SourceKey>, BTreeSet<SourceKey>),
    thresholds: &[f64],
) -> Vec<BaitEval> {
    let judged: Vec<(bool, f64)> = listings
        .iter()
        .filter_map(|l| {
            let keys: Vec<SourceKey> = l
                .members
                .iter()
                .map(|m| SourceKey {
                    platform: m.platform,
                    id: m.source_listing_id.clone(),
                })
                .collect();
            if !keys.iter().any(|k| truth.1.contains(k)) {
                return None;
            }
            let risk = l.score.as_ref().map_or(0.0, |s| s.bait.risk);
            Some((keys.iter().any(|k| truth.0.contains(k)), risk))
        })
        .collect();
    thresholds
        .iter()
        .map(|&t| BaitEval {
            threshold: t,
            listings: judged.len(),
            counts: crate::process::eval::Score {
                predicted: judged.iter().filter(|j| j.1 >= t).count() as u64,
                truth: judged.iter().filter(|j| j.0).count() as u64,
                correct: judged.iter().filter(|j| j.0 && j.1 >= t).count() as u64,
            },
        })
        .collect()
}
