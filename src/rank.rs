//! A person's own ranking: how their weights turn a listing's seven score components into a rank score.
//!
//! Computed at read time, never stored: `process::score::recommend` applies it to published listings and
//! the API (`GET /api/v1/recommendations`) to the production table, as SQL built from the same weights;
//! a test holds the two equal. The stored `score.total` is this function under [`Weights::default`]
//! (`queries/score.sql`), rounded to one decimal.

use serde::{Deserialize, Serialize};

/// Names of the score components, in the order of [`Weights::as_array`] and of the rank arguments.
pub const COMPONENTS: [&str; 7] = [
    "cost",
    "value",
    "facilities",
    "floor",
    "direction",
    "broker",
    "freshness",
];

/// Weights of the components in a person's ranking (non-negative numbers; negative ones count 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Weights {
    /// Monthly cost.
    pub cost: f64,
    /// Value for money.
    pub value: f64,
    /// Facilities.
    pub facilities: f64,
    /// Floor.
    pub floor: f64,
    /// Direction.
    pub direction: f64,
    /// Verified broker.
    pub broker: f64,
    /// Freshness.
    pub freshness: f64,
}

impl Default for Weights {
    /// The weights of the stored total (`queries/score.sql`).
    fn default() -> Self {
        Weights {
            cost: 3.0,
            value: 3.0,
            facilities: 2.0,
            floor: 1.0,
            direction: 1.0,
            broker: 1.0,
            freshness: 1.0,
        }
    }
}

impl Weights {
    /// The weights in [`COMPONENTS`] order.
    pub fn as_array(&self) -> [f64; 7] {
        [
            self.cost,
            self.value,
            self.facilities,
            self.floor,
            self.direction,
            self.broker,
            self.freshness,
        ]
    }

    /// Sets one weight by its [`COMPONENTS`] name; false for an unknown name.
    pub fn set(&mut self, name: &str, w: f64) -> bool {
        let slot = match name {
            "cost" => &mut self.cost,
            "value" => &mut self.value,
            "facilities" => &mut self.facilities,
            "floor" => &mut self.floor,
            "direction" => &mut self.direction,
            "broker" => &mut self.broker,
            "freshness" => &mut self.freshness,
            _ => return false,
        };
        *slot = w;
        true
    }

    /// The rank score of a listing with these components (0–100, [`COMPONENTS`] order, None =
    /// unknown): the weighted mean of the known ones; 0 when no known component has weight.
    ///
    /// The API's SQL adds the terms in this order and in the same double arithmetic, so both give the
    /// same number for the same row.
    pub fn rank_score(&self, components: [Option<f64>; 7]) -> f64 {
        let (sum, weight) = self
            .as_array()
            .iter()
            .zip(components)
            .filter_map(|(w, v)| v.map(|v| (w.max(0.0) * v, w.max(0.0))))
            .fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        if weight > 0.0 { sum / weight } else { 0.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_score_is_the_weighted_mean_of_the_known_components() {
        let w = Weights::default();
        let all = [
            Some(50.0),
            Some(50.0),
            Some(50.0),
            Some(50.0),
            Some(50.0),
            Some(50.0),
            Some(50.0),
        ];
        assert_eq!(w.rank_score(all), 50.0);
        // cost 90 (w 3), freshness 30 (w 1), the rest unknown: (270 + 30) / 4.
        let sparse = [Some(90.0), None, None, None, None, None, Some(30.0)];
        assert_eq!(w.rank_score(sparse), 75.0);
        let mut floor_only = Weights {
            cost: 0.0,
            value: 0.0,
            facilities: 0.0,
            floor: 1.0,
            direction: 0.0,
            broker: 0.0,
            freshness: 0.0,
        };
        assert_eq!(
            floor_only.rank_score(sparse),
            0.0,
            "no weighted component is known"
        );
        assert!(floor_only.set("cost", 1.0) && !floor_only.set("price", 1.0));
        assert_eq!(floor_only.rank_score(sparse), 90.0);
    }
}
