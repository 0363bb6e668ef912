//! Renders a simulated flat the way each platform would send it: Zigbang's v3 detail or batch-list
//! item, Dabang's v5 room-list item, with each platform's quirks (Dabang's `priceTitle`/`roomDesc`
//! strings and jittered `randomLocation`, Zigbang's 관리비 in 만원 in v3 but in 원 in the list API).

use serde_json::{Value, json};

use super::world::{Episode, Flat, FlatKind, Floor, World};
use crate::crawl::calibration::Calibration;
use crate::region;

const ZIGBANG_WORDS: [&str; 8] = [
    "역세권",
    "풀옵션",
    "신축급",
    "채광좋은",
    "즉시입주",
    "대로변",
    "조용한",
    "가성비",
];
const DABANG_WORDS: [&str; 8] = [
    "★",
    "실매물",
    "직거래급",
    "깔끔한",
    "넓은",
    "주차가능",
    "반려동물",
    "빠른입주",
];

/// Dabang's price string: `1000/45`, `1억5000/3`, `2억8000`, `3억`, sometimes `3억 2,000`.
pub fn dabang_price_title(deposit: u32, rent: u32, variant: u32) -> String {
    let dep = if deposit >= 10_000 {
        let (eok, rest) = (deposit / 10_000, deposit % 10_000);
        match (rest, variant % 4) {
            (0, _) => format!("{eok}억"),
            (r, 0) if r >= 1000 => format!("{eok}억 {},{:03}", r / 1000, r % 1000),
            (r, _) => format!("{eok}억{r}"),
        }
    } else {
        deposit.to_string()
    };
    if rent == 0 {
        dep
    } else {
        format!("{dep}/{rent}")
    }
}

/// Dabang's description: `2층, 19.81m², 관리비 8만` and its variants.
pub fn dabang_room_desc(flat: &Flat) -> String {
    let floor = match flat.floor {
        Floor::SemiBasement => "반지층".to_string(),
        Floor::Rooftop => "옥탑방".to_string(),
        Floor::Level(n) if flat.officetel => band(n, flat.building_floors).to_string() + "층",
        Floor::Level(n) => format!("{n}층"),
    };
    let area = format!("{:.2}", flat.area)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string();
    let fee = match flat.fee {
        None => "관리비 확인 불가".to_string(),
        Some(0.0) => "관리비 없음".to_string(),
        Some(f) if f.fract() == 0.0 => format!("관리비 {f:.0}만"),
        Some(f) => format!("관리비 {f:.1}만"),
    };
    format!("{floor}, {area}m², {fee}")
}

/// 저/중/고 band of a level in a building.
fn band(level: i32, building: i32) -> &'static str {
    let third = (building as f64 / 3.0).max(1.0);
    match level as f64 {
        l if l <= third => "저",
        l if l <= 2.0 * third => "중",
        _ => "고",
    }
}

fn title(flat: &Flat, words: &[&str; 8], salt: u32) -> String {
    if flat.kind == FlatKind::Junk {
        return "테스트 매물(QA) 문의금지".into();
    }
    let s = flat.title_seed.wrapping_add(salt);
    let a = words[(s % 8) as usize];
    let b = words[((s / 8) % 8) as usize];
    let kind = if flat.officetel {
        "오피스텔"
    } else {
        flat.room_type
    };
    if flat.kind == FlatKind::Bait {
        return format!("{a} 초특가 {kind} 이 가격 마지막!! {b}");
    }
    format!("{a} {kind} {b} {:.0}평", flat.area / 3.3058)
}

fn address(cal: &Calibration, flat: &Flat) -> (&'static str, &'static str, String) {
    if flat.kind == FlatKind::Junk {
        return ("전라남도", "진도군", "조도면 맹골도리".into());
    }
    let gu = region::gu_name(flat.gu_code).unwrap_or_default();
    (
        if flat.index.is_multiple_of(3) {
            "서울특별시"
        } else {
            "서울시"
        },
        gu,
        cal.dong[flat.dong].dong.clone(),
    )
}

