//! The processor on the real broker and object store: synthetic feed → `listings.v1`; a SIGKILLed
//! processor, two instances in one group and a replay all end in the uninterrupted run's state; late
//! and duplicated delivery never regresses a listing; bad events reach the DLQ and the run goes on;
//! every real fixture normalizes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use roomstream::kafka::{EventSink, KafkaSink, MemorySink};
use roomstream::topics::TopicKind;
use roomstream::topics::envelope::{Observation, PayloadFormat};
use serde_json::Value;

use crate::support::{TestEnv, assert_all_valid, interrupt, real_fixtures, spawn_env};

/// The feed every test here shares: 2,000 flats over 5 days (≈ 12,000 events), a fixed seed.
const FEED: [&str; 8] = [
    "crawl",
    "synthetic",
    "--listings",
    "2000",
    "--days",
    "5",
    "--seed",
    "31",
];

fn feed(env: &TestEnv, extra: &[&str]) {
    let mut args = FEED.to_vec();
    args.extend_from_slice(extra);
    let out = env.roomstream(&args);
    assert!(out.status.success(), "synthetic crawl failed");
}

fn process(env: &TestEnv) -> String {
    let out = env.roomstream(&["process", "--exit-when-idle"]);
    assert!(out.status.success(), "process failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn state_hash(env: &TestEnv) -> String {
    env.state_hash().expect("state hash")
}

/// `listings.v1` as a compacted topic ends up: the last value per key, tombstoned keys gone, without
/// the version (input positions differ between runs; content must not).
fn compacted(env: &TestEnv) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in env.read_topic(TopicKind::Listings) {
        if r.value.is_empty() {
            out.remove(&r.key);
            continue;
        }
        let mut v = r.json();
        v.as_object_mut().map(|o| o.remove("version"));
        out.insert(r.key, v);
    }
    out
}

/// Asserts two compacted views are equal, naming the first keys that differ (not the whole maps).
fn assert_same_listings(got: &BTreeMap<String, Value>, want: &BTreeMap<String, Value>, what: &str) {
    let differ: Vec<&String> = got
        .keys()
        .chain(want.keys())
        .filter(|k| got.get(*k) != want.get(*k))
        .take(5)
        .collect();
    assert!(
        differ.is_empty(),
        "{what}: {} vs {} live listings; first keys that differ: {differ:?}",
        got.len(),
        want.len()
    );
}

