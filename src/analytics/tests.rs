//! Unit tests of the engine over a small lake laid out as the S3 sink lays it out, in memory: which
//! snapshot and which change files are read, the estimate of `changed_at`, every built-in query, and
//! the errors an analyst sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::*;
use crate::sink::s3::{layout, parquet};
use crate::sink::table::{COLUMNS, Value, index};
use crate::topics::TopicKind;

/// 2026-05-04 (Mon), 05-06 (Wed), 05-11 (Mon), 05-13 (Wed), each 06:00 KST, in Unix seconds.
const MON_4: i64 = 1_777_842_000;
const WED_6: i64 = 1_778_014_800;
const MON_11: i64 = 1_778_446_800;
const WED_13: i64 = 1_778_619_600;

fn set(r: &mut [Value], column: &str, v: Value) {
    let i = index(column).unwrap_or_else(|| panic!("no column {column}"));
    r[i] = v;
}

fn tombstone(id: &str, clock: i64, offset: i64, region: &str) -> Vec<Value> {
    let mut r = vec![Value::Null; COLUMNS.len()];
    set(&mut r, "listing_id", Value::Text(id.into()));
    set(&mut r, "live", Value::Bool(false));
    set(&mut r, "version_clock", Value::Int(clock));
    set(&mut r, "source_partition", Value::Int(0));
    set(&mut r, "source_offset", Value::Int(offset));
    set(&mut r, "region_code", Value::Text(region.into()));
    r
}

/// A live version: (id, clock, offset, region, deposit, rent, first seen, platforms, broker status).
fn live(
    (id, clock, offset, region): (&str, i64, i64, &str),
    (deposit, rent): (i64, i64),
    first_seen: i64,
    platforms: &str,
    broker: &str,
) -> Vec<Value> {
    let mut r = tombstone(id, clock, offset, region);
    let gu = crate::region::gu_name(region).unwrap_or("?");
    let text = |s: &str| Value::Text(s.into());
    for (c, v) in [
        ("live", Value::Bool(true)),
        // A Dabang-only listing names its 동, not its 구: the views fill it from the region code.
        (
            "gu",
            if platforms == "dabang" {
                Value::Null
            } else {
                text(gu)
            },
        ),
        ("lease", text("monthly")),
        ("deposit", Value::Int(deposit)),
        ("rent", Value::Int(rent)),
        ("fee", Value::Float(7.0)),
        ("rent_with_fee", Value::Float(rent as f64 + 7.0)),
        (
            "floor_kind",
            text(if id == "D" { "semi_basement" } else { "level" }),
        ),
        (
            "floor_level",
            if id == "D" {
                Value::Null
            } else {
                Value::Int(3)
            },
        ),
        ("lat", Value::Float(37.48)),
        ("lng", Value::Float(126.95)),
        ("platforms", text(platforms)),
        ("first_seen", Value::Int(first_seen)),
        ("broker_status", text(broker)),
        ("broker_office", text("관악공인중개사사무소")),
        ("broker_person", text("김중개")),
    ] {
        set(&mut r, c, v);
    }
    for (c, m) in [
        ("subway_m", 300),
        ("convenience_store_m", 100),
        ("cafe_m", 200),
        ("mart_m", 900),
        ("restaurant_m", 50),
        ("hospital_m", 400),
    ] {
        set(&mut r, c, Value::Int(if id == "A" { m } else { m * 10 }));
    }
    r
}

/// A committed batch of the lake: first and last offset, rows by region.
type Batch<'a> = (i64, i64, Vec<(&'a str, Vec<Vec<Value>>)>);

async fn put(store: &Arc<dyn ObjectStore>, path: &Path, rows: &[Vec<Value>]) {
    let bytes = parquet::encode(COLUMNS, rows).expect("encode");
    store.put(path, PutPayload::from(bytes)).await.expect("put");
}

