//! A listing as the API shows it: [`Card`] in result lists, read from one row of `listings` and the
//! links of its members.

use std::collections::BTreeMap;

use crate::db::{Pool, Sql};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::filter::{FACILITIES, PLATFORMS};
use crate::rank::COMPONENTS;

/// 1 평 in m².
const PYEONG_M2: f64 = 3.305_785;

/// The `listings` columns a card needs, in [`CardRow`] order. The members' links come in a second query
/// for the whole page ([`cards`]): as a correlated `JSON_ARRAYAGG` subquery per row they cost MariaDB
/// 1.3 ms a page more than the second query's 0.4 ms.
pub const CARD_COLUMNS: &str = "listing_id, region_code, gu, dong, bjd_code, lease, deposit, rent, fee, \
     rent_with_fee, monthly_cost, area_m2, floor_kind, floor_level, floor_band, building_floors, layout, \
     building, direction, lat, lng, subway_m, convenience_store_m, cafe_m, mart_m, restaurant_m, \
     hospital_m, platform_mask, title, image_url, first_seen, broker_status, broker_verified, \
     broker_office, score_total, score_cost, score_value, score_facilities, score_floor, \
     score_direction, score_broker, score_freshness, bait_risk, bait_warning, score_explanation";

/// One row of [`CARD_COLUMNS`].
#[derive(Debug, sqlx::FromRow)]
pub struct CardRow {
    pub listing_id: String,
    pub region_code: String,
    pub gu: Option<String>,
    pub dong: Option<String>,
    pub bjd_code: Option<String>,
    pub lease: String,
    pub deposit: i32,
    pub rent: i32,
    pub fee: Option<f64>,
    pub rent_with_fee: f64,
    pub monthly_cost: Option<f64>,
    pub area_m2: Option<f64>,
    pub floor_kind: String,
    pub floor_level: Option<i16>,
    pub floor_band: Option<String>,
    pub building_floors: Option<i16>,
    pub layout: String,
    pub building: String,
    pub direction: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    pub subway_m: Option<i32>,
    pub convenience_store_m: Option<i32>,
    pub cafe_m: Option<i32>,
    pub mart_m: Option<i32>,
    pub restaurant_m: Option<i32>,
    pub hospital_m: Option<i32>,
    pub platform_mask: i8,
    pub title: String,
    pub image_url: Option<String>,
    pub first_seen: i64,
    pub broker_status: String,
    pub broker_verified: bool,
    pub broker_office: Option<String>,
    pub score_total: f64,
    pub score_cost: Option<f64>,
    pub score_value: Option<f64>,
    pub score_facilities: Option<f64>,
    pub score_floor: Option<f64>,
    pub score_direction: Option<f64>,
    pub score_broker: Option<f64>,
    pub score_freshness: Option<f64>,
    pub bait_risk: f64,
    pub bait_warning: bool,
    pub score_explanation: String,
}

impl CardRow {
    /// The seven components in [`COMPONENTS`] order.
    pub fn components(&self) -> [Option<f64>; 7] {
        [
            self.score_cost,
            self.score_value,
            self.score_facilities,
            self.score_floor,
            self.score_direction,
            self.score_broker,
            self.score_freshness,
        ]
    }
}

/// One listing in a result list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Card {
    /// Canonical listing id (the same flat on several platforms is one id).
    pub id: String,
    /// Title of the leading platform listing.
    pub title: String,
    /// Where.
    pub region: Place,
    /// `monthly` (월세) or `jeonse` (전세).
    pub lease: String,
    /// 보증금, 만원.
    pub deposit: i32,
    /// 월세, 만원 (0 for 전세).
    pub rent: i32,
    /// 관리비, 만원 (null: not stated).
    pub fee: Option<f64>,
    /// 월세 + 관리비, 만원 (관리비 not stated counts 0).
    pub rent_with_fee: f64,
    /// Monthly cost: 월세 + 관리비 + the deposit's opportunity cost, 만원.
    pub monthly_cost: Option<f64>,
    /// 전용면적, m².
    pub area_m2: Option<f64>,
    /// 전용면적, 평.
    pub area_pyeong: Option<f64>,
    /// Floor.
    pub floor: FloorView,
    /// `one_room`, `separated_one_room`, `duplex`, `two_room`, `unknown`.
    pub room_type: String,
    /// `one_room_house`, `villa`, `officetel`, `apartment`, `unknown`.
    pub building: String,
    /// Facing in Korean (남, 남동, …; the platforms' S, SE… translated), if stated.
    pub direction: Option<String>,
    /// Latitude (WGS84), if known.
    pub lat: Option<f64>,
    /// Longitude (WGS84), if known.
    pub lng: Option<f64>,
    /// Nearest facility of each kind, metres (kinds without a known one are left out).
    pub facilities_m: BTreeMap<String, i32>,
    /// Platforms that list the flat, with a link to each page.
    pub links: Vec<Link>,
    /// Photo.
    pub image_url: Option<String>,
    /// When roomstream first saw the flat (RFC 3339, UTC).
    pub first_seen: String,
    /// The broker and whether the registry knows them.
    pub broker: BrokerView,
    /// Score 0–100 and its components (null: unknown).
    pub score: ScoreView,
    /// Bait risk (허위매물 의심): a warning with its reasons, never a filter.
    pub bait: BaitView,
    /// Rank score under the weights asked for (`/recommendations` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<f64>,
}

