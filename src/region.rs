//! 시군구 region codes: the partition key of `observed.v1` and `sweeps.v1`.
//!
//! roomstream serves Seoul's 25 자치구. A listing whose district is outside them or cannot be told
//! (Zigbang's geohash tiles pull in 경기 listings; Dabang's bbox can reach 수원) is keyed [`UNKNOWN`],
//! so it is still processed, counted and visible, never dropped.

/// The region code of a listing whose 시군구 is not one of Seoul's 25 or cannot be told.
pub const UNKNOWN: &str = "00000";

/// Seoul's 25 자치구: (5-digit 시군구 code, name).
pub const SEOUL_GU: [(&str, &str); 25] = [
    ("11110", "종로구"),
    ("11140", "중구"),
    ("11170", "용산구"),
    ("11200", "성동구"),
    ("11215", "광진구"),
    ("11230", "동대문구"),
    ("11260", "중랑구"),
    ("11290", "성북구"),
    ("11305", "강북구"),
    ("11320", "도봉구"),
    ("11350", "노원구"),
    ("11380", "은평구"),
    ("11410", "서대문구"),
    ("11440", "마포구"),
    ("11470", "양천구"),
    ("11500", "강서구"),
    ("11530", "구로구"),
    ("11545", "금천구"),
    ("11560", "영등포구"),
    ("11590", "동작구"),
    ("11620", "관악구"),
    ("11650", "서초구"),
    ("11680", "강남구"),
    ("11710", "송파구"),
    ("11740", "강동구"),
];

/// The code of a Seoul 자치구 by its name (`"관악구"` → `"11620"`).
pub fn code_for_gu(name: &str) -> Option<&'static str> {
    let name = name.trim();
    SEOUL_GU.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// The name of a Seoul 자치구 by its code.
pub fn gu_name(code: &str) -> Option<&'static str> {
    SEOUL_GU.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The region of a 시도 + 시군구 pair as platforms write them (`서울시`/`서울특별시` + `마포구`):
/// a Seoul 자치구 code, else [`UNKNOWN`].
pub fn code_for_address(sido: &str, sigungu: &str) -> &'static str {
    if sido.trim().starts_with("서울") {
        code_for_gu(sigungu).unwrap_or(UNKNOWN)
    } else {
        UNKNOWN
    }
}

/// The region of a 10-digit 법정동 code (`1144012500` → `11440`), if it is a Seoul 자치구.
pub fn code_for_bjd(bjd: &str) -> Option<&'static str> {
    let prefix = bjd.get(..5)?;
    SEOUL_GU.iter().find(|(c, _)| *c == prefix).map(|(c, _)| *c)
}

/// Whether `code` is a valid region key: one of the 25 codes or [`UNKNOWN`].
pub fn is_valid(code: &str) -> bool {
    code == UNKNOWN || gu_name(code).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gu_names_map_to_codes_and_back() {
        for (code, name) in SEOUL_GU {
            assert_eq!(code_for_gu(name), Some(code), "{name}");
            assert_eq!(gu_name(code), Some(name), "{code}");
        }
        assert_eq!(code_for_address("서울시", "마포구"), "11440");
        assert_eq!(code_for_address("서울특별시", "관악구"), "11620");
        assert_eq!(code_for_address("경기도", "중구"), UNKNOWN);
        assert_eq!(code_for_bjd("1144012500"), Some("11440"));
        assert_eq!(code_for_bjd("4113510900"), None);
        assert!(is_valid("00000") && is_valid("11680") && !is_valid("11111"));
    }
}
