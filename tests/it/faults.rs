//! Kill -9 at random points: the processor and the three sinks run side by side while the feed arrives,
//! and at each of ≥ 20 random moments one of them (picked at random) is SIGKILLed and started again at
//! once. Afterwards every component runs to the end of its inputs, and the result must equal an
//! uninterrupted run over the same feed: the processor's state hash, the MySQL rows, the PostgreSQL
//! rows and the S3 snapshot's rows (what each holds per listing: id, clock, value hash), with no S3
//! data file outside a commit. (The S3 files themselves are cut where batches happened to end, which
//! depends on timing in any live run, killed or not; their committed contents are what must agree.)
//!
//! Size: `ROOMSTREAM_FAULT_SIZE=full` — 100,000 flats × 10 days (≈ 1.1 million events), 30 kill
//! points (meant for the release build: `cargo test --release --test it faults -- --nocapture`);
//! otherwise the CI size, 3,000 flats × 5 days (≈ 20,000 events), 20 kill points. A restarted
//! component joins a consumer group of its own (`process.group`, `sink.group`): progress lives in
//! checkpoints and destinations, not in the group, and Tansu 0.6 keeps a killed member in its group.

use std::process::Child;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use crate::support::{TestEnv, spawn_env};

/// The size: flats, days, kill points, the crawl's rate (events/s) and the range of waits between two
/// kills (ms) — so that the kills fall while the feed arrives and is processed.
struct Size {
    flats: &'static str,
    days: &'static str,
    points: usize,
    rate: &'static str,
    waits: std::ops::Range<u64>,
}

fn size() -> Size {
    if std::env::var("ROOMSTREAM_FAULT_SIZE").as_deref() == Ok("full") {
        Size {
            flats: "100000",
            days: "10",
            points: 30,
            rate: "5000",
            waits: 2000..15000,
        }
    } else {
        Size {
            flats: "3000",
            days: "5",
            points: 20,
            rate: "400",
            waits: 500..4000,
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

/// What each store holds: (state hash, MySQL, PostgreSQL, S3 snapshot) — the last three as
/// (rows, checksum) of (id, clock, value hash).
async fn holdings(env: &TestEnv) -> (String, (u64, String), (u64, String), (u64, String)) {
    let out = env.roomstream(&["state", "hash"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let hash = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("total "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no state hash in {text}"))
        .to_string();
    let url = env.cfg.mysql.url.clone();
    let pool = sqlx::MySqlPool::connect(&url).await.expect("mysql");
    let mysql = roomstream::sink::mysql::contents(&roomstream::db::Pool::Mysql(pool))
        .await
        .expect("mysql rows");
    let pool = sqlx::PgPool::connect(&env.cfg.postgres.url)
        .await
        .expect("postgres");
    let pg = roomstream::sink::postgres::contents(&pool, "roomstream")
        .await
        .expect("postgres rows");
    let s3 = crate::sink::snapshot_rows(env).await;
    (
        hash,
        crate::sink::sum(&mysql),
        crate::sink::sum(&pg),
        crate::sink::sum(&s3),
    )
}

async fn env_with_own_databases(extra: &[(&str, &str, &str)]) -> (TestEnv, String) {
    let db = format!("rs_{}", uuid::Uuid::now_v7().simple());
    let m = format!("mysql://root@127.0.0.1:3306/{db}");
    let p = format!("postgres://postgres@127.0.0.1:5432/{db}");
    let mut all = vec![
        ("mysql", "url", m.as_str()),
        ("postgres", "url", p.as_str()),
        ("mysql", "reader_user", ""),
        ("postgres", "reader_user", ""),
        ("sink", "stats_interval", "1s"),
    ];
    all.extend_from_slice(extra);
    (spawn_env(&all).await, db)
}

async fn drop_databases(db: &str) {
    if let Ok(p) = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql").await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db}")))
            .execute(&p)
            .await;
    }
    if let Ok(p) = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&p)
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "fails (issue 9, open): the state hash matches and the three sinks agree with each other, but \
            not with the uninterrupted run's — a canonical listing published from two input partitions \
            carries clocks that do not compare, so the sinks' (clock, offset) rule can pick another last \
            version when kills change the interleaving; run with --ignored"]
async fn kill_9_at_random_points_ends_as_an_uninterrupted_run() {
    let Size {
        flats,
        days,
        points,
        rate,
        waits,
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
    // Small batches and frequent checkpoints: a kill lands inside and between many commits.
    let settings = [
        ("process", "checkpoint_events", "2000"),
        ("process", "checkpoint_interval", "2s"),
        ("sink", "batch_rows", "300"),
        ("sink", "snapshot_interval", "5s"),
    ];
    // The uninterrupted run.
    let (reference, ref_db) = env_with_own_databases(&settings).await;
    let started = Instant::now();
    assert!(reference.roomstream(&feed).status.success(), "feed");
    for c in COMPONENTS {
        finish(&reference, c);
    }
    let want = holdings(&reference).await;
    eprintln!(
        "uninterrupted run: {:.0} s, {want:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(want.1.0 > 500, "the feed publishes listings: {want:?}");

    // The killed run: the feed arrives while all four run; a random one is killed at each point.
    let (env, db) = env_with_own_databases(&settings).await;
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
    assert!(
        crawler.join().expect("crawler").status.success(),
        "the feed"
    );
    for mut c in running {
        kill(&mut c); // one more each: none of them stops cleanly
    }
    // Then each to the end of its inputs, the processor first.
    for c in COMPONENTS {
        finish(&env, c);
    }
    let got = holdings(&env).await;
    eprintln!(
        "faults: {points} kill points (process {}, mysql {}, redshift {}, s3 {}) + a final kill each, {:.0} s; {got:?}",
        kills[0],
        kills[1],
        kills[2],
        kills[3],
        started.elapsed().as_secs_f64()
    );
    let mismatches = [
        ("state hash", got.0 == want.0),
        ("MySQL rows", got.1 == want.1),
        ("PostgreSQL rows", got.2 == want.2),
        ("S3 snapshot rows", got.3 == want.3),
    ];
    let bad: Vec<&str> = mismatches.iter().filter(|m| !m.1).map(|m| m.0).collect();
    assert!(
        bad.is_empty(),
        "after {points} kills, differ from the uninterrupted run: {bad:?}\nwant {want:?}\ngot  {got:?}"
    );
    drop_databases(&ref_db).await;
    drop_databases(&db).await;
}
