//! Kill -9 at random points: the processor and the three sinks run side by side while the feed arrives,
//! and at each of ≥ 20 random moments one of them (picked at random) is SIGKILLed and started again at
//! once. Afterwards every component runs to the end of its inputs, and the result must equal an
//! uninterrupted run over the same feed:
//! - the processor's state hash is the uninterrupted run's;
//! - on the run's own `listings.v1`, no listing's clock goes down, and MySQL, PostgreSQL and the S3
//!   snapshot each hold exactly the winning record of every live listing (id, clock, value SHA-256):
//!   nothing lost, nothing doubled, nothing stale;
//! - those winners' contents (everything but the version) are the uninterrupted run's.
//!
//! The versions themselves are not compared across the two runs: a version is the input position of
//! the micro-batch that published it, and a live feed cuts micro-batches elsewhere than a run over the
//! finished feed (as would a second uninterrupted live run). Likewise the S3 files are cut where
//! batches happened to end; their committed contents are what must agree.
//!
//! Size (`FAULT_SIZE`, not `ROOMSTREAM_…`: those are configuration keys): `FAULT_SIZE=full` — 100,000
//! flats × 12 days (≈ 1.08 million events), 30 kill points (meant for the release build: `cargo test --release --test it faults -- --nocapture`);
//! otherwise the CI size, 3,000 flats × 5 days (≈ 20,000 events), 20 kill points. A restarted
//! component joins a consumer group of its own (`process.group`, `sink.group`): progress lives in
//! checkpoints and destinations, not in the group, and Tansu 0.6 keeps a killed member in its group.

use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use std::collections::{BTreeMap, BTreeSet};

use roomstream::process::publish::CanonicalListing;
use roomstream::topics::TopicKind;
use sha2::{Digest, Sha256};

use crate::sink::{Databases, env_with_databases};
use crate::support::TestEnv;

/// The size: flats, days, kill points, the crawl's rate (events/s), the range of waits between two
/// kills (ms) — so that the kills fall while the feed arrives and is processed — and the killed run's
/// checkpoint and batch sizes (small, so that a kill lands inside and between many commits).
struct Size {
    flats: &'static str,
    days: &'static str,
    points: usize,
    rate: &'static str,
    waits: std::ops::Range<u64>,
    checkpoint_events: &'static str,
    batch_rows: &'static str,
}

fn size() -> Size {
    if std::env::var("FAULT_SIZE").as_deref() == Ok("full") {
        Size {
            flats: "100000",
            days: "12",
            points: 30,
            rate: "5000",
            waits: 2000..15000,
            checkpoint_events: "20000",
            batch_rows: "2000",
        }
    } else {
        Size {
            flats: "3000",
            days: "5",
            points: 20,
            rate: "400",
            waits: 500..4000,
            checkpoint_events: "2000",
            batch_rows: "300",
        }
    }
}

const COMPONENTS: [&str; 4] = ["process", "mysql", "redshift", "s3"];

/// Starts a component under a consumer group of its own, running until stopped.
fn start(env: &TestEnv, component: &str, exit_when_idle: bool) -> Child {
    let group = format!(
        "{}.{component}-{}",
        env.namespace(),
        uuid::Uuid::now_v7().simple()
    );
    let mut args = if component == "process" {
        vec!["process"]
    } else {
        vec!["sink", component]
    };
    if exit_when_idle {
        args.push("--exit-when-idle");
    }
    let var = if component == "process" {
        "ROOMSTREAM_PROCESS_GROUP"
    } else {
        "ROOMSTREAM_SINK_GROUP"
    };
    std::process::Command::new(env!("CARGO_BIN_EXE_roomstream"))
        .args(&args)
        .envs(env.env_vars())
        .env(var, group)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("the roomstream binary starts")
}

