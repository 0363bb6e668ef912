//! Ranking for one person's preferences, computed at read time from the components stored with each
//! listing: filters (budget, where, size, floor, facilities, broker) and weights. The API serves it;
//! the seed's `getFilter` (docs/platforms.md §10) maps onto it with [`Preferences::from_get_filter`].
//! Bait risk is never a filter here: the caller shows it as a warning beside the rank.

use serde::{Deserialize, Serialize};

use crate::process::model::Floor;
use crate::process::publish::CanonicalListing;
pub use crate::rank::Weights;

/// What a person asks for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// 보증금 bounds, 만원.
    pub deposit_min: Option<u32>,
    /// Upper bound.
    pub deposit_max: Option<u32>,
    /// 월세 bounds, 만원 (with 관리비 when `include_fee`).
    pub monthly_min: Option<f64>,
    /// Upper bound.
    pub monthly_max: Option<f64>,
    /// Rent bounds apply to rent + 관리비 (an unknown 관리비 counts 0).
    pub include_fee: bool,
    /// 구/동 names or codes; a listing matches when any is part of its 구, 동, 시군구 or 법정동 code.
    pub areas: Vec<String>,
    /// (lat, lng, radius m).
    pub near: Option<(f64, f64, f64)>,
    /// Smallest 전용면적, m².
    pub min_area_m2: Option<f64>,
    /// Leave out 반지하.
    pub exclude_semi_basement: bool,
    /// Leave out 옥탑.
    pub exclude_rooftop: bool,
    /// Facilities that must be known within 1 km: subway, convenience_store, cafe, mart, restaurant,
    /// hospital.
    pub facilities: Vec<String>,
    /// Only verified brokers.
    pub verified_only: bool,
    /// Component weights.
    pub weights: Weights,
}

/// A bad preference parameter: its name and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parameter `{param}`: {reason}")]
pub struct BadPreference {
    /// The parameter.
    pub param: String,
    /// Why.
    pub reason: String,
}

/// The seed's facility names → ours.
pub fn facility_name(korean: &str) -> Option<&'static str> {
    Some(match korean {
        "편의점" => "convenience_store",
        "지하철" => "subway",
        "카페" => "cafe",
        "대형마트" => "mart",
        "음식점" => "restaurant",
        "병원" => "hospital",
        _ => return None,
    })
}

