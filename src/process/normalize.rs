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
use time::macros::offset;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::model::{
    BrokerRef, Building, Floor, FloorBand, Layout, Lease, Location, Precision, SourceKey,
    SourceListing,
};
use crate::region;
use crate::topics::envelope::{Observation, PayloadFormat, Platform};
use crate::topics::keys::normalize_registration;

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
    Ok(SourceListing {
        url: zigbang_url(building, &id),
        key: SourceKey {
            platform: Platform::Zigbang,
            id,
        },
        format: PayloadFormat::ZigbangV3Item.as_str().into(),
        lease: lease_of(rent),
        deposit,
        rent,
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
        region_code: String::new(),
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
    Ok(SourceListing {
        url: zigbang_url(building, &id),
        key: SourceKey {
            platform: Platform::Zigbang,
            id,
        },
        format: PayloadFormat::ZigbangList.as_str().into(),
        lease: lease_of(rent),
        deposit,
        rent,
        fee: fee_value(p.get("manage_cost")),
        area_m2: p
            .pointer("/전용면적/m2")
            .and_then(number)
            .or_else(|| p.get("size_m2").and_then(number)),
        floor: parse_floor(floor_text),
        building_floors: p.get("building_floor").and_then(number).map(|f| f as i16),
        layout: layout_of(str_at(p, "room_type_title").unwrap_or("")),
        building,
        direction: None,
        region_code: String::new(),
        gu: addr
            .and_then(|a| str_at(a, "local2"))
            .or_else(|| str_at(p, "address2"))
            .map(str::to_string),
        dong: addr
            .and_then(|a| str_at(a, "local3"))
            .or_else(|| str_at(p, "address3"))
            .map(str::to_string),
        bjd_code: None,
        lot: None,
        location: location_at(p.get("random_location"), Precision::Jittered),
        facilities: Vec::new(),
        subway_stations: Vec::new(),
        broker: None,
        title: str_at(p, "title").unwrap_or("").trim().to_string(),
        image_url: str_at(p, "images_thumbnail").map(str::to_string),
        posted_at: str_at(p, "reg_date").and_then(parse_time),
        updated_at: None,
    })
}

fn zigbang_daily_csv(p: &Value) -> Result<SourceListing, Rejection> {
    let id = id_of(p.get("매물ID")).ok_or_else(|| malformed("매물ID missing"))?;
    check_rental(str_at(p, "거래유형"))?;
    let deposit =
        money_at(p.get("보증금(만원)")).ok_or_else(|| malformed("보증금(만원) missing"))?;
    let rent = money_at(p.get("월세(만원)")).ok_or_else(|| malformed("월세(만원) missing"))?;
    let building = building_of(str_at(p, "매물유형"));
    Ok(SourceListing {
        url: str_at(p, "URL").map_or_else(|| zigbang_url(building, &id), str::to_string),
        key: SourceKey {
            platform: Platform::Zigbang,
            id,
        },
        format: PayloadFormat::ZigbangDailyCsv.as_str().into(),
        lease: lease_of(rent),
        deposit,
        rent,
        fee: None,
        area_m2: p.get("면적(m2)").and_then(number),
        floor: parse_floor(str_at(p, "층").unwrap_or("")),
        building_floors: None,
        layout: layout_code(str_at(p, "방유형").unwrap_or("")),
        building,
        direction: None,
        region_code: String::new(),
        gu: str_at(p, "구군").map(str::to_string),
        dong: str_at(p, "읍면동").map(str::to_string),
        bjd_code: None,
        lot: None,
        location: None,
        facilities: Vec::new(),
        subway_stations: Vec::new(),
        broker: None,
        title: str_at(p, "제목").unwrap_or("").trim().to_string(),
        image_url: None,
        posted_at: None,
        updated_at: None,
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
    Ok(SourceListing {
        url: zigbang_url(building, &id),
        key: SourceKey {
            platform: Platform::Zigbang,
            id,
        },
        format: PayloadFormat::ZigbangSnapshotCsv.as_str().into(),
        lease: lease_of(rent),
        deposit,
        rent,
        fee: fee_value(p.get("manage_cost")),
        area_m2: p.get("size_m2").and_then(number),
        floor: parse_floor(str_at(p, "floor").unwrap_or("")),
        building_floors: None,
        layout: if building == Building::OneRoomHouse {
            Layout::OneRoom
        } else {
            Layout::Unknown
        },
        building,
        direction: None,
        region_code: String::new(),
        gu: str_at(p, "local2")
            .or_else(|| str_at(p, "search_gu"))
            .map(str::to_string),
        dong: str_at(p, "local3")
            .or_else(|| str_at(p, "search_dong"))
            .map(str::to_string),
        bjd_code: None,
        lot: None,
        location,
        facilities: Vec::new(),
        subway_stations: Vec::new(),
        broker: None,
        title: str_at(p, "title").unwrap_or("").trim().to_string(),
        image_url: str_at(p, "thumbnail").map(str::to_string),
        posted_at: None,
        updated_at: None,
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
    Ok(SourceListing {
        url: format!("https://www.dabangapp.com/room/{id}"),
        key: SourceKey {
            platform: Platform::Dabang,
            id,
        },
        format: PayloadFormat::DabangV5Room.as_str().into(),
        lease: lease_of(rent),
        deposit,
        rent,
        fee,
        area_m2,
        floor,
        building_floors: None,
        layout: layout_of(type_name),
        building,
        direction: None,
        region_code: String::new(),
        gu: None,
        dong: str_at(p, "dongName").map(str::to_string),
        bjd_code: None,
        lot: None,
        location: location_at(p.get("randomLocation"), Precision::Jittered),
        facilities: Vec::new(),
        subway_stations: Vec::new(),
        broker: None,
        title: str_at(p, "roomTitle").unwrap_or("").trim().to_string(),
        image_url: p
            .get("imgUrlList")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .map(str::to_string),
        posted_at: None,
        updated_at: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Field parsers (public for the unit tests and the fuzz targets)
// ---------------------------------------------------------------------------------------------

/// Parses an amount written the Korean way into 만원: `1억5000` → 15000, `3억 2,000` → 32000, `7000`,
/// `2억` → 20000, `500만` → 500. `None` for anything else.
pub fn parse_man(text: &str) -> Option<u32> {
    let s: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .collect();
    let s = s
        .strip_suffix("만원")
        .or_else(|| s.strip_suffix('만'))
        .unwrap_or(&s);
    if s.is_empty() {
        return None;
    }
    let (eok, rest) = match s.split_once('억') {
        Some((e, r)) => (e.parse::<u32>().ok()?, r),
        None => (0, s),
    };
    let man = if rest.is_empty() {
        0
    } else {
        rest.parse::<u32>().ok()?
    };
    eok.checked_mul(10_000)?.checked_add(man)
}

/// Parses Dabang's `priceTitle` into (deposit, rent) in 만원: `1000/45`, `1억5000/3`, `2억8000` (전세).
pub fn parse_price_title(text: &str) -> Option<(u32, u32)> {
    match text.split_once('/') {
        Some((d, r)) => Some((parse_man(d)?, parse_man(r)?)),
        None => Some((parse_man(text)?, 0)),
    }
}

/// Parses a 관리비 text: `관리비 8만` → 8, `관리비 9.9만` → 9.9, `관리비 없음` → 0, `관리비 확인 불가` → unknown.
/// The outer `None` means the text is not a fee at all.
pub fn parse_fee_text(text: &str) -> Option<Option<f64>> {
    let t = text.trim_start_matches("관리비").trim();
    if t.contains("확인") || t.contains("불가") || t.contains("문의") {
        return Some(None);
    }
    if t.contains("없음") || t == "0" {
        return Some(Some(0.0));
    }
    let num: String = t
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let v: f64 = num.parse().ok()?;
    Some(Some(if t.ends_with('원') && !t.ends_with("만원") {
        v / 10_000.0
    } else {
        v
    }))
}

/// A 관리비 number in either unit: values of 1,000 and more are 원 (Zigbang's list API and the snapshot
/// send 80000), smaller ones are 만원 (v3 sends 15; an old list sample sent `"1.3"`). Rounded to 0.1 만원.
pub fn fee_value(v: Option<&Value>) -> Option<f64> {
    let x = v.and_then(number)?;
    let man = if x >= 1000.0 { x / 10_000.0 } else { x };
    Some((man * 10.0).round() / 10.0)
}

/// Parses a floor as Zigbang or Dabang write it.
pub fn parse_floor(text: &str) -> Floor {
    let t = text.trim();
    if t.contains("반지") || t.starts_with("지하") || t.starts_with('B') {
        return Floor::SemiBasement;
    }
    if t.contains("옥탑") {
        return Floor::Rooftop;
    }
    let core = t.trim_end_matches('층');
    match core {
        "저" => return Floor::Band(FloorBand::Low),
        "중" => return Floor::Band(FloorBand::Mid),
        "고" => return Floor::Band(FloorBand::High),
        _ => {}
    }
    match core.parse::<i16>() {
        Ok(n) if n >= 1 => Floor::Level(n),
        Ok(_) => Floor::SemiBasement,
        Err(_) => Floor::Unknown,
    }
}

/// Maps `N`, `남`, `남동향`, `SE` … to one of `N NE E SE S SW W NW`.
pub fn parse_direction(text: &str) -> Option<String> {
    let t = text.trim().trim_end_matches('향');
    let d = match t {
        "N" | "북" => "N",
        "NE" | "북동" | "동북" => "NE",
        "E" | "동" => "E",
        "SE" | "남동" | "동남" => "SE",
        "S" | "남" => "S",
        "SW" | "남서" | "서남" => "SW",
        "W" | "서" => "W",
        "NW" | "북서" | "서북" => "NW",
        _ => return None,
    };
    Some(d.into())
}

/// Parses `2025-11-15 12:46:09` (KST, Zigbang), or RFC 3339, into Unix seconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, &fmt)
        .ok()
        .map(|t| t.assume_offset(offset!(+9)).unix_timestamp())
}

fn layout_of(text: &str) -> Layout {
    match text {
        t if t.contains("분리형") => Layout::SeparatedOneRoom,
        t if t.contains("복층") => Layout::Duplex,
        t if t.contains("투룸") || t.contains("쓰리룸") => Layout::TwoRoom,
        t if t.contains("원룸") => Layout::OneRoom,
        _ => Layout::Unknown,
    }
}

/// Zigbang's `room_type` codes: 01 원룸, 02 분리형, 03 복층, 04/05 투룸+, 06 오픈형.
fn layout_code(code: &str) -> Layout {
    match code {
        "01" | "06" => Layout::OneRoom,
        "02" => Layout::SeparatedOneRoom,
        "03" => Layout::Duplex,
        "04" | "05" => Layout::TwoRoom,
        other => layout_of(other),
    }
}

fn building_of(text: Option<&str>) -> Building {
    match text.unwrap_or("") {
        t if t.contains("오피스텔") => Building::Officetel,
        t if t.contains("빌라") => Building::Villa,
        t if t.contains("아파트") => Building::Apartment,
        t if t.contains("원룸") => Building::OneRoomHouse,
        _ => Building::Unknown,
    }
}

fn zigbang_url(building: Building, id: &str) -> String {
    let kind = match building {
        Building::Officetel => "officetel",
        Building::Villa => "villa",
        _ => "oneroom",
    };
    format!("https://sp.zigbang.com/share/{kind}/{id}")
}

fn lease_of(rent: u32) -> Lease {
    if rent == 0 {
        Lease::Jeonse
    } else {
        Lease::Monthly
    }
}

fn check_rental(sales_type: Option<&str>) -> Result<(), Rejection> {
    match sales_type {
        Some(t) if t.contains("매매") => Err(Rejection {
            reason: "out_of_scope",
            detail: format!("a sale ({t}), not a rental"),
        }),
        _ => Ok(()),
    }
}

fn facility_kind(poi_type: &str) -> String {
    match poi_type {
        "지하철역" => "subway",
        "편의점" => "convenience_store",
        "카페" => "cafe",
        "대형마트" => "mart",
        "약국" => "pharmacy",
        "세탁소" => "laundry",
        "버스정류장" => "bus_stop",
        "병원" => "hospital",
        "음식점" => "restaurant",
        other => other,
    }
    .to_string()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A number, or a string holding one (CSV rows arrive as strings).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', "").parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A money amount in 만원: a number, or a Korean amount string.
fn money_at(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| *x >= 0.0 && *x < 4e9)
            .map(|x| x.round() as u32),
        Value::String(s) => parse_man(s),
        _ => None,
    }
}

fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

fn location_at(v: Option<&Value>, precision: Precision) -> Option<Location> {
    let v = v?;
    let (lat, lng) = (
        v.get("lat").and_then(number)?,
        v.get("lng").and_then(number)?,
    );
    (lat != 0.0 || lng != 0.0).then_some(Location {
        lat,
        lng,
        precision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn korean_money_strings_become_manwon() {
        for (text, want) in [
            ("1억5000", Some(15000)),
            ("2억8000", Some(28000)),
            ("3억 2,000", Some(32000)),
            ("3억", Some(30000)),
            ("7000", Some(7000)),
            ("500만", Some(500)),
            ("", None),
            ("abc", None),
            ("1억x", None),
        ] {
            assert_eq!(parse_man(text), want, "{text:?}");
        }
        assert_eq!(parse_price_title("1억5000/3"), Some((15000, 3)));
        assert_eq!(parse_price_title("1000/45"), Some((1000, 45)));
        assert_eq!(parse_price_title("2억8000"), Some((28000, 0)));
        assert_eq!(parse_price_title("/"), None);
    }

    #[test]
    fn fees_know_unknown_from_zero_and_won_from_manwon() {
        assert_eq!(parse_fee_text("관리비 8만"), Some(Some(8.0)));
        assert_eq!(parse_fee_text("관리비 9.9만"), Some(Some(9.9)));
        assert_eq!(parse_fee_text("관리비 없음"), Some(Some(0.0)));
        assert_eq!(parse_fee_text("관리비 확인 불가"), Some(None));
        assert_eq!(parse_fee_text("관리비 ??"), None);
        assert_eq!(fee_value(Some(&serde_json::json!(80000))), Some(8.0));
        assert_eq!(fee_value(Some(&serde_json::json!(95000))), Some(9.5));
        assert_eq!(fee_value(Some(&serde_json::json!(15))), Some(15.0));
        assert_eq!(fee_value(Some(&serde_json::json!("1.3"))), Some(1.3));
        assert_eq!(fee_value(Some(&serde_json::Value::Null)), None);
    }

    #[test]
    fn floors_become_types() {
        assert_eq!(parse_floor("2"), Floor::Level(2));
        assert_eq!(parse_floor("2층"), Floor::Level(2));
        assert_eq!(parse_floor("반지하"), Floor::SemiBasement);
        assert_eq!(parse_floor("반지층"), Floor::SemiBasement);
        assert_eq!(parse_floor("옥탑"), Floor::Rooftop);
        assert_eq!(parse_floor("옥탑방"), Floor::Rooftop);
        assert_eq!(parse_floor("저"), Floor::Band(FloorBand::Low));
        assert_eq!(parse_floor("중층"), Floor::Band(FloorBand::Mid));
        assert_eq!(parse_floor("고"), Floor::Band(FloorBand::High));
        assert_eq!(parse_floor("?"), Floor::Unknown);
        assert!(Floor::Level(3).compatible(Floor::Band(FloorBand::Mid)));
        assert!(!Floor::Level(3).compatible(Floor::Level(4)));
        assert!(!Floor::SemiBasement.compatible(Floor::Level(1)));
    }

    #[test]
    fn directions_and_times() {
        assert_eq!(parse_direction("남동향").as_deref(), Some("SE"));
        assert_eq!(parse_direction("NW").as_deref(), Some("NW"));
        assert_eq!(parse_direction("x"), None);
        assert_eq!(parse_time("2025-11-15 12:46:09"), Some(1_763_178_369));
        assert_eq!(parse_time("2025-11-15T03:46:09Z"), Some(1_763_178_369));
    }
}