async fn snapshot(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    epoch: u64,
    next: i64,
    regions: &[(&str, Vec<Vec<Value>>)],
) {
    let mut files = BTreeMap::new();
    let mut live_rows = 0;
    for (region, rows) in regions {
        let path = layout::snapshot_file(root, epoch, region);
        put(store, &path, rows).await;
        live_rows += rows.iter().filter(|r| r[1] == Value::Bool(true)).count() as u64;
        files.insert(region.to_string(), (path.to_string(), rows.len() as u64));
    }
    let manifest = Manifest {
        epoch,
        positions: BTreeMap::from([(0, next)]),
        files,
        rows: live_rows,
        written_at: "2026-05-13T00:00:00Z".into(),
    };
    let json = serde_json::to_vec(&manifest).expect("json");
    store
        .put(&layout::manifest(root, epoch), PutPayload::from(json))
        .await
        .expect("manifest");
}

/// Partition 0 of listings.v1 in three committed batches (0–3, 4–7, 8–9) and one that died before its
/// marker (10–12); snapshot 1 at offset 8, snapshot 2 at 10, snapshot 3 half-written.
async fn lake() -> (Arc<dyn ObjectStore>, Path) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let root = layout::root(&Path::from("lake"), "ns");
    fill(&store, &root).await;
    (store, root)
}

async fn fill(store: &Arc<dyn ObjectStore>, root: &Path) {
    let (store, root) = (store.clone(), root.clone());
    let (a0, b0, c0) = (
        live(
            ("A", 10, 0, "11620"),
            (1000, 50),
            MON_4,
            "dabang,zigbang",
            "verified",
        ),
        live(
            ("B", 10, 1, "11620"),
            (500, 40),
            MON_4,
            "zigbang",
            "unverified",
        ),
        live(("C", 10, 2, "11440"), (300, 60), MON_4, "dabang", "unknown"),
    );
    let d0 = live(
        ("D", 20, 3, "11620"),
        (200, 45),
        WED_6,
        "zigbang",
        "verified",
    );
    let e0 = live(
        ("E", 30, 4, "11620"),
        (100, 70),
        MON_11,
        "zigbang",
        "verified",
    );
    let a1 = live(
        ("A", 30, 5, "11620"),
        (1000, 55),
        MON_4,
        "dabang,zigbang",
        "verified",
    );
    let b1 = tombstone("B", 30, 6, "11620");
    let c1 = live(("C", 25, 7, "11440"), (300, 55), MON_4, "dabang", "unknown");
    let f0 = live(
        ("F", 40, 8, "11440"),
        (800, 35),
        WED_13,
        "dabang",
        "unverified",
    );
    let d1 = tombstone("D", 40, 9, "11620");
    let g0 = live(
        ("G", 50, 10, "11620"),
        (1, 1),
        WED_13,
        "zigbang",
        "verified",
    );
    let batches: [Batch<'_>; 3] = [
        (
            0,
            3,
            vec![("11620", vec![a0, b0, d0.clone()]), ("11440", vec![c0])],
        ),
        (
            4,
            7,
            vec![
                ("11620", vec![e0.clone(), a1.clone(), b1.clone()]),
                ("11440", vec![c1.clone()]),
            ],
        ),
        (
            8,
            9,
            vec![("11620", vec![d1.clone()]), ("11440", vec![f0.clone()])],
        ),
    ];
    for (first, last, groups) in batches {
        for (region, rows) in groups {
            let group = layout::region_group(Some(region));
            let path = layout::data_file(&root, TopicKind::Listings, &group, 0, first, last);
            put(&store, &path, &rows).await;
        }
        let marker = layout::commit(&root, TopicKind::Listings, 0, first, last);
        store
            .put(&marker, PutPayload::from("{}"))
            .await
            .expect("marker");
    }
    let dead = layout::data_file(&root, TopicKind::Listings, "region=11620", 0, 10, 12);
    put(&store, &dead, std::slice::from_ref(&g0)).await;
    snapshot(
        &store,
        &root,
        1,
        8,
        &[
            ("11620", vec![a1.clone(), b1.clone(), d0, e0.clone()]),
            ("11440", vec![c1.clone()]),
        ],
    )
    .await;
    snapshot(
        &store,
        &root,
        2,
        10,
        &[("11620", vec![a1, b1, d1, e0]), ("11440", vec![c1, f0])],
    )
    .await;
    // A file the manifest does not list, and an epoch that died before its manifest.
    put(
        &store,
        &layout::snapshot_file(&root, 2, "11650"),
        std::slice::from_ref(&g0),
    )
    .await;
    put(&store, &layout::snapshot_file(&root, 3, "11620"), &[g0]).await;
}

