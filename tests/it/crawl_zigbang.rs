//! The Zigbang crawler against a local server serving a real daily crawl as `house/property/v1` items,
//! over the seed's 62 tiles.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use roomstream::crawl::calibration::Calibration;
use roomstream::crawl::{Emitter, zigbang};
use roomstream::kafka::KafkaSink;
use roomstream::region;
use roomstream::topics::TopicKind;

use crate::support::sites::{FaultKind, Sites};
use crate::support::{TestEnv, assert_all_valid, real_fixtures};

/// Tiles by how many items the server holds in them, busiest first.
fn busiest_tiles(ids: &BTreeMap<String, BTreeMap<String, Vec<String>>>) -> Vec<String> {
    let mut per_tile: BTreeMap<&str, usize> = BTreeMap::new();
    for tiles in ids.values() {
        for (tile, list) in tiles {
            *per_tile.entry(tile).or_default() += list.len();
        }
    }
    let mut tiles: Vec<(&str, usize)> = per_tile.into_iter().collect();
    tiles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    tiles.into_iter().map(|(t, _)| t.to_string()).collect()
}

/// Every 구 a tile touches (the ones a failure of that tile must leave without a marker).
fn regions_touched_by(tile: &str) -> BTreeSet<String> {
    let c = zigbang::coverage(Calibration::embedded(), &[tile.to_string()]);
    c.covered.into_keys().chain(c.partial).collect()
}

fn all_regions() -> BTreeSet<String> {
    region::SEOUL_GU
        .iter()
        .map(|(c, _)| c.to_string())
        .collect()
}