/// Where a listing is.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Place {
    /// 5-digit 시군구 code (`00000`: outside Seoul or unknown).
    pub code: String,
    /// 구 name.
    pub gu: Option<String>,
    /// 법정동 name.
    pub dong: Option<String>,
    /// 10-digit 법정동 code.
    pub dong_code: Option<String>,
}

/// A floor, as stated.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FloorView {
    /// `level`, `band`, `semi_basement`, `rooftop` or `unknown`.
    pub kind: String,
    /// The floor number, for `level`.
    pub level: Option<i16>,
    /// `low`, `mid` or `high`, for `band` (the platform hides the exact floor).
    pub band: Option<String>,
    /// Floors of the building, if stated.
    pub building_floors: Option<i16>,
    /// In Korean: `3층`, `반지하`, `옥탑`, `저층`, `층수 미상`.
    pub label: String,
}

/// A link to one platform's page of the flat.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Link {
    /// `zigbang` or `dabang`.
    pub platform: String,
    /// The page.
    pub url: String,
}

/// The broker.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrokerView {
    /// `verified` (안심 중개사: in the VWORLD registry), `unverified` or `unknown`.
    pub status: String,
    /// Shorthand for `status == verified`.
    pub verified: bool,
    /// The office, as the listing names it.
    pub office: Option<String>,
}

/// The score.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScoreView {
    /// 0–100, higher is better.
    pub total: f64,
    /// cost, value, facilities, floor, direction, broker, freshness: 0–100, null when unknown.
    pub components: BTreeMap<String, Option<f64>>,
}

/// Bait risk.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BaitView {
    /// 0–100.
    pub risk: f64,
    /// Shown as a warning.
    pub warning: bool,
    /// The evidence behind the risk.
    pub reasons: Vec<String>,
}

/// The Korean label of a floor.
pub fn floor_label(kind: &str, level: Option<i16>, band: Option<&str>) -> String {
    match (kind, level, band) {
        ("level", Some(n), _) => format!("{n}층"),
        ("band", _, Some("low")) => "저층".into(),
        ("band", _, Some("mid")) => "중층".into(),
        ("band", _, Some("high")) => "고층".into(),
        ("semi_basement", ..) => "반지하".into(),
        ("rooftop", ..) => "옥탑".into(),
        _ => "층수 미상".into(),
    }
}

/// A direction in Korean: the platforms send 남 or S, 남서 or SW; the page says `남향`.
pub fn direction_ko(d: &str) -> String {
    match d.trim().to_ascii_uppercase().as_str() {
        "N" => "북",
        "S" => "남",
        "E" => "동",
        "W" => "서",
        "NE" | "EN" => "북동",
        "NW" | "WN" => "북서",
        "SE" | "ES" => "남동",
        "SW" | "WS" => "남서",
        _ => return d.trim().trim_end_matches('향').to_string(),
    }
    .to_string()
}

/// Seconds since the epoch as RFC 3339.
fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

