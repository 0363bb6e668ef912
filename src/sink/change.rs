//! The sinks' reading of `listings.v1`: one [`Change`] per record — an upsert with the listing's
//! fields flattened into columns, or a deletion — and the order of versions that every sink guards
//! writes with.
//!
//! This follows the topic's JSON Schema (`topics/listings.v1.schema.json`), not the processor's Rust
//! types: a sink depends on the contract, so the processor can change inside without touching it, and
//! a record another producer wrote is read the same way. A value that does not follow the contract is
//! a [`Reject`] for the DLQ, never a lost or half-written row.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One record of `listings.v1`, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The canonical id (the record key).
    pub listing_id: String,
    /// Partition of `listings.v1`.
    pub partition: i32,
    /// Offset in that partition.
    pub offset: i64,
    /// `version.clock` of the value, or the tombstone's `roomstream.clock` header (None: a tombstone
    /// without one, which then orders by offset alone against the stored version).
    pub clock: Option<i64>,
    /// 5-digit 시군구 code (None: a tombstone that did not say).
    pub region: Option<String>,
    /// The listing, or None for a deletion.
    pub row: Option<Box<ListingRow>>,
}

impl Change {
    /// Whether this change should replace a stored version `(clock, offset)`: a newer clock, or the
    /// same clock published later. A tombstone without a clock takes the stored clock.
    pub fn newer_than(&self, stored: Option<(i64, i64)>) -> bool {
        match stored {
            None => true,
            Some((clock, offset)) => (self.clock.unwrap_or(clock), self.offset) > (clock, offset),
        }
    }

    /// The version this change leaves stored.
    pub fn version(&self, stored: Option<(i64, i64)>) -> (i64, i64) {
        (
            self.clock.or(stored.map(|s| s.0)).unwrap_or_default(),
            self.offset,
        )
    }
}

/// A record that could not be read as a listing, for the DLQ.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Partition of `listings.v1`.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The key, if it had one.
    pub key: Option<String>,
    /// Why.
    pub reason: String,
    /// The value as received.
    pub value: Option<Vec<u8>>,
}

/// A listing flattened into the columns the stores index, plus the parts kept as documents.
#[derive(Debug, Clone, PartialEq)]
pub struct ListingRow {
    pub listing_id: String,
    pub region_code: String,
    pub gu: Option<String>,
    pub dong: Option<String>,
    pub bjd_code: Option<String>,
    /// `monthly` or `jeonse`.
    pub lease: String,
    pub deposit: i64,
    pub rent: i64,
    pub fee: Option<f64>,
    /// 월세 + 관리비 (관리비 unknown counts 0), 만원.
    pub rent_with_fee: f64,
    /// The score's monthly cost (월세 + 관리비 + the deposit's opportunity cost), 만원.
    pub monthly_cost: Option<f64>,
    pub area_m2: Option<f64>,
    pub area_pyeong: Option<f64>,
    /// `level`, `band`, `semi_basement`, `rooftop` or `unknown`.
    pub floor_kind: String,
    pub floor_level: Option<i64>,
    /// `low`, `mid` or `high` for a band.
    pub floor_band: Option<String>,
    pub building_floors: Option<i64>,
    pub layout: String,
    pub building: String,
    pub direction: Option<String>,
    pub lat: Option<f64>,
    pub lng: Option<f64>,
    /// Nearest facilities by kind, metres.
    pub facilities: BTreeMap<String, i64>,
    pub title: String,
    pub image_url: Option<String>,
    /// Unix seconds of `first_seen_at`.
    pub first_seen: i64,
    pub posted_at: Option<String>,
    pub updated_at: Option<String>,
    /// `verified`, `unverified` or `unknown`.
    pub broker_status: String,
    pub broker_registration: Option<String>,
    pub broker_person: Option<String>,
    pub broker_office: Option<String>,
    pub broker_reason: String,
    pub score_total: f64,
    /// cost, value, facilities, floor, direction, broker, freshness (None: unknown).
    pub components: [Option<f64>; 7],
    pub bait_risk: f64,
    pub bait_warning: bool,
    pub members: Vec<MemberRow>,
    pub prices: Vec<PriceRow>,
    /// `score.explanation` and `score.bait.evidence`, as JSON.
    pub score_explanation: String,
    /// `merge` (threshold and links with their evidence), as JSON.
    pub merge_explanation: String,
    /// Platforms among the members, sorted (`dabang`, `zigbang`).
    pub platforms: Vec<String>,
    /// SHA-256 of the value as published (hex), so a store can prove it holds exactly that.
    pub value_sha256: String,
}

