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
                    .unwrap_or(UNKNOWN)
                    .to_string();
                by_region.entry(region).or_default().push(f);
            }
        }
    }
    // Deletions whose region is unknown apply wherever the listing is (the fold orders by offset).
    let orphan_files = by_region.remove(UNKNOWN).unwrap_or_default();
    let (homes, clocks) = homes(store, base.as_ref(), &by_region, &orphan_files).await?;
    let mut orphans: Vec<Vec<Value>> = Vec::new();
    for f in &orphan_files {
        orphans.extend(read(store, f).await?);
    }
    fill_clocks(&mut orphans, &clocks);
    let mut regions: BTreeSet<String> = by_region.keys().cloned().collect();
    if let Some(b) = &base {
        regions.extend(b.files.keys().cloned());
    }
    regions.extend(homes.values().flatten().cloned());
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
        fill_clocks(&mut changes, &clocks);
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

/// The region folder of changes without a region (tombstones published without a region header), and
/// of the deletions of listings held nowhere else.
const UNKNOWN: &str = "unknown";

/// The key columns of [`COLUMNS`]: id, live, clock, partition, offset, region.
const KEYS: &[(&str, table::Ty, bool)] = COLUMNS.split_at(6).0;

/// The clocks that changes without one (tombstones published without a clock header) take, by
/// (listing, offset): the clock of the version held when they come, over every region.
type Clocks = BTreeMap<(String, i64), i64>;

/// Where each listing the change files touch ends up: the region of its winning version (a deletion
/// of unknown region stays where the listing was, or goes to `unknown` if it was nowhere); and the
/// [`Clocks`] of the clockless changes. Folds the key columns of the changes over those of the base
/// snapshot, exactly as [`fold`] would globally — so that each region's fold, which sees only its own
/// files, gives a clockless tombstone the clock it would get there, not its region's last version's.
async fn homes(
    store: &Arc<dyn ObjectStore>,
    base: Option<&Manifest>,
    by_region: &BTreeMap<String, Vec<String>>,
    orphans: &[String],
) -> Result<(BTreeMap<String, Option<String>>, Clocks), SinkError> {
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
    let mut clocks = Clocks::new();
    for (c, region) in changes {
        let id = id_of(&c);
        let before = held.get(&id);
        let v = version(&c, before.map(|h| h.0));
        if !matches!(c.get(2), Some(Value::Int(_))) {
            clocks.insert((id.clone(), offset_of(&c)), v.0);
        }
        if before.is_some_and(|h| v <= h.0) {
            continue;
        }
        // A deletion of unknown region for a listing held nowhere is kept in `unknown`: its version
        // must outlive the epoch, or an older version arriving later would revive the listing.
        let home = region
            .map(str::to_string)
            .or_else(|| before.and_then(|h| h.1.clone()))
            .or_else(|| Some(UNKNOWN.to_string()));
        held.insert(id, (v, home));
    }
    let homes = touched
        .into_iter()
        .map(|id| {
            let home = held.get(&id).and_then(|h| h.1.clone());
            (id, home)
        })
        .collect();
    Ok((homes, clocks))
}

