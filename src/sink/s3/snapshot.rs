//! Snapshots: every listing as of a set of `listings.v1` positions — live ones, and deleted ones as
//! `live = false` rows (readers filter `WHERE live`) — one Parquet file per region, and a manifest
//! written last that records the positions and the files. Readers trust only a
//! snapshot with a manifest; an epoch that died half-written is simply written again (same number).
//!
//! Snapshot n = snapshot n−1 + the change files committed after its positions, folded by version
//! (clock, then offset; the newest wins; a deletion removes). A listing can move to another region
//! (its best member changed, and with it the 구): so each changed listing's *home* — the region of the
//! version that wins — is settled first over all regions from the key columns alone, and only its
//! home's file holds it. Memory is then one region at a time.

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
    // Deletions whose region is unknown apply wherever the listing is (the fold orders by offset).
    let orphan_files = by_region.remove("unknown").unwrap_or_default();
    let homes = homes(store, base.as_ref(), &by_region, &orphan_files).await?;
    let mut orphans: Vec<Vec<Value>> = Vec::new();
    for f in &orphan_files {
        orphans.extend(read(store, f).await?);
    }
    let mut regions: BTreeSet<String> = by_region.keys().cloned().collect();
    if let Some(b) = &base {
        regions.extend(b.files.keys().cloned());
    }
    let epoch = base.as_ref().map_or(1, |b| b.epoch + 1);
    let mut files = BTreeMap::new();
    let mut total = 0;
    for region in regions {
        // A listing belongs here unless its changes took it elsewhere (or nowhere).
        let here = |id: &str| {
            homes
                .get(id)
                .is_none_or(|h| h.as_deref() == Some(region.as_str()))
        };
        let mut rows: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        if let Some((path, _)) = base.as_ref().and_then(|b| b.files.get(&region)) {
            for r in read(store, path).await? {
                let id = id_of(&r);
                if here(&id) {
                    rows.insert(id, r);
                }
            }
        }
        let mut changes: Vec<Vec<Value>> = Vec::new();
        for f in by_region.get(&region).into_iter().flatten() {
            changes.extend(read(store, f).await?);
        }
        changes.retain(|r| here(&id_of(r)));
        changes.extend(
            orphans
                .iter()
                .filter(|r| {
                    homes
                        .get(&id_of(r))
                        .is_some_and(|h| h.as_deref() == Some(region.as_str()))
                })
                .cloned(),
        );
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

/// The key columns of [`COLUMNS`]: id, live, clock, partition, offset, region.
const KEYS: &[(&str, table::Ty, bool)] = COLUMNS.split_at(6).0;

/// Where each listing the change files touch ends up: the region of its winning version (a deletion
/// of unknown region stays where the listing was), `None` when it is held nowhere. Folds the key
/// columns of the changes over those of the base snapshot, exactly as [`fold`] would globally.
async fn homes(
    store: &Arc<dyn ObjectStore>,
    base: Option<&Manifest>,
    by_region: &BTreeMap<String, Vec<String>>,
    orphans: &[String],
) -> Result<BTreeMap<String, Option<String>>, SinkError> {
    let mut changes: Vec<(Vec<Value>, Option<&str>)> = Vec::new();
    for (region, files) in by_region {
        for f in files {
            let rows = read_columns(store, f, KEYS).await?;
            changes.extend(rows.into_iter().map(|r| (r, Some(region.as_str()))));
        }
    }
    for f in orphans {
        changes.extend(
            read_columns(store, f, KEYS)
                .await?
                .into_iter()
                .map(|r| (r, None)),
        );
    }
    let touched: BTreeSet<String> = changes.iter().map(|(r, _)| id_of(r)).collect();
    // What the base holds of them, and where.
    let mut held: BTreeMap<String, ((i64, i64), Option<String>)> = BTreeMap::new();
    for (region, (path, _)) in base.map(|b| &b.files).into_iter().flatten() {
        for r in read_columns(store, path, KEYS).await? {
            let id = id_of(&r);
            if touched.contains(&id) {
                held.insert(id, (version(&r, None), Some(region.clone())));
            }
        }
    }
    changes.sort_by_key(|(r, _)| offset_of(r));
    for (c, region) in changes {
        let id = id_of(&c);
        let before = held.get(&id);
        let v = version(&c, before.map(|h| h.0));
        if before.is_some_and(|h| v <= h.0) {
            continue;
        }
        let home = region
            .map(str::to_string)
            .or_else(|| before.and_then(|h| h.1.clone()));
        held.insert(id, (v, home));
    }
    Ok(touched
        .into_iter()
        .map(|id| {
            let home = held.get(&id).and_then(|h| h.1.clone());
            (id, home)
        })
        .collect())
}

fn offset_of(row: &[Value]) -> i64 {
    match row.get(4) {
        Some(Value::Int(o)) => *o,
        _ => 0,
    }
}

/// Applies changes to rows by version: the newest wins, whatever the order the files come in. A
/// listing's records are all in one partition of `listings.v1`, so its changes are taken in offset
/// (publication) order, each kept only if newer than the one held.
pub fn fold(rows: &mut BTreeMap<String, Vec<Value>>, mut changes: Vec<Vec<Value>>) {
    changes.sort_by_key(|r| offset_of(r));
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
    read_columns(store, path, COLUMNS).await
}

async fn read_columns(
    store: &Arc<dyn ObjectStore>,
    path: &str,
    columns: &[(&str, table::Ty, bool)],
) -> Result<Vec<Vec<Value>>, SinkError> {
    let bytes = store.get(&Path::from(path)).await?.bytes().await?;
    parquet::decode(columns, bytes)
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

    /// Writes one batch of rows (all of one region, or tombstones of unknown region) as a change file
    /// with its commit marker, as the sink does.
    async fn commit(
        store: &Arc<dyn ObjectStore>,
        root: &Path,
        region: Option<&str>,
        rows: Vec<Vec<Value>>,
    ) {
        let offset = offset_of(&rows[0]);
        let group = layout::region_group(region);
        let file = layout::data_file(root, TopicKind::Listings, &group, 0, offset, offset);
        let bytes = parquet::encode(COLUMNS, &rows).expect("encode");
        store
            .put(&file, PutPayload::from(bytes))
            .await
            .expect("put");
        let marker = Commit {
            topic: "listings.v1".into(),
            partition: 0,
            first: offset,
            last: offset,
            files: vec![file.to_string()],
            rows: rows.len() as u64,
            committed_at: String::new(),
        };
        let json = serde_json::to_vec(&marker).expect("json");
        let path = layout::commit(root, TopicKind::Listings, 0, offset, offset);
        store.put(&path, PutPayload::from(json)).await.expect("put");
    }

    fn at(region: &str, mut r: Vec<Value>) -> Vec<Value> {
        r[5] = Value::Text(region.into());
        r
    }

    /// (id, region, clock, live) of every row of the latest snapshot, live or not.
    async fn held(store: &Arc<dyn ObjectStore>, root: &Path) -> Vec<(String, String, i64, bool)> {
        let m = latest(store, root)
            .await
            .expect("latest")
            .expect("a snapshot");
        let mut out = Vec::new();
        for (region, (path, _)) in &m.files {
            for r in read(store, path).await.expect("read") {
                let v = version(&r, None);
                out.push((id_of(&r), region.clone(), v.0, is_live(&r)));
            }
        }
        out.sort();
        out
    }

    #[tokio::test]
    async fn a_listing_that_moves_region_is_held_once_in_its_new_region() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let root = Path::from("t");
        let snap = |next: i64| BTreeMap::from([(0, next)]);
        commit(
            &store,
            &root,
            Some("11110"),
            vec![at("11110", row("a", true, Some(5), 0))],
        )
        .await;
        commit(
            &store,
            &root,
            Some("11140"),
            vec![at("11140", row("b", true, Some(5), 1))],
        )
        .await;
        write(&store, &root, &snap(2)).await.expect("epoch 1");
        // a moves to 11140 (its best member changed), and, in the same epoch, an older version
        // of b arrives from 11110: b stays where its newer version is.
        commit(
            &store,
            &root,
            Some("11140"),
            vec![at("11140", row("a", true, Some(7), 2))],
        )
        .await;
        commit(
            &store,
            &root,
            Some("11110"),
            vec![at("11110", row("b", true, Some(4), 3))],
        )
        .await;
        write(&store, &root, &snap(4)).await.expect("epoch 2");
        assert_eq!(
            held(&store, &root).await,
            vec![
                ("a".into(), "11140".into(), 7, true),
                ("b".into(), "11140".into(), 5, true)
            ]
        );
        // A stale version of a in its old region, then a deletion that did not say where.
        commit(
            &store,
            &root,
            Some("11110"),
            vec![at("11110", row("a", true, Some(6), 4))],
        )
        .await;
        commit(&store, &root, None, vec![row("a", false, None, 5)]).await;
        // And c, new, moves within one epoch.
        commit(
            &store,
            &root,
            Some("11110"),
            vec![at("11110", row("c", true, Some(8), 6))],
        )
        .await;
        commit(
            &store,
            &root,
            Some("11140"),
            vec![at("11140", row("c", true, Some(9), 7))],
        )
        .await;
        write(&store, &root, &snap(8)).await.expect("epoch 3");
        assert_eq!(
            held(&store, &root).await,
            vec![
                ("a".into(), "11140".into(), 7, false),
                ("b".into(), "11140".into(), 5, true),
                ("c".into(), "11140".into(), 9, true)
            ]
        );
    }
}