/// `N` in a line `… label N …` of a command's output.
fn figure(text: &str, label: &str) -> u64 {
    let at = text
        .find(label)
        .unwrap_or_else(|| panic!("no `{label}` in {text}"));
    text.get(at + label.len()..)
        .unwrap_or_default()
        .split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no figure after `{label}` in {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn synthetic_feed_becomes_one_scored_state_of_deduplicated_listings() {
    let env = spawn_env(&[]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let truth = dir.path().join("truth.jsonl");
    feed(&env, &["--truth", &truth.to_string_lossy()]);
    let report = process(&env);
    assert!(
        figure(&report, "dlq ") > 0,
        "the feed's QA listings go to the DLQ: {report}"
    );

    let records = env.read_topic(TopicKind::Listings);
    let values: Vec<_> = records
        .iter()
        .filter(|r| !r.value.is_empty())
        .cloned()
        .collect();
    assert!(
        assert_all_valid(TopicKind::Listings, &values) > 1000,
        "listings were published"
    );
    let mut both = 0;
    for r in &values {
        let v = r.json();
        assert_eq!(v["listing_id"], r.key.as_str(), "keyed by canonical id");
        let platforms: std::collections::BTreeSet<&str> = v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["platform"].as_str())
            .collect();
        both += usize::from(platforms.len() == 2);
        assert!(
            v["rent"].as_u64().is_some_and(|r| r < 2000),
            "no junk rent: {v}"
        );
    }
    assert!(
        both > 200,
        "flats on both platforms become one listing ({both})"
    );

    // Dedup quality against the simulator's truth, with the seed's rule beside it.
    let out = env.roomstream(&["eval", "dedup", "--truth", &truth.to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ours = text
        .lines()
        .find(|l| l.starts_with("roomstream"))
        .expect("roomstream line");
    let cols: Vec<f64> = ours
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (precision, recall) = (cols[cols.len() - 2], cols[cols.len() - 1]);
    assert!(
        precision >= 0.98 && recall >= 0.95,
        "precision {precision} recall {recall}\n{text}"
    );
    assert!(
        text.contains("seed (exact strings"),
        "the seed baseline is printed: {text}"
    );

    // The dump has every live listing with its members' provenance.
    let dump = dir.path().join("dump.jsonl");
    assert!(
        env.roomstream(&["state", "dump", "--out", &dump.to_string_lossy()])
            .status
            .success()
    );
    let lines: Vec<Value> = std::fs::read_to_string(&dump)
        .expect("dump")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(
        lines.len(),
        compacted(&env).len(),
        "dump = live listings on the topic"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["members"].as_array().is_some_and(|m| m
                .iter()
                .all(|m| m["source"].is_string() && m["source_listing_id"].is_string())))
    );

    // A replay under a fresh group rebuilds the same state and republishes nothing.
    let hash = state_hash(&env);
    let out = env.roomstream(&["replay"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        figure(&text, "published "),
        0,
        "a replay of unchanged inputs publishes nothing: {text}"
    );
    assert_eq!(state_hash(&env), hash, "replay gives the same state hash");
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_restarted_and_two_instances_end_in_the_uninterrupted_state() {
    // The reference: one instance, after the whole feed.
    let reference = spawn_env(&[]).await;
    feed(&reference, &[]);
    process(&reference);
    let (want_hash, want) = (state_hash(&reference), compacted(&reference));

    // SIGKILL twice — once while processing live as the feed arrives, once while catching up after the
    // restart — with checkpoints every 1,500 inputs, then finish. Each restart waits out the group's
    // session timeout (10 s): Tansu 0.6 keeps a dead member in the group for good when another joins
    // before its session expired (observed; Kafka expires it), so the newcomer would never get its
    // partitions.
    let killed = spawn_env(&[("process", "checkpoint_events", "1500")]).await;
    let crawler = killed.run_in_background(&[&FEED[..], &["--rate", "1500"]].concat());
    for wait in [Duration::from_millis(3000), Duration::from_millis(2500)] {
        let mut child = killed.spawn_roomstream(&["process"]);
        std::thread::sleep(wait);
        child.kill().expect("SIGKILL the processor");
        let _ = child.wait();
        eprintln!("killed the processor after {wait:?}");
        std::thread::sleep(Duration::from_secs(12));
    }
    assert!(crawler.join().expect("crawler thread").status.success());
    process(&killed);
    assert_eq!(
        state_hash(&killed),
        want_hash,
        "a SIGKILLed and restarted processor ends in the same state"
    );
    assert_same_listings(
        &compacted(&killed),
        &want,
        "after SIGKILLs, listings.v1 holds the same content per listing",
    );

    // Two instances in one group, started together.
    let pair = spawn_env(&[]).await;
    feed(&pair, &[]);
    let started = Instant::now();
    let mut children = [
        pair.spawn_roomstream(&["process", "--exit-when-idle"]),
        pair.spawn_roomstream(&["process", "--exit-when-idle"]),
    ];
    for c in &mut children {
        assert!(c.wait().expect("wait").success(), "an instance failed");
    }
    eprintln!(
        "two instances done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        state_hash(&pair),
        want_hash,
        "two instances end in the same state as one"
    );
    assert_same_listings(&compacted(&pair), &want, "two instances");
}

/// Sends SIGINT and waits for a clean exit.
/// Three processors share the group while the feed arrives; each in turn is stopped (SIGINT: it
/// checkpoints and leaves) and started again, so that partitions move three times under load. Then the
/// three run to the end together. The result is one instance's.
#[tokio::test(flavor = "multi_thread")]
async fn three_processors_with_a_rolling_restart_end_as_one_instance() {
    let reference = spawn_env(&[]).await;
    feed(&reference, &[]);
    process(&reference);
    let (want_hash, want) = (state_hash(&reference), compacted(&reference));

    let env = spawn_env(&[("process", "checkpoint_events", "1500")]).await;
    let crawler = env.run_in_background(&[&FEED[..], &["--rate", "800"]].concat());
    let mut instances: Vec<std::process::Child> =
        (0..3).map(|_| env.spawn_roomstream(&["process"])).collect();
    let started = Instant::now();
    for i in 0..3 {
        std::thread::sleep(Duration::from_secs(4));
        interrupt(&mut instances[i], "a processor");
        eprintln!(
            "restarting instance {i} at {:.1} s",
            started.elapsed().as_secs_f64()
        );
        instances[i] = env.spawn_roomstream(&["process"]);
    }
    assert!(crawler.join().expect("crawler thread").status.success());
    for c in &mut instances {
        interrupt(c, "a processor");
    }
    let mut last: Vec<std::process::Child> = (0..3)
        .map(|_| env.spawn_roomstream(&["process", "--exit-when-idle"]))
        .collect();
    for c in &mut last {
        assert!(c.wait().expect("wait").success(), "an instance failed");
    }
    eprintln!(
        "rolling restart done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        state_hash(&env),
        want_hash,
        "three instances and a rolling restart end as one"
    );
    assert_same_listings(&compacted(&env), &want, "three instances, rolling restart");
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicated_and_late_delivery_never_regresses_a_listing() {
    let env = spawn_env(&[]).await;
    feed(&env, &[]);
    process(&env);
    let (hash, before) = (state_hash(&env), compacted(&env));
    // Deliver the first half of every partition of observed.v1 again, after the rest: duplicates, and
    // observations older than what the state already holds.
    let old = env.read_topic(TopicKind::Observed);
    let mut sink = KafkaSink::new(&env.cfg.kafka).expect("producer");
    let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for r in old {
        by_partition.entry(r.partition).or_default().push(r);
    }
    let mut resent = 0;
    for records in by_partition.values() {
        for r in &records[..records.len() / 2] {
            sink.send(TopicKind::Observed, &r.key, &r.value)
                .expect("send");
            resent += 1;
        }
    }
    sink.finish().expect("delivered");
    let report = process(&env);
    assert!(resent > 1000);
    assert_eq!(
        figure(&report, "published "),
        0,
        "old or repeated observations publish nothing: {report}"
    );
    assert_eq!(
        figure(&report, "changed "),
        0,
        "…and change no listing: {report}"
    );
    assert_eq!(state_hash(&env), hash, "the state is unchanged");
    assert_same_listings(&compacted(&env), &before, "no listing regressed");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_reach_the_dlq_with_their_position_and_the_run_goes_on() {
    let store = tempfile::tempdir().expect("tempdir");
    let url = format!("file://{}", store.path().display());
    let env = spawn_env(&[("store", "url", &url), ("store", "endpoint", "")]).await;
    let out = env.roomstream(&[
        "crawl",
        "synthetic",
        "--listings",
        "200",
        "--days",
        "2",
        "--seed",
        "5",
    ]);
    assert!(out.status.success());
    let mut sink = KafkaSink::new(&env.cfg.kafka).expect("producer");
    let observation = |format: PayloadFormat, id: &str, payload: Value| {
        let o = Observation::new(
            roomstream::topics::envelope::Source::Synthetic,
            if format == PayloadFormat::DabangV5Room {
                roomstream::topics::envelope::Platform::Dabang
            } else {
                roomstream::topics::envelope::Platform::Zigbang
            },
            id,
            roomstream::topics::envelope::now(),
            "test-bad",
            "11620",
            format,
            payload,
        );
        serde_json::to_vec(&o).expect("json")
    };
    let bad: Vec<(TopicKind, Vec<u8>, &str)> = vec![
        (
            TopicKind::Observed,
            b"not json at all \xff".to_vec(),
            "malformed_json",
        ),
        (
            TopicKind::Observed,
            br#"{"schema":"roomstream.observation/1","source":"nowhere"}"#.to_vec(),
            "schema_mismatch",
        ),
        (
            TopicKind::Observed,
            observation(
                PayloadFormat::DabangV5Room,
                "deadbeefdeadbeefdeadbeef",
                serde_json::json!({"id":"deadbeefdeadbeefdeadbeef","priceTitle":"??","roomDesc":"2층, 20m², 관리비 5만"}),
            ),
            "malformed",
        ),
        (
            TopicKind::Observed,
            observation(
                PayloadFormat::ZigbangList,
                "99999999",
                serde_json::json!({"item_id":99999999,"deposit":1,"rent":5000000,"size_m2":20.0}),
            ),
            "implausible",
        ),
        (TopicKind::Sweeps, b"[1,2,3]".to_vec(), "schema_mismatch"),
    ];
    for (topic, value, _) in &bad {
        sink.send(*topic, "11620", value).expect("send");
    }
    sink.finish().expect("delivered");
    // A long-running processor with its metrics endpoint: the DLQ counter shows the rejects; SIGINT
    // stops it cleanly (final checkpoint, leaves the group).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_roomstream"))
        .arg("process")
        .envs(env.env_vars())
        .env("ROOMSTREAM_PROCESS_METRICS_LISTEN", &listen)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("process starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let metrics = loop {
        assert!(
            Instant::now() < deadline,
            "the metrics never showed the DLQ events"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(resp) = reqwest::get(format!("http://{listen}/metrics")).await else {
            continue;
        };
        let text = resp.text().await.unwrap_or_default();
        let lags: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("roomstream_process_consumer_lag{"))
            .collect();
        if text.contains("roomstream_process_dlq_total{reason=\"malformed_json\"} 1")
            && text.contains("roomstream_process_dlq_total{reason=\"implausible\"}")
            && lags.len() == 16
            && lags.iter().all(|l| l.ends_with(" 0"))
        {
            break text;
        }
    };
    assert!(
        metrics.contains("# TYPE roomstream_process_events_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("roomstream_process_checkpoint_age_seconds"),
        "{metrics}"
    );
    let stopped = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(stopped.success());
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "a processor stopped with SIGINT exits cleanly"
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{report}");
    let dlq = env.read_valid(TopicKind::Dlq);
    let from_process: Vec<&Value> = dlq
        .iter()
        .filter(|e| {
            e["stage"]
                .as_str()
                .is_some_and(|s| s.starts_with("process."))
        })
        .collect();
    for (topic, _, reason) in &bad {
        let topic = topic.name(env.namespace());
        assert!(
            from_process.iter().any(|e| e["reason"] == *reason
                && e["topic"] == topic.as_str()
                && e["offset"].is_i64()
                && e["partition"].is_i64()),
            "a `{reason}` event from {topic} with its position: {from_process:?}"
        );
    }
    assert!(
        figure(&report, "upserts") > 100 || figure(&report, "published ") > 100,
        "valid events still became listings: {report}"
    );
    assert!(
        std::fs::read_dir(store.path().join("checkpoints").join(env.namespace()))
            .expect("local checkpoints")
            .count()
            > 0
    );

    // `dlq replay` re-feeds to the original topic; the processor sends it to the DLQ again.
    let out = env.roomstream(&["dlq", "replay", "--reason", "malformed_json"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(figure(&text, "dlq replay: "), 1, "{text}");
    let again = env.roomstream(&["dlq", "replay", "--reason", "malformed_json"]);
    assert_eq!(
        figure(&String::from_utf8_lossy(&again.stdout), "dlq replay: "),
        0,
        "progress is kept"
    );
    process(&env);
    let garbage: Vec<Value> = env
        .read_valid(TopicKind::Dlq)
        .into_iter()
        .filter(|e| e["reason"] == "malformed_json")
        .collect();
    assert_eq!(garbage.len(), 2, "the re-fed event was processed again");
    // Bytes that are not UTF-8 are kept exactly, and re-fed exactly.
    for e in &garbage {
        let b64 = e["value_base64"]
            .as_str()
            .expect("non-UTF-8 bytes are kept in base64");
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
            .expect("base64");
        assert_eq!(bytes, b"not json at all \xff".to_vec());
    }
}

#[test]
fn every_real_fixture_normalizes() {
    let Some(dir) = real_fixtures() else { return };
    let mut sink = MemorySink::default();
    {
        let mut emitter = roomstream::crawl::Emitter::new(&mut sink, None);
        roomstream::crawl::fixtures::emit_all(&dir, &mut emitter).expect("fixtures");
        emitter.finish().expect("finish");
    }
    let mut ok = 0;
    let mut rejected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for v in sink.values(TopicKind::Observed) {
        let obs: Observation = serde_json::from_value(v).expect("observation");
        match roomstream::process::normalize::normalize(&obs) {
            Ok(l) => {
                ok += 1;
                assert!(l.area_m2.is_some(), "{}: area", l.key);
                assert!(roomstream::region::is_valid(&l.region_code));
            }
            Err(r) => rejected
                .entry(r.reason.to_string())
                .or_default()
                .push(format!("{}: {}", obs.source_listing_id, r.detail)),
        }
    }
    let total = ok + rejected.values().map(Vec::len).sum::<usize>();
    let counts: BTreeMap<&String, usize> = rejected.iter().map(|(k, v)| (k, v.len())).collect();
    println!(
        "real fixtures: {ok} of {total} observations normalize; rejected by reason: {counts:?}"
    );
    eprintln!("rejected: {rejected:?}");
    assert!(total >= 2800, "every fixture row was read ({total})");
    assert!(
        !rejected.contains_key("malformed"),
        "no real payload is malformed: {rejected:?}"
    );
    // The daily files carry some sales (매매): out of scope for a rental pipeline, and said so.
    let sales = rejected
        .get("out_of_scope")
        .map_or(0, |r| r.iter().filter(|d| d.contains("매매")).count());
    assert!(ok + sales + rejected.get("implausible").map_or(0, Vec::len) == total);
    assert!(ok as f64 >= 0.98 * total as f64, "{ok} of {total}");
}

/// The feed as the broker would partition it: (topic, partition, key, value), brokers first.
pub(crate) fn feed_in_memory(
    listings: u32,
    days: u32,
    seed: u64,
) -> Vec<(TopicKind, i32, String, Vec<u8>)> {
    let mut sink = MemorySink::default();
    {
        let mut emitter = roomstream::crawl::Emitter::new(&mut sink, None);
        let args = roomstream::crawl::synthetic::SyntheticArgs {
            listings,
            days,
            seed,
            rate: None,
            truth: None,
        };
        roomstream::crawl::synthetic::run(&args, &mut emitter).expect("feed");
        emitter.finish().expect("finish");
    }
    sink.records
        .into_iter()
        .map(|(t, k, v)| {
            let p = roomstream::topics::keys::murmur2_partition(
                k.as_bytes(),
                t.def().partitions as u32,
            ) as i32;
            (t, p, k, v)
        })
        .collect()
}

/// Applies inputs to a fresh engine owning every partition; returns the state hash and how many
/// tombstones were published on the way.
fn apply(inputs: &[(TopicKind, i32, String, Vec<u8>, i64)]) -> (String, usize) {
    use roomstream::process::engine::{Engine, Position};
    // Default scoring: its inputs are a function of the current listings, so scores are too.
    let mut engine = Engine::new(Default::default(), Default::default());
    engine.own_empty(TopicKind::Observed.def().partitions);
    let mut out = Vec::new();
    let mut tombstones = 0;
    for (t, p, k, v, offset) in inputs {
        let at = Position {
            topic: "t",
            partition: *p,
            offset: *offset,
        };
        match t {
            TopicKind::Observed => engine.observe(at, Some(k.as_bytes()), Some(v), &mut out),
            TopicKind::Sweeps => engine.sweep(at, Some(k.as_bytes()), Some(v), &mut out),
            _ => engine.broker(at, Some(k.as_bytes()), Some(v), &mut out),
        }
        if engine.pending() >= 512 {
            engine.flush(&mut out).expect("scores");
        }
        tombstones += out
            .drain(..)
            .filter(|o| {
                matches!(
                    o,
                    roomstream::process::engine::Output::Listing { value: None, .. }
                )
            })
            .count();
    }
    for p in 0..TopicKind::Observed.def().partitions {
        engine.release_sweeps(p);
    }
    engine.flush(&mut out).expect("scores");
    let states = engine
        .parts
        .into_iter()
        .map(|(p, part)| (p, part.state))
        .collect();
    (roomstream::process::state::hash(&states).0, tombstones)
}

/// Delivery order must not matter: the same inputs interleaved differently across the two topics,
/// with a tenth of the observations delivered twice (again, later), end in the same state hash.
#[test]
fn state_is_a_function_of_the_inputs_not_of_their_order() {
    use rand::{Rng, SeedableRng};
    let feed = feed_in_memory(1500, 6, 77);
    let mut offsets: BTreeMap<(TopicKind, i32), i64> = BTreeMap::new();
    let positioned: Vec<_> = feed
        .into_iter()
        .map(|(t, p, k, v)| {
            let o = offsets.entry((t, p)).or_default();
            *o += 1;
            (t, p, k, v, *o - 1)
        })
        .collect();
    let in_order = apply(&positioned);
    // Sweeps far ahead of the observations (as when the small sweeps partition is drained first), far
    // behind, and in between.
    for (seed, one_in) in [(1u64, 2u32), (2, 1000), (3, 40)] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // Registry first (the processor reads it to its end before anything else), then a random merge of
        // the observation and sweep streams, each still in its own offset order.
        let (brokers, rest): (Vec<_>, Vec<_>) = positioned
            .iter()
            .cloned()
            .partition(|r| r.0 == TopicKind::Brokers);
        let (obs, sweeps): (Vec<_>, Vec<_>) =
            rest.into_iter().partition(|r| r.0 == TopicKind::Observed);
        let (mut i, mut j) = (0, 0);
        let mut merged = brokers;
        // Observations delivered again (at-least-once, after a restart): (where the first delivery
        // ended, the record), placed up to 5,000 deliveries later once the merge is built.
        let mut again = Vec::new();
        while i < obs.len() || j < sweeps.len() {
            let take_sweep =
                j < sweeps.len() && (i == obs.len() || rng.random_range(0..one_in) == 0);
            if take_sweep {
                merged.push(sweeps[j].clone());
                j += 1;
            } else {
                merged.push(obs[i].clone());
                if rng.random_range(0..10) == 0 {
                    again.push((merged.len(), obs[i].clone()));
                }
                i += 1;
            }
        }
        // Last first: an insertion never moves an earlier original.
        for (after, record) in again.into_iter().rev() {
            let at = rng.random_range(after..=(after + 5000).min(merged.len()));
            merged.insert(at, record);
        }
        let dup_later: Vec<_> = obs
            .iter()
            .filter(|_| rng.random_range(0..10) == 0)
            .cloned()
            .collect();
        merged.extend(dup_later);
        let (hash, tombstones) = apply(&merged);
        assert_eq!(
            hash, in_order.0,
            "interleaving {seed} ends in another state"
        );
        // Sweeps read ahead of the observations wait for them: no listing is removed on the way only
        // because its sighting was not read yet.
        assert!(
            tombstones <= in_order.1 + 2,
            "interleaving {seed}: {tombstones} tombstones, {} in order",
            in_order.1
        );
        eprintln!(
            "interleaving {seed}: {tombstones} tombstones ({} in order)",
            in_order.1
        );
    }
}
