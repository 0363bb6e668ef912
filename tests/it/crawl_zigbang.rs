//! The Zigbang crawler against a local server serving a real daily crawl as `house/property/v1` items.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use roomstream::crawl::calibration::Calibration;
use roomstream::crawl::{Emitter, zigbang};
use roomstream::kafka::KafkaSink;
use roomstream::topics::TopicKind;

use crate::support::sites::{FaultKind, Sites};
use crate::support::{TestEnv, assert_all_valid, real_fixtures, spawn_env};

/// The tiles with the most served items (so the test crawls a few busy tiles, not all 62).
fn busiest_tiles(ids: &BTreeMap<String, BTreeMap<String, Vec<String>>>, n: usize) -> Vec<String> {
    let mut per_tile: BTreeMap<&str, usize> = BTreeMap::new();
    for tiles in ids.values() {
        for (tile, list) in tiles {
            *per_tile.entry(tile).or_default() += list.len();
        }
    }
    let mut tiles: Vec<(&str, usize)> = per_tile.into_iter().collect();
    tiles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    tiles
        .into_iter()
        .take(n)
        .map(|(t, _)| t.to_string())
        .collect()
}

/// The regions whose 동 centroids lie in a tile (what the crawler's completeness rule depends on).
fn regions_of(tile: &str) -> BTreeSet<String> {
    let b = zigbang::geohash_bbox(tile).expect("tile");
    Calibration::embedded()
        .dong
        .iter()
        .filter(|d| b.contains(d.lat, d.lng))
        .map(|d| d.gu_code.clone())
        .collect()
}

async fn setup(tiles: usize) -> Option<(TestEnv, Sites, Vec<String>, BTreeSet<String>)> {
    let dir = real_fixtures()?;
    let sites = Sites::start().await;
    let ids = sites.load_zigbang(&dir);
    let tiles = busiest_tiles(&ids, tiles);
    let expected: BTreeSet<String> = ids
        .iter()
        .filter(|(k, _)| *k != "villas")
        .flat_map(|(_, t)| {
            tiles
                .iter()
                .filter_map(|tile| t.get(tile))
                .flatten()
                .cloned()
        })
        .collect();
    let geohashes = format!(
        "[{}]",
        tiles
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(",")
    );
    let env = spawn_env(&[
        ("zigbang", "base_url", &sites.base_url()),
        ("zigbang", "min_interval", "0s"),
        ("zigbang", "geohashes", &geohashes),
        ("crawl", "backoff", "10ms"),
        ("crawl", "request_timeout", "2s"),
        ("crawl", "max_attempts", "3"),
    ])
    .await;
    Some((env, sites, tiles, expected))
}

async fn crawl(env: &TestEnv) -> zigbang::ZigbangOutcome {
    let mut sink = KafkaSink::new(&env.cfg.kafka).expect("producer");
    let mut emitter = Emitter::new(&mut sink, None);
    let outcome = zigbang::crawl(&env.cfg, "test-crawl", &mut emitter)
        .await
        .expect("crawl");
    emitter.finish().expect("every record acknowledged");
    outcome
}

fn observed_ids(env: &TestEnv) -> Vec<String> {
    let records = env.read_topic(TopicKind::Observed);
    assert_all_valid(TopicKind::Observed, &records);
    records
        .iter()
        .map(|r| {
            r.json()["source_listing_id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect()
}

fn swept_regions(env: &TestEnv) -> BTreeSet<String> {
    let records = env.read_topic(TopicKind::Sweeps);
    assert_all_valid(TopicKind::Sweeps, &records);
    records.iter().map(|r| r.key.clone()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_crawl_lists_every_item_in_batches_of_15_and_sweeps_every_covered_region() {
    let Some((env, sites, tiles, expected)) = setup(4).await else {
        return;
    };
    let outcome = crawl(&env).await;

    let ids = observed_ids(&env);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every served id, once"
    );
    assert_eq!(ids.len(), expected.len(), "no id twice");
    let covered: BTreeSet<String> = tiles.iter().flat_map(|t| regions_of(t)).collect();
    assert_eq!(swept_regions(&env), covered);
    assert!(outcome.regions_incomplete.is_empty());
    // Paging: more ids than one batch, so several detail requests, none over the cap (the server 400s).
    let batches = sites
        .log()
        .iter()
        .filter(|(p, s)| p.contains("items/list") && *s == 200)
        .count();
    assert!(
        batches >= expected.len().div_ceil(15),
        "{batches} batches for {} ids",
        expected.len()
    );
    assert!(sites.log().iter().all(|(_, s)| *s == 200));
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_server_errors_and_slow_answers_are_retried_and_the_crawl_still_completes()
 {
    let Some((env, sites, tiles, expected)) = setup(2).await else {
        return;
    };
    sites.fault(&format!("geohash={}", tiles[0]), FaultKind::TooMany, 2);
    sites.fault("items/list", FaultKind::ServerError, 1);
    sites.fault(
        &format!("geohash={}", tiles[1]),
        FaultKind::Slow(Duration::from_secs(3)),
        1,
    );
    let outcome = crawl(&env).await;

    assert_eq!(
        observed_ids(&env).into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(outcome.regions_incomplete.is_empty(), "{outcome:?}");
    let log = sites.log();
    assert_eq!(log.iter().filter(|(_, s)| *s == 429).count(), 2);
    assert_eq!(log.iter().filter(|(_, s)| *s == 500).count(), 1);
    assert!(
        outcome.requests as usize >= log.len() - 1,
        "retries are counted: {} vs {}",
        outcome.requests,
        log.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_tile_leaves_its_regions_without_a_sweep_marker() {
    let Some((env, sites, tiles, _)) = setup(4).await else {
        return;
    };
    let bad = &tiles[0];
    sites.fault(&format!("geohash={bad}"), FaultKind::Malformed, usize::MAX);
    let outcome = crawl(&env).await;

    let swept = swept_regions(&env);
    let lost = regions_of(bad);
    assert!(!lost.is_empty());
    assert!(
        swept.is_disjoint(&lost),
        "regions of the malformed tile were swept: {:?}",
        swept.intersection(&lost).collect::<Vec<_>>()
    );
    assert_eq!(
        outcome
            .regions_incomplete
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        lost
    );
    let others: BTreeSet<String> = tiles[1..]
        .iter()
        .flat_map(|t| regions_of(t))
        .filter(|r| !lost.contains(r))
        .collect();
    assert_eq!(swept, others, "the other regions are still swept");
    assert!(
        outcome
            .tiles_failed
            .iter()
            .any(|t| t.ends_with(bad.as_str()))
    );
    assert!(
        !observed_ids(&env).is_empty(),
        "the good tiles' items still landed"
    );
}
