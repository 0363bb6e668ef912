//! The values that travel on roomstream's topics: observations, sweep markers, broker records, DLQ events.
//!
//! Every value is JSON with a `schema` field (`<name>/<version>`) so that a reader can tell what it holds
//! without the topic name. Field order is fixed by the structs, which keeps encoded bytes deterministic
//! (the same input gives the same bytes; DESIGN invariant 1). The matching JSON Schemas live in
//! `topics/*.schema.json` and the integration tests validate every produced message against them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Schema id of [`Observation`].
pub const OBSERVATION_SCHEMA: &str = "roomstream.observation/1";
/// Schema id of [`SweepMarker`].
pub const SWEEP_SCHEMA: &str = "roomstream.sweep/1";
/// Schema id of [`BrokerRecord`].
pub const BROKER_SCHEMA: &str = "roomstream.broker/1";
/// Schema id of [`DlqEvent`].
pub const DLQ_SCHEMA: &str = "roomstream.dlq/1";

/// Where an observation came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// 직방, crawled live.
    Zigbang,
    /// 다방, crawled live.
    Dabang,
    /// A real payload from `shared/fixtures/real`.
    Fixture,
    /// The calibrated simulator (`roomstream crawl synthetic`).
    Synthetic,
}

impl Source {
    /// The lowercase name used in topics and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Zigbang => "zigbang",
            Source::Dabang => "dabang",
            Source::Fixture => "fixture",
            Source::Synthetic => "synthetic",
        }
    }
}

/// The platform format of an observation's `payload`, so that the processor picks the right parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PayloadFormat {
    /// One item of Zigbang's `POST /house/property/v1/items/list` (the current batch-detail API).
    #[serde(rename = "zigbang.list")]
    ZigbangList,
    /// A whole `GET /v3/items/{id}` response: `{item, agent, realtor, subways, …}`.
    #[serde(rename = "zigbang.v3.item")]
    ZigbangV3Item,
    /// One row of a third-party daily Zigbang crawl CSV, as a JSON object keyed by the CSV header.
    #[serde(rename = "zigbang.daily_csv")]
    ZigbangDailyCsv,
    /// One row of the Seoul listing snapshot CSV (built from `items/list`; `manage_cost` in 원).
    #[serde(rename = "zigbang.snapshot_csv")]
    ZigbangSnapshotCsv,
    /// One `result.roomList[]` item of Dabang's `GET /api/v5/room-list/…`.
    #[serde(rename = "dabang.v5.room")]
    DabangV5Room,
}

impl PayloadFormat {
    /// The dotted name written in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadFormat::ZigbangList => "zigbang.list",
            PayloadFormat::ZigbangV3Item => "zigbang.v3.item",
            PayloadFormat::ZigbangDailyCsv => "zigbang.daily_csv",
            PayloadFormat::ZigbangSnapshotCsv => "zigbang.snapshot_csv",
            PayloadFormat::DabangV5Room => "dabang.v5.room",
        }
    }

    /// The payload fields `observed.v1.schema.json` requires of this format.
    pub fn required_fields(self) -> &'static [&'static str] {
        match self {
            PayloadFormat::ZigbangList => &["item_id", "deposit", "rent"],
            PayloadFormat::ZigbangV3Item => &["item"],
            PayloadFormat::DabangV5Room => &["id", "priceTitle", "roomDesc"],
            PayloadFormat::ZigbangDailyCsv | PayloadFormat::ZigbangSnapshotCsv => &[],
        }
    }
}

/// One sighting of one listing on one platform (`observed.v1`, key: `region_code`).
///
/// The crawler only wraps: `payload` is the platform's JSON untouched, so a parser fixed later
/// re-reads history correctly on replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    /// Always [`OBSERVATION_SCHEMA`].
    pub schema: String,
    /// Which crawler produced it.
    pub source: Source,
    /// The platform the listing is on (`zigbang` or `dabang`); for fixtures and synthetic feeds it
    /// says whose format the payload is in.
    pub platform: Platform,
    /// The platform's own id of the listing (Zigbang numeric id, Dabang 24-hex id), as a string.
    pub source_listing_id: String,
    /// When the crawler saw it (RFC 3339 with its offset: UTC from live crawlers, +09:00 from fixtures and
    /// the simulator, whose clocks are Korean).
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
    /// The crawl run this observation belongs to; sweep markers name the same id.
    pub crawl_id: String,
    /// 5-digit 시군구 code (e.g. `11620` 관악구), or [`crate::region::UNKNOWN`].
    pub region_code: String,
    /// Format of `payload`.
    pub payload_format: PayloadFormat,
    /// The platform's JSON, untouched.
    pub payload: serde_json::Value,
}

/// The listing platform a payload belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// 직방.
    Zigbang,
    /// 다방.
    Dabang,
}

impl Platform {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Zigbang => "zigbang",
            Platform::Dabang => "dabang",
        }
    }
}

/// "I have just listed every listing of `platform` in `region_code`" (`sweeps.v1`, key: `region_code`).
///
/// Live crawlers emit one only after a region was listed completely; removals are inferred from
/// consecutive sweeps that no longer see a listing, never from one missed fetch. Two sources are
/// knowingly imperfect, as the real feed is: `fixture` sweeps come from third-party daily files that
/// are partial samples (about half the ids carry over day to day), and `synthetic` sweeps miss 2 % of
/// listings that still exist — so the processor must not take one missed sweep as a removal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepMarker {
    /// Always [`SWEEP_SCHEMA`].
    pub schema: String,
    /// Which crawler produced it.
    pub source: Source,
    /// The platform that was swept.
    pub platform: Platform,
    /// 5-digit 시군구 code.
    pub region_code: String,
    /// The crawl run whose observations this sweep closes.
    pub crawl_id: String,
    /// When the sweep of this region started (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended (RFC 3339); every observation of the sweep was produced before the marker.
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// How many distinct listings the sweep saw in this region.
    pub listings_seen: u64,
}

