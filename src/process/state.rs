//! Reading the processor's state back from its checkpoints, without Kafka: `roomstream state hash`,
//! `roomstream state dump` and `roomstream eval dedup` all work after the processor has stopped.
//!
//! The **state hash** is SHA-256 over, per region (the region key listings arrive under), every source
//! listing's state in key order and every canonical listing's id with the content hash of what was
//! last published for it. It leaves out what depends on *when* inputs were read rather than *which*:
//! versions (input clocks) and checkpoint positions. Replays, restarts and different numbers of
//! instances must all print the same hash.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::checkpoint::{CheckpointError, CheckpointStore};
use super::engine::PartitionState;
use super::model::SourceKey;

/// Every partition's latest checkpointed state, by partition.
pub async fn load_all(
    store: &CheckpointStore,
    partitions: i32,
) -> Result<BTreeMap<i32, PartitionState>, CheckpointError> {
    let mut out = BTreeMap::new();
    for p in store.partitions(partitions).await? {
        if let Some(c) = store.load(p).await? {
            out.insert(p, c.state);
        }
    }
    Ok(out)
}

/// The state hash: (total, per region), hex.
pub fn hash(states: &BTreeMap<i32, PartitionState>) -> (String, BTreeMap<String, String>) {
    let mut regions: BTreeMap<String, Sha256> = BTreeMap::new();
    for state in states.values() {
        // Sources, in key order within each region.
        let mut keys: Vec<&SourceKey> = state.sources.keys().collect();
        keys.sort();
        for k in keys {
            let s = &state.sources[k];
            let h = regions.entry(s.region_key.clone()).or_default();
            h.update(k.to_string().as_bytes());
            h.update(postcard::to_allocvec(s).unwrap_or_default());
        }
        // Canonical listings, attributed to their first member's region.
        for (id, members) in &state.clusters.members {
            let region = members
                .iter()
                .next()
                .and_then(|k| state.sources.get(k))
                .map_or_else(String::new, |s| s.region_key.clone());
            let h = regions.entry(region).or_default();
            h.update(id.as_bytes());
            for m in members {
                h.update(m.to_string().as_bytes());
            }
            h.update(state.published.get(id).copied().unwrap_or_default());
        }
    }
    let per_region: BTreeMap<String, String> = regions
        .into_iter()
        .map(|(r, h)| (r, hex(&h.finalize())))
        .collect();
    let mut total = Sha256::new();
    for (r, h) in &per_region {
        total.update(r.as_bytes());
        total.update(h.as_bytes());
    }
    (hex(&total.finalize()), per_region)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