async fn count(a: &Analytics, sql: &str) -> f64 {
    let answer = a.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    answer
        .floats(answer.schema.field(0).name())
        .expect("a number")[0]
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn the_newest_complete_snapshot_is_read_and_only_the_files_its_manifest_lists() {
    let (store, root) = lake().await;
    let a = Analytics::open_at(store, &root, None).await.expect("open");
    assert_eq!(a.manifest().epoch, 2, "epoch 3 has no manifest");
    assert_eq!(count(&a, "SELECT COUNT(*) FROM listings").await, 4.0);
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM snapshot").await,
        6.0,
        "deletions stay as live = false"
    );
    assert_eq!(
        count(
            &a,
            "SELECT COUNT(*) FROM listings WHERE listing_id IN ('G', 'B', 'D')"
        )
        .await,
        0.0,
        "neither the unlisted file nor deleted listings"
    );
    assert_eq!(a.change_files(), 6);
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM changes").await,
        10.0,
        "offsets 0–9; the batch without a marker is not read"
    );
    assert_eq!(
        count(&a, "SELECT MAX(source_offset) FROM changes").await,
        9.0
    );
}

#[tokio::test]
async fn an_older_epoch_on_request_and_clear_errors_when_there_is_none() {
    let (store, root) = lake().await;
    let a = Analytics::open_at(store.clone(), &root, Some(1))
        .await
        .expect("epoch 1");
    assert_eq!(a.manifest().epoch, 1);
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM listings WHERE listing_id = 'D'").await,
        1.0
    );
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM changes").await,
        8.0,
        "changes stop at the snapshot's positions"
    );
    let e = Analytics::open_at(store.clone(), &root, Some(3))
        .await
        .expect_err("incomplete");
    assert!(
        matches!(&e, AnalyticsError::NoSuchEpoch { epoch: 3, complete } if complete == &[1, 2]),
        "{e}"
    );
    let e = Analytics::open_at(store, &Path::from("lake/other"), None)
        .await
        .expect_err("nothing there");
    assert!(matches!(e, AnalyticsError::NoSnapshot { .. }), "{e}");
    assert!(e.to_string().contains("roomstream sink s3"), "{e}");
}

#[tokio::test]
async fn changed_at_is_the_newest_first_sighting_published_in_the_region_by_then() {
    let (store, root) = lake().await;
    let a = Analytics::open_at(store, &root, None).await.expect("open");
    let answer = a
        .sql("SELECT listing_id, source_offset, CAST(changed_at AS VARCHAR) AS at FROM changes ORDER BY source_offset")
        .await
        .expect("query");
    let at: Vec<String> = answer
        .strings("at")
        .expect("at")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        at,
        [
            "2026-05-04T06:00:00+09:00", // A, B at clock 10: D (clock 20) is not yet published
            "2026-05-04T06:00:00+09:00",
            "2026-05-04T06:00:00+09:00", // C, 마포구
            "2026-05-06T06:00:00+09:00", // D's own first sighting
            "2026-05-11T06:00:00+09:00", // E, A's price change and B's removal: clock 30
            "2026-05-11T06:00:00+09:00",
            "2026-05-11T06:00:00+09:00",
            "2026-05-04T06:00:00+09:00", // C's price change, clock 25 in 마포구
            "2026-05-13T06:00:00+09:00", // F
            "2026-05-11T06:00:00+09:00", // D's removal at clock 40: nothing newer in 관악구
        ],
    );
}