/// Gives the clockless rows their clocks from [`homes`].
fn fill_clocks(rows: &mut [Vec<Value>], clocks: &Clocks) {
    for r in rows {
        if !matches!(r.get(2), Some(Value::Int(_)))
            && let Some(&clock) = clocks.get(&(id_of(r), offset_of(r)))
            && let Some(slot) = r.get_mut(2)
        {
            *slot = Value::Int(clock);
        }
    }
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
        commit_batch(&store, &root, &[at("11110", row("a", true, Some(5), 0))]).await;
        commit_batch(&store, &root, &[at("11140", row("b", true, Some(5), 1))]).await;
        write(&store, &root, &snap(2)).await.expect("epoch 1");
        // a moves to 11140 (its best member changed), and, in the same epoch, an older version
        // of b arrives from 11110: b stays where its newer version is.
        commit_batch(&store, &root, &[at("11140", row("a", true, Some(7), 2))]).await;
        commit_batch(&store, &root, &[at("11110", row("b", true, Some(4), 3))]).await;
        write(&store, &root, &snap(4)).await.expect("epoch 2");
        assert_eq!(
            held(&store, &root).await,
            vec![
                ("a".into(), "11140".into(), 7, true),
                ("b".into(), "11140".into(), 5, true)
            ]
        );
        // A stale version of a in its old region, then a deletion that did not say where.
        commit_batch(&store, &root, &[at("11110", row("a", true, Some(6), 4))]).await;
        commit_batch(&store, &root, &[row("a", false, None, 5)]).await;
        // And c, new, moves within one epoch.
        commit_batch(&store, &root, &[at("11110", row("c", true, Some(8), 6))]).await;
        commit_batch(&store, &root, &[at("11140", row("c", true, Some(9), 7))]).await;
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

    /// Commits one batch as the sink does: a file per region folder (tombstones without a region in
    /// `unknown`), one marker for the offset range.
    async fn commit_batch(store: &Arc<dyn ObjectStore>, root: &Path, rows: &[Vec<Value>]) {
        let (first, last) = (offset_of(&rows[0]), offset_of(&rows[rows.len() - 1]));
        let mut groups: BTreeMap<String, Vec<Vec<Value>>> = BTreeMap::new();
        for r in rows {
            let region = match r.get(5) {
                Some(Value::Text(t)) => Some(t.as_str()),
                _ => None,
            };
            groups
                .entry(layout::region_group(region))
                .or_default()
                .push(r.clone());
        }
        let mut files = Vec::new();
        for (group, rows) in groups {
            let file = layout::data_file(root, TopicKind::Listings, &group, 0, first, last);
            let bytes = parquet::encode(COLUMNS, &rows).expect("encode");
            store
                .put(&file, PutPayload::from(bytes))
                .await
                .expect("put");
            files.push(file.to_string());
        }
        let marker = Commit {
            topic: "listings.v1".into(),
            partition: 0,
            first,
            last,
            files,
            rows: rows.len() as u64,
            committed_at: String::new(),
        };
        let json = serde_json::to_vec(&marker).expect("json");
        let path = layout::commit(root, TopicKind::Listings, 0, first, last);
        store.put(&path, PutPayload::from(json)).await.expect("put");
    }

    /// Whatever the batches and the snapshot epochs, the last snapshot holds each listing once, in
    /// the region of its winning version, and the same winners as one fold over every change.
    #[tokio::test]
    async fn snapshots_hold_the_same_winners_whatever_the_batches_and_epochs() {
        use rand::{Rng, SeedableRng};
        let regions = ["11110", "11140", "11170"];
        for seed in 0..300u64 {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            // A history: per listing a clock that mostly grows (replays bring older ones back).
            let ids = ["a", "b", "c", "d"];
            let mut clocks: BTreeMap<&str, i64> = BTreeMap::new();
            let mut changes = Vec::new();
            for offset in 0..rng.random_range(5..40) {
                let id = ids[rng.random_range(0..ids.len())];
                let c = clocks.entry(id).or_insert(0);
                *c += rng.random_range(-2..4);
                let region = regions[rng.random_range(0..regions.len())];
                let mut r = match rng.random_range(0..10) {
                    0..7 => at(region, row(id, true, Some(*c), offset)),
                    7 => at(region, row(id, false, Some(*c), offset)),
                    _ => row(id, false, Some(*c), offset),
                };
                if rng.random_range(0..8) == 0 {
                    r[2] = Value::Null; // a tombstone without a clock header
                    r[1] = Value::Bool(false);
                }
                changes.push(r);
            }
            let mut want = BTreeMap::new();
            fold(&mut want, changes.clone());
            let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
            let root = Path::from("t");
            let mut rest = &changes[..];
            while !rest.is_empty() {
                let n = rng.random_range(1..=6).min(rest.len());
                let (now, later) = rest.split_at(n);
                rest = later;
                commit_batch(&store, &root, now).await;
                if rest.is_empty() || rng.random_range(0..3) == 0 {
                    let next = offset_of(&now[now.len() - 1]) + 1;
                    write(&store, &root, &BTreeMap::from([(0, next)]))
                        .await
                        .expect("snapshot");
                }
            }
            let got = held(&store, &root).await;
            let mut seen = BTreeSet::new();
            for (id, region, _, _) in &got {
                assert!(
                    seen.insert(id.clone()),
                    "seed {seed}: {id} held twice: {got:?}"
                );
                let w = &want[id];
                if let Some(Value::Text(home)) = w.get(5) {
                    assert_eq!(
                        region, home,
                        "seed {seed}: {id} not in its winner's region: {got:?}"
                    );
                }
            }
            let live = |rows: Vec<(String, i64, bool)>| -> Vec<(String, i64)> {
                rows.into_iter()
                    .filter(|r| r.2)
                    .map(|r| (r.0, r.1))
                    .collect()
            };
            let want_live = live(
                want.iter()
                    .map(|(id, r)| (id.clone(), version(r, None).0, is_live(r)))
                    .collect(),
            );
            let got_live = live(
                got.iter()
                    .map(|(id, _, c, l)| (id.clone(), *c, *l))
                    .collect(),
            );
            assert_eq!(got_live, want_live, "seed {seed}: changes {changes:?}");
        }
    }
}
