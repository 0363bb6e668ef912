//! publish: the canonical listing as `listings.v1` carries it, and its content hash.
//!
//! The value holds the members with their links, the normalized fields of the best member (Zigbang's
//! v3 detail first: exact position, broker and facilities), the broker verdict, the price history, the
//! merge explanation and a version. The **content hash** covers everything but the version, so the
//! processor publishes only when content changed, and a replay republishes only what differs from what
//! the topic already holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::detect::{PriceRun, SourceState};
use super::model::{Building, Floor, Layout, Lease, Location, SourceKey};
use super::resolve::Evidence;
use super::verify::Verification;
use crate::topics::envelope::{Platform, Source};

/// Schema id of [`CanonicalListing`].
pub const LISTING_SCHEMA: &str = "roomstream.listing/1";

/// Input positions a published state reflects. `clock` is twice the sum of the next offsets of the
/// inputs the partition's owner had consumed (observed, sweeps and brokers), plus one once no sweep
/// marker is waiting: it only grows, so sinks keep a row only when the incoming clock is larger (DESIGN
/// invariant 2), and it comes from positions, never from the wall clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Partition of `observed.v1` / `sweeps.v1` that owns the listing.
    pub partition: i32,
    /// Monotonic input clock.
    pub clock: i64,
    /// Next offset of `observed.v1` in that partition.
    pub observed: i64,
    /// Next offset of `sweeps.v1` in that partition.
    pub sweeps: i64,
    /// Next offset of `brokers.v1`.
    pub brokers: i64,
}

/// One source listing within a canonical listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    /// `zigbang` or `dabang`.
    pub platform: Platform,
    /// The platform's id.
    pub source_listing_id: String,
    /// Which crawler saw it.
    pub source: Source,
    /// Link on the platform.
    pub url: String,
    /// Payload format of its latest observation.
    pub format: String,
    /// 보증금 / 월세 / 관리비 as this platform shows them.
    pub deposit: u32,
    /// 월세.
    pub rent: u32,
    /// 관리비 (None: unknown).
    pub fee: Option<f64>,
    /// Title on this platform.
    pub title: String,
    /// First seen (RFC 3339).
    pub first_seen_at: String,
}

/// One price step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricePoint {
    /// From when (RFC 3339).
    pub from: String,
    /// 보증금.
    pub deposit: u32,
    /// 월세.
    pub rent: u32,
    /// 관리비.
    pub fee: Option<f64>,
}

/// One link of the merge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// One member, `platform:id`.
    pub a: String,
    /// The other.
    pub b: String,
    /// The evidence.
    pub evidence: Evidence,
}

/// Why these members are one listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merge {
    /// Score a link needs.
    pub threshold: f64,
    /// The links that hold the members together (empty for a single member).
    pub links: Vec<Link>,
}

/// `listings.v1`'s value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanonicalListing {
    /// Always [`LISTING_SCHEMA`].
    pub schema: String,
    /// Canonical id.
    pub listing_id: String,
    /// 5-digit 시군구 code.
    pub region_code: String,
    /// Positions this state reflects.
    pub version: Version,
    /// 구 name.
    pub gu: Option<String>,
    /// 법정동 name.
    pub dong: Option<String>,
    /// 10-digit 법정동 code.
    pub bjd_code: Option<String>,
    /// 월세 / 전세.
    pub lease: Lease,
    /// 보증금, 만원.
    pub deposit: u32,
    /// 월세, 만원.
    pub rent: u32,
    /// 관리비, 만원; None = unknown.
    pub fee: Option<f64>,
    /// 전용면적 m².
    pub area_m2: Option<f64>,
    /// 평.
    pub area_pyeong: Option<f64>,
    /// Floor.
    pub floor: Floor,
    /// Building storeys.
    pub building_floors: Option<i16>,
    /// Layout.
    pub layout: Layout,
    /// Building kind.
    pub building: Building,
    /// Facing.
    pub direction: Option<String>,
    /// Position.
    pub location: Option<Location>,
    /// Nearest facilities, metres; empty = unknown.
    pub facilities: BTreeMap<String, u32>,
    /// Subway stations named.
    pub subway_stations: Vec<String>,
    /// Title (of the best member).
    pub title: String,
    /// Image.
    pub image_url: Option<String>,
    /// Posted (RFC 3339), if a platform says.
    pub posted_at: Option<String>,
    /// Updated (RFC 3339), if a platform says.
    pub updated_at: Option<String>,
    /// First seen by roomstream (RFC 3339).
    pub first_seen_at: String,
    /// Broker and its verification.
    pub broker: Verification,
    /// Every source listing merged into this one.
    pub members: Vec<Member>,
    /// The best member's price history, oldest first.
    pub price_history: Vec<PricePoint>,
    /// The merge explanation.
    pub merge: Merge,
    /// The score: components, total, bait risk and explanation (absent only before the first scoring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<crate::process::score::Score>,
}

