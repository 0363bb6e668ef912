//! The raw zone and the DLQ as Parquet: the columns of their files, and the reader that
//! `roomstream replay --from-archive` rebuilds the state from.
//!
//! A raw file keeps every record of its range verbatim (partition, offset, timestamp, key, value bytes),
//! so history outlives the topics' retention and a parser fixed later can re-read it. A DLQ file keeps
//! each rejected event's provenance (source topic, partition, offset), stage, reason and value.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::layout;
use super::parquet;
use crate::sink::SinkError;
use crate::sink::runner::Record;
use crate::sink::table::{Ty, Value};
use crate::topics::TopicKind;

/// Columns of a raw-zone file.
pub const RAW_COLUMNS: &[(&str, Ty, bool)] = &[
    ("partition", Ty::Int, true),
    ("offset", Ty::Int, true),
    ("timestamp_ms", Ty::Int, false),
    ("key", Ty::Bytes, false),
    ("value", Ty::Bytes, false),
];

/// Columns of a DLQ file.
pub const DLQ_COLUMNS: &[(&str, Ty, bool)] = &[
    ("partition", Ty::Int, true),
    ("offset", Ty::Int, true),
    ("timestamp_ms", Ty::Int, false),
    ("stage", Ty::Text, false),
    ("reason", Ty::Text, false),
    ("error", Ty::Text, false),
    ("source_topic", Ty::Text, false),
    ("source_partition", Ty::Int, false),
    ("source_offset", Ty::Int, false),
    ("key", Ty::Text, false),
    ("value", Ty::Text, false),
    ("rejected_at", Ty::Text, false),
];

/// A raw record as a row of [`RAW_COLUMNS`].
pub fn raw_row(r: &Record) -> Vec<Value> {
    vec![
        Value::Int(i64::from(r.partition)),
        Value::Int(r.offset),
        r.timestamp_ms.into(),
        r.key.clone().map_or(Value::Null, Value::Bytes),
        r.value.clone().map_or(Value::Null, Value::Bytes),
    ]
}

/// A `dlq.v1` record as a row of [`DLQ_COLUMNS`] (a value that is not a DLQ event keeps its text in
/// `value`, with `reason` NULL).
pub fn dlq_row(r: &Record) -> Vec<Value> {
    let v: serde_json::Value = r
        .value
        .as_deref()
        .and_then(|v| serde_json::from_slice(v).ok())
        .unwrap_or(serde_json::Value::Null);
    let text = |k: &str| -> Value {
        v.get(k)
            .and_then(serde_json::Value::as_str)
            .map_or(Value::Null, |s| Value::Text(s.to_string()))
    };
    let int = |k: &str| -> Value { v.get(k).and_then(serde_json::Value::as_i64).into() };
    let value = match v.get("value") {
        Some(x) => Value::Text(x.to_string()),
        None => r.value.as_deref().map_or(Value::Null, |b| {
            Value::Text(String::from_utf8_lossy(b).into_owned())
        }),
    };
    vec![
        Value::Int(i64::from(r.partition)),
        Value::Int(r.offset),
        r.timestamp_ms.into(),
        text("stage"),
        text("reason"),
        text("error"),
        text("topic"),
        int("partition"),
        int("offset"),
        text("key"),
        value,
        text("rejected_at"),
    ]
}

/// One archived record of `observed.v1` or `sweeps.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Archived {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes, verbatim.
    pub value: Option<Vec<u8>>,
}

/// Every archived record of a topic, per partition in offset order, and the next offset the archive
/// reaches per partition (the committed positions). Reads only committed files.
pub async fn read(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    topic: TopicKind,
) -> Result<(BTreeMap<i32, Vec<Archived>>, BTreeMap<i32, i64>), SinkError> {
    use futures::TryStreamExt;
    let mut out: BTreeMap<i32, Vec<Archived>> = BTreeMap::new();
    let mut next: BTreeMap<i32, i64> = BTreeMap::new();
    for p in 0..topic.def().partitions {
        let markers: Vec<object_store::ObjectMeta> = store
            .list(Some(&layout::commits_dir(root, topic, p)))
            .try_collect()
            .await?;
        let mut ranges: Vec<(i64, i64, Path)> = markers
            .into_iter()
            .filter_map(|m| {
                let (a, b) = layout::parse_commit(m.location.filename()?)?;
                Some((a, b, m.location))
            })
            .collect();
        ranges.sort();
        let mut expect = 0;
        for (first, last, marker) in ranges {
            if first > expect {
                return Err(SinkError::Other(format!(
                    "archive of {} partition {p}: offsets {expect}..{first} are missing (no commit covers them)",
                    topic.def().suffix
                )));
            }
            let commit: super::Commit =
                serde_json::from_slice(&store.get(&marker).await?.bytes().await?)
                    .map_err(|e| SinkError::Other(format!("{marker}: {e}")))?;
            let mut records = Vec::new();
            for f in &commit.files {
                let bytes = store.get(&Path::from(f.as_str())).await?.bytes().await?;
                for row in parquet::decode(RAW_COLUMNS, bytes)? {
                    let (Value::Int(part), Value::Int(offset)) = (&row[0], &row[1]) else {
                        continue;
                    };
                    records.push(Archived {
                        partition: *part as i32,
                        offset: *offset,
                        key: bytes_of(&row[3]),
                        value: bytes_of(&row[4]),
                    });
                }
            }
            records.sort_by_key(|r| r.offset);
            out.entry(p).or_default().extend(records);
            expect = last + 1;
        }
        if expect > 0 {
            next.insert(p, expect);
        }
    }
    Ok((out, next))
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}
