//! normalize: every payload format → one [`SourceListing`].
//!
//! The platforms' traps, handled here once (docs/platforms.md §2–3, §11):
//! - money strings: Dabang `priceTitle` is `1000/45`, `1억5000/3`, `2억8000`, `3억`, `3억 2,000`;
//! - 관리비: Zigbang v3 `manageCost.amount` is 만원 (15) but the list API and the snapshot send 원 (80000);
//!   Dabang writes `관리비 8만`, `관리비 9.9만`, `관리비 없음` (zero) or `관리비 확인 불가` (unknown);
//! - floors: `2`, `2층`, `반지하`, `반지층`, `옥탑`, `옥탑방`, `저`/`중`/`고`, `저층`…;
//! - coordinates: Zigbang v3 `location` is exact, every `random*` location is jittered.
//!
//! A payload that lacks what every listing needs is `malformed`; one whose values cannot be a real
//! one-room rental (QA listings with rent 5,000,000, a sale) is `implausible` or `out_of_scope`. Both go
//! to the DLQ with the detail; nothing is dropped silently.

use serde_json::Value;

use super::model::{
    BrokerRef, Building, Floor, Layout, Location, Precision, SourceKey, SourceListing,
};
use crate::region;
use crate::topics::envelope::{Observation, PayloadFormat, Platform};
use crate::topics::keys::normalize_registration;

pub mod fields;

use fields::{
    building_of, check_rental, facility_kind, id_of, layout_code, layout_of, location_at, money_at,
    number, str_at, zigbang_url,
};
pub use fields::{
    fee_value, parse_direction, parse_fee_text, parse_floor, parse_man, parse_price_title,
    parse_time,
};

/// Why a payload was not turned into a listing; `reason` is the DLQ reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejection {
    /// `malformed`, `implausible` or `out_of_scope`.
    pub reason: &'static str,
    /// What exactly.
    pub detail: String,
}

fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection {
        reason: "malformed",
        detail: detail.into(),
    }
}

/// Bounds a real one-room rental in Seoul stays within; outside them a listing is `implausible`.
pub mod limits {
    /// 보증금 above 50억 (500,000 만원).
    pub const MAX_DEPOSIT: u32 = 500_000;
    /// 월세 above 2,000 만원 a month.
    pub const MAX_RENT: u32 = 2_000;
    /// 관리비 above 200 만원 a month.
    pub const MAX_FEE: f64 = 200.0;
    /// 전용면적 range, m².
    pub const AREA: (f64, f64) = (4.0, 330.0);
    /// South Korea's bounding box (lat, lng).
    pub const KOREA: ((f64, f64), (f64, f64)) = ((33.0, 124.5), (38.7, 132.0));
}

/// Normalizes one observation.
pub fn normalize(obs: &Observation) -> Result<SourceListing, Rejection> {
    let p = &obs.payload;
    if !p.is_object() {
        return Err(malformed("payload is not a JSON object"));
    }
    let mut listing = match obs.payload_format {
        PayloadFormat::ZigbangV3Item => zigbang_v3(p)?,
        PayloadFormat::ZigbangList => zigbang_list(p)?,
        PayloadFormat::ZigbangDailyCsv => zigbang_daily_csv(p)?,
        PayloadFormat::ZigbangSnapshotCsv => zigbang_snapshot_csv(p)?,
        PayloadFormat::DabangV5Room => dabang_v5(p)?,
    };
    if listing.key.id != obs.source_listing_id || listing.key.platform != obs.platform {
        return Err(malformed(format!(
            "payload id {} does not match the envelope's {}:{}",
            listing.key,
            obs.platform.as_str(),
            obs.source_listing_id
        )));
    }
    listing.region_code = derive_region(&listing, &obs.region_code);
    check_plausible(&listing)?;
    Ok(listing)
}

/// The 시군구 code: from the 구 name or the 법정동 code when they name a Seoul 구, else the envelope's.
fn derive_region(l: &SourceListing, envelope: &str) -> String {
    l.gu.as_deref()
        .and_then(region::code_for_gu)
        .or_else(|| l.bjd_code.as_deref().and_then(region::code_for_bjd))
        .unwrap_or(envelope)
        .to_string()
}

