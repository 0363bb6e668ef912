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

/// The partition Kafka's default partitioner (and librdkafka's `murmur2_random`) gives a key:
/// `(murmur2(key) & 0x7fffffff) % partitions`. The processor's benchmark and tests use it to place
/// records as the broker would.
pub fn murmur2_partition(key: &[u8], partitions: u32) -> u32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// Kafka's murmur2 (seed 0x9747b28c), as in `org.apache.kafka.common.utils.Utils.murmur2`.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
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
    fn murmur2_matches_kafka() {
        // Values from Kafka's own UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(
            murmur2_partition(b"11620", 8),
            murmur2_partition(b"11620", 8)
        );
    }

    #[test]
    fn broker_key_joins_number_and_trimmed_person() {
        assert_eq!(
            broker_key("92380000-4972", " 홍석순 "),
            "92380000-4972|홍석순"
        );
    }
}
