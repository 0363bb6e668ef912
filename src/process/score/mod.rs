//! score: every canonical listing's components (0–100), weighted total, bait risk and a readable
//! explanation — kept current as listings change, and equal to a full recompute.
//!
//! The score is defined once, in `queries/score.sql`, and run by DataFusion ([`sql`]) on two schedules
//! over the same columns ([`features`]):
//! - **incrementally**: each micro-batch scores only the listings whose inputs changed — their own
//!   fields, their fair cost under the fair-rent model ([`model`]) refitted for the batch, their photo
//!   evidence or their age band ([`live`]);
//! - **in full**: over every listing of the state — `roomstream rescore --full` and every restore
//!   publish only what changed; `state dump` and the evaluations read it.
//!
//! Every input of the SQL is a function of the partition's current listings: the model is fitted on
//! exact statistics ([`model`]) and a fair cost is quantized to a grid of step `epsilon`, so it moves
//! only when the fit moves it across a grid line, and every listing whose input moved is rescored in
//! the same micro-batch. So after every flush each listing's published score is exactly what a full
//! recompute from scratch gives (the property test checks it), and because nothing depends on the order
//! inputs arrived in, replays, restarts and instance counts end in the same scores (DESIGN invariant 1).
//! Group aggregates ([`groups`]) are kept exact for the API and analytics; no score depends on them.

pub mod drift;
pub mod eval;
pub mod features;
pub mod groups;
pub mod live;
pub mod model;
pub mod recommend;
pub mod sql;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use self::features::{Row, age_band, floor_columns};
use self::sql::{InputRow, OutputRow};
use crate::process::publish::CanonicalListing;

/// Tunables of scoring (`[score]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Yearly opportunity cost of the deposit (0.05 = 5 %/year, the seed's).
    pub deposit_rate: f64,
    /// Grid step, in ln units, of the fair costs scores use (0.05 ≈ 5 %): a refit moves a listing's
    /// fair cost, and rescores it, only across a grid line. 0 = exact.
    pub epsilon: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            deposit_rate: 0.05,
            epsilon: 0.05,
        }
    }
}

/// Canonical id → fair monthly cost, with the processor's fixed hasher.
pub type FairMap = std::collections::HashMap<
    String,
    f64,
    std::hash::BuildHasherDefault<crate::process::fingerprint::FixedHasher>,
>;

/// Components, 0–100; `None` = unknown (and said so in the explanation), never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Components {
    /// Monthly cost (50 at 60만원, 100 at half, 0 at twice).
    pub cost: f64,
    /// Fair-rent model's cost minus the asking cost.
    pub value: Option<f64>,
    /// Subway and convenience-store distances.
    pub facilities: Option<f64>,
    /// Floor.
    pub floor: Option<f64>,
    /// Direction.
    pub direction: Option<f64>,
    /// Verified broker.
    pub broker: Option<f64>,
    /// Days since posted or changed.
    pub freshness: f64,
}

/// 허위매물 의심: a warning with its evidence, never a filter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bait {
    /// 0–100.
    pub risk: f64,
    /// Shown as a warning from 50 on.
    pub warning: bool,
    /// What the stream saw, in words.
    pub evidence: Vec<String>,
}

/// The figures behind the components.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// 만원 a month: deposit × rate / 12 + rent + 관리비.
    pub monthly_cost: f64,
    /// The yearly rate used for the deposit.
    pub deposit_rate: f64,
    /// The fair-rent model's monthly cost for this listing.
    pub fair_cost: Option<f64>,
    /// This listing's monthly cost per m².
    pub cost_m2: Option<f64>,
    /// Distances used, metres.
    pub facilities: BTreeMap<String, u32>,
    /// The age band: days since posted or last changed.
    pub age: String,
    /// Components that are unknown, and why.
    pub unknown: Vec<String>,
}

/// A listing's score, kept with it in `listings.v1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Weighted total of the known components, 0–100.
    pub total: f64,
    /// The components.
    pub components: Components,
    /// Bait risk.
    pub bait: Bait,
    /// Why.
    pub explanation: Explanation,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The `score_input` row of a listing, and when its age band next moves.
pub fn input_row(
    l: &CanonicalListing,
    row: &Row,
    fair: Option<f64>,
    now: i64,
    photo_reuse: u32,
) -> (InputRow, Option<i64>) {
    let (floor_kind, floor_level) = floor_columns(l.floor);
    let (band, next) = age_band(row.fresh_since, now);
    let input = InputRow {
        listing_id: l.listing_id.clone(),
        gu: row.gu.clone(),
        dong: row.dong.clone(),
        monthly_cost: row.monthly_cost,
        cost_m2: row.cost_m2,
        fair_cost: fair,
        floor_kind,
        floor_level,
        direction: l.direction.clone(),
        subway_m: l
            .facilities
            .get("subway")
            .map(|m| (*m).min(i32::MAX as u32) as i32),
        store_m: l
            .facilities
            .get("convenience_store")
            .map(|m| (*m).min(i32::MAX as u32) as i32),
        broker_status: l.broker.status.clone(),
        age_band: band,
        photo_reuse: photo_reuse as i32,
    };
    (input, next)
}

/// Builds the score of a listing from the query's output row.
pub fn assemble(l: &CanonicalListing, input: &InputRow, out: &OutputRow, params: &Params) -> Score {
    let c = &out.components;
    let mut unknown = Vec::new();
    if c.value.is_none() {
        unknown.push("value: the fair-rent model of this partition is not fitted yet".to_string());
    }
    if c.facilities.is_none() {
        unknown
            .push("facilities: the listing carries no subway or convenience-store distance".into());
    }
    if c.floor.is_none() {
        unknown.push("floor: not stated".into());
    }
    if c.direction.is_none() {
        unknown.push("direction: not stated".into());
    }
    if c.broker.is_none() {
        unknown.push("broker: the listing names no broker".into());
    }
    let [price, photos, broker, stale] = out.evidence;
    let mut evidence = Vec::new();
    if let (true, Some(ratio)) = (price, out.price_ratio) {
        evidence.push(format!(
            "asking cost is {:.0} % of the fair monthly cost",
            ratio * 100.0
        ));
    }
    if photos {
        evidence.push(format!(
            "the same photo appears under {}{} other listing id(s)",
            input.photo_reuse,
            if input.photo_reuse as u32 >= features::PHOTO_REUSE_CAP {
                "+"
            } else {
                ""
            }
        ));
    }
    if broker {
        evidence.push(format!("broker not verified: {}", l.broker.reason));
    }
    if stale {
        evidence.push("listed unchanged for over 30 days".into());
    }
    let band = input.age_band as usize;
    let age = match features::AGE_BANDS_DAYS.get(band) {
        Some(d) => format!("posted or changed at most {d} day(s) ago"),
        None => format!(
            "posted or changed over {} days ago",
            features::AGE_BANDS_DAYS[features::AGE_BANDS_DAYS.len() - 1]
        ),
    };
    Score {
        total: out.total,
        components: c.clone(),
        bait: Bait {
            risk: out.bait_risk,
            warning: out.bait_risk >= 50.0,
            evidence,
        },
        explanation: Explanation {
            monthly_cost: round1(input.monthly_cost),
            deposit_rate: params.deposit_rate,
            fair_cost: input.fair_cost.map(round1),
            cost_m2: input.cost_m2.map(|v| (v * 100.0).round() / 100.0),
            facilities: l
                .facilities
                .iter()
                .filter(|(k, _)| *k == "subway" || *k == "convenience_store")
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            age,
            unknown,
        },
    }
}