impl Preferences {
    /// The seed's `GET /app/getFilter/` parameters: `address` (required), `min_deposit`,
    /// `max_deposit`, `min_rent`, `max_rent` (integers, 만원), `include_maintenance_fee` (`true`),
    /// `facilities[]` (편의점|지하철|카페|대형마트|음식점|병원: required), `floor_options[]` (옥탑|반지하:
    /// excluded).
    pub fn from_get_filter(params: &[(String, String)]) -> Result<Preferences, BadPreference> {
        let bad = |param: &str, reason: String| BadPreference {
            param: param.into(),
            reason,
        };
        let int = |name: &str| -> Result<Option<u32>, BadPreference> {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| {
                    v.trim()
                        .parse::<u32>()
                        .map_err(|_| bad(name, format!("`{v}` is not a whole number of 만원")))
                })
                .transpose()
        };
        let mut p = Preferences {
            deposit_min: int("min_deposit")?,
            deposit_max: int("max_deposit")?,
            monthly_min: int("min_rent")?.map(f64::from),
            monthly_max: int("max_rent")?.map(f64::from),
            ..Preferences::default()
        };
        let address = params
            .iter()
            .find(|(k, _)| k == "address")
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad("address", "required (e.g. 군자동, 서초구, 잠실)".into()))?;
        p.areas = address
            .split([',', ' '])
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for (k, v) in params {
            match k.as_str() {
                "include_maintenance_fee" => p.include_fee = v == "true",
                "facilities[]" | "facilities" => p.facilities.push(
                    facility_name(v)
                        .ok_or_else(|| bad(k, format!("`{v}` is not one of 편의점, 지하철, 카페, 대형마트, 음식점, 병원")))?
                        .to_string(),
                ),
                "floor_options[]" | "floor_options" => match v.as_str() {
                    "옥탑" => p.exclude_rooftop = true,
                    "반지하" => p.exclude_semi_basement = true,
                    _ => return Err(bad(k, format!("`{v}` is not 옥탑 or 반지하"))),
                },
                _ => {}
            }
        }
        Ok(p)
    }

    /// Whether a listing passes the filters.
    pub fn admits(&self, l: &CanonicalListing) -> bool {
        let monthly = f64::from(l.rent)
            + if self.include_fee {
                l.fee.unwrap_or(0.0)
            } else {
                0.0
            };
        let within = |v: f64, lo: Option<f64>, hi: Option<f64>| {
            lo.is_none_or(|lo| v >= lo) && hi.is_none_or(|hi| v <= hi)
        };
        let text = [
            l.gu.as_deref().unwrap_or(""),
            l.dong.as_deref().unwrap_or(""),
            &l.region_code,
            l.bjd_code.as_deref().unwrap_or(""),
        ];
        within(
            f64::from(l.deposit),
            self.deposit_min.map(f64::from),
            self.deposit_max.map(f64::from),
        ) && within(monthly, self.monthly_min, self.monthly_max)
            && (self.areas.is_empty()
                || self
                    .areas
                    .iter()
                    .any(|a| text.iter().any(|t| !t.is_empty() && t.contains(a.as_str()))))
            && self.near.is_none_or(|(lat, lng, r)| {
                l.location.is_some_and(|loc| {
                    loc.distance_m(&crate::process::model::Location {
                        lat,
                        lng,
                        precision: loc.precision,
                    }) <= r
                })
            })
            && self
                .min_area_m2
                .is_none_or(|m| l.area_m2.is_some_and(|a| a >= m))
            && !(self.exclude_semi_basement && l.floor == Floor::SemiBasement)
            && !(self.exclude_rooftop && l.floor == Floor::Rooftop)
            && self.facilities.iter().all(|f| {
                l.facilities.get(f).is_some_and(|m| *m <= 1000)
                    || (f == "subway" && !l.subway_stations.is_empty())
            })
            && (!self.verified_only || l.broker.verified())
    }

    /// The listing's rank score under these weights: the weighted mean of its known components.
    /// None for a listing not scored yet.
    pub fn rank_score(&self, l: &CanonicalListing) -> Option<f64> {
        let c = &l.score.as_ref()?.components;
        Some(self.weights.rank_score([
            Some(c.cost),
            c.value,
            c.facilities,
            c.floor,
            c.direction,
            c.broker,
            Some(c.freshness),
        ]))
    }

    /// The listings that pass, best first (ties by id).
    pub fn rank<'a>(&self, listings: &'a [CanonicalListing]) -> Vec<(&'a CanonicalListing, f64)> {
        let mut out: Vec<(&CanonicalListing, f64)> = listings
            .iter()
            .filter(|l| self.admits(l))
            .filter_map(|l| self.rank_score(l).map(|s| (l, s)))
            .collect();
        out.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then_with(|| a.0.listing_id.cmp(&b.0.listing_id))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn get_filter_parameters_map_onto_preferences() {
        let p = Preferences::from_get_filter(&q(&[
            ("address", "군자동"),
            ("max_deposit", "1000"),
            ("max_rent", "60"),
            ("include_maintenance_fee", "true"),
            ("facilities[]", "지하철"),
            ("floor_options[]", "반지하"),
            ("floor_options[]", "옥탑"),
        ]))
        .expect("valid");
        assert_eq!(p.areas, vec!["군자동"]);
        assert_eq!(
            (p.deposit_max, p.monthly_max, p.include_fee),
            (Some(1000), Some(60.0), true)
        );
        assert_eq!(p.facilities, vec!["subway"]);
        assert!(p.exclude_rooftop && p.exclude_semi_basement);
        let e = Preferences::from_get_filter(&q(&[("max_rent", "60")])).expect_err("no address");
        assert_eq!(e.param, "address");
        let e = Preferences::from_get_filter(&q(&[("address", "x"), ("max_rent", "sixty")]))
            .expect_err("not a number");
        assert_eq!(e.param, "max_rent");
        assert!(
            Preferences::from_get_filter(&q(&[("address", "x"), ("facilities[]", "사우나")]))
                .is_err()
        );
    }
}