/// Names of the score components, in [`ListingRow::components`] order (the order every stage uses).
pub use crate::rank::COMPONENTS;

/// Facilities with a column of their own (the seed's six), in bit order of the facility mask.
pub const FACILITIES: [&str; 6] = [
    "subway",
    "convenience_store",
    "cafe",
    "mart",
    "restaurant",
    "hospital",
];

/// One source listing of a canonical listing.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberRow {
    pub platform: String,
    pub source_listing_id: String,
    pub source: String,
    pub url: String,
    pub deposit: i64,
    pub rent: i64,
    pub fee: Option<f64>,
    pub title: String,
    pub first_seen_at: String,
}

/// One price step.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    /// Position in the history, oldest 0.
    pub seq: i64,
    pub from: String,
    pub deposit: i64,
    pub rent: i64,
    pub fee: Option<f64>,
}

impl ListingRow {
    /// Bit i set when facility [`FACILITIES`]\[i] is known nearby.
    pub fn facility_mask(&self) -> i64 {
        FACILITIES
            .iter()
            .enumerate()
            .filter(|(_, f)| self.facilities.contains_key(**f))
            .map(|(i, _)| 1i64 << i)
            .sum()
    }

    /// Nearest distance of one of [`FACILITIES`].
    pub fn facility(&self, kind: &str) -> Option<i64> {
        self.facilities.get(kind).copied()
    }
}

// The JSON shapes, as the schema has them (unknown fields ignored: additions are not breaking).
#[derive(Deserialize)]
struct Doc {
    listing_id: String,
    region_code: String,
    version: DocVersion,
    gu: Option<String>,
    dong: Option<String>,
    bjd_code: Option<String>,
    lease: String,
    deposit: i64,
    rent: i64,
    fee: Option<f64>,
    area_m2: Option<f64>,
    area_pyeong: Option<f64>,
    floor: Value,
    building_floors: Option<i64>,
    #[serde(default = "unknown")]
    layout: String,
    #[serde(default = "unknown")]
    building: String,
    direction: Option<String>,
    location: Option<DocLocation>,
    #[serde(default)]
    facilities: BTreeMap<String, f64>,
    #[serde(default)]
    title: String,
    image_url: Option<String>,
    posted_at: Option<String>,
    updated_at: Option<String>,
    first_seen_at: String,
    broker: DocBroker,
    members: Vec<DocMember>,
    price_history: Vec<DocPrice>,
    merge: Value,
    score: DocScore,
}

fn unknown() -> String {
    "unknown".into()
}

#[derive(Deserialize)]
struct DocVersion {
    clock: i64,
}

#[derive(Deserialize)]
struct DocLocation {
    lat: f64,
    lng: f64,
}

