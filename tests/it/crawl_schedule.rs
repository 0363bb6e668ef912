//! `roomstream crawl zigbang --every …` as a process, against the fake Zigbang of `support::sites` and
//! the real broker: a run left incomplete by a failing tile sends no marker for the regions that tile
//! touches, is retried after `--retry-after`, and the retry sweeps them; SIGTERM between runs stops the
//! schedule with exit 0, and SIGTERM during a run drops it before any sweep marker.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use roomstream::crawl::calibration::Calibration;
use roomstream::crawl::zigbang;
use roomstream::region;
use roomstream::topics::TopicKind;

use crate::support::sites::{FaultKind, Sites};
use crate::support::{TestEnv, assert_all_valid, real_fixtures, spawn_env};

/// Waits for a line containing `needle`, returning every line read meanwhile.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                eprintln!("| {line}");
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!(
                "no line with {needle:?} within {within:?}; got:\n{}",
                seen.join("\n")
            ),
        }
    }
}

/// Starts `roomstream crawl zigbang --every 1h --jitter 0s --retry-after 1s` with the test's
/// configuration; its stdout arrives line by line on the receiver.
fn spawn_schedule(env: &TestEnv) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomstream"))
        .args([
            "crawl",
            "zigbang",
            "--every",
            "1h",
            "--jitter",
            "0s",
            "--retry-after",
            "1s",
        ])
        .envs(env.env_vars())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the roomstream binary starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

fn sigterm(child: &Child) {
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_crawl_retries_an_incomplete_run_and_stops_cleanly_on_sigterm() {
    // Arrange: the fake Zigbang, its busiest tile malformed for the first run only (one request per
    // kind; a malformed body is not retried within a run).
    let Some(dir) = real_fixtures() else {
        return;
    };
    let sites = Sites::start().await;
    let served = sites.load_zigbang(&dir);
    let mut per_tile: BTreeMap<&str, usize> = BTreeMap::new();
    for tiles in served.ids.values() {
        for (tile, ids) in tiles {
            *per_tile.entry(tile).or_default() += ids.len();
        }
    }
    let bad = per_tile
        .iter()
        .max_by_key(|(t, n)| (**n, std::cmp::Reverse(**t)))
        .map(|(t, _)| t.to_string())
        .expect("the server holds items");
    let env = sites.zigbang_env().await;
    let kinds = env.cfg.zigbang.kinds.len();
    sites.fault(&format!("geohash={bad}"), FaultKind::Malformed, kinds);

    // Act: run the schedule until its retry has finished, then ask it to stop.
    let (mut child, lines) = spawn_schedule(&env);
    let mut out = wait_for(&lines, "run 2 complete", Duration::from_secs(240));
    sigterm(&child);
    out.extend(wait_for(&lines, "stopped after", Duration::from_secs(60)));
    let status = child.wait().expect("the crawler exits");

    // Assert: the log tells the story, and the process stopped cleanly.
    assert!(status.success(), "exit status {status}");
    let has = |s: &str| out.iter().any(|l| l.contains(s));
    assert!(
        has("crawl zigbang: run 1 incomplete"),
        "run 1 was incomplete"
    );
    assert!(has("(retry 1, in "), "run 1 was followed by a retry");
    assert!(has("crawl zigbang: run 2 started (retry 1)"));
    assert!(
        has("next run at") && has("(regular, in "),
        "run 2 planned the next slot"
    );
    assert!(has("stop requested between runs"));
    assert!(has(
        "stopped after 2 run(s): 1 complete, 1 incomplete, 0 failed"
    ));

    // The markers: run 1 swept exactly the 구 the bad tile does not touch, run 2 all 25.
    let records = env.read_topic(TopicKind::Sweeps);
    assert_all_valid(TopicKind::Sweeps, &records);
    let mut by_crawl: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &records {
        let v = r.json();
        by_crawl
            .entry(v["crawl_id"].as_str().expect("crawl id").to_string())
            .or_default()
            .insert(v["region_code"].as_str().expect("region").to_string());
    }
    let runs: Vec<&BTreeSet<String>> = by_crawl.values().collect();
    assert_eq!(runs.len(), 2, "one crawl id per run: {:?}", by_crawl.keys());
    let all: BTreeSet<String> = region::SEOUL_GU
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    let touched = {
        let c = zigbang::coverage(Calibration::embedded(), std::slice::from_ref(&bad));
        c.covered
            .into_keys()
            .chain(c.partial)
            .collect::<BTreeSet<_>>()
    };
    assert!(!touched.is_empty());
    assert!(
        runs[0].is_disjoint(&served.regions_in_tile[&bad]),
        "no marker for a region with a listing in the failed tile"
    );
    assert_eq!(
        runs[0],
        &all.difference(&touched).cloned().collect::<BTreeSet<_>>()
    );
    assert_eq!(runs[1], &all, "the retry swept every 구");
    let requested = sites
        .log()
        .iter()
        .filter(|(path, _)| path.contains(&format!("geohash={bad}")))
        .count();
    assert_eq!(
        requested,
        2 * kinds,
        "the bad tile was asked once per kind per run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_run_drops_it_before_any_sweep_marker() {
    // Arrange: one tile answers only after 30 s, so the first run is still listing tiles.
    let Some(dir) = real_fixtures() else {
        return;
    };
    let sites = Sites::start().await;
    let served = sites.load_zigbang(&dir);
    let slow = served
        .ids
        .values()
        .flat_map(|tiles| tiles.keys())
        .next()
        .expect("the server holds items")
        .clone();
    sites.fault(
        &format!("geohash={slow}"),
        FaultKind::Slow(Duration::from_secs(30)),
        1,
    );
    let env = spawn_env(&[
        ("zigbang", "base_url", &sites.base_url()),
        ("zigbang", "min_interval", "0s"),
        ("crawl", "request_timeout", "60s"),
    ])
    .await;

    // Act: stop it while the slow request is out.
    let (mut child, lines) = spawn_schedule(&env);
    let mut out = wait_for(&lines, "run 1 started", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sites
        .log()
        .iter()
        .any(|(p, _)| p.contains(&format!("geohash={slow}")))
    {
        assert!(
            Instant::now() < deadline,
            "the slow tile was never asked for"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    sigterm(&child);
    out.extend(wait_for(&lines, "stopped after", Duration::from_secs(20)));
    let status = child.wait().expect("the crawler exits");

    // Assert: it stopped at once (not after the 30 s answer), cleanly, and produced no marker.
    assert!(status.success(), "exit status {status}");
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "stopped after {:?}",
        asked.elapsed()
    );
    assert!(
        out.iter()
            .any(|l| l.contains("stop requested during run 1: run dropped before any sweep marker"))
    );
    assert!(
        out.iter()
            .any(|l| l.contains("stopped after 1 run(s): 0 complete, 0 incomplete, 0 failed"))
    );
    assert!(
        env.read_topic(TopicKind::Sweeps).is_empty(),
        "a stopped run sends no sweep marker"
    );
}
