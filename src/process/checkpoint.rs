//! Checkpoints: per partition, the state and the input positions it reflects, in the object store
//! (`[store] url`: `s3://bucket/prefix` over the S3 protocol, or `file:///dir`).
//!
//! Object: `<prefix>/checkpoints/<namespace>/partition-<p>.ckpt`, written whole with one PUT (atomic on
//! S3 and on the local store, which writes a temporary file and renames it). Format: a header line
//! `roomstream-checkpoint/<FORMAT>\n`, then the [`Checkpoint`] in postcard (compact, deterministic serde).
//! A checkpoint of another format version is refused with a message saying to replay, never misread.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::engine::PartitionState;
use crate::config::StoreConfig;

/// Bumped whenever the state's layout or meaning changes (2: the resolver's blocks are hashes;
/// 3: canonical ids include the partition, [`super::resolve::canonical_id`]).
pub const FORMAT: u32 = 3;

/// What one checkpoint object holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The partition's state, with its input positions.
    pub state: PartitionState,
    /// Next offsets of each `listings.v1` partition up to which `state.published` says what the topic
    /// holds: a restore reads what was published after them. `None` when the partition has not been
    /// reconciled with the topic yet (a first run still catching up): the restore reads it whole.
    pub listings_next: Option<Vec<i64>>,
    /// Next offset of `brokers.v1` the state reflects.
    pub brokers_next: i64,
}

/// A small object written beside each checkpoint: where it stands, readable without the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Next offset of `observed.v1` the checkpoint reflects.
    pub observed_next: i64,
    /// Next offset of `sweeps.v1`.
    pub sweeps_next: i64,
    /// Whether the partition had been reconciled with `listings.v1` (not catching up).
    pub reconciled: bool,
}

/// Errors of the checkpoint store.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The store URL cannot be used.
    #[error("object store `{url}`: {reason}")]
    Config {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// I/O with the store.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A checkpoint that cannot be read.
    #[error("checkpoint {path}: {reason}")]
    Corrupt {
        /// Object path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The checkpoints of one namespace.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl CheckpointStore {
    /// The checkpoints of `namespace` in the configured store.
    pub fn open(cfg: &StoreConfig, namespace: &str) -> Result<Self, CheckpointError> {
        let (store, base) = crate::store::open(cfg).map_err(|e| CheckpointError::Config {
            url: e.url,
            reason: e.reason,
        })?;
        let prefix = base.clone().join("checkpoints").join(namespace);
        Ok(CheckpointStore { store, prefix })
    }

    fn path(&self, partition: i32) -> ObjectPath {
        self.prefix
            .clone()
            .join(format!("partition-{partition:03}.ckpt"))
    }

    fn progress_path(&self, partition: i32) -> ObjectPath {
        self.prefix
            .clone()
            .join(format!("partition-{partition:03}.progress.json"))
    }

    /// Writes a partition's checkpoint, then its progress object; returns the checkpoint's size.
    pub async fn save(
        &self,
        ckpt: &Checkpoint,
        reconciled: bool,
    ) -> Result<usize, CheckpointError> {
        let n = self.save_state(ckpt).await?;
        let progress = Progress {
            observed_next: ckpt.state.observed_next,
            sweeps_next: ckpt.state.sweeps_next,
            reconciled,
        };
        let json = serde_json::to_vec(&progress).unwrap_or_default();
        self.store
            .put(
                &self.progress_path(ckpt.state.partition),
                PutPayload::from(json),
            )
            .await?;
        Ok(n)
    }

    /// Where a partition's last checkpoint stands, `None` if it has none.
    pub async fn progress(&self, partition: i32) -> Result<Option<Progress>, CheckpointError> {
        match self.store.get(&self.progress_path(partition)).await {
            Ok(r) => Ok(serde_json::from_slice(&r.bytes().await?).ok()),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn save_state(&self, ckpt: &Checkpoint) -> Result<usize, CheckpointError> {
        let mut bytes = format!("roomstream-checkpoint/{FORMAT}\n").into_bytes();
        let body = postcard::to_allocvec(ckpt).map_err(|e| CheckpointError::Corrupt {
            path: self.path(ckpt.state.partition).to_string(),
            reason: e.to_string(),
        })?;
        bytes.extend_from_slice(&body);
        let n = bytes.len();
        self.store
            .put(&self.path(ckpt.state.partition), PutPayload::from(bytes))
            .await?;
        Ok(n)
    }

    /// Reads a partition's checkpoint, `None` if there is none.
    pub async fn load(&self, partition: i32) -> Result<Option<Checkpoint>, CheckpointError> {
        let path = self.path(partition);
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let corrupt = |reason: String| CheckpointError::Corrupt {
            path: path.to_string(),
            reason,
        };
        let split = bytes
            .iter()
            .position(|b| *b == b'\n')
            .ok_or_else(|| corrupt("no header".into()))?;
        let header = std::str::from_utf8(&bytes[..split]).map_err(|e| corrupt(e.to_string()))?;
        if header != format!("roomstream-checkpoint/{FORMAT}") {
            return Err(corrupt(format!(
                "format `{header}`, this build reads roomstream-checkpoint/{FORMAT}: run `roomstream replay` to rebuild"
            )));
        }
        postcard::from_bytes(&bytes[split + 1..])
            .map(Some)
            .map_err(|e| corrupt(e.to_string()))
    }

    /// Every partition that has a checkpoint.
    pub async fn partitions(&self, max: i32) -> Result<Vec<i32>, CheckpointError> {
        let mut out = Vec::new();
        for p in 0..max {
            if self.store.head(&self.path(p)).await.is_ok() {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Deletes every checkpoint of the namespace (for `replay`).
    pub async fn clear(&self, max: i32) -> Result<(), CheckpointError> {
        for p in 0..max {
            for path in [self.progress_path(p), self.path(p)] {
                match self.store.delete(&path).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}