/// Zigbang v3 detail response (`zigbang.v3.item`) of a flat's episode on a day.
pub fn zigbang_v3(
    world: &World,
    cal: &Calibration,
    flat: &Flat,
    ep: &Episode,
    day: u32,
    updated_at: &str,
) -> Value {
    let (deposit, rent) = flat.price_on(day);
    let (sido, gu, dong) = address(cal, flat);
    let person = &world.people[flat.broker];
    let office = &world.offices[person.office];
    let floor = match flat.floor {
        Floor::SemiBasement => "반지하".to_string(),
        Floor::Rooftop => "옥탑방".to_string(),
        Floor::Level(n) if flat.officetel => band(n, flat.building_floors).to_string(),
        Floor::Level(n) => n.to_string(),
    };
    let image_owner = if flat.kind == FlatKind::Bait {
        44_000_000 + u64::from(flat.images)
    } else {
        ep.seq
    };
    let images: Vec<String> = (1..=4)
        .map(|i| format!("https://ic.zigbang.com/ic/items/{image_owner}/{i}.jpg"))
        .collect();
    let bjd = if flat.kind == FlatKind::Junk {
        "4690036027".to_string()
    } else {
        format!("{}{:05}", flat.gu_code, 10100 + flat.dong % 400)
    };
    let mut pois = Vec::new();
    if let Some(m) = flat.subway_m {
        pois.push(json!({"exists": true, "poiType": "지하철역", "distance": m, "transport": "foot", "timeTaken": m * 9 / 10}));
    }
    if let Some(m) = flat.store_m {
        pois.push(json!({"exists": true, "poiType": "편의점", "distance": m, "transport": "foot", "timeTaken": m * 9 / 10}));
    }
    json!({
        "agent": {
            "agentTitle": office.name, "agentName": person.name, "agentUserNo": 500_000 + flat.broker,
            "agentUserType": if person.position_code == 1 { "대표공인중개사" } else { "소속공인중개사" }
        },
        "realtor": {
            "userNo": 500_000 + flat.broker, "name": person.name, "officeTitle": office.name,
            "officeRegNumber": office.registration_zigbang, "status": "ACTIVE",
            "local": {"local1": "서울시", "local2": region::gu_name(office.gu_code).unwrap_or_default()}
        },
        "agentUserNos": [],
        "subways": flat.subway_m.map_or(json!([]), |_| json!([{"id": 100 + flat.dong, "name": format!("{dong}역"), "description": "2호선"}])),
        "danji": null,
        "tags": [],
        "item": {
            "itemId": ep.seq,
            "salesType": if rent == 0 { "전세" } else { "월세" },
            "serviceType": if flat.officetel { "오피스텔" } else { "원룸" },
            "images": images,
            "imageThumbnail": images[0],
            "price": {"deposit": deposit, "rent": rent},
            "area": {"전용면적M2": flat.area, "계약면적M2": ((flat.area * 1.6) * 100.0).round() / 100.0},
            "roomType": flat.room_type,
            "title": title(flat, &ZIGBANG_WORDS, 0),
            "description": format!("{dong} {} 매물입니다. 방문 전 연락주세요.", flat.room_type),
            "status": "open",
            "randomLocation": {"lat": flat.lat, "lng": flat.lng},
            "location": {"lat": flat.lat, "lng": flat.lng},
            "elevator": flat.building_floors >= 6,
            "roomDirection": flat.direction,
            "directionCriterion": "거실",
            "bjdCode": bjd,
            "floor": {"allFloors": flat.building_floors.to_string(), "floor": floor},
            "manageCost": match flat.fee {
                Some(f) => json!({"amount": f, "includes": ["수도", "인터넷"], "notIncludes": ["전기", "가스"]}),
                None => json!({"amount": null, "includes": [], "notIncludes": []}),
            },
            "updatedAt": updated_at,
            "neighborhoods": {"nearbyPois": pois},
            "addressOrigin": {"local1": sido, "local2": gu, "local3": dong, "local4": "", "fullText": format!("{sido} {gu} {dong}"), "localText": format!("{gu} {dong}")},
            "jibunAddress": format!("{gu} {dong} {}", flat.lot),
            "itemBmType": "ZIGBANG"
        }
    })
}

