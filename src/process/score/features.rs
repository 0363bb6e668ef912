//! What scoring reads of one canonical listing: its monthly cost, its group keys, the fair-rent model's
//! features, its photos and how fresh it is — and the `score_input` row the SQL receives.
//!
//! `score_input` columns (one row per listing; NULL = unknown):
//!
//! | column | type | meaning |
//! |---|---|---|
//! | `listing_id` | text | canonical id |
//! | `gu`, `dong` | text | 시군구 code; 법정동 code (else `<시군구>:<동 name>`; `''` when unknown) |
//! | `monthly_cost` | f64 | deposit × yearly rate / 12 + rent + 관리비 (unknown 관리비 counts 0), 만원 |
//! | `cost_m2` | f64 | monthly cost per m² of 전용면적 |
//! | `fair_cost` | f64 | the fair-rent model's monthly cost for this listing, on the ε grid (NULL before the first fit) |
//! | `floor_kind`, `floor_level` | text, i32 | `level` + storey, `semi_basement`, `rooftop`, `low`/`mid`/`high`, `unknown` |
//! | `direction` | text | S, SE, … N |
//! | `subway_m`, `store_m` | i32 | metres to the nearest subway station / convenience store |
//! | `broker_status` | text | `verified`, `unverified`, `unknown` |
//! | `age_band` | i32 | days since posted or last changed, as a band of [`AGE_BANDS_DAYS`] |
//! | `photo_reuse` | i32 | other source listings (other ids, alive or gone) showing the same photo, capped at 2 |

use crate::process::model::{Building, Floor, FloorBand, Layout, Lease, SourceKey};
use crate::process::publish::CanonicalListing;

/// Band boundaries of a listing's age (days since posted or last changed): band b holds ages up to
/// `AGE_BANDS_DAYS[b]` days, the last band everything older. Each crossing republishes the listing, so
/// the bands are few: new (3 days), this week, two weeks, a month, two months, older.
pub const AGE_BANDS_DAYS: [i64; 5] = [3, 7, 14, 30, 60];

/// Most other source listings counted as showing a listing's photos.
pub const PHOTO_REUSE_CAP: u32 = 2;

/// A listing's age band at `now` (Unix seconds), and when it moves to the next band (None: last band).
pub fn age_band(fresh_since: i64, now: i64) -> (i32, Option<i64>) {
    for (b, days) in AGE_BANDS_DAYS.iter().enumerate() {
        let edge = fresh_since + days * 86_400;
        if now <= edge {
            return (b as i32, Some(edge + 1));
        }
    }
    (AGE_BANDS_DAYS.len() as i32, None)
}

/// Monthly cost in 만원: the deposit's opportunity cost at `rate` a year, plus rent and 관리비.
pub fn monthly_cost(deposit: u32, rent: u32, fee: Option<f64>, rate: f64) -> f64 {
    f64::from(deposit) * rate / 12.0 + f64::from(rent) + fee.unwrap_or(0.0)
}

/// What scoring keeps of one listing between micro-batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 시군구 code.
    pub gu: String,
    /// 법정동 code or name; empty when unknown.
    pub dong: String,
    /// Monthly cost, 만원.
    pub monthly_cost: f64,
    /// Monthly cost per m², when the area is known.
    pub cost_m2: Option<f64>,
    /// The model's features, by name.
    pub x: Vec<(String, f64)>,
    /// The model's target: ln(monthly cost).
    pub y: f64,
    /// Posted, first seen or last price change, whichever is latest (Unix seconds).
    pub fresh_since: i64,
    /// Its members.
    pub members: Vec<SourceKey>,
}

