//! The real fixtures (`shared/fixtures/real`) as observations: every listing row of every file.
//!
//! | file | payload format | observed at | sweep |
//! |---|---|---|---|
//! | `zigbang_daily_seoul_YYYYMMDD.csv` | `zigbang.daily_csv` (row as `{header: value}`) | its `수집시간` (KST) | one per region in the file, for its day |
//! | `zigbang_v3_item_detail_46674601.json` | `zigbang.v3.item` (the whole response) | 2025-11-28 16:19:02 KST (its crawl file) | no |
//! | `dabang_v5_roomlist_result_sample.json` | `dabang.v5.room` (each `roomList` item) | 2025-07-30 KST (capture date) | no: one page is not a sweep |
//! | `zigbang_seoul_listings_20251128_sample.csv` | `zigbang.snapshot_csv` | 2025-11-28 14:35:23 KST (its crawl file) | no: a stratified sample |
//!
//! The two rent-registry summaries are statistics, not listings: they feed [`super::calibration`].
//! The daily files are partial samples of Zigbang (README of the fixtures: about half the ids carry over
//! day to day), so their sweeps will mark many listings missing; that is what the real feed looked like.
//!
//! On bad input: a file that does not parse fails naming the file and row; a row that parses but cannot
//! be an observation (no id, say) goes to the DLQ, and a daily file's region with such a row gets no
//! sweep. Files the crawler does not know (the registry summaries, the README) are listed in the
//! outcome's `skipped`, and the report counts rows read against observations produced.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use time::{
    OffsetDateTime, PrimitiveDateTime, UtcOffset, macros::datetime, macros::format_description,
    macros::offset,
};

use super::calibration::Calibration;
use super::{CrawlError, Emitter, dabang};
use crate::region;
use crate::topics::envelope::{
    Observation, PayloadFormat, Platform, SWEEP_SCHEMA, Source, SweepMarker,
};

/// Korea Standard Time, in which the platforms write their times.
const KST: UtcOffset = offset!(+9);
const DETAIL_FILE: &str = "zigbang_v3_item_detail_46674601.json";
const DABANG_FILE: &str = "dabang_v5_roomlist_result_sample.json";
const SNAPSHOT_FILE: &str = "zigbang_seoul_listings_20251128_sample.csv";

/// Rows read and observations produced, per file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixtureOutcome {
    /// (file, rows read, observations produced, sweeps produced), in file-name order.
    pub files: Vec<(String, u64, u64, u64)>,
    /// Files in the folder that are not listing files, in name order.
    pub skipped: Vec<String>,
}

impl FixtureOutcome {
    /// Listing rows read over every file.
    pub fn rows(&self) -> u64 {
        self.files.iter().map(|f| f.1).sum()
    }

    /// Observations produced over every file.
    pub fn observations(&self) -> u64 {
        self.files.iter().map(|f| f.2).sum()
    }
}

/// Where the real fixtures are for tests: `$ROOMSTREAM_TEST_FIXTURES`, else `../shared/fixtures/real`
/// beside the checkout; `None` where neither exists (an outside user's machine), and tests then skip.
pub fn real_fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ROOMSTREAM_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/real"));
    dir.is_dir().then_some(dir)
}

fn read(dir: &Path, file: &str) -> Result<String, CrawlError> {
    let path: PathBuf = dir.join(file);
    std::fs::read_to_string(&path).map_err(|source| CrawlError::Read { path, source })
}

fn read_json(dir: &Path, file: &str) -> Result<Value, CrawlError> {
    serde_json::from_str(&read(dir, file)?).map_err(|e| input_error(file, e.to_string()))
}

fn input_error(file: &str, message: impl Into<String>) -> CrawlError {
    CrawlError::Input {
        file: file.into(),
        message: message.into(),
    }
}

/// CSV rows as JSON objects keyed by header, values untouched strings.
fn csv_rows(file: &str, text: &str) -> Result<Vec<Map<String, Value>>, CrawlError> {
    let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| input_error(file, e.to_string()))?
        .clone();
    reader
        .records()
        .map(|r| {
            let r = r.map_err(|e| input_error(file, e.to_string()))?;
            Ok(headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), Value::from(v)))
                .collect())
        })
        .collect()
}

fn field<'a>(row: &'a Map<String, Value>, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Emits every fixture file found in `dir`. Fails if a known file is unreadable or malformed, or if
/// the folder holds none of them.
pub fn emit_all(dir: &Path, emitter: &mut Emitter<'_>) -> Result<FixtureOutcome, CrawlError> {
    let mut outcome = FixtureOutcome::default();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|source| CrawlError::Read {
            path: dir.into(),
            source,
        })?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .collect();
    names.sort();
    for name in &names {
        let counts = if name.starts_with("zigbang_daily_seoul_") && name.ends_with(".csv") {
            daily_csv(dir, name, emitter)?
        } else if name == DETAIL_FILE {
            v3_detail(dir, name, emitter)?
        } else if name == DABANG_FILE {
            dabang_list(dir, name, emitter)?
        } else if name == SNAPSHOT_FILE {
            snapshot_csv(dir, name, emitter)?
        } else {
            outcome.skipped.push(name.clone());
            continue;
        };
        outcome
            .files
            .push((name.clone(), counts.0, counts.1, counts.2));
    }
    if outcome.files.is_empty() {
        return Err(input_error(
            &dir.display().to_string(),
            "no fixture files found",
        ));
    }
    Ok(outcome)
}

