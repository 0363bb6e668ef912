//! `roomstream eval dedup --truth FILE`: precision and recall of the merges against the simulator's
//! ground truth, beside the seed's exact-string rule (docs/platforms.md §7) on the same listings.
//!
//! Scored on the listings live in the final state: a *pair* is a Zigbang listing and a Dabang listing
//! (cross-platform pairs, the ones the seed failed on). Predicted pairs share a canonical listing; true
//! pairs share a `flat_id` in the truth file.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::path::Path;

use super::engine::PartitionState;
use super::model::{Floor, FloorBand, SourceKey, SourceListing};
use crate::topics::envelope::Platform;

/// Precision and recall of one method.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// Pairs the method predicted.
    pub predicted: u64,
    /// Pairs that are true.
    pub truth: u64,
    /// Predicted pairs that are true.
    pub correct: u64,
}

impl Score {
    /// correct / predicted (1 when nothing was predicted).
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            1.0
        } else {
            self.correct as f64 / self.predicted as f64
        }
    }

    /// correct / truth (1 when there is nothing to find).
    pub fn recall(&self) -> f64 {
        if self.truth == 0 {
            1.0
        } else {
            self.correct as f64 / self.truth as f64
        }
    }
}

/// roomstream's and the seed's scores.
#[derive(Debug, Clone, Copy)]
pub struct DedupEval {
    /// Live source listings scored.
    pub listings: u64,
    /// Of which in the truth file.
    pub known: u64,
    /// roomstream.
    pub roomstream: Score,
    /// The seed's rule.
    pub seed: Score,
}

/// Reads the truth file: source listing → flat id.
pub fn read_truth(path: &Path) -> std::io::Result<BTreeMap<SourceKey, String>> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut out = BTreeMap::new();
    for line in file.lines() {
        let v: serde_json::Value = serde_json::from_str(&line?).map_err(std::io::Error::other)?;
        let flat = v["flat_id"].as_str().unwrap_or_default().to_string();
        for l in v["listings"].as_array().into_iter().flatten() {
            let platform = match l["platform"].as_str() {
                Some("zigbang") => Platform::Zigbang,
                Some("dabang") => Platform::Dabang,
                _ => continue,
            };
            let id = l["source_listing_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            out.insert(SourceKey { platform, id }, flat.clone());
        }
    }
    Ok(out)
}

/// Scores the state's clustering and the seed's rule against the truth.
pub fn evaluate(
    states: &BTreeMap<i32, PartitionState>,
    truth: &BTreeMap<SourceKey, String>,
) -> DedupEval {
    let mut listings = 0;
    let mut known = 0;
    let mut by_cluster: BTreeMap<&str, Vec<&SourceKey>> = BTreeMap::new();
    let mut by_flat: BTreeMap<&str, Vec<&SourceKey>> = BTreeMap::new();
    let mut by_seed_key: BTreeMap<String, Vec<&SourceKey>> = BTreeMap::new();
    for state in states.values() {
        for (k, s) in state.sources.iter().filter(|(_, s)| s.alive) {
            listings += 1;
            if let Some(c) = state.clusters.of.get(k) {
                by_cluster.entry(c).or_default().push(k);
            }
            if let Some(f) = truth.get(k) {
                known += 1;
                by_flat.entry(f).or_default().push(k);
            }
            by_seed_key.entry(seed_key(&s.listing)).or_default().push(k);
        }
    }
    let truth_pairs = cross_pairs(by_flat.values());
    let ours = cross_pairs(by_cluster.values());
    let seed = cross_pairs(by_seed_key.values());
    let score = |p: &BTreeSet<(&SourceKey, &SourceKey)>| Score {
        predicted: p.len() as u64,
        truth: truth_pairs.len() as u64,
        correct: p.intersection(&truth_pairs).count() as u64,
    };
    DedupEval {
        listings,
        known,
        roomstream: score(&ours),
        seed: score(&seed),
    }
}

fn cross_pairs<'a, 'k>(
    groups: impl Iterator<Item = &'a Vec<&'k SourceKey>>,
) -> BTreeSet<(&'k SourceKey, &'k SourceKey)>
where
    'k: 'a,
{
    let mut out = BTreeSet::new();
    for g in groups {
        for z in g.iter().filter(|k| k.platform == Platform::Zigbang) {
            for d in g.iter().filter(|k| k.platform == Platform::Dabang) {
                out.insert((*z, *d));
            }
        }
    }
    out
}

/// The seed's dedup key, `PARTITION BY address, floor, deposit, rent, maintenance_fee` over the raw
/// strings each platform's crawler stored: Zigbang's `jibunAddress` (`마포구 성산동 593-3`) and floor
/// (`2`, `반지하`, `저`), the fee as a float; Dabang's `room/near` address (`서울특별시 마포구 성산동 …`), its
/// `roomDesc` floor (`2층`, `반지층`, `저층`) and the fee truncated to an integer.
pub fn seed_key(l: &SourceListing) -> String {
    let place = format!(
        "{} {} {}",
        l.gu.as_deref().unwrap_or(""),
        l.dong.as_deref().unwrap_or(""),
        l.lot.as_deref().unwrap_or("")
    );
    let band = |b: FloorBand| match b {
        FloorBand::Low => "저",
        FloorBand::Mid => "중",
        FloorBand::High => "고",
    };
    let (address, floor, fee) = match l.key.platform {
        Platform::Zigbang => {
            let floor = match l.floor {
                Floor::Level(n) => n.to_string(),
                Floor::SemiBasement => "반지하".into(),
                Floor::Rooftop => "옥탑방".into(),
                Floor::Band(b) => band(b).into(),
                Floor::Unknown => String::new(),
            };
            (
                place.trim().to_string(),
                floor,
                format!("{:?}", l.fee.unwrap_or(0.0)),
            )
        }
        Platform::Dabang => {
            let floor = match l.floor {
                Floor::Level(n) => format!("{n}층"),
                Floor::SemiBasement => "반지층".into(),
                Floor::Rooftop => "옥탑방".into(),
                Floor::Band(b) => format!("{}층", band(b)),
                Floor::Unknown => String::new(),
            };
            (
                format!("서울특별시 {}", place.trim()),
                floor,
                format!("{}", l.fee.unwrap_or(0.0).trunc() as i64),
            )
        }
    };
    format!("{address}|{floor}|{}|{}|{fee}", l.deposit, l.rent)
}
