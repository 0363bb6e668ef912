//! Where the S3 sink puts things, under `<store prefix>/<namespace>/`. Every name that holds data comes
//! from input positions, never from the clock, so a replay writes the same names:
//!
//! ```text
//! changes/region=<시군구>/part-<p>-<first>-<last>.parquet   listings.v1 versions (tombstones: live=false)
//! snapshots/epoch=<n>/region=<시군구>/part-0.parquet         every live listing at the manifest's positions
//! snapshots/epoch=<n>/_manifest.json                          written last; readers trust only these
//! raw/observed.v1/date=<YYYY-MM-DD>/part-<p>-<first>-<last>.parquet   the raw zone, payloads verbatim
//! raw/sweeps.v1/date=<YYYY-MM-DD>/part-<p>-<first>-<last>.parquet
//! dlq/date=<YYYY-MM-DD>/part-<p>-<first>-<last>.parquet       rejected events with their provenance
//! _sink/commits/<topic>/partition=<p>/<first>-<last>.json      one per batch, written after its files
//! _sink/intents/<topic>/partition=<p>.json                     files a batch is about to write
//! ```
//!
//! `region=` and `date=` are Hive-style partition folders: Spectrum, Athena and DataFusion read each
//! tree as an external table. Dates are KST days of the record's timestamp (set by its producer, so a
//! replay sees the same). Offsets in `_sink/` names are zero-padded to 20 digits so that listings sort.
//!
//! **This module and [`crate::sink::table`] are the sink's published format**: readers of the store
//! (`roomstream query`/`report` in [`crate::analytics`], an external table in Spectrum or Athena) may
//! depend on them — the names above, the [`Manifest`], the columns — and on nothing else of the sink.

use std::collections::BTreeMap;

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::topics::TopicKind;

/// A snapshot's manifest (`snapshots/epoch=<n>/_manifest.json`, written last).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Epoch number (1, 2, …).
    pub epoch: u64,
    /// Next offset of each `listings.v1` partition the snapshot reflects.
    pub positions: BTreeMap<i32, i64>,
    /// Region → file path and rows (deleted listings included, `live = false`).
    pub files: BTreeMap<String, (String, u64)>,
    /// Live listings in all.
    pub rows: u64,
    /// When it was written (RFC 3339, UTC): informative.
    pub written_at: String,
}

/// The epochs under `snapshots/`, ascending, whether complete (with a manifest) or not.
pub async fn snapshot_epochs(
    store: &std::sync::Arc<dyn object_store::ObjectStore>,
    root: &Path,
) -> Result<Vec<u64>, object_store::Error> {
    let listed = store.list_with_delimiter(Some(&snapshots(root))).await?;
    let mut epochs: Vec<u64> = listed
        .common_prefixes
        .iter()
        .filter_map(|p| p.filename()?.strip_prefix("epoch=")?.parse().ok())
        .collect();
    epochs.sort_unstable();
    Ok(epochs)
}

/// The sink's root: `<store prefix>/<namespace>`.
pub fn root(prefix: &Path, namespace: &str) -> Path {
    prefix.clone().join(namespace)
}

/// The data folder of a topic's files.
pub fn data_dir(root: &Path, topic: TopicKind) -> Path {
    match topic {
        TopicKind::Listings => root.clone().join("changes"),
        TopicKind::Dlq => root.clone().join("dlq"),
        other => root.clone().join("raw").join(other.def().suffix.as_str()),
    }
}

/// A data file: `<dir>/<group>/part-<p>-<first>-<last>.parquet` (`group` = `region=…` or `date=…`).
pub fn data_file(
    root: &Path,
    topic: TopicKind,
    group: &str,
    p: i32,
    first: i64,
    last: i64,
) -> Path {
    data_dir(root, topic)
        .join(group)
        .join(format!("part-{p}-{first}-{last}.parquet"))
}

/// The commit folder of one partition.
pub fn commits_dir(root: &Path, topic: TopicKind, p: i32) -> Path {
    root.clone()
        .join("_sink")
        .join("commits")
        .join(topic.def().suffix.as_str())
        .join(format!("partition={p}"))
}

/// A batch's commit marker.
pub fn commit(root: &Path, topic: TopicKind, p: i32, first: i64, last: i64) -> Path {
    commits_dir(root, topic, p).join(format!("{first:020}-{last:020}.json"))
}

/// Parses `<first>-<last>.json`.
pub fn parse_commit(name: &str) -> Option<(i64, i64)> {
    let (a, b) = name.strip_suffix(".json")?.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// A partition's intent.
pub fn intent(root: &Path, topic: TopicKind, p: i32) -> Path {
    root.clone()
        .join("_sink")
        .join("intents")
        .join(topic.def().suffix.as_str())
        .join(format!("partition={p}.json"))
}

/// The snapshots folder.
pub fn snapshots(root: &Path) -> Path {
    root.clone().join("snapshots")
}

/// A snapshot's folder.
pub fn epoch_dir(root: &Path, epoch: u64) -> Path {
    snapshots(root).join(format!("epoch={epoch}"))
}

/// A snapshot's manifest.
pub fn manifest(root: &Path, epoch: u64) -> Path {
    epoch_dir(root, epoch).join("_manifest.json")
}

/// A snapshot's file of one region.
pub fn snapshot_file(root: &Path, epoch: u64, region: &str) -> Path {
    epoch_dir(root, epoch)
        .join(format!("region={region}"))
        .join("part-0.parquet")
}

/// `date=YYYY-MM-DD` (KST) of a record timestamp in ms; `date=unknown` without one.
pub fn date_group(timestamp_ms: Option<i64>) -> String {
    let day = timestamp_ms
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok())
        .map(|t| t.to_offset(time::macros::offset!(+9)).date());
    match day {
        Some(d) => format!("date={d}"),
        None => "date=unknown".into(),
    }
}

/// `region=<code>`, `region=unknown` for a tombstone that did not say.
pub fn region_group(region: Option<&str>) -> String {
    format!("region={}", region.unwrap_or("unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_positions() {
        let root = root(&Path::from("lake"), "ns");
        assert_eq!(
            data_file(&root, TopicKind::Listings, "region=11620", 3, 100, 199).as_ref(),
            "lake/ns/changes/region=11620/part-3-100-199.parquet"
        );
        assert_eq!(
            data_file(&root, TopicKind::Observed, "date=2026-11-25", 0, 0, 9).as_ref(),
            "lake/ns/raw/observed.v1/date=2026-11-25/part-0-0-9.parquet"
        );
        let c = commit(&root, TopicKind::Listings, 3, 100, 199);
        assert!(
            c.as_ref()
                .ends_with("partition=3/00000000000000000100-00000000000000000199.json")
        );
        assert_eq!(
            parse_commit("00000000000000000100-00000000000000000199.json"),
            Some((100, 199))
        );
        // 2025-11-25 15:30 UTC is the 26th in Seoul.
        assert_eq!(date_group(Some(1_764_084_600_000)), "date=2025-11-26");
        assert_eq!(region_group(None), "region=unknown");
    }
}