#[derive(Deserialize)]
struct DocBroker {
    status: String,
    registration_number: Option<String>,
    person: Option<String>,
    office: Option<String>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct DocMember {
    platform: String,
    source_listing_id: String,
    source: String,
    url: String,
    #[serde(default)]
    deposit: i64,
    #[serde(default)]
    rent: i64,
    fee: Option<f64>,
    #[serde(default)]
    title: String,
    first_seen_at: String,
}

#[derive(Deserialize)]
struct DocPrice {
    from: String,
    deposit: i64,
    rent: i64,
    fee: Option<f64>,
}

#[derive(Deserialize)]
struct DocScore {
    total: f64,
    components: BTreeMap<String, Option<f64>>,
    bait: DocBait,
    explanation: Value,
}

#[derive(Deserialize)]
struct DocBait {
    risk: f64,
    warning: bool,
    #[serde(default)]
    evidence: Value,
}

/// Unix seconds of an RFC 3339 time (0 when unreadable).
fn unix(t: &str) -> i64 {
    time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .unwrap_or_default()
}

/// Reads one record: `value` None is a tombstone (`clock`/`region` from its headers).
pub fn decode(
    partition: i32,
    offset: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: (Option<i64>, Option<String>),
) -> Result<Change, Reject> {
    let reject = |reason: String| Reject {
        partition,
        offset,
        key: key.map(|k| String::from_utf8_lossy(k).into_owned()),
        reason,
        value: value.map(<[u8]>::to_vec),
    };
    let Some(id) = key
        .and_then(|k| std::str::from_utf8(k).ok())
        .filter(|k| !k.is_empty())
    else {
        return Err(reject("listings.v1 record without a UTF-8 key".into()));
    };
    let Some(bytes) = value else {
        return Ok(Change {
            listing_id: id.to_string(),
            partition,
            offset,
            clock: headers.0,
            region: headers.1,
            row: None,
        });
    };
    let doc: Doc = serde_json::from_slice(bytes)
        .map_err(|e| reject(format!("listings.v1 value does not follow its schema: {e}")))?;
    if doc.listing_id != id {
        return Err(reject(format!(
            "key {id} differs from listing_id {}",
            doc.listing_id
        )));
    }
    let row = flatten(doc, bytes);
    if let Some(why) = too_long(&row.0) {
        return Err(reject(why));
    }
    Ok(Change {
        listing_id: id.to_string(),
        partition,
        offset,
        clock: Some(row.1),
        region: Some(row.0.region_code.clone()),
        row: Some(Box::new(row.0)),
    })
}

/// The widths of the stores' key and code columns (`migrations/mysql/`): a value beyond them would fail
/// its whole batch on every retry, so it is a reject instead.
fn too_long(r: &ListingRow) -> Option<String> {
    let limits: [(&str, Option<&str>, usize); 13] = [
        ("listing_id", Some(&r.listing_id), 40),
        ("region_code", Some(&r.region_code), 5),
        ("gu", r.gu.as_deref(), 40),
        ("dong", r.dong.as_deref(), 40),
        ("bjd_code", r.bjd_code.as_deref(), 10),
        ("lease", Some(&r.lease), 10),
        ("floor_band", r.floor_band.as_deref(), 8),
        ("layout", Some(&r.layout), 24),
        ("building", Some(&r.building), 24),
        ("direction", r.direction.as_deref(), 8),
        (
            "broker.registration_number",
            r.broker_registration.as_deref(),
            64,
        ),
        ("broker.person", r.broker_person.as_deref(), 64),
        ("broker.office", r.broker_office.as_deref(), 200),
    ];
    for (name, v, max) in limits {
        if let Some(v) = v
            && v.chars().count() > max
        {
            return Some(format!("{name} is longer than {max} characters"));
        }
    }
    r.members
        .iter()
        .find(|m| {
            m.source_listing_id.chars().count() > 64 || m.platform.len() > 16 || m.source.len() > 16
        })
        .map(|m| {
            format!(
                "member {} has an id or platform beyond the column widths",
                m.source_listing_id
            )
        })
}

fn flatten(d: Doc, bytes: &[u8]) -> (ListingRow, i64) {
    let (floor_kind, floor_level, floor_band) = match &d.floor {
        Value::String(s) => (s.clone(), None, None),
        Value::Object(m) if m.contains_key("level") => {
            ("level".into(), m.get("level").and_then(Value::as_i64), None)
        }
        Value::Object(m) if m.contains_key("band") => (
            "band".into(),
            None,
            m.get("band").and_then(Value::as_str).map(str::to_string),
        ),
        _ => ("unknown".into(), None, None),
    };
    let mut platforms: Vec<String> = d.members.iter().map(|m| m.platform.clone()).collect();
    platforms.sort();
    platforms.dedup();
    let components = COMPONENTS.map(|c| d.score.components.get(c).copied().flatten());
    let monthly_cost = d
        .score
        .explanation
        .get("monthly_cost")
        .and_then(Value::as_f64);
    let explanation = serde_json::json!({
        "explanation": d.score.explanation,
        "bait_evidence": d.score.bait.evidence,
    });
    let row = ListingRow {
        rent_with_fee: d.rent as f64 + d.fee.unwrap_or(0.0),
        monthly_cost,
        first_seen: unix(&d.first_seen_at),
        floor_kind,
        floor_level,
        floor_band,
        lat: d.location.as_ref().map(|l| l.lat),
        lng: d.location.as_ref().map(|l| l.lng),
        facilities: d
            .facilities
            .iter()
            .map(|(k, v)| (k.clone(), v.round() as i64))
            .collect(),
        broker_status: d.broker.status,
        broker_registration: d.broker.registration_number,
        broker_person: d.broker.person,
        broker_office: d.broker.office,
        broker_reason: d.broker.reason,
        score_total: d.score.total,
        components,
        bait_risk: d.score.bait.risk,
        bait_warning: d.score.bait.warning,
        members: d
            .members
            .into_iter()
            .map(|m| MemberRow {
                platform: m.platform,
                source_listing_id: m.source_listing_id,
                source: m.source,
                url: m.url,
                deposit: m.deposit,
                rent: m.rent,
                fee: m.fee,
                title: m.title,
                first_seen_at: m.first_seen_at,
            })
            .collect(),
        prices: d
            .price_history
            .into_iter()
            .enumerate()
            .map(|(i, p)| PriceRow {
                seq: i as i64,
                from: p.from,
                deposit: p.deposit,
                rent: p.rent,
                fee: p.fee,
            })
            .collect(),
        score_explanation: explanation.to_string(),
        merge_explanation: d.merge.to_string(),
        platforms,
        value_sha256: hex(&Sha256::digest(bytes)),
        listing_id: d.listing_id,
        region_code: d.region_code,
        gu: d.gu,
        dong: d.dong,
        bjd_code: d.bjd_code,
        lease: d.lease,
        deposit: d.deposit,
        rent: d.rent,
        fee: d.fee,
        area_m2: d.area_m2,
        area_pyeong: d.area_pyeong,
        building_floors: d.building_floors,
        layout: d.layout,
        building: d.building,
        direction: d.direction,
        title: d.title,
        image_url: d.image_url,
        posted_at: d.posted_at,
        updated_at: d.updated_at,
    };
    (row, d.version.clock)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Gives a tombstone without a clock the clock of the change before it in the batch (same listing), so
/// that every store orders it the same way: after that change. One left without (the first change of
/// its listing in the batch) takes the stored version's clock where it is applied.
pub fn fill_clocks(changes: &mut [Change]) {
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for c in changes.iter_mut() {
        if c.clock.is_none() {
            c.clock = last.get(&c.listing_id).copied();
        }
        if let Some(clock) = c.clock {
            last.insert(c.listing_id.clone(), clock);
        }
    }
}

/// Keeps, of several changes to one listing within a batch, only the newest (the batch is in offset
/// order, so a later one with a clock no smaller wins; an older clock delivered later loses).
pub fn newest_per_key(changes: Vec<Change>) -> Vec<Change> {
    let mut by_key: BTreeMap<String, Change> = BTreeMap::new();
    for c in changes {
        match by_key.get(&c.listing_id) {
            Some(held) if !c.newer_than(Some(held.version(None))) => {}
            _ => {
                by_key.insert(c.listing_id.clone(), c);
            }
        }
    }
    by_key.into_values().collect()
}

/// A content checksum over `(listing_id, clock, value SHA-256)` of live listings, sorted by id: what
/// the integration tests compare between a store and the processor's published state.
pub fn checksum<'a>(rows: impl IntoIterator<Item = (&'a str, i64, &'a str)>) -> (u64, String) {
    let mut v: Vec<(&str, i64, &str)> = rows.into_iter().collect();
    v.sort();
    let mut h = Sha256::new();
    for (id, clock, sha) in &v {
        h.update(id.as_bytes());
        h.update([0]);
        h.update(clock.to_le_bytes());
        h.update(sha.as_bytes());
        h.update([0]);
    }
    (v.len() as u64, hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, offset: i64, clock: Option<i64>, live: bool) -> Change {
        Change {
            listing_id: id.into(),
            partition: 0,
            offset,
            clock,
            region: None,
            row: live.then(|| Box::new(sample_row(id))),
        }
    }

    fn sample_row(id: &str) -> ListingRow {
        let v = serde_json::json!({
            "listing_id": id, "region_code": "11620", "version": {"partition": 0, "clock": 7},
            "lease": "monthly", "deposit": 1000, "rent": 50, "fee": 7.0, "floor": {"level": 3},
            "broker": {"status": "verified", "reason": "ok"},
            "members": [{"platform": "zigbang", "source_listing_id": "1", "source": "zigbang",
                         "url": "https://sp.zigbang.com/share/oneroom/1", "first_seen_at": "2026-11-01T00:00:00+09:00"}],
            "price_history": [], "merge": {"threshold": 0.72, "links": []},
            "first_seen_at": "2026-11-01T00:00:00+09:00",
            "facilities": {"subway": 420.0, "cafe": 90.4},
            "score": {"total": 61.5, "components": {"cost": 50.0, "value": null},
                      "bait": {"risk": 0.0, "warning": false, "evidence": []},
                      "explanation": {"monthly_cost": 61.2}}
        });
        let bytes = serde_json::to_vec(&v).unwrap_or_default();
        match decode(0, 0, Some(id.as_bytes()), Some(&bytes), (None, None)) {
            Ok(c) => *c.row.unwrap_or_else(|| panic!("a row")),
            Err(r) => panic!("decodes: {}", r.reason),
        }
    }

    #[test]
    fn flattens_a_listing() {
        let r = sample_row("Labc");
        assert_eq!(r.floor_kind, "level");
        assert_eq!(r.floor_level, Some(3));
        assert_eq!(r.rent_with_fee, 57.0);
        assert_eq!(r.monthly_cost, Some(61.2));
        assert_eq!(r.components[0], Some(50.0));
        assert_eq!(r.components[1], None);
        assert_eq!(r.facility("cafe"), Some(90));
        assert_eq!(r.facility_mask(), 0b101);
        assert_eq!(r.platforms, vec!["zigbang"]);
        assert_eq!(r.first_seen, 1_793_458_800);
    }

    #[test]
    fn bad_values_are_rejected_with_a_reason() {
        let e = decode(
            1,
            9,
            Some(b"L1"),
            Some(b"{\"listing_id\": 3}"),
            (None, None),
        )
        .err()
        .map(|r| (r.offset, r.reason));
        assert!(
            matches!(e, Some((9, ref why)) if why.contains("schema")),
            "{e:?}"
        );
        assert!(decode(1, 9, None, None, (None, None)).is_err());
        let t = decode(1, 10, Some(b"L1"), None, (Some(40), Some("11620".into())));
        assert!(matches!(
            t,
            Ok(Change {
                row: None,
                clock: Some(40),
                ..
            })
        ));
    }

    #[test]
    fn newer_is_clock_then_offset() {
        let c = change("a", 10, Some(5), true);
        assert!(c.newer_than(None));
        assert!(c.newer_than(Some((4, 50))));
        assert!(c.newer_than(Some((5, 9))));
        assert!(
            !c.newer_than(Some((5, 10))),
            "the same record again is not newer"
        );
        assert!(
            !c.newer_than(Some((6, 1))),
            "an older clock loses whatever its offset"
        );
        let t = change("a", 11, None, false);
        assert!(
            t.newer_than(Some((6, 10))),
            "a clockless tombstone orders by offset"
        );
        assert!(!t.newer_than(Some((6, 12))));
    }

    #[test]
    fn a_clockless_tombstone_follows_the_change_before_it() {
        let mut batch = vec![
            change("a", 1, Some(20), true),
            change("a", 2, None, false),
            change("a", 3, Some(15), true), // older than the deletion: loses
            change("b", 4, None, false),    // nothing before it: the stored clock decides
        ];
        fill_clocks(&mut batch);
        assert_eq!(batch[1].clock, Some(20));
        assert_eq!(batch[3].clock, None);
        let out = newest_per_key(batch);
        assert!(out[0].row.is_none() && out[0].offset == 2, "{out:?}");
    }

    #[test]
    fn a_value_beyond_the_column_widths_is_a_reject() {
        let mut r = sample_row("Lx");
        assert_eq!(too_long(&r), None);
        r.direction = Some("south-south-west".into());
        assert!(too_long(&r).is_some_and(|w| w.contains("direction")));
    }

    #[test]
    fn a_batch_keeps_the_newest_per_key() {
        let out = newest_per_key(vec![
            change("a", 1, Some(5), true),
            change("b", 2, Some(3), true),
            change("a", 3, Some(9), false),
            change("a", 4, Some(7), true), // older clock delivered later: loses
            change("b", 5, Some(3), true), // same clock, later offset: wins
        ]);
        let got: Vec<(String, i64)> = out
            .iter()
            .map(|c| (c.listing_id.clone(), c.offset))
            .collect();
        assert_eq!(got, vec![("a".into(), 3), ("b".into(), 5)]);
    }
}
