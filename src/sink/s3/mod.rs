//! The object-store sink: Parquet change files, snapshots, the DLQ and the raw zone ([`layout`]).
//!
//! Progress lives in the store as one commit marker per batch, named by the batch's offset range and
//! written after its files. A batch:
//! 1. writes an *intent* listing the files it is about to write;
//! 2. writes its files, one per group (`region=` for listings, `date=` for the others), named by the
//!    partition and the batch's first and last offsets;
//! 3. writes its commit marker.
//!
//! On start, the markers give each partition's next offset; an intent beyond them is a batch that died
//! between 1 and 3: its files are deleted (a retry may cut the batch elsewhere) before anything is
//! written. A replay (`--replay`) cuts batches where the markers say the first run cut them, so it
//! rewrites the same objects with the same bytes and adds none.
//!
//! Snapshots ([`snapshot`]) fold the change files committed since the last snapshot into it; the
//! instance that owns partition 0 of `listings.v1` writes them (one writer per group).
//!
//! Several instances share the partitions through the group; each reloads the markers of the partitions
//! it is given, and a batch must start where its partition's committed ranges end (the fence). Two live
//! owners of one partition (a zombie past its session) can still race on a marker: object stores
//! without conditional writes cannot fence that, so the last marker wins and both wrote the same names.

pub mod archive;
pub mod layout;
pub mod parquet;
pub mod snapshot;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::SinkError;
use super::runner::{Batch, Destination};
use super::table;
use crate::config::Config;
use crate::topics::TopicKind;

/// A batch's commit marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Topic suffix (`listings.v1`, …).
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset of the range.
    pub first: i64,
    /// Last offset of the range.
    pub last: i64,
    /// The data files the batch wrote (full object paths).
    pub files: Vec<String>,
    /// Rows in them.
    pub rows: u64,
    /// When (RFC 3339, UTC): informative only, never part of a data file.
    pub committed_at: String,
}

/// The object-store sink.
pub struct S3Sink {
    store: Arc<dyn ObjectStore>,
    root: Path,
    topics: Vec<TopicKind>,
    /// Committed ranges (first → last) per (topic, partition): those this instance owns are reloaded
    /// from the store at each assignment; the others are as last read (for `--exit-when-idle`).
    ranges: Option<BTreeMap<(TopicKind, i32), BTreeMap<i64, i64>>>,
    /// Whether this instance owns partition 0 of `listings.v1`: that one writes the snapshots.
    snapshot_writer: bool,
    snapshot_every: Duration,
    last_snapshot: Instant,
    /// Whether listings moved since the last snapshot.
    dirty: bool,
    /// Snapshots written by this run.
    pub snapshots_written: u64,
}

impl S3Sink {
    /// Opens the configured store.
    pub fn open(cfg: &Config) -> Result<Self, SinkError> {
        let (store, prefix) = crate::store::open(&cfg.store)?;
        let mut topics = vec![TopicKind::Listings];
        if cfg.sink.archive {
            topics.extend([TopicKind::Observed, TopicKind::Sweeps, TopicKind::Dlq]);
        }
        Ok(S3Sink {
            store,
            root: layout::root(&prefix, &cfg.kafka.namespace),
            topics,
            ranges: None,
            snapshot_writer: false,
            snapshot_every: cfg.sink.snapshot_interval,
            last_snapshot: Instant::now(),
            dirty: false,
            snapshots_written: 0,
        })
    }

    /// The store and the sink's root in it (tests, `replay --from-archive`, `status`).
    pub fn location(&self) -> (Arc<dyn ObjectStore>, Path) {
        (self.store.clone(), self.root.clone())
    }

