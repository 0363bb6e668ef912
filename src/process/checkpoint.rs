//! Checkpoints: per partition, the state and the input positions it reflects, in the object store
//! (`[store] url`: `s3://bucket/prefix` over the S3 protocol, or `file:///dir`).
//!
//! Object: `<prefix>/checkpoints/<namespace>/partition-<p>.ckpt`, written whole with one PUT (atomic on
//! S3 and on the local store, which writes a temporary file and renames it). Format: a header line
//! `roomstream-checkpoint/<FORMAT>\n`, then the [`Checkpoint`] in postcard (compact, deterministic serde).
//!
//! Every format this build can read has its own types: the current one is [`Checkpoint`]; each older
//! one keeps a frozen copy of its layout in a module of its own ([`v3`]) with the migration to the
//! current one. A checkpoint of a format with no migration is refused with a message that names
//! `roomstream replay`, never misread. `tests/fixtures/checkpoints/` holds a checkpoint written by each
//! format, and a test loads every one of them.

use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::engine::PartitionState;
use crate::config::StoreConfig;

/// Bumped whenever the state's layout or meaning changes (2: the resolver's blocks are hashes;
/// 3: canonical ids include the partition, [`super::resolve::canonical_id`]; 4: the resolver's
/// candidate index is derived on restore, not stored — migrated from 3 by [`v3`]).
pub const FORMAT: u32 = 4;

/// The formats older than [`FORMAT`] that a restore migrates.
pub const MIGRATES: &[u32] = &[3];

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

/// The checkpoint of a header line and a body: the current format as it is, an older one through its
/// migration; any other is an error that says how to rebuild.
pub fn decode(header: &[u8], body: &[u8]) -> Result<Checkpoint, String> {
    let header = std::str::from_utf8(header).map_err(|e| e.to_string())?;
    let version = header
        .strip_prefix("roomstream-checkpoint/")
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(FORMAT) => postcard::from_bytes(body).map_err(|e| e.to_string()),
        Some(3) => v3::migrate(body),
        _ => Err(format!(
            "format `{header}`: this build reads roomstream-checkpoint/{FORMAT} and migrates {MIGRATES:?}; \
             run `roomstream replay` to rebuild the state from the topics"
        )),
    }
}

/// Format 3 (before the candidate index was derived): its layout, frozen, and the migration.
pub mod v3 {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::Deserialize;

    use super::Checkpoint;
    use crate::process::detect::SweepLog;
    use crate::process::model::SourceKey;
    use crate::process::partition::{PartitionState, PendingSweep, SourceMap};
    use crate::process::resolve::{Clusters, Evidence};

    #[derive(Deserialize)]
    struct CheckpointV3 {
        state: StateV3,
        listings_next: Option<Vec<i64>>,
        brokers_next: i64,
    }

    #[derive(Deserialize)]
    struct StateV3 {
        partition: i32,
        observed_next: i64,
        sweeps_next: i64,
        sources: SourceMap,
        sweeps: SweepLog,
        clusters: ClustersV3,
        published: BTreeMap<String, [u8; 16]>,
        observed_until: i64,
        pending_sweeps: Vec<PendingSweep>,
    }

    #[derive(Deserialize)]
    struct ClustersV3 {
        #[allow(dead_code)]
        index: BTreeSet<(u64, i64, SourceKey)>,
        #[allow(dead_code)]
        placed: BTreeMap<SourceKey, (u64, i64)>,
        edges: BTreeMap<SourceKey, BTreeMap<SourceKey, Evidence>>,
        of: BTreeMap<SourceKey, String>,
        members: BTreeMap<String, BTreeSet<SourceKey>>,
    }

    /// A format-3 body as the current [`Checkpoint`]: the stored candidate index is dropped (a restore
    /// derives it from the live listings); everything else carries over unchanged.
    pub fn migrate(body: &[u8]) -> Result<Checkpoint, String> {
        let old: CheckpointV3 = postcard::from_bytes(body).map_err(|e| format!("format 3: {e}"))?;
        let s = old.state;
        let c = s.clusters;
        Ok(Checkpoint {
            state: PartitionState {
                partition: s.partition,
                observed_next: s.observed_next,
                sweeps_next: s.sweeps_next,
                sources: s.sources,
                sweeps: s.sweeps,
                clusters: Clusters::from_parts(
                    c.edges.into_iter().map(|(k, e)| (k, e.into())).collect(),
                    c.of,
                    c.members
                        .into_iter()
                        .map(|(id, m)| (id, m.into_iter().collect()))
                        .collect(),
                ),
                published: s.published,
                observed_until: s.observed_until,
                pending_sweeps: s.pending_sweeps,
            },
            listings_next: old.listings_next,
            brokers_next: old.brokers_next,
        })
    }
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
        decode(&bytes[..split], &bytes[split + 1..])
            .map(Some)
            .map_err(corrupt)
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The fixture of a format: a small, fixed world (the simulator's 300 flats × 3 days, seed 7) run
    /// through the engine, and the checkpoint of its busiest partition as the store writes it, with the
    /// state hash of that partition. `tests/fixtures/checkpoints/format-<N>.ckpt` and `.hash` are these.
    fn fixture() -> anyhow::Result<(Vec<u8>, String)> {
        use crate::process::engine::{Engine, EngineConfig, Position};
        use crate::topics::TopicKind;
        let records = {
            let mut mem = crate::kafka::MemorySink::default();
            let mut emitter = crate::crawl::Emitter::new(&mut mem, None);
            let args = crate::crawl::synthetic::SyntheticArgs {
                listings: 300,
                days: 3,
                seed: 7,
                rate: None,
                truth: None,
            };
            crate::crawl::synthetic::run(&args, &mut emitter)?;
            emitter.finish()?;
            mem.records
        };
        let mut engine = Engine::new(EngineConfig::default(), Arc::default());
        let partitions = TopicKind::Observed.def().partitions;
        engine.own_empty(partitions);
        let mut offsets = std::collections::HashMap::new();
        let mut out = Vec::new();
        for (topic, key, value) in &records {
            let partition = match topic {
                TopicKind::Brokers => 0,
                _ => {
                    crate::topics::keys::murmur2_partition(key.as_bytes(), partitions as u32) as i32
                }
            };
            let next = offsets.entry((partition, *topic as u8)).or_insert(0i64);
            let at = Position {
                topic: "fixture",
                partition,
                offset: *next,
            };
            *next += 1;
            let (k, v) = (Some(key.as_bytes()), Some(value.as_slice()));
            match topic {
                TopicKind::Observed => engine.observe(at, k, v, &mut out),
                TopicKind::Sweeps => engine.sweep(at, k, v, &mut out),
                _ => engine.broker(at, k, v, &mut out),
            }
            engine.flush(&mut out)?;
            out.clear();
        }
        let busiest = engine
            .parts
            .values()
            .max_by_key(|p| (p.state.sources.len(), p.state.partition))
            .map(|p| p.state.clone())
            .unwrap_or_default();
        let partition = busiest.partition;
        let (hash, _) =
            crate::process::state::hash(&BTreeMap::from([(partition, busiest.clone())]));
        let ckpt = Checkpoint {
            state: busiest,
            listings_next: Some(vec![0; partitions as usize]),
            brokers_next: engine.brokers_next,
        };
        let mut bytes = format!("roomstream-checkpoint/{FORMAT}\n").into_bytes();
        bytes.extend_from_slice(&postcard::to_allocvec(&ckpt)?);
        Ok((bytes, hash))
    }

    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints")
    }

