//! Message keys of roomstream's topics and the normalizations they depend on.
//!
//! Keys are contracts: `observed.v1` and `sweeps.v1` are keyed by the 5-digit 시군구 code so that one
//! processor instance owns a whole region; `brokers.v1` is compacted on normalized registration number
//! plus person, the join key of the seed's "안심 중개사" check (docs/platforms.md §5).

/// The key of a broker record: normalized registration number and person name joined by `|`.
pub fn broker_key(registration_number: &str, person_name: &str) -> String {
    format!("{registration_number}|{}", person_name.trim())
}

/// Normalizes a 중개사무소 등록번호 written in any of the three formats seen in the wild, so that the
/// registry and the platforms agree:
///
/// | written as | normalized |
/// |---|---|
/// | `11110-2024-00013` (new: 시군구코드-연도-순번) | `11110-2024-00013` |
/// | `가-92280000-공인2527` (old, with 가 and 공인 markers) | `92280000-2527` |
/// | `92380000-4972` (Zigbang `realtor.officeRegNumber`) | `92380000-4972` |
///
/// Whitespace, full-width digits and hyphen variants are folded; leading zeros of the serial in the old
/// format are dropped (`92280000-02527` → `92280000-2527`). Anything else is returned trimmed and
/// upper-cased, so that equal inputs still meet.
pub fn normalize_registration(raw: &str) -> String {
    let folded: String = raw
        .chars()
        .filter_map(|c| match c {
            '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
            '－' | '‐' | '–' | '—' | '_' => Some('-'),
            c if c.is_whitespace() => None,
            c => Some(c),
        })
        .collect();
    let groups: Vec<&str> = folded
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    match groups.as_slice() {
        [sgg, year, serial] if sgg.len() == 5 && year.len() == 4 => {
            format!("{sgg}-{year}-{serial:0>5}")
        }
        [office, serial] if office.len() >= 6 => {
            let serial = serial.trim_start_matches('0');
            format!("{office}-{}", if serial.is_empty() { "0" } else { serial })
        }
        _ => folded.to_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_registration_formats_normalize_to_one_form() {
        let cases = [
            ("11110-2024-00013", "11110-2024-00013"),
            (" 11110-2024-13 ", "11110-2024-00013"),
            ("가-92280000-공인2527", "92280000-2527"),
            ("92280000-02527", "92280000-2527"),
            ("92380000-4972", "92380000-4972"),
            ("９２３８００００－４９７２", "92380000-4972"),
            ("abc", "ABC"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_registration(raw), want, "case {raw:?}");
        }
    }

    #[test]
    fn broker_key_joins_number_and_trimmed_person() {
        assert_eq!(
            broker_key("92380000-4972", " 홍석순 "),
            "92380000-4972|홍석순"
        );
    }
}
