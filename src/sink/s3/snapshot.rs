//! Snapshots: every listing as of a set of `listings.v1` positions — live ones, and deleted ones as
//! `live = false` rows (readers filter `WHERE live`) — one Parquet file per region, and a manifest
//! written last that records the positions and the files. Readers trust only a
//! snapshot with a manifest; an epoch that died half-written is simply written again (same number).
//!
//! Snapshot n = snapshot n−1 + the change files committed after its positions, folded by version
//! (clock, then offset; the newest wins; a deletion removes). Memory is one region at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::{Commit, layout, parquet};
use crate::sink::SinkError;
use crate::sink::table::{self, COLUMNS, Value};
use crate::topics::TopicKind;

pub use super::layout::Manifest;

/// The newest snapshot with a manifest.
pub async fn latest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
) -> Result<Option<Manifest>, SinkError> {
    let epochs = layout::snapshot_epochs(store, root).await?;
    for e in epochs.into_iter().rev() {
        match store.get(&layout::manifest(root, e)).await {
            Ok(r) => {
                let bytes = r.bytes().await?;
                return serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|err| SinkError::Other(format!("manifest of epoch {e}: {err}")));
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(None)
}

/// `(clock, offset)` of a row of [`COLUMNS`] (a clockless tombstone takes `held`'s clock).
fn version(row: &[Value], held: Option<(i64, i64)>) -> (i64, i64) {
    let int = |i: usize| match row.get(i) {
        Some(Value::Int(x)) => Some(*x),
        _ => None,
    };
    let clock = int(2).or(held.map(|h| h.0)).unwrap_or_default();
    (clock, int(4).unwrap_or_default())
}

fn id_of(row: &[Value]) -> String {
    match row.first() {
        Some(Value::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

fn is_live(row: &[Value]) -> bool {
    matches!(row.get(1), Some(Value::Bool(true)))
}

/// Writes snapshot n+1 at `positions` if they moved past the latest snapshot's; returns its manifest.
pub async fn write(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    positions: &BTreeMap<i32, i64>,
) -> Result<Option<Manifest>, SinkError> {
    let base = latest(store, root).await?;
    let old = base
        .as_ref()
        .map(|m| m.positions.clone())
        .unwrap_or_default();
    if &old == positions {
        return Ok(None);
    }
    // The change files committed between the two positions, grouped by region folder.
    let mut by_region: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (&p, &next) in positions {
        let from = old.get(&p).copied().unwrap_or(0);
        let markers: Vec<object_store::ObjectMeta> = store
            .list(Some(&layout::commits_dir(root, TopicKind::Listings, p)))
            .try_collect()
            .await?;
        for m in markers {
            let Some((first, last)) = m.location.filename().and_then(layout::parse_commit) else {
                continue;
            };
            if first < from || last >= next {
                continue;
            }
            let c: Commit = serde_json::from_slice(&store.get(&m.location).await?.bytes().await?)
                .map_err(|e| SinkError::Other(format!("{}: {e}", m.location)))?;
            for f in c.files {
                let region = f
                    .split('/')
                    .find_map(|s| s.strip_prefix("region="))
                    .unwrap_or("unknown")
                    .to_string();
                by_region.entry(region).or_default().push(f);
            }
        }
    }
    // Deletions whose region is unknown apply wherever the listing is (after the region's own
    // changes: the fold orders by offset).
    let mut orphans: Vec<Vec<Value>> = Vec::new();
    for f in by_region.remove("unknown").unwrap_or_default() {
        orphans.extend(read(store, &f).await?);
    }
    let mut regions: BTreeSet<String> = by_region.keys().cloned().collect();
    if let Some(b) = &base {
        regions.extend(b.files.keys().cloned());
    }
    let epoch = base.as_ref().map_or(1, |b| b.epoch + 1);
    let mut files = BTreeMap::new();
    let mut total = 0;
    for region in regions {
        let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        if let Some((path, _)) = base.as_ref().and_then(|b| b.files.get(&region)) {
            for r in read(store, path).await? {
                rows.insert(id_of(&r), r);
            }
        }
        let mut changes: Vec<Vec<Value>> = Vec::new();
        for f in by_region.get(&region).into_iter().flatten() {
            changes.extend(read(store, f).await?);
        }
        let here: BTreeSet<String> = rows
            .keys()
            .cloned()
            .chain(changes.iter().map(|r| id_of(r)))
            .collect();
        changes.extend(orphans.iter().filter(|r| here.contains(&id_of(r))).cloned());
        fold(&mut rows, changes);
        // Deletions stay (live = false) so that an older version arriving later cannot revive them.
        let all: Vec<Vec<Value>> = rows.into_values().collect();
        if all.is_empty() {
            continue;
        }
        let path = layout::snapshot_file(root, epoch, &region);
        store
            .put(&path, PutPayload::from(parquet::encode(COLUMNS, &all)?))
            .await?;
        let live = all.iter().filter(|r| is_live(r)).count() as u64;
        total += live;
        files.insert(region, (path.to_string(), all.len() as u64));
    }
    let manifest = Manifest {
        epoch,
        positions: positions.clone(),
        files,
        rows: total,
        written_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| SinkError::Other(e.to_string()))?;
    store
        .put(&layout::manifest(root, epoch), PutPayload::from(json))
        .await?;
    tracing::info!(epoch, rows = total, "snapshot written");
    Ok(Some(manifest))
}

/// Applies changes to rows by version: the newest wins, whatever the order the files come in. A
/// listing's records are all in one partition of `listings.v1`, so its changes are taken in offset
/// (publication) order, each kept only if newer than the one held.
pub fn fold(rows: &mut BTreeMap<String, Vec<Value>>, mut changes: Vec<Vec<Value>>) {
    changes.sort_by_key(|r| match r.get(4) {
        Some(Value::Int(o)) => *o,
        _ => 0,
    });
    for c in changes {
        let id = id_of(&c);
        let held = rows.get(&id).map(|r| version(r, None));
        let v = version(&c, held);
        if held.is_some_and(|h| v <= h) {
            continue;
        }
        let mut c = c;
        if let Some(slot) = c.get_mut(2) {
            *slot = Value::Int(v.0);
        }
        rows.insert(id, c);
    }
}

async fn read(store: &Arc<dyn ObjectStore>, path: &str) -> Result<Vec<Vec<Value>>, SinkError> {
    let bytes = store.get(&Path::from(path)).await?.bytes().await?;
    parquet::decode(table::COLUMNS, bytes)
}

/// Every live row of the latest snapshot (tests, analytics).
pub async fn read_latest(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
) -> Result<Option<(Manifest, Vec<Vec<Value>>)>, SinkError> {
    let Some(m) = latest(store, root).await? else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    for (path, _) in m.files.values() {
        rows.extend(read(store, path).await?.into_iter().filter(|r| is_live(r)));
    }
    Ok(Some((m, rows)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, live: bool, clock: Option<i64>, offset: i64) -> Vec<Value> {
        let mut r = vec![Value::Null; COLUMNS.len()];
        r[0] = Value::Text(id.into());
        r[1] = Value::Bool(live);
        r[2] = clock.map_or(Value::Null, Value::Int);
        r[4] = Value::Int(offset);
        r
    }

    #[test]
    fn folding_keeps_the_newest_whatever_the_order() {
        let changes = vec![
            row("a", true, Some(5), 10),
            row("a", false, Some(9), 20),
            row("a", true, Some(7), 30), // an older clock delivered later
            row("b", true, Some(3), 5),
            row("b", true, Some(3), 6),
            row("b", false, None, 7), // a clockless tombstone: after offset 6
        ];
        for order in [changes.clone(), changes.iter().rev().cloned().collect()] {
            let mut rows = BTreeMap::new();
            rows.insert("c".to_string(), row("c", true, Some(1), 1));
            fold(&mut rows, order);
            let live: Vec<&String> = rows
                .iter()
                .filter(|(_, r)| is_live(r))
                .map(|(k, _)| k)
                .collect();
            assert_eq!(
                live,
                vec!["c"],
                "a ended at clock 9; b ended after its last upsert"
            );
        }
    }
}