    /// Writes this format's fixture. Run once when [`FORMAT`] changes, and keep the files:
    /// `cargo test --lib write_this_formats_fixture -- --ignored`.
    #[test]
    #[ignore = "writes tests/fixtures/checkpoints/format-<FORMAT>.*; run when FORMAT changes"]
    fn write_this_formats_fixture() {
        let (bytes, hash) = fixture().expect("fixture");
        std::fs::create_dir_all(fixtures()).expect("dir");
        std::fs::write(fixtures().join(format!("format-{FORMAT}.ckpt")), bytes).expect("ckpt");
        std::fs::write(fixtures().join(format!("format-{FORMAT}.hash")), hash).expect("hash");
    }

    /// Every kept fixture — this format's and each older one a restore migrates — loads, holds the
    /// state whose hash was recorded when it was written, and can be owned by an engine (which
    /// rebuilds the candidate index) and published from.
    #[test]
    fn every_kept_format_loads_with_its_recorded_state_hash() {
        let mut seen = Vec::new();
        for format in MIGRATES.iter().chain([&FORMAT]) {
            let path = fixtures().join(format!("format-{format}.ckpt"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (every migrated format keeps its fixture)",
                    path.display()
                )
            });
            let expected =
                std::fs::read_to_string(fixtures().join(format!("format-{format}.hash")))
                    .expect("hash file");
            let split = bytes.iter().position(|b| *b == b'\n').expect("header");
            let ckpt = decode(&bytes[..split], &bytes[split + 1..])
                .unwrap_or_else(|e| panic!("format {format}: {e}"));
            let state = ckpt.state.clone();
            assert!(
                state.sources.len() > 20 && state.clusters.len() > 10,
                "format {format}: a real state ({} sources)",
                state.sources.len()
            );
            let (hash, _) = crate::process::state::hash(&std::collections::BTreeMap::from([(
                state.partition,
                state.clone(),
            )]));
            assert_eq!(
                hash,
                expected.trim(),
                "format {format}: the state hash it was written with"
            );
            let mut engine = crate::process::engine::Engine::new(
                crate::process::engine::EngineConfig::default(),
                Arc::default(),
            );
            engine.own(state.clone(), true);
            let mut out = Vec::new();
            let n = engine
                .reconcile(state.partition, BTreeMap::new(), &mut out)
                .expect("reconcile");
            assert!(n >= state.clusters.len(), "format {format}: published {n}");
            seen.push(*format);
        }
        assert!(seen.contains(&FORMAT));
    }

    /// This build reads the kept fixture of its format and writes it back to as many bytes: a change of
    /// the state's layout without a new FORMAT (and a migration, and a new fixture) fails here.
    #[test]
    fn this_formats_layout_is_the_kept_fixtures() {
        let kept =
            std::fs::read(fixtures().join(format!("format-{FORMAT}.ckpt"))).expect("fixture");
        let split = kept.iter().position(|b| *b == b'\n').expect("header");
        let ckpt = decode(&kept[..split], &kept[split + 1..]).expect("decodes");
        // The same length (a hash map's entries may come back in another order, not in other bytes).
        let again = postcard::to_allocvec(&ckpt).expect("encodes");
        assert!(
            again.len() == kept.len() - split - 1,
            "format {FORMAT} re-encoded to {} bytes, kept {}: the state's layout changed — give it a \
             new FORMAT, a migration in this module and a new fixture",
            again.len(),
            kept.len() - split - 1
        );
    }

    #[test]
    fn a_format_without_a_migration_is_refused_naming_replay() {
        for header in [
            "roomstream-checkpoint/2",
            "roomstream-checkpoint/99",
            "something else",
        ] {
            let e = decode(header.as_bytes(), b"").expect_err(header);
            assert!(e.contains("roomstream replay"), "{header}: {e}");
        }
    }
}