fn check_plausible(l: &SourceListing) -> Result<(), Rejection> {
    let bad = |detail: String| {
        Err(Rejection {
            reason: "implausible",
            detail,
        })
    };
    if l.rent > limits::MAX_RENT {
        return bad(format!("rent {} 만원 a month", l.rent));
    }
    if l.deposit > limits::MAX_DEPOSIT {
        return bad(format!("deposit {} 만원", l.deposit));
    }
    if l.deposit == 0 && l.rent == 0 {
        return bad("neither deposit nor rent".into());
    }
    if let Some(f) = l.fee.filter(|f| !(0.0..=limits::MAX_FEE).contains(f)) {
        return bad(format!("fee {f} 만원 a month"));
    }
    if let Some(a) = l
        .area_m2
        .filter(|a| !(limits::AREA.0..=limits::AREA.1).contains(a))
    {
        return bad(format!("area {a} m²"));
    }
    if let Some(loc) = &l.location {
        let ((lat0, lng0), (lat1, lng1)) = limits::KOREA;
        if !(lat0..=lat1).contains(&loc.lat) || !(lng0..=lng1).contains(&loc.lng) {
            return bad(format!("location {},{} is outside Korea", loc.lat, loc.lng));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------

fn zigbang_v3(p: &Value) -> Result<SourceListing, Rejection> {
    let item = p
        .get("item")
        .filter(|i| i.is_object())
        .ok_or_else(|| malformed("no `item` object"))?;
    let id = id_of(item.get("itemId")).ok_or_else(|| malformed("item.itemId missing"))?;
    if item
        .get("status")
        .and_then(Value::as_str)
        .is_some_and(|s| s != "open")
    {
        return Err(Rejection {
            reason: "out_of_scope",
            detail: format!("item status {:?}", item["status"]),
        });
    }
    check_rental(str_at(item, "salesType"))?;
    let deposit = money_at(item.pointer("/price/deposit"))
        .ok_or_else(|| malformed("item.price.deposit missing"))?;
    let rent = money_at(item.pointer("/price/rent"))
        .ok_or_else(|| malformed("item.price.rent missing"))?;
    let building = building_of(str_at(item, "serviceType"));
    let addr = item.get("addressOrigin");
    let (gu, dong) = (
        addr.and_then(|a| str_at(a, "local2")).map(str::to_string),
        addr.and_then(|a| str_at(a, "local3")).map(str::to_string),
    );
    let lot = str_at(item, "jibunAddress")
        .and_then(|a| a.split_whitespace().nth(2))
        .map(str::to_string);
    let location = location_at(item.get("location"), Precision::Exact)
        .or_else(|| location_at(item.get("randomLocation"), Precision::Jittered));
    let mut facilities = Vec::new();
    if let Some(pois) = item
        .pointer("/neighborhoods/nearbyPois")
        .and_then(Value::as_array)
    {
        for poi in pois {
            let (Some(kind), Some(m)) = (
                str_at(poi, "poiType"),
                poi.get("distance").and_then(Value::as_u64),
            ) else {
                continue;
            };
            if poi.get("exists").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            facilities.push((facility_kind(kind), m.min(u64::from(u32::MAX)) as u32));
        }
    }
    facilities.sort();
    facilities.dedup_by(|a, b| a.0 == b.0);
    let subway_stations = p
        .get("subways")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|x| str_at(x, "name").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let broker = p
        .pointer("/realtor/officeRegNumber")
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty())
        .map(|raw| BrokerRef {
            registration_number: normalize_registration(raw),
            registration_number_raw: raw.to_string(),
            person: p
                .pointer("/agent/agentName")
                .or_else(|| p.pointer("/realtor/name"))
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            office: p
                .pointer("/realtor/officeTitle")
                .or_else(|| p.pointer("/agent/agentTitle"))
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    let url = zigbang_url(building, &id);
    Ok(SourceListing {
        url,
        fee: fee_value(item.pointer("/manageCost/amount")),
        area_m2: item.pointer("/area/전용면적M2").and_then(number),
        floor: parse_floor(
            item.pointer("/floor/floor")
                .and_then(Value::as_str)
                .unwrap_or(""),
        ),
        building_floors: item
            .pointer("/floor/allFloors")
            .and_then(number)
            .map(|f| f as i16),
        layout: layout_of(str_at(item, "roomType").unwrap_or("")),
        building,
        direction: str_at(item, "roomDirection").and_then(parse_direction),
        gu,
        dong,
        bjd_code: str_at(item, "bjdCode")
            .filter(|c| c.len() == 10)
            .map(str::to_string),
        lot,
        location,
        facilities,
        subway_stations,
        broker,
        title: str_at(item, "title").unwrap_or("").trim().to_string(),
        image_url: str_at(item, "imageThumbnail").map(str::to_string),
        posted_at: str_at(item, "approveDate").and_then(parse_time),
        updated_at: str_at(item, "updatedAt").and_then(parse_time),
        ..SourceListing::new(
            SourceKey {
                platform: Platform::Zigbang,
                id,
            },
            PayloadFormat::ZigbangV3Item.as_str(),
            deposit,
            rent,
        )
    })
}

fn zigbang_list(p: &Value) -> Result<SourceListing, Rejection> {
    let id = id_of(p.get("item_id")).ok_or_else(|| malformed("item_id missing"))?;
    check_rental(str_at(p, "sales_type"))?;
    let deposit = money_at(p.get("deposit")).ok_or_else(|| malformed("deposit missing"))?;
    let rent = money_at(p.get("rent")).ok_or_else(|| malformed("rent missing"))?;
    let building = building_of(str_at(p, "service_type"));
    let addr = p.get("addressOrigin");
    let floor_text = str_at(p, "floor_string")
        .or_else(|| str_at(p, "floor"))
        .unwrap_or("");
    let url = zigbang_url(building, &id);
    Ok(SourceListing {
        url,
        fee: fee_value(p.get("manage_cost")),
        area_m2: p
            .pointer("/전용면적/m2")
            .and_then(number)
            .or_else(|| p.get("size_m2").and_then(number)),
        floor: parse_floor(floor_text),
        building_floors: p.get("building_floor").and_then(number).map(|f| f as i16),
        layout: layout_of(str_at(p, "room_type_title").unwrap_or("")),
        building,
        gu: addr
            .and_then(|a| str_at(a, "local2"))
            .or_else(|| str_at(p, "address2"))
            .map(str::to_string),
        dong: addr
            .and_then(|a| str_at(a, "local3"))
            .or_else(|| str_at(p, "address3"))
            .map(str::to_string),
        location: location_at(p.get("random_location"), Precision::Jittered),
        title: str_at(p, "title").unwrap_or("").trim().to_string(),
        image_url: str_at(p, "images_thumbnail").map(str::to_string),
        posted_at: str_at(p, "reg_date").and_then(parse_time),
        ..SourceListing::new(
            SourceKey {
                platform: Platform::Zigbang,
                id,
            },
            PayloadFormat::ZigbangList.as_str(),
            deposit,
            rent,
        )
    })
}

fn zigbang_daily_csv(p: &Value) -> Result<SourceListing, Rejection> {
    let id = id_of(p.get("매물ID")).ok_or_else(|| malformed("매물ID missing"))?;
    check_rental(str_at(p, "거래유형"))?;
    let deposit =
        money_at(p.get("보증금(만원)")).ok_or_else(|| malformed("보증금(만원) missing"))?;
    let rent = money_at(p.get("월세(만원)")).ok_or_else(|| malformed("월세(만원) missing"))?;
    let building = building_of(str_at(p, "매물유형"));
    let url = str_at(p, "URL").map_or_else(|| zigbang_url(building, &id), str::to_string);
    Ok(SourceListing {
        url,
        area_m2: p.get("면적(m2)").and_then(number),
        floor: parse_floor(str_at(p, "층").unwrap_or("")),
        layout: layout_code(str_at(p, "방유형").unwrap_or("")),
        building,
        gu: str_at(p, "구군").map(str::to_string),
        dong: str_at(p, "읍면동").map(str::to_string),
        title: str_at(p, "제목").unwrap_or("").trim().to_string(),
        ..SourceListing::new(
            SourceKey {
                platform: Platform::Zigbang,
                id,
            },
            PayloadFormat::ZigbangDailyCsv.as_str(),
            deposit,
            rent,
        )
    })
}

fn zigbang_snapshot_csv(p: &Value) -> Result<SourceListing, Rejection> {
    let id = id_of(p.get("item_id")).ok_or_else(|| malformed("item_id missing"))?;
    let deposit = money_at(p.get("deposit")).ok_or_else(|| malformed("deposit missing"))?;
    let rent = money_at(p.get("rent")).ok_or_else(|| malformed("rent missing"))?;
    let building = building_of(str_at(p, "service_type"));
    let location = match (p.get("lat").and_then(number), p.get("lng").and_then(number)) {
        (Some(lat), Some(lng)) => Some(Location {
            lat,
            lng,
            precision: Precision::Jittered,
        }),
        _ => None,
    };
    let url = zigbang_url(building, &id);
    Ok(SourceListing {
        url,
        fee: fee_value(p.get("manage_cost")),
        area_m2: p.get("size_m2").and_then(number),
        floor: parse_floor(str_at(p, "floor").unwrap_or("")),
        layout: if building == Building::OneRoomHouse {
            Layout::OneRoom
        } else {
            Layout::Unknown
        },
        building,
        gu: str_at(p, "local2")
            .or_else(|| str_at(p, "search_gu"))
            .map(str::to_string),
        dong: str_at(p, "local3")
            .or_else(|| str_at(p, "search_dong"))
            .map(str::to_string),
        location,
        title: str_at(p, "title").unwrap_or("").trim().to_string(),
        image_url: str_at(p, "thumbnail").map(str::to_string),
        ..SourceListing::new(
            SourceKey {
                platform: Platform::Zigbang,
                id,
            },
            PayloadFormat::ZigbangSnapshotCsv.as_str(),
            deposit,
            rent,
        )
    })
}

fn dabang_v5(p: &Value) -> Result<SourceListing, Rejection> {
    let id = str_at(p, "id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed("id missing"))?
        .to_string();
    let price = str_at(p, "priceTitle").ok_or_else(|| malformed("priceTitle missing"))?;
    let (deposit, rent) = parse_price_title(price)
        .ok_or_else(|| malformed(format!("priceTitle {price:?} is not a price")))?;
    match str_at(p, "priceTypeName") {
        Some("월세") | Some("전세") | None => {}
        Some(other) => {
            return Err(Rejection {
                reason: "out_of_scope",
                detail: format!("priceTypeName {other:?}"),
            });
        }
    }
    let desc = str_at(p, "roomDesc").ok_or_else(|| malformed("roomDesc missing"))?;
    let parts: Vec<&str> = desc.split(',').map(str::trim).collect();
    let floor = parts.first().map_or(Floor::Unknown, |f| parse_floor(f));
    let area_m2 = parts
        .iter()
        .find(|s| s.ends_with("m²") || s.ends_with("㎡"))
        .and_then(|s| {
            s.trim_end_matches("m²")
                .trim_end_matches('㎡')
                .trim()
                .parse::<f64>()
                .ok()
        });
    let fee = match parts.iter().find(|s| s.starts_with("관리비")) {
        Some(s) => parse_fee_text(s).ok_or_else(|| malformed(format!("fee {s:?} in roomDesc")))?,
        None => None,
    };
    let type_name = str_at(p, "roomTypeName").unwrap_or("");
    let building = if type_name.contains("오피스텔") {
        Building::Officetel
    } else if type_name.contains("아파트") {
        Building::Apartment
    } else {
        Building::Unknown
    };
    let url = format!("https://www.dabangapp.com/room/{id}");
    Ok(SourceListing {
        url,
        fee,
        area_m2,
        floor,
        layout: layout_of(type_name),
        building,
        dong: str_at(p, "dongName").map(str::to_string),
        location: location_at(p.get("randomLocation"), Precision::Jittered),
        title: str_at(p, "roomTitle").unwrap_or("").trim().to_string(),
        image_url: p
            .get("imgUrlList")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string),
        ..SourceListing::new(
            SourceKey {
                platform: Platform::Dabang,
                id,
            },
            PayloadFormat::DabangV5Room.as_str(),
            deposit,
            rent,
        )
    })
}
