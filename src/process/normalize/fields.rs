//! Field parsers shared by the formats: Korean money strings, 관리비 in either unit, floors, directions,
//! times, and the JSON accessors that accept a number or a string holding one (CSV rows arrive as
//! strings). Public ones are tested here and meant for the fuzz targets.

use serde_json::Value;
use time::macros::offset;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::Rejection;
use crate::process::model::{Building, Floor, FloorBand, Layout, Location, Precision};

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

pub(super) fn layout_of(text: &str) -> Layout {
    match text {
        t if t.contains("분리형") => Layout::SeparatedOneRoom,
        t if t.contains("복층") => Layout::Duplex,
        t if t.contains("투룸") || t.contains("쓰리룸") => Layout::TwoRoom,
        t if t.contains("원룸") => Layout::OneRoom,
        _ => Layout::Unknown,
    }
}

/// Zigbang's `room_type` codes: 01 원룸, 02 분리형, 03 복층, 04/05 투룸+, 06 오픈형.
pub(super) fn layout_code(code: &str) -> Layout {
    match code {
        "01" | "06" => Layout::OneRoom,
        "02" => Layout::SeparatedOneRoom,
        "03" => Layout::Duplex,
        "04" | "05" => Layout::TwoRoom,
        other => layout_of(other),
    }
}

pub(super) fn building_of(text: Option<&str>) -> Building {
    match text.unwrap_or("") {
        t if t.contains("오피스텔") => Building::Officetel,
        t if t.contains("빌라") => Building::Villa,
        t if t.contains("아파트") => Building::Apartment,
        t if t.contains("원룸") => Building::OneRoomHouse,
        _ => Building::Unknown,
    }
}

pub(super) fn zigbang_url(building: Building, id: &str) -> String {
    let kind = match building {
        Building::Officetel => "officetel",
        Building::Villa => "villa",
        _ => "oneroom",
    };
    format!("https://sp.zigbang.com/share/{kind}/{id}")
}

pub(super) fn check_rental(sales_type: Option<&str>) -> Result<(), Rejection> {
    match sales_type {
        Some(t) if t.contains("매매") => Err(Rejection {
            reason: "out_of_scope",
            detail: format!("a sale ({t}), not a rental"),
        }),
        _ => Ok(()),
    }
}

pub(super) fn facility_kind(poi_type: &str) -> String {
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

pub(super) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A number, or a string holding one (CSV rows arrive as strings).
pub(super) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().replace(',', "").parse().ok(),
        _ => None,
    }
    .filter(|x: &f64| x.is_finite())
}

/// A money amount in 만원: a number, or a Korean amount string.
pub(super) fn money_at(v: Option<&Value>) -> Option<u32> {
    match v? {
        Value::Number(n) => n
            .as_f64()
            .filter(|x| *x >= 0.0 && *x < 4e9)
            .map(|x| x.round() as u32),
        Value::String(s) => parse_man(s),
        _ => None,
    }
}

pub(super) fn id_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Number(n) => n.as_u64().map(|n| n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    }
}

pub(super) fn location_at(v: Option<&Value>, precision: Precision) -> Option<Location> {
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