/// One day of a third-party daily crawl: each row an observation, the file a sweep of its regions.
fn daily_csv(
    dir: &Path,
    name: &str,
    emitter: &mut Emitter<'_>,
) -> Result<(u64, u64, u64), CrawlError> {
    let rows = csv_rows(name, &read(dir, name)?)?;
    let day = name
        .trim_start_matches("zigbang_daily_seoul_")
        .trim_end_matches(".csv");
    let crawl_id = format!("fixture-zigbang-daily-{day}");
    let time_format = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    let mut per_region: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut first, mut last) = (None::<OffsetDateTime>, None::<OffsetDateTime>);
    let mut observations = 0;
    let mut rejected_regions: BTreeSet<&'static str> = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        let at = PrimitiveDateTime::parse(field(row, "수집시간"), time_format)
            .map_err(|e| input_error(name, format!("row {}: 수집시간: {e}", i + 1)))?
            .assume_offset(KST);
        let id = field(row, "매물ID");
        let sido = field(row, "시도");
        let region = region::code_for_address(
            sido.split_whitespace().next().unwrap_or(sido),
            field(row, "구군"),
        );
        first = first.min(Some(at)).or(Some(at));
        last = last.max(Some(at));
        let obs = Observation::new(
            Source::Fixture,
            Platform::Zigbang,
            id,
            at,
            crawl_id.as_str(),
            region,
            PayloadFormat::ZigbangDailyCsv,
            Value::Object(row.clone()),
        );
        if emitter.observation(&obs)? {
            observations += 1;
            *per_region.entry(region).or_default() += 1;
        } else {
            rejected_regions.insert(region);
        }
    }
    let mut sweeps = 0;
    if let (Some(started_at), Some(ended_at)) = (first, last) {
        // A region with a rejected row was not delivered whole: no sweep for it.
        let complete = per_region
            .iter()
            .filter(|(r, _)| **r != region::UNKNOWN && !rejected_regions.contains(*r));
        for (region, seen) in complete {
            emitter.sweep(&SweepMarker {
                schema: SWEEP_SCHEMA.into(),
                source: Source::Fixture,
                platform: Platform::Zigbang,
                region_code: (*region).into(),
                crawl_id: crawl_id.clone(),
                started_at,
                ended_at,
                listings_seen: *seen,
            })?;
            sweeps += 1;
        }
    }
    Ok((rows.len() as u64, observations, sweeps))
}

/// The one Zigbang v3 detail response.
fn v3_detail(
    dir: &Path,
    name: &str,
    emitter: &mut Emitter<'_>,
) -> Result<(u64, u64, u64), CrawlError> {
    let body = read_json(dir, name)?;
    let item = &body["item"];
    let id = item["itemId"]
        .as_u64()
        .ok_or_else(|| input_error(name, "no item.itemId"))?;
    let region = item["bjdCode"]
        .as_str()
        .and_then(region::code_for_bjd)
        .unwrap_or(region::UNKNOWN);
    let obs = Observation::new(
        Source::Fixture,
        Platform::Zigbang,
        id.to_string(),
        datetime!(2025-11-28 16:19:02 +9),
        "fixture-zigbang-v3-20251128",
        region,
        PayloadFormat::ZigbangV3Item,
        body,
    );
    let accepted = emitter.observation(&obs)?;
    Ok((1, u64::from(accepted), 0))
}

/// The one Dabang room-list page: each room an observation.
fn dabang_list(
    dir: &Path,
    name: &str,
    emitter: &mut Emitter<'_>,
) -> Result<(u64, u64, u64), CrawlError> {
    let body = read_json(dir, name)?;
    let rooms = body["result"]["roomList"]
        .as_array()
        .ok_or_else(|| input_error(name, "no result.roomList"))?;
    let cal = Calibration::embedded();
    let mut observations = 0;
    for room in rooms {
        let id = room["id"].as_str().unwrap_or_default(); // no id: the contract check rejects it
        let obs = Observation::new(
            Source::Fixture,
            Platform::Dabang,
            id,
            datetime!(2025-07-30 12:00:00 +9),
            "fixture-dabang-v5-20250730",
            dabang::room_region(cal, room),
            PayloadFormat::DabangV5Room,
            room.clone(),
        );
        observations += u64::from(emitter.observation(&obs)?);
    }
    Ok((rooms.len() as u64, observations, 0))
}

/// The Seoul snapshot sample: each row an observation.
fn snapshot_csv(
    dir: &Path,
    name: &str,
    emitter: &mut Emitter<'_>,
) -> Result<(u64, u64, u64), CrawlError> {
    let rows = csv_rows(name, &read(dir, name)?)?;
    let mut observations = 0;
    for row in &rows {
        let id = field(row, "item_id");
        let obs = Observation::new(
            Source::Fixture,
            Platform::Zigbang,
            id,
            datetime!(2025-11-28 14:35:23 +9),
            "fixture-zigbang-snapshot-20251128",
            region::code_for_address(field(row, "local1"), field(row, "local2")),
            PayloadFormat::ZigbangSnapshotCsv,
            Value::Object(row.clone()),
        );
        observations += u64::from(emitter.observation(&obs)?);
    }
    Ok((rows.len() as u64, observations, 0))
}