struct Setup {
    env: TestEnv,
    sites: Sites,
    /// Tiles with items, busiest first.
    tiles: Vec<String>,
    /// Ids the crawler should find (the configured kinds, in the seed tiles).
    expected: BTreeSet<String>,
    /// The 구 of the items the server put in each tile: where listings really are.
    regions_in_tile: BTreeMap<String, BTreeSet<String>>,
    /// kind → tile → ids served.
    ids: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

async fn setup() -> Option<Setup> {
    let dir = real_fixtures()?;
    let sites = Sites::start().await;
    let served = sites.load_zigbang(&dir);
    let ids = &served.ids;
    let seed: BTreeSet<&str> = zigbang::SEED_TILES.into_iter().collect();
    let expected: BTreeSet<String> = ids
        .iter()
        .filter(|(kind, _)| *kind != "villas")
        .flat_map(|(_, tiles)| {
            tiles
                .iter()
                .filter(|(t, _)| seed.contains(t.as_str()))
                .flat_map(|(_, l)| l.iter().cloned())
        })
        .collect();
    let env = sites.zigbang_env().await;
    Some(Setup {
        env,
        sites,
        tiles: busiest_tiles(ids),
        expected,
        regions_in_tile: served.regions_in_tile.clone(),
        ids: served.ids.clone(),
    })
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
    env.read_valid(TopicKind::Observed)
        .iter()
        .map(|o| o["source_listing_id"].as_str().expect("id").to_string())
        .collect()
}

fn swept(env: &TestEnv) -> BTreeMap<String, u64> {
    let records = env.read_topic(TopicKind::Sweeps);
    assert_all_valid(TopicKind::Sweeps, &records);
    records
        .iter()
        .map(|r| {
            (
                r.key.clone(),
                r.json()["listings_seen"].as_u64().expect("count"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clean_crawl_lists_every_item_in_batches_of_15_and_sweeps_every_region() {
    let Some(Setup {
        env,
        sites,
        expected,
        ..
    }) = setup().await
    else {
        return;
    };
    let outcome = crawl(&env).await;

    let ids = observed_ids(&env);
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "every served id"
    );
    assert_eq!(ids.len(), expected.len(), "no id twice");
    let sweeps = swept(&env);
    assert_eq!(
        sweeps.keys().cloned().collect::<BTreeSet<_>>(),
        all_regions(),
        "the seed tiles sweep all 25 구"
    );
    for o in env.read_valid(TopicKind::Observed) {
        assert!(
            sweeps.contains_key(o["region_code"].as_str().expect("code")),
            "{}",
            o["region_code"]
        );
    }
    let total: u64 = sweeps.values().sum();
    assert_eq!(
        total,
        ids.len() as u64,
        "sweep counts add up to the observations"
    );
    assert!(
        outcome.regions_incomplete.is_empty() && outcome.regions_uncovered.is_empty(),
        "{outcome:?}"
    );
    // Paging: the ids need several detail requests, none over the cap (the server answers 400 to more).
    let log = sites.log();
    let batches = log.iter().filter(|(p, _)| p.contains("items/list")).count();
    assert!(
        batches >= expected.len().div_ceil(15),
        "{batches} batches for {} ids",
        expected.len()
    );
    assert!(log.iter().all(|(_, s)| *s == 200));
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_requests_server_errors_and_slow_answers_are_retried_and_the_crawl_still_completes()
 {
    let Some(Setup {
        env,
        sites,
        tiles,
        expected,
        ..
    }) = setup().await
    else {
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
    assert_eq!(swept(&env).len(), 25);
    let log = sites.log();
    assert_eq!(log.iter().filter(|(_, s)| *s == 429).count(), 2);
    assert_eq!(log.iter().filter(|(_, s)| *s == 500).count(), 1);
    // The slow answer timed out on the client (2 s) and was asked again.
    let slow_tile = format!("geohash={}", tiles[1]);
    assert!(
        log.iter().filter(|(p, _)| p.contains(&slow_tile)).count() >= 3,
        "kinds × attempts"
    );
    assert_eq!(
        outcome.requests as usize,
        log.len(),
        "every attempt is counted"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_malformed_tile_leaves_every_region_it_touches_without_a_sweep_marker() {
    let Some(Setup {
        env,
        sites,
        tiles,
        regions_in_tile,
        ..
    }) = setup().await
    else {
        return;
    };
    let bad = &tiles[0];
    sites.fault(&format!("geohash={bad}"), FaultKind::Malformed, usize::MAX);
    let outcome = crawl(&env).await;

    let sweeps: BTreeSet<String> = swept(&env).into_keys().collect();
    // The safety property, from where the server really put listings: no 구 with a listing in the
    // failed tile is swept (a marker there would let the processor remove that listing).
    let really_there = &regions_in_tile[bad];
    assert!(
        sweeps.is_disjoint(really_there),
        "{:?} swept",
        sweeps.intersection(really_there).collect::<Vec<_>>()
    );
    // And the crawler's rule: exactly the 구 whose 동 footprints the tile touches go unswept.
    let lost = regions_touched_by(bad);
    assert!(lost.is_superset(really_there));
    assert_eq!(
        sweeps,
        all_regions().difference(&lost).cloned().collect(),
        "all but the touched 구 are swept"
    );
    assert_eq!(
        outcome
            .regions_incomplete
            .iter()
            .cloned()
            .collect::<BTreeSet<_>>(),
        lost
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn an_item_the_topic_cannot_take_goes_to_the_dlq_and_its_regions_are_not_swept() {
    let Some(Setup {
        env,
        sites,
        tiles,
        regions_in_tile,
        ids,
        ..
    }) = setup().await
    else {
        return;
    };
    // An item of the busiest tile comes back without `rent`, as after an API change.
    let victim = ids
        .iter()
        .filter(|(kind, _)| *kind != "villas")
        .find_map(|(_, t)| t.get(&tiles[0]).and_then(|l| l.first()))
        .expect("the busiest tile has an item")
        .clone();
    sites.corrupt_zigbang_item(&victim, "rent");
    let outcome = crawl(&env).await;

    let dlq = env.read_topic(TopicKind::Dlq);
    assert_eq!(assert_all_valid(TopicKind::Dlq, &dlq), 1);
    let event = dlq[0].json();
    assert_eq!(event["reason"], "contract_violation");
    assert_eq!(event["value"]["source_listing_id"], victim.as_str());
    assert!(
        event["error"]
            .as_str()
            .is_some_and(|e| e.contains("lacks rent")),
        "{event}"
    );
    assert!(!observed_ids(&env).contains(&victim));

    let sweeps: BTreeSet<String> = swept(&env).into_keys().collect();
    let victim_region = event["value"]["region_code"]
        .as_str()
        .expect("region")
        .to_string();
    assert!(
        !sweeps.contains(&victim_region),
        "the rejected item's 구 was swept"
    );
    assert!(sweeps.is_disjoint(&regions_in_tile[&tiles[0]]));
    assert!(
        !outcome.regions_incomplete.is_empty() && !sweeps.is_empty(),
        "{outcome:?}"
    );
}