    /// The committed ranges (first → last) of one partition, from its commit markers.
    async fn committed(&self, topic: TopicKind, p: i32) -> Result<BTreeMap<i64, i64>, SinkError> {
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&layout::commits_dir(&self.root, topic, p)))
            .try_collect()
            .await?;
        Ok(listed
            .iter()
            .filter_map(|m| m.location.filename().and_then(layout::parse_commit))
            .collect())
    }

    /// Reads the committed ranges of every partition (without touching intents).
    async fn load(&mut self) -> Result<(), SinkError> {
        let mut ranges = BTreeMap::new();
        for &topic in &self.topics {
            for p in 0..topic.def().partitions {
                ranges.insert((topic, p), self.committed(topic, p).await?);
            }
        }
        self.ranges = Some(ranges);
        Ok(())
    }

    /// Deletes the files of an intent that was never committed.
    async fn abandon_intent(&self, topic: TopicKind, p: i32, next: i64) -> Result<(), SinkError> {
        let path = layout::intent(&self.root, topic, p);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Ok(intent) = serde_json::from_slice::<Commit>(&bytes) else {
            return Ok(());
        };
        if intent.first < next {
            return Ok(()); // committed (or a replay's rewrite of a committed range)
        }
        for f in &intent.files {
            match self.store.delete(&Path::from(f.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tracing::info!(
            topic = topic.def().suffix,
            partition = p,
            files = intent.files.len(),
            "removed the files of an uncommitted batch"
        );
        self.store.delete(&path).await?;
        Ok(())
    }

    /// Writes a snapshot if listings changed since the last one, at the positions the store's commit
    /// markers say (every partition's, whoever wrote them).
    pub async fn snapshot_now(&mut self) -> Result<Option<snapshot::Manifest>, SinkError> {
        let mut positions = BTreeMap::new();
        for p in 0..TopicKind::Listings.def().partitions {
            if let Some(last) = self
                .committed(TopicKind::Listings, p)
                .await?
                .values()
                .next_back()
            {
                positions.insert(p, last + 1);
            }
        }
        let m = snapshot::write(&self.store, &self.root, &positions).await?;
        if m.is_some() {
            self.snapshots_written += 1;
        }
        self.dirty = false;
        self.last_snapshot = Instant::now();
        Ok(m)
    }
}

impl Destination for S3Sink {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn topics(&self) -> Vec<TopicKind> {
        self.topics.clone()
    }

    async fn assigned(&mut self, partitions: &[(TopicKind, i32)]) -> Result<(), SinkError> {
        if self.ranges.is_none() {
            self.load().await?;
        }
        // What a predecessor committed, and what it left half-written, in the partitions now ours.
        for &(topic, p) in partitions {
            let r = self.committed(topic, p).await?;
            let next = r.values().next_back().map_or(0, |l| l + 1);
            self.abandon_intent(topic, p, next).await?;
            if let Some(all) = self.ranges.as_mut() {
                all.insert((topic, p), r);
            }
        }
        self.snapshot_writer = partitions.contains(&(TopicKind::Listings, 0));
        Ok(())
    }

    async fn positions(&mut self) -> Result<BTreeMap<(TopicKind, i32), i64>, SinkError> {
        if self.ranges.is_none() {
            self.load().await?;
        }
        Ok(self
            .ranges
            .iter()
            .flatten()
            .filter_map(|(k, r)| r.values().next_back().map(|l| (*k, l + 1)))
            .collect())
    }

    fn cut(&self, topic: TopicKind, partition: i32, offset: i64) -> Option<(i64, i64)> {
        let r = self.ranges.as_ref()?.get(&(topic, partition))?;
        let (first, last) = r.range(..=offset).next_back()?;
        (*last >= offset).then_some((*first, last + 1))
    }

    async fn write(&mut self, batch: Batch) -> Result<(), SinkError> {
        if self.ranges.is_none() {
            self.load().await?;
        }
        let (topic, p) = (batch.topic, batch.partition);
        let first = batch.first;
        let last = batch.next - 1;
        // Rows by group folder.
        let mut groups: BTreeMap<String, Vec<Vec<table::Value>>> = BTreeMap::new();
        let columns = match topic {
            TopicKind::Listings => {
                for c in &batch.changes {
                    groups
                        .entry(layout::region_group(c.region.as_deref()))
                        .or_default()
                        .push(table::row(c));
                }
                table::COLUMNS
            }
            TopicKind::Dlq => {
                for r in &batch.records {
                    groups
                        .entry(layout::date_group(r.timestamp_ms))
                        .or_default()
                        .push(archive::dlq_row(r));
                }
                archive::DLQ_COLUMNS
            }
            _ => {
                for r in &batch.records {
                    groups
                        .entry(layout::date_group(r.timestamp_ms))
                        .or_default()
                        .push(archive::raw_row(r));
                }
                archive::RAW_COLUMNS
            }
        };
        let files: Vec<(Path, Vec<Vec<table::Value>>)> = groups
            .into_iter()
            .map(|(g, rows)| {
                (
                    layout::data_file(&self.root, topic, &g, p, first, last),
                    rows,
                )
            })
            .collect();
        let held = self.ranges.as_ref().and_then(|r| r.get(&(topic, p)));
        let committed = held.and_then(|r| r.get(&first)) == Some(&last);
        // The fence: a new range must start where this partition's committed ranges end.
        let end = held
            .and_then(|r| r.values().next_back())
            .map_or(0, |l| l + 1);
        if !committed && batch.from != end {
            return Err(SinkError::Fenced {
                topic: topic.def().suffix.clone(),
                partition: p,
                stored: end,
                expected: batch.from,
            });
        }
        let commit = Commit {
            topic: topic.def().suffix.clone(),
            partition: p,
            first,
            last,
            files: files.iter().map(|(f, _)| f.to_string()).collect(),
            rows: files.iter().map(|(_, r)| r.len() as u64).sum(),
            committed_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        };
        if !committed {
            let intent =
                serde_json::to_vec(&commit).map_err(|e| SinkError::Other(e.to_string()))?;
            self.store
                .put(
                    &layout::intent(&self.root, topic, p),
                    PutPayload::from(intent),
                )
                .await?;
        }
        // The files of a batch go up together; the commit marker only after all of them.
        let mut puts = Vec::with_capacity(files.len());
        for (path, rows) in &files {
            let bytes = parquet::encode(columns, rows)?;
            puts.push(self.store.put(path, PutPayload::from(bytes)));
        }
        futures::future::try_join_all(puts).await?;
        if !committed {
            let marker =
                serde_json::to_vec(&commit).map_err(|e| SinkError::Other(e.to_string()))?;
            self.store
                .put(
                    &layout::commit(&self.root, topic, p, first, last),
                    PutPayload::from(marker),
                )
                .await?;
            if let Some(r) = self.ranges.as_mut() {
                r.entry((topic, p)).or_default().insert(first, last);
            }
            if topic == TopicKind::Listings {
                self.dirty = true;
            }
        }
        Ok(())
    }

    async fn tick(&mut self, _idle: bool) -> Result<(), SinkError> {
        if self.snapshot_writer && self.dirty && self.last_snapshot.elapsed() >= self.snapshot_every
        {
            self.snapshot_now().await?;
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), SinkError> {
        if self.snapshot_writer && self.dirty {
            self.snapshot_now().await?;
        }
        Ok(())
    }
}
