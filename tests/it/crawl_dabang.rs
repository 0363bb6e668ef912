//! The Dabang crawler against a local server serving the real v5 room list, paged and capped.

use std::collections::BTreeSet;
use std::time::Duration;

use roomstream::crawl::calibration::Calibration;
use roomstream::crawl::{Emitter, dabang};
use roomstream::kafka::KafkaSink;
use roomstream::region;
use roomstream::topics::TopicKind;
use serde_json::Value;

use crate::support::sites::{FaultKind, Sites};
use crate::support::{TestEnv, real_fixtures, spawn_env};

/// Starts the server with `copies` jittered copies of each real room; returns the rooms and the Seoul
/// regions they resolve to.
async fn setup(
    copies: usize,
    page_size: usize,
    cap: usize,
) -> Option<(TestEnv, Sites, Vec<Value>, Vec<String>)> {
    let dir = real_fixtures()?;
    let sites = Sites::start().await;
    let rooms = sites.load_dabang(&dir, copies, page_size, cap);
    let cal = Calibration::embedded();
    let regions: BTreeSet<String> = rooms
        .iter()
        .map(|r| dabang::room_region(cal, r).to_string())
        .filter(|r| *r != region::UNKNOWN)
        .collect();
    let env = spawn_env(&[
        ("dabang", "base_url", &sites.base_url()),
        ("dabang", "min_interval", "0s"),
        ("dabang", "result_cap", &cap.to_string()),
        ("crawl", "backoff", "10ms"),
        ("crawl", "request_timeout", "2s"),
        ("crawl", "max_attempts", "5"),
    ])
    .await;
    Some((env, sites, rooms, regions.into_iter().collect()))
}

async fn crawl(env: &TestEnv, regions: &[String]) -> dabang::DabangOutcome {
    let mut sink = KafkaSink::new(&env.cfg.kafka).expect("producer");
    let mut emitter = Emitter::new(&mut sink, None);
    let outcome = dabang::crawl(&env.cfg, regions, "test-crawl", &mut emitter)
        .await
        .expect("crawl");
    emitter.finish().expect("every record acknowledged");
    outcome
}

/// Rooms of the given regions, by id.
fn ids_in(rooms: &[Value], regions: &[String]) -> BTreeSet<String> {
    let cal = Calibration::embedded();
    rooms
        .iter()
        .filter(|r| regions.iter().any(|g| g == dabang::room_region(cal, r)))
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

/// Applies a fault to every request for one region's box (its bbox JSON carries the south-west corner).
fn fault_region(sites: &Sites, region: &str, kind: FaultKind) {
    let bbox = Calibration::embedded().region_bbox(region).expect("bbox");
    sites.fault(
        &format!("\"lat\":{}", Value::from(bbox.sw_lat)),
        kind,
        usize::MAX,
    );
}

fn swept_regions(env: &TestEnv) -> BTreeSet<String> {
    env.read_valid(TopicKind::Sweeps)
        .iter()
        .map(|s| s["region_code"].as_str().expect("code").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_and_splits_capped_boxes_so_no_room_is_lost() {
    // 24 real rooms × 6 = 144; pages of 4; the server serves at most 10 rooms of any one query.
    let Some((env, sites, rooms, regions)) = setup(5, 4, 10).await else {
        return;
    };
    let outcome = crawl(&env, &regions).await;

    let obs = env.read_valid(TopicKind::Observed);
    let got: Vec<String> = obs
        .iter()
        .map(|o| o["source_listing_id"].as_str().expect("id").to_string())
        .collect();
    let unique: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(unique.len(), got.len(), "no room twice");
    let expected = ids_in(&rooms, &regions);
    assert!(
        expected.is_subset(&unique),
        "lost rooms: {:?}",
        expected.difference(&unique).collect::<Vec<_>>()
    );
    assert!(outcome.splits > 0, "the cap forced splits");
    assert!(
        sites.log().iter().any(|(p, _)| p.contains("page=2")),
        "boxes were paged"
    );
    // One sweep per region, counting that region's rooms.
    let swept = env.read_valid(TopicKind::Sweeps);
    assert_eq!(swept.len(), regions.len());
    for s in &swept {
        let code = s["region_code"].as_str().expect("code");
        let n = obs.iter().filter(|o| o["region_code"] == code).count();
        assert_eq!(s["listings_seen"], n as u64, "{s}");
        assert_eq!(s["platform"], "dabang");
    }
    // The payload is the room, untouched.
    let first = rooms
        .iter()
        .find(|r| expected.contains(r["id"].as_str().unwrap_or_default()))
        .expect("a room");
    let same = obs
        .iter()
        .find(|o| o["source_listing_id"] == first["id"])
        .expect("observed");
    assert_eq!(&same["payload"], first);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_429_and_slow_pages_but_a_malformed_page_leaves_its_region_incomplete() {
    let Some((env, sites, rooms, regions)) = setup(0, 4, 10_000).await else {
        return;
    };
    assert!(regions.len() >= 3, "{regions:?}");
    sites.fault("page=1", FaultKind::TooMany, 2);
    sites.fault("page=1", FaultKind::Slow(Duration::from_secs(3)), 1);
    // The bbox JSON carries the region's south-west corner; break every page of the first region.
    let bad_region = &regions[0];
    fault_region(&sites, bad_region, FaultKind::Malformed);
    let outcome = crawl(&env, &regions).await;

    let swept = swept_regions(&env);
    assert!(
        !swept.contains(bad_region),
        "the malformed region got a sweep marker"
    );
    assert_eq!(swept.len(), regions.len() - 1, "{swept:?}");
    assert_eq!(outcome.regions_incomplete.len(), 1);
    assert!(
        outcome.regions_incomplete[0].1.contains("malformed body"),
        "{:?}",
        outcome.regions_incomplete
    );
    let log = sites.log();
    assert_eq!(
        log.iter().filter(|(_, s)| *s == 429).count(),
        2,
        "429s happened and were retried"
    );
    let good: Vec<String> = regions[1..].to_vec();
    let obs: BTreeSet<String> = env
        .read_valid(TopicKind::Observed)
        .iter()
        .map(|o| o["source_listing_id"].as_str().expect("id").to_string())
        .collect();
    assert!(ids_in(&rooms, &good).is_subset(&obs));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_box_that_yields_fewer_rooms_than_its_total_is_not_swept() {
    let Some((env, sites, _rooms, regions)) = setup(0, 4, 10_000).await else {
        return;
    };
    // Every page of the first region's box claims one room more than it serves (listings that moved
    // between pages look like this).
    let short = &regions[0];
    fault_region(&sites, short, FaultKind::InflateTotal);
    let outcome = crawl(&env, &regions).await;

    let swept = swept_regions(&env);
    assert!(!swept.contains(short), "a short box got a sweep marker");
    assert_eq!(swept.len(), regions.len() - 1);
    let (region, why) = &outcome.regions_incomplete[0];
    assert_eq!(region, short);
    assert!(why.contains("distinct rooms of the"), "{why}");
}