#[tokio::test]
async fn every_built_in_query_answers_over_the_lake() {
    let (store, root) = lake().await;
    let a = Analytics::open_at(store, &root, None).await.expect("open");
    for q in queries::QUERIES {
        let answer = a
            .sql(q.sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", q.name));
        assert!(answer.rows() > 0, "{} answers", q.name);
    }
    let ask = |name: &str| {
        let q = queries::by_name(name).expect("a built-in query");
        a.sql(q.sql)
    };
    let weekly = ask("price_changes_per_week").await.expect("weekly");
    let weeks: Vec<String> = weekly
        .strings("week")
        .expect("week")
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        weeks,
        ["2026-05-04T00:00:00+09:00", "2026-05-11T00:00:00+09:00"],
        "KST weeks: A's change at Monday 06:00 KST is Sunday in UTC"
    );
    assert_eq!(
        weekly.floats("increases").expect("up"),
        [Some(0.0), Some(1.0)]
    );
    assert_eq!(
        weekly.floats("decreases").expect("down"),
        [Some(1.0), Some(0.0)]
    );
    let removal = ask("time_to_removal_by_district").await.expect("removal");
    assert_eq!(
        removal.strings("district").expect("gu"),
        [Some("관악구".to_string())]
    );
    assert_eq!(removal.floats("removals").expect("n"), [Some(2.0)]);
    assert_eq!(
        removal.floats("median_days").expect("median"),
        [Some(6.0)],
        "B 7 days, D 5"
    );
    let cross = ask("cross_listing_share").await.expect("cross");
    assert_eq!(
        cross
            .strings("platform")
            .expect("platform")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["zigbang", "dabang", "all"]
    );
    assert_eq!(
        cross.floats("listings").expect("n"),
        [Some(2.0), Some(3.0), Some(4.0)]
    );
    assert_eq!(
        cross.floats("share").expect("share"),
        [Some(0.5), Some(0.3333), Some(0.25)]
    );
    let certified = ask("broker_certification").await.expect("certified");
    assert_eq!(
        certified
            .strings("certificate_status")
            .expect("status")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        ["인증", "미인증", "확인 불가"]
    );
    assert_eq!(
        certified.floats("property_count").expect("n"),
        [Some(2.0), Some(1.0), Some(1.0)]
    );
    let floors = ask("floor_distribution").await.expect("floors");
    assert_eq!(
        floors.strings("floor").expect("floor"),
        [Some("3층".to_string())]
    );
    let facilities = ask("all_facilities_by_district").await.expect("facilities");
    assert_eq!(
        facilities.strings("district").expect("gu"),
        [Some("관악구".to_string()), Some("마포구".to_string())]
    );
    assert_eq!(
        facilities.floats("property_count").expect("n"),
        [Some(1.0), Some(0.0)],
        "only A"
    );
}

#[tokio::test]
async fn a_local_folder_named_by_the_config_reads_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = crate::config::load(None).expect("the local profile");
    cfg.store.url = format!("file://{}", dir.path().display());
    cfg.store.endpoint = String::new();
    cfg.kafka.namespace = "ns".into();
    let (store, prefix) = crate::store::open(&cfg.store).expect("a folder");
    fill(&store, &layout::root(&prefix, "ns")).await;
    let a = Analytics::open(&cfg, None).await.expect("open");
    assert_eq!(a.manifest().epoch, 2);
    assert_eq!(count(&a, "SELECT COUNT(*) FROM listings").await, 4.0);
    assert_eq!(count(&a, "SELECT COUNT(*) FROM changes").await, 10.0);
}

#[tokio::test]
async fn bad_sql_is_a_query_error_and_nothing_can_be_written() {
    let (store, root) = lake().await;
    let a = Analytics::open_at(store, &root, None).await.expect("open");
    for sql in [
        "SELEC 1",
        "SELECT nope FROM listings",
        "SELECT * FROM no_such_table",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO listings SELECT * FROM listings",
        "DROP VIEW listings",
        "SET datafusion.execution.batch_size = 1",
    ] {
        let e = a.sql(sql).await.expect_err(sql);
        assert!(matches!(e, AnalyticsError::Query(_)), "{sql}: {e}");
        assert!(e.to_string().starts_with("query: "), "{sql}: {e}");
    }
    let e = a.sql("SELEC 1").await.expect_err("not SQL").to_string();
    assert_eq!(
        e.matches("Expected").count(),
        1,
        "the parser's reason, said once: {e}"
    );
    assert_eq!(
        count(&a, "SELECT COUNT(*) FROM listings").await,
        4.0,
        "still there"
    );
}