/// The model's features of a listing: an intercept, log area, lease, floor, building, layout, subway
/// distance, unknown 관리비, and one-hot 구 (with a 전세 level per 구) and 법정동 (whose effects the
/// model shrinks toward the 구's).
pub fn model_features(l: &CanonicalListing) -> Vec<(String, f64)> {
    let mut x: Vec<(String, f64)> = vec![("1".into(), 1.0)];
    let mut flag = |name: &str| x.push((name.to_string(), 1.0));
    if l.lease == Lease::Jeonse {
        flag("jeonse");
    }
    match l.floor {
        Floor::SemiBasement => flag("floor:semi_basement"),
        Floor::Rooftop => flag("floor:rooftop"),
        Floor::Level(n) if n <= 1 => flag("floor:ground"),
        Floor::Unknown => flag("floor:unknown"),
        _ => {}
    }
    match l.building {
        Building::Officetel => flag("building:officetel"),
        Building::Villa => flag("building:villa"),
        Building::Apartment => flag("building:apartment"),
        Building::Unknown => flag("building:unknown"),
        Building::OneRoomHouse => {}
    }
    match l.layout {
        Layout::SeparatedOneRoom => flag("layout:separated"),
        Layout::Duplex => flag("layout:duplex"),
        Layout::TwoRoom => flag("layout:two_room"),
        Layout::Unknown => flag("layout:unknown"),
        Layout::OneRoom => {}
    }
    if l.fee.is_none() {
        flag("fee:unknown");
    }
    flag(&format!("gu:{}", l.region_code));
    if l.lease == Lease::Jeonse {
        // 전세 deposits and 월세 rents are priced in different markets: each 구 has its own 전세 level.
        flag(&format!("jeonse:gu:{}", l.region_code));
    }
    let dong = dong_key(l);
    if !dong.is_empty() {
        flag(&format!("dong:{dong}"));
    }
    match l.area_m2.filter(|a| *a > 0.0) {
        Some(a) => x.push(("ln_area".into(), (a / 30.0).ln())),
        None => x.push(("area:unknown".into(), 1.0)),
    }
    match l.facilities.get("subway") {
        Some(&m) => x.push(("ln_subway".into(), (f64::from(m.max(50)) / 500.0).ln())),
        None => x.push(("subway:unknown".into(), 1.0)),
    }
    x
}

/// The 법정동 a listing's group statistics and model effect use: its code, else its name.
pub fn dong_key(l: &CanonicalListing) -> String {
    l.bjd_code
        .clone()
        .or_else(|| l.dong.as_ref().map(|d| format!("{}:{d}", l.region_code)))
        .unwrap_or_default()
}

impl Row {
    /// The row of a listing; `fresh_since` comes from its members' sightings.
    pub fn of(l: &CanonicalListing, fresh_since: i64, deposit_rate: f64) -> Row {
        let cost = monthly_cost(l.deposit, l.rent, l.fee, deposit_rate).max(1.0);
        Row {
            gu: l.region_code.clone(),
            dong: dong_key(l),
            monthly_cost: cost,
            cost_m2: l.area_m2.filter(|a| *a > 0.0).map(|a| cost / a),
            x: model_features(l),
            y: cost.ln(),
            fresh_since,
            members: l
                .members
                .iter()
                .map(|m| SourceKey {
                    platform: m.platform,
                    id: m.source_listing_id.clone(),
                })
                .collect(),
        }
    }
}

/// `floor_kind`, `floor_level` of a floor.
pub fn floor_columns(f: Floor) -> (&'static str, Option<i32>) {
    match f {
        Floor::Level(n) => ("level", Some(i32::from(n))),
        Floor::SemiBasement => ("semi_basement", None),
        Floor::Rooftop => ("rooftop", None),
        Floor::Band(FloorBand::Low) => ("low", None),
        Floor::Band(FloorBand::Mid) => ("mid", None),
        Floor::Band(FloorBand::High) => ("high", None),
        Floor::Unknown => ("unknown", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_move_on_their_edges() {
        let day = 86_400;
        assert_eq!(age_band(0, 0), (0, Some(3 * day + 1)));
        assert_eq!(age_band(0, 3 * day), (0, Some(3 * day + 1)));
        assert_eq!(age_band(0, 3 * day + 1), (1, Some(7 * day + 1)));
        assert_eq!(age_band(0, 61 * day), (5, None));
    }

    #[test]
    fn monthly_cost_counts_the_deposit_at_the_yearly_rate() {
        assert!((monthly_cost(1200, 50, Some(7.0), 0.05) - 62.0).abs() < 1e-12);
        assert!((monthly_cost(24000, 0, None, 0.05) - 100.0).abs() < 1e-12);
    }
}