/// RFC 3339 in KST of Unix seconds.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|t| t.to_offset(time::macros::offset!(+9)))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// The member whose fields lead: Zigbang v3 (exact position, broker, facilities), then any Zigbang,
/// then the first seen; ties by key. Only what is part of the published content may decide (not the
/// time of the last sighting, which moves on every unchanged observation), or the choice could change
/// without the listing being republished.
fn rank(s: &SourceState) -> (u8, u8, i64) {
    let v3 = u8::from(s.listing.format != "zigbang.v3.item");
    let zig = u8::from(s.listing.key.platform != Platform::Zigbang);
    (v3, zig, s.first_seen)
}

/// Builds the canonical listing from its live members (at least one), their links and the verdict.
pub fn build(
    id: &str,
    members: &[(&SourceKey, &SourceState)],
    links: Vec<Link>,
    threshold: f64,
    broker: Verification,
    version: Version,
) -> CanonicalListing {
    let mut ordered: Vec<&(&SourceKey, &SourceState)> = members.iter().collect();
    ordered.sort_by(|a, b| rank(a.1).cmp(&rank(b.1)).then(a.0.cmp(b.0)));
    let best = &ordered[0].1.listing;
    let first =
        |f: &dyn Fn(&SourceState) -> bool| ordered.iter().find(|m| f(m.1)).map(|m| &m.1.listing);
    let fee = first(&|s| s.listing.fee.is_some()).and_then(|l| l.fee);
    let location = first(&|s| {
        s.listing
            .location
            .is_some_and(|l| l.precision == super::model::Precision::Exact)
    })
    .or_else(|| first(&|s| s.listing.location.is_some()))
    .and_then(|l| l.location);
    let facilities = first(&|s| !s.listing.facilities.is_empty())
        .map(|l| l.facilities.iter().cloned().collect())
        .unwrap_or_default();
    let first_seen = members
        .iter()
        .map(|m| m.1.first_seen)
        .min()
        .unwrap_or_default();
    let history = &ordered[0].1.history;
    CanonicalListing {
        schema: LISTING_SCHEMA.into(),
        listing_id: id.to_string(),
        region_code: best.region_code.clone(),
        version,
        gu: first(&|s| s.listing.gu.is_some()).and_then(|l| l.gu.clone()),
        dong: best.dong.clone(),
        bjd_code: first(&|s| s.listing.bjd_code.is_some()).and_then(|l| l.bjd_code.clone()),
        lease: best.lease,
        deposit: best.deposit,
        rent: best.rent,
        fee,
        area_m2: best.area_m2,
        area_pyeong: best.area_pyeong().map(|p| (p * 100.0).round() / 100.0),
        floor: best.floor,
        building_floors: first(&|s| s.listing.building_floors.is_some())
            .and_then(|l| l.building_floors),
        layout: best.layout,
        building: first(&|s| s.listing.building != Building::Unknown)
            .map_or(Building::Unknown, |l| l.building),
        direction: first(&|s| s.listing.direction.is_some()).and_then(|l| l.direction.clone()),
        location,
        facilities,
        subway_stations: first(&|s| !s.listing.subway_stations.is_empty())
            .map(|l| l.subway_stations.clone())
            .unwrap_or_default(),
        title: best.title.clone(),
        image_url: first(&|s| s.listing.image_url.is_some()).and_then(|l| l.image_url.clone()),
        posted_at: members
            .iter()
            .filter_map(|m| m.1.listing.posted_at)
            .min()
            .map(rfc3339),
        updated_at: members
            .iter()
            .filter_map(|m| m.1.listing.updated_at)
            .max()
            .map(rfc3339),
        first_seen_at: rfc3339(first_seen),
        broker,
        members: members
            .iter()
            .map(|(k, s)| Member {
                platform: k.platform,
                source_listing_id: k.id.clone(),
                source: s.source,
                url: s.listing.url.clone(),
                format: s.listing.format.clone(),
                deposit: s.listing.deposit,
                rent: s.listing.rent,
                fee: s.listing.fee,
                title: s.listing.title.clone(),
                first_seen_at: rfc3339(s.first_seen),
            })
            .collect(),
        price_history: history.iter().map(price_point).collect(),
        merge: Merge { threshold, links },
        score: None,
    }
}

fn price_point(r: &PriceRun) -> PricePoint {
    PricePoint {
        from: rfc3339(r.from),
        deposit: r.deposit,
        rent: r.rent,
        fee: r.fee,
    }
}

impl CanonicalListing {
    /// SHA-256 (first 16 bytes) of the content: the JSON with the version zeroed, streamed into the
    /// digest (the version is zeroed in place for the call and put back: no copy, no buffer).
    pub fn content_hash(&mut self) -> [u8; 16] {
        let version = std::mem::take(&mut self.version);
        let mut digest = DigestWriter(Sha256::new());
        let written = serde_json::to_writer(&mut digest, &*self);
        self.version = version;
        debug_assert!(written.is_ok(), "a listing always serializes");
        let d = digest.0.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&d[..16]);
        out
    }
}

/// An `io::Write` that feeds a digest.
struct DigestWriter(Sha256);

impl std::io::Write for DigestWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