impl Card {
    /// A card from its row and its members' links.
    pub fn new(r: CardRow, mut links: Vec<Link>) -> Card {
        let facilities_m = FACILITIES
            .iter()
            .zip([
                r.subway_m,
                r.convenience_store_m,
                r.cafe_m,
                r.mart_m,
                r.restaurant_m,
                r.hospital_m,
            ])
            .filter_map(|((name, _, _), m)| m.map(|m| (name.to_string(), m)))
            .collect();
        if links.is_empty() {
            // A row always has members; without their links still say where it is listed.
            links = PLATFORMS
                .iter()
                .filter(|(_, _, bit)| i64::from(r.platform_mask) & bit != 0)
                .map(|(p, _, _)| Link {
                    platform: p.to_string(),
                    url: String::new(),
                })
                .collect();
        }
        let reasons = serde_json::from_str::<serde_json::Value>(&r.score_explanation)
            .ok()
            .and_then(|v| {
                v.get("bait_evidence").and_then(|e| {
                    e.as_array().map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect::<Vec<_>>()
                    })
                })
            })
            .unwrap_or_default();
        let components = COMPONENTS
            .iter()
            .zip(r.components())
            .map(|(n, v)| (n.to_string(), v))
            .collect();
        Card {
            floor: FloorView {
                label: floor_label(&r.floor_kind, r.floor_level, r.floor_band.as_deref()),
                kind: r.floor_kind,
                level: r.floor_level,
                band: r.floor_band,
                building_floors: r.building_floors,
            },
            id: r.listing_id,
            title: r.title,
            region: Place {
                // A listing keyed to a 구 whose address named none still shows the 구's name.
                gu: r
                    .gu
                    .or_else(|| crate::region::gu_name(&r.region_code).map(str::to_string)),
                code: r.region_code,
                dong: r.dong,
                dong_code: r.bjd_code,
            },
            lease: r.lease,
            deposit: r.deposit,
            rent: r.rent,
            fee: r.fee,
            rent_with_fee: r.rent_with_fee,
            monthly_cost: r.monthly_cost,
            area_pyeong: r.area_m2.map(|a| (a / PYEONG_M2 * 10.0).round() / 10.0),
            area_m2: r.area_m2,
            room_type: r.layout,
            building: r.building,
            direction: r
                .direction
                .as_deref()
                .map(direction_ko)
                .filter(|d| !d.is_empty()),
            lat: r.lat,
            lng: r.lng,
            facilities_m,
            links,
            image_url: r.image_url,
            first_seen: rfc3339(r.first_seen),
            broker: BrokerView {
                verified: r.broker_verified,
                status: r.broker_status,
                office: r.broker_office,
            },
            score: ScoreView {
                total: r.score_total,
                components,
            },
            bait: BaitView {
                risk: r.bait_risk,
                warning: r.bait_warning,
                reasons,
            },
            rank: None,
        }
    }
}

/// The member links of these listings, by listing id.
pub async fn links(pool: &Pool, ids: &[&str]) -> Result<BTreeMap<String, Vec<Link>>, sqlx::Error> {
    let mut out: BTreeMap<String, Vec<Link>> = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut q =
        Sql::new("SELECT listing_id, platform, url FROM listing_members WHERE listing_id IN ");
    q.push_list(ids.iter().copied());
    q.push(" ORDER BY listing_id, platform, source_listing_id");
    let rows: Vec<(String, String, String)> = pool.fetch_all(&q).await?;
    for (id, platform, url) in rows {
        out.entry(id).or_default().push(Link { platform, url });
    }
    Ok(out)
}

/// Cards for these rows, with their links (one more query for the whole page).
pub async fn cards(pool: &Pool, rows: Vec<CardRow>) -> Result<Vec<Card>, sqlx::Error> {
    let ids: Vec<&str> = rows.iter().map(|r| r.listing_id.as_str()).collect();
    let mut links = links(pool, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let l = links.remove(&r.listing_id).unwrap_or_default();
            Card::new(r, l)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_read_in_korean() {
        assert_eq!(floor_label("level", Some(3), None), "3층");
        assert_eq!(floor_label("band", None, Some("low")), "저층");
        assert_eq!(floor_label("semi_basement", None, None), "반지하");
        assert_eq!(floor_label("rooftop", None, None), "옥탑");
        assert_eq!(floor_label("unknown", None, None), "층수 미상");
    }

    #[test]
    fn directions_read_in_korean() {
        for (raw, ko) in [
            ("S", "남"),
            ("nw", "북서"),
            ("SE", "남동"),
            ("남서향", "남서"),
            ("동", "동"),
        ] {
            assert_eq!(direction_ko(raw), ko, "{raw}");
        }
    }
}