/// Schema id of [`ControlRecord`].
pub const CONTROL_SCHEMA: &str = "roomstream.control/1";

/// A command to the processor, written to every partition of `sweeps.v1` (key `control`). Because it
/// is an input, a replay meets it at the same place, and whatever the processor publishes in response
/// carries a newer input clock than anything published before it (so sinks take it). The processor
/// carries it out at the next micro-batch after reading it (while a partition catches up, at its
/// reconcile).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRecord {
    /// Always [`CONTROL_SCHEMA`].
    pub schema: String,
    /// `rescore_full`: score every listing of the partition again and publish those that changed.
    pub command: String,
    /// When it was asked for (RFC 3339; informational).
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
}

/// One person at one licensed broker office, from the VWORLD registry (`brokers.v1`, compacted,
/// key: [`BrokerRecord::key`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerRecord {
    /// Always [`BROKER_SCHEMA`].
    pub schema: String,
    /// Where it came from: `vworld` or `synthetic`.
    pub source: String,
    /// 중개사무소 등록번호 normalized by [`crate::topics::keys::normalize_registration`].
    pub registration_number: String,
    /// The registration number as the registry wrote it.
    pub registration_number_raw: String,
    /// 중개업자명: the person (not the office).
    pub person_name: String,
    /// 중개사무소명, when the file has it.
    pub office_name: Option<String>,
    /// 중개업자종별코드 (the seed treated 2 and 3 as licensed).
    pub broker_kind_code: Option<u32>,
    /// 직위구분코드.
    pub position_code: Option<u32>,
    /// 자격증번호; `None` when empty.
    pub certificate_number: Option<String>,
    /// 5-digit 시군구 code of the office when the file has one.
    pub region_code: Option<String>,
    /// When the registry row was read (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub observed_at: OffsetDateTime,
}

impl BrokerRecord {
    /// The compaction key: normalized registration number and person, joined by `|`.
    pub fn key(&self) -> String {
        super::keys::broker_key(&self.registration_number, &self.person_name)
    }
}

/// An event that could not be parsed or applied (`dlq.v1`, key: the original key or `""`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlqEvent {
    /// Always [`DLQ_SCHEMA`].
    pub schema: String,
    /// Which component rejected it (`process.normalize`, `crawl.vworld`, …).
    pub stage: String,
    /// Short machine-readable reason (`implausible`, `malformed_json`, `unknown_format`, …).
    pub reason: String,
    /// Human-readable detail.
    pub error: String,
    /// Topic the event was read from, if it came from Kafka.
    pub topic: Option<String>,
    /// Partition it was read from.
    pub partition: Option<i32>,
    /// Offset it was read at.
    pub offset: Option<i64>,
    /// The original key, lossily decoded as UTF-8.
    pub key: Option<String>,
    /// The original value: JSON if it parsed, else the raw text (lossy UTF-8 when it is not UTF-8).
    pub value: serde_json::Value,
    /// The original bytes in standard base64, when they are not valid UTF-8 (so `value` is lossy):
    /// `roomstream dlq replay` re-sends exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// When it was rejected (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub rejected_at: OffsetDateTime,
}

impl Observation {
    /// Wraps a platform payload.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Source,
        platform: Platform,
        source_listing_id: impl Into<String>,
        observed_at: OffsetDateTime,
        crawl_id: impl Into<String>,
        region_code: impl Into<String>,
        payload_format: PayloadFormat,
        payload: serde_json::Value,
    ) -> Self {
        Observation {
            schema: OBSERVATION_SCHEMA.to_string(),
            source,
            platform,
            source_listing_id: source_listing_id.into(),
            observed_at,
            crawl_id: crawl_id.into(),
            region_code: region_code.into(),
            payload_format,
            payload,
        }
    }

    /// Why this observation would break its contract (`observed.v1.schema.json`), if it would: a payload
    /// that is not an object or lacks a field its format requires, an empty id or crawl id, a bad
    /// region code. Crawlers send such observations to the DLQ instead of the topic.
    pub fn contract_violation(&self) -> Option<String> {
        if self.source_listing_id.is_empty() || self.source_listing_id.len() > 64 {
            return Some(format!(
                "source_listing_id {:?} is empty or over 64 bytes",
                self.source_listing_id
            ));
        }
        if self.crawl_id.is_empty() || self.crawl_id.len() > 128 {
            return Some(format!(
                "crawl_id {:?} is empty or over 128 bytes",
                self.crawl_id
            ));
        }
        if !crate::region::is_valid(&self.region_code) {
            return Some(format!(
                "region_code {:?} is not 5 digits",
                self.region_code
            ));
        }
        let Some(payload) = self.payload.as_object() else {
            return Some("payload is not a JSON object".into());
        };
        let missing: Vec<&str> = self
            .payload_format
            .required_fields()
            .iter()
            .copied()
            .filter(|f| !payload.contains_key(*f))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "{} payload lacks {}",
                self.payload_format.as_str(),
                missing.join(", ")
            )
        })
    }
}

/// The current time in UTC, truncated to whole seconds so that RFC 3339 strings stay short.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(0).unwrap_or(t)
}