fn kill(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

/// Runs a component to the end of its inputs (exit 0 expected).
fn finish(env: &TestEnv, component: &str) {
    let mut child = start(env, component, true);
    let until = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "{component} --exit-when-idle: {status}");
            return;
        }
        if Instant::now() > until {
            kill(&mut child);
            panic!("{component} did not finish within 30 min");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What one run's `listings.v1` says the sinks must hold: per listing, the record that wins the sinks'
/// rule — the largest (clock, offset) — as (clock, SHA-256 of the value, content hash) for an upsert and
/// `None` for a tombstone; and the listings whose clock went down in offset order (a processor fault:
/// every record must carry a larger clock than the ones published before it).
struct Published {
    winners: BTreeMap<String, Option<(i64, String, [u8; 16])>>,
    regressions: Vec<String>,
}

/// A sink's row as compared: (id, clock, value SHA-256).
type Row = (String, i64, String);

fn published(env: &TestEnv) -> Published {
    // id → (clock, offset, (value SHA-256, content hash) or None for a tombstone)
    type Best = (i64, i64, Option<(String, [u8; 16])>);
    let mut best: BTreeMap<String, Best> = BTreeMap::new();
    let mut last_clock: BTreeMap<String, i64> = BTreeMap::new();
    let mut regressions = Vec::new();
    for r in env.read_topic(TopicKind::Listings) {
        let (clock, value) = if r.value.is_empty() {
            (r.clock_header.expect("a tombstone carries its clock"), None)
        } else {
            let mut listing: CanonicalListing =
                serde_json::from_slice(&r.value).expect("a canonical listing");
            let sha = roomstream::sink::change::hex(&Sha256::digest(&r.value));
            (listing.version.clock, Some((sha, listing.content_hash())))
        };
        if let Some(before) = last_clock.insert(r.key.clone(), clock)
            && before > clock
        {
            regressions.push(format!(
                "{} at offset {}: {before} → {clock}",
                r.key, r.offset
            ));
        }
        let wins = best
            .get(&r.key)
            .is_none_or(|(c, o, _)| (clock, r.offset) > (*c, *o));
        if wins {
            best.insert(r.key, (clock, r.offset, value));
        }
    }
    let winners = best
        .into_iter()
        .map(|(id, (clock, _, v))| (id, v.map(|(sha, content)| (clock, sha, content))))
        .collect();
    Published {
        winners,
        regressions,
    }
}

impl Published {
    /// The live listings as the sinks store them: (id, clock, value SHA-256).
    fn rows(&self) -> Vec<Row> {
        self.winners
            .iter()
            .filter_map(|(id, w)| w.as_ref().map(|(c, sha, _)| (id.clone(), *c, sha.clone())))
            .collect()
    }
    /// The live listings' contents (everything but the version).
    fn contents(&self) -> BTreeMap<String, [u8; 16]> {
        self.winners
            .iter()
            .filter_map(|(id, w)| w.as_ref().map(|(_, _, content)| (id.clone(), *content)))
            .collect()
    }
}

/// What one run ended with: its state hash, its topic's verdict, and each sink's rows.
struct Holdings {
    state_hash: String,
    published: Published,
    sinks: [(&'static str, Vec<Row>); 3],
}

async fn holdings(env: &TestEnv, db: &Databases) -> Holdings {
    let state_hash = env.state_hash().expect("state hash");
    let mut mysql = crate::sink::mysql_rows(db).await;
    let mut pg = crate::sink::postgres_rows(db).await;
    let mut s3 = crate::sink::snapshot_rows(env).await;
    for rows in [&mut mysql, &mut pg, &mut s3] {
        rows.sort();
    }
    Holdings {
        state_hash,
        published: published(env),
        sinks: [("MySQL", mysql), ("PostgreSQL", pg), ("S3 snapshot", s3)],
    }
}

/// The differences that make a run fail, as sentences; `reference` is the uninterrupted run.
fn differences(run: &Holdings, reference: &Holdings) -> Vec<String> {
    let mut bad = Vec::new();
    if run.state_hash != reference.state_hash {
        bad.push(format!(
            "state hash {} ≠ uninterrupted {}",
            run.state_hash, reference.state_hash
        ));
    }
    if let Some(first) = run.published.regressions.first() {
        bad.push(format!(
            "{} listings' clocks went down on listings.v1, e.g. {first}",
            run.published.regressions.len()
        ));
    }
    // Each sink holds exactly its own topic's winners: nothing lost, nothing doubled, nothing stale.
    let want = run.published.rows();
    for (name, rows) in &run.sinks {
        if *rows != want {
            let (have, wanted): (BTreeSet<_>, BTreeSet<_>) =
                (rows.iter().collect(), want.iter().collect());
            let missing = wanted.difference(&have).count();
            let extra: Vec<_> = have.difference(&wanted).collect();
            bad.push(format!(
                "{name}: {} rows, listings.v1's winners {}: {missing} missing, {} not a winner (e.g. {:?})",
                rows.len(),
                want.len(),
                extra.len(),
                extra.first()
            ));
        }
    }
    // And the winners' contents are the uninterrupted run's (their clocks may differ: a live run
    // publishes at other batch boundaries than a run over the finished feed).
    let (got, exp) = (run.published.contents(), reference.published.contents());
    if got != exp {
        let differ: Vec<&String> = exp
            .iter()
            .filter(|(id, c)| got.get(*id) != Some(c))
            .map(|(id, _)| id)
            .chain(got.keys().filter(|id| !exp.contains_key(*id)))
            .collect();
        bad.push(format!(
            "{} listings differ in content from the uninterrupted run ({} vs {} live), e.g. {:?}",
            differ.len(),
            got.len(),
            exp.len(),
            &differ[..differ.len().min(5)]
        ));
    }
    bad
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_random_points_ends_as_an_uninterrupted_run() {
    let Size {
        flats,
        days,
        points,
        rate,
        waits,
        checkpoint_events,
        batch_rows,
    } = size();
    let feed = [
        "crawl",
        "synthetic",
        "--listings",
        flats,
        "--days",
        days,
        "--seed",
        "53",
    ];
    let common = [
        ("mysql", "reader_user", ""),
        ("postgres", "reader_user", ""),
        ("sink", "stats_interval", "1s"),
    ];
    // The killed run's small batches and frequent checkpoints (the uninterrupted run keeps the
    // defaults: the contents must not depend on where batches and checkpoints fall).
    let small = [
        ("process", "checkpoint_events", checkpoint_events),
        ("process", "checkpoint_interval", "2s"),
        ("sink", "batch_rows", batch_rows),
        ("sink", "snapshot_interval", "5s"),
    ];
    let settings = [&common[..], &small[..]].concat();
    // The uninterrupted run.
    let (reference, ref_db) = env_with_databases(&common).await;
    let started = Instant::now();
    assert!(reference.roomstream(&feed).status.success(), "feed");
    for c in COMPONENTS {
        finish(&reference, c);
    }
    let want = holdings(&reference, &ref_db).await;
    let live = want.published.contents().len();
    eprintln!(
        "uninterrupted run: {:.0} s, {live} live listings, state {}",
        started.elapsed().as_secs_f64(),
        want.state_hash
    );
    assert!(live > 500, "the feed publishes listings: {live}");
    let own = differences(&want, &want);
    assert!(own.is_empty(), "the uninterrupted run itself: {own:?}");

    // The killed run: the feed arrives while all four run; a random one is killed at each point.
    let (env, db) = env_with_databases(&settings).await;
    let crawler = env.run_in_background(&[&feed[..], &["--rate", rate]].concat());
    let mut running: Vec<Child> = COMPONENTS.iter().map(|c| start(&env, c, false)).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut kills = [0usize; 4];
    let started = Instant::now();
    for point in 0..points {
        let wait = Duration::from_millis(rng.random_range(waits.clone()));
        tokio::time::sleep(wait).await;
        let i = rng.random_range(0..COMPONENTS.len());
        if let Ok(Some(status)) = running[i].try_wait() {
            panic!(
                "{} exited on its own before point {point}: {status}",
                COMPONENTS[i]
            );
        }
        kill(&mut running[i]);
        kills[i] += 1;
        eprintln!(
            "kill point {point}: SIGKILL {} at {:.1} s",
            COMPONENTS[i],
            started.elapsed().as_secs_f64()
        );
        running[i] = start(&env, COMPONENTS[i], false);
    }
    let fed = crawler.join().expect("crawler");
    assert!(fed.status.success(), "the feed");
    for mut c in running {
        kill(&mut c); // one more each: none of them stops cleanly
    }
    // Then each to the end of its inputs, the processor first.
    for c in COMPONENTS {
        finish(&env, c);
    }
    let got = holdings(&env, &db).await;
    let events: i64 = [TopicKind::Observed, TopicKind::Sweeps]
        .iter()
        .map(|k| env.count(*k))
        .sum();
    let bad = differences(&got, &want);
    eprintln!(
        "faults: {points} kill points (process {}, mysql {}, redshift {}, s3 {}) + a final kill each over \
         {events} events, {:.0} s; {} live listings, state {}; {} mismatches",
        kills[0],
        kills[1],
        kills[2],
        kills[3],
        started.elapsed().as_secs_f64(),
        got.published.contents().len(),
        got.state_hash,
        bad.len()
    );
    assert!(
        bad.is_empty(),
        "after {points} kills, differs from the uninterrupted run:\n{}",
        bad.join("\n")
    );
    ref_db.drop_all().await;
    db.drop_all().await;
}