/// Zigbang batch-list item (`zigbang.list`): 관리비 in 원, no broker, coordinates as `random_location`.
pub fn zigbang_list(
    cal: &Calibration,
    flat: &Flat,
    ep: &Episode,
    day: u32,
    reg_date: &str,
) -> Value {
    let (deposit, rent) = flat.price_on(day);
    let (sido, gu, dong) = address(cal, flat);
    let floor = match flat.floor {
        Floor::SemiBasement => "반지하".to_string(),
        Floor::Rooftop => "옥탑방".to_string(),
        Floor::Level(n) if flat.officetel => band(n, flat.building_floors).to_string(),
        Floor::Level(n) => n.to_string(),
    };
    let room_type = match flat.room_type {
        "분리형원룸" => "02",
        "복층형원룸" => "03",
        "투룸" => "04",
        _ => "01",
    };
    json!({
        "item_id": ep.seq,
        "section_type": null,
        "images_thumbnail": format!("https://ic.zigbang.com/ic/items/{}/1.jpg", if flat.kind == FlatKind::Bait { 44_000_000 + u64::from(flat.images) } else { ep.seq }),
        "sales_type": if rent == 0 { "전세" } else { "월세" },
        "sales_title": if rent == 0 { "전세" } else { "월세" },
        "deposit": deposit,
        "rent": rent,
        "size_m2": flat.area,
        "전용면적": {"m2": flat.area, "p": format!("{:.1}", flat.area / 3.3058)},
        "room_type": room_type,
        "room_type_title": flat.room_type,
        "floor": floor,
        "floor_string": floor,
        "building_floor": flat.building_floors.to_string(),
        "title": title(flat, &ZIGBANG_WORDS, 0),
        "is_first_movein": false,
        "status": true,
        "tags": [],
        "service_type": if flat.officetel { "오피스텔" } else { "원룸" },
        "random_location": {"lat": flat.lat, "lng": flat.lng},
        "manage_cost": flat.fee.map(|f| (f * 10_000.0).round() as u64),
        "reg_date": reg_date,
        "is_new": day == ep.from_day,
        "addressOrigin": {"local1": sido, "local2": gu, "local3": dong, "local4": "", "fullText": format!("{sido} {gu} {dong}"), "localText": format!("{gu} {dong}")},
        "address": format!("{gu} {dong}"),
        "address1": sido, "address2": gu, "address3": dong,
        "item_bm_type": "ZIGBANG"
    })
}

/// Dabang v5 room-list item (`dabang.v5.room`): strings for price and description, jittered location.
pub fn dabang_room(cal: &Calibration, flat: &Flat, ep: &Episode, day: u32) -> Value {
    let (deposit, rent) = flat.price_on(day.saturating_sub(flat.dabang_lag));
    // Dabang jitters coordinates by up to ~150 m, the same way each time for one listing.
    let j = ep.seq.wrapping_mul(2_654_435_761) % 10_000;
    let (dlat, dlng) = (
        (j % 100) as f64 / 100.0 - 0.5,
        (j / 100) as f64 / 100.0 - 0.5,
    );
    let token = |i: u32| {
        format!(
            "{:021x}",
            (u64::from(flat.images) << 8 | u64::from(i)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        )
    };
    let dong = if flat.kind == FlatKind::Junk {
        "맹골도리".to_string()
    } else {
        cal.dong[flat.dong].dong.clone()
    };
    json!({
        "seq": ep.seq,
        "id": ep.id,
        "roomTypeName": if flat.officetel { "오피스텔" } else if flat.room_type == "투룸" { "투룸" } else { "원룸" },
        "randomLocation": {"lat": ((flat.lat + dlat * 0.0027) * 1e7).round() / 1e7, "lng": ((flat.lng + dlng * 0.0034) * 1e7).round() / 1e7},
        "complexName": null,
        "roomTitle": title(flat, &DABANG_WORDS, 7),
        "roomDesc": dabang_room_desc(flat),
        "priceTypeName": if rent == 0 { "전세" } else { "월세" },
        "priceTitle": dabang_price_title(deposit, rent, flat.title_seed),
        "imgUrlList": (1..=3).map(|i| format!("https://d1774jszgerdmk.cloudfront.net/512/{}", token(i))).collect::<Vec<_>>(),
        "isExtendUI": false,
        "isFavorite": false,
        "isPano": false,
        "isQuick": flat.title_seed.is_multiple_of(5),
        "isDirect": false,
        "isOwner": false,
        "isNaverVerify": false,
        "formatNaverVerifyDate": null,
        "isIconFocus": false,
        "iconFocusType": null,
        "gid": 10_000 + flat.dong,
        "dongName": dong
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dabang_price_titles_have_the_real_shapes() {
        let cases = [
            ((1000, 45, 1), "1000/45"),
            ((15000, 3, 1), "1억5000/3"),
            ((28000, 0, 1), "2억8000"),
            ((30000, 0, 1), "3억"),
            ((32000, 0, 4), "3억 2,000"),
            ((7000, 0, 1), "7000"),
        ];
        for ((dep, rent, v), want) in cases {
            assert_eq!(dabang_price_title(dep, rent, v), want, "{dep}/{rent}");
        }
    }

    #[test]
    fn floor_bands_split_a_building_in_thirds() {
        assert_eq!((band(1, 15), band(7, 15), band(15, 15)), ("저", "중", "고"));
    }
}
