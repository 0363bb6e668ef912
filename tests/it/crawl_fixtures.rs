//! `crawl fixtures`: every row of every real fixture file becomes a valid observation on the broker.

use std::collections::BTreeSet;

use roomstream::topics::TopicKind;

use crate::support::{assert_all_valid, real_fixtures, spawn_env};

/// Listing rows in the fixture folder, counted independently of the crawler (CSV records + JSON items).
fn fixture_rows(dir: &std::path::Path) -> (u64, u64) {
    let mut rows = 0;
    let mut daily_files = 0;
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name.starts_with("zigbang_daily_seoul_") || name.starts_with("zigbang_seoul_listings_") {
            let mut reader = csv::Reader::from_path(&path).expect("csv");
            rows += reader.records().count() as u64;
            daily_files += u64::from(name.starts_with("zigbang_daily_seoul_"));
        } else if name.starts_with("dabang_v5_roomlist") {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
            rows += v["result"]["roomList"]
                .as_array()
                .map_or(0, |a| a.len() as u64);
        } else if name.starts_with("zigbang_v3_item_detail") {
            rows += 1;
        }
    }
    (rows, daily_files)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fixture_row_becomes_a_valid_observation() {
    let Some(dir) = real_fixtures() else { return };
    let env = spawn_env(&[]).await;
    let (rows, daily_files) = fixture_rows(&dir);
    let out = env.roomstream(&["crawl", "fixtures", "--dir", &dir.to_string_lossy()]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(100.0 %)"));

    let observed = env.read_topic(TopicKind::Observed);
    let valid = assert_all_valid(TopicKind::Observed, &observed);
    println!("fixture crawl: {valid} of {rows} fixture rows became valid observations");
    assert_eq!(valid as u64, rows, "every fixture row is one observation");

    let formats: BTreeSet<String> = observed
        .iter()
        .filter_map(|r| r.json()["payload_format"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        formats.into_iter().collect::<Vec<_>>(),
        [
            "dabang.v5.room",
            "zigbang.daily_csv",
            "zigbang.snapshot_csv",
            "zigbang.v3.item"
        ]
    );
    // Each daily file is a sweep of its day: one crawl id per file among the sweep markers.
    let sweeps = env.read_topic(TopicKind::Sweeps);
    assert_all_valid(TopicKind::Sweeps, &sweeps);
    let crawl_ids: BTreeSet<String> = sweeps
        .iter()
        .filter_map(|r| r.json()["crawl_id"].as_str().map(str::to_string))
        .collect();
    assert_eq!(crawl_ids.len() as u64, daily_files, "{crawl_ids:?}");
    // A sweep's count is the number of observations of its region in its crawl.
    let observations: Vec<serde_json::Value> = observed.iter().map(|r| r.json()).collect();
    for s in sweeps.iter().map(|r| r.json()) {
        let seen = observations
            .iter()
            .filter(|o| o["crawl_id"] == s["crawl_id"] && o["region_code"] == s["region_code"])
            .count();
        assert_eq!(s["listings_seen"], seen as u64, "{s}");
    }
}
