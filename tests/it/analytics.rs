//! Analytics over what the S3 sink wrote from ten synthetic days on the real broker and s3s-fs: the
//! feed goes in day by day with the processor after each day (so `listings.v1` carries each day's
//! price changes and removals, as it does live), the S3 sink runs halfway and at the end (two
//! snapshots); then every `queries/analytics/*.sql` answers with rows that agree with what the
//! processor published, `roomstream query` prints tables, CSV and JSON and refuses bad SQL, and
//! `roomstream report` writes the charts.

use std::collections::{BTreeMap, BTreeSet};

use roomstream::analytics::{Analytics, Answer, queries};
use roomstream::crawl::Emitter;
use roomstream::crawl::synthetic::{self, SyntheticArgs};
use roomstream::kafka::{EventSink, KafkaSink, MemorySink};
use roomstream::region::SEOUL_GU;
use roomstream::topics::TopicKind;

use crate::support::{TestEnv, spawn_env};

const FLATS: u32 = 1_200;
const DAYS: usize = 10;
const SEED: u64 = 43;

/// The synthetic feed split by simulated day (its crawl ids say the day: `synthetic-s43-d003-…`); the
/// broker registry, which names no crawl, goes with day 0.
fn feed_by_day() -> Vec<Vec<(TopicKind, String, Vec<u8>)>> {
    let mut sink = MemorySink::default();
    {
        let mut emitter = Emitter::new(&mut sink, None);
        let args = SyntheticArgs {
            listings: FLATS,
            days: DAYS as u32,
            seed: SEED,
            rate: None,
            truth: None,
        };
        synthetic::run(&args, &mut emitter).expect("the feed");
        emitter.finish().expect("finish");
    }
    let mut days = vec![Vec::new(); DAYS];
    for (topic, key, value) in sink.records {
        let day = serde_json::from_slice::<serde_json::Value>(&value)
            .ok()
            .and_then(|v| {
                v["crawl_id"]
                    .as_str()?
                    .split('-')
                    .find_map(|p| p.strip_prefix('d')?.parse::<usize>().ok())
            })
            .unwrap_or(0);
        days[day.min(DAYS - 1)].push((topic, key, value));
    }
    days
}

fn run_ok(env: &TestEnv, args: &[&str]) -> String {
    let out = env.roomstream(args);
    assert!(out.status.success(), "roomstream {args:?} failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What the processor published, per listing in publication order: `Some((gu, deposit, rent))` for a
/// version, `None` for a deletion.
type Versions = BTreeMap<String, Vec<Option<(String, i64, i64)>>>;

fn published(env: &TestEnv) -> (usize, Versions) {
    let records = env.read_topic(TopicKind::Listings);
    let mut by_key: Versions = BTreeMap::new();
    for r in &records {
        let v = (!r.value.is_empty()).then(|| {
            let j = r.json();
            (
                j["gu"].as_str().unwrap_or_default().to_string(),
                j["deposit"].as_i64().expect("deposit"),
                j["rent"].as_i64().expect("rent"),
            )
        });
        by_key.entry(r.key.clone()).or_default().push(v);
    }
    (records.len(), by_key)
}

fn total(a: &Answer, column: &str) -> f64 {
    a.floats(column)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|v| v.unwrap_or(0.0))
        .sum()
}

fn texts(a: &Answer, column: &str) -> Vec<String> {
    a.strings(column)
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|v| v.unwrap_or_default())
        .collect()
}

async fn one(a: &Analytics, sql: &str) -> f64 {
    let answer = a.sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    total(&answer, answer.schema.field(0).name())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_analytics_query_answers_over_ten_synthetic_days() {
    // Arrange: the feed day by day, the processor after each day, the S3 sink halfway and at the end.
    let env = spawn_env(&[]).await;
    let started = std::time::Instant::now();
    for (d, records) in feed_by_day().iter().enumerate() {
        let mut producer = KafkaSink::new(&env.cfg.kafka).expect("producer");
        for (topic, key, value) in records {
            producer.send(*topic, key, value).expect("send");
        }
        producer.finish().expect("delivered");
        run_ok(&env, &["process", "--exit-when-idle"]);
        if d == DAYS / 2 - 1 {
            run_ok(&env, &["sink", "s3", "--exit-when-idle"]);
        }
    }
    run_ok(&env, &["sink", "s3", "--exit-when-idle"]);
    eprintln!(
        "{FLATS} flats × {DAYS} days through the processor and the S3 sink in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Act: the tables.
    let a = Analytics::open(&env.cfg, None)
        .await
        .expect("open the latest snapshot");
    let first = Analytics::open(&env.cfg, Some(1))
        .await
        .expect("open epoch 1");

    // The published records, read back whole: as many as the sink's committed positions say. (Reading
    // the topic back has once come up short on the loaded two-core machine; it is read again then.)
    let expected: i64 = a.manifest().positions.values().sum();
    let mut attempts = 0;
    let (records, versions) = loop {
        let read = published(&env);
        attempts += 1;
        if read.0 as i64 >= expected || attempts == 3 {
            break read;
        }
        eprintln!(
            "read {} of {expected} records of listings.v1; reading again",
            read.0
        );
    };
    assert_eq!(records as i64, expected, "listings.v1 read back whole");
    let live = versions
        .values()
        .filter(|v| v.last().is_some_and(Option::is_some))
        .count();
    let (mut price_changes, mut removals) = (0usize, 0usize);
    for v in versions.values() {
        for w in v.windows(2) {
            match (&w[0], &w[1]) {
                (Some(a), Some(b)) if (a.1, a.2) != (b.1, b.2) => price_changes += 1,
                (Some(_), None) => removals += 1,
                _ => {}
            }
        }
    }
    eprintln!(
        "published: {records} records, {live} live listings, {price_changes} price changes, {removals} removals"
    );
    assert!(
        price_changes > 20 && removals > 20,
        "the fortnight changes prices and removes listings"
    );
    let seoul: BTreeSet<&str> = SEOUL_GU.iter().map(|(_, name)| *name).collect();

    // Assert: the tables hold what the processor published.
    assert_eq!(a.manifest().epoch, 2, "two sink runs, two snapshots");
    let listings = one(&a, "SELECT COUNT(*) FROM listings").await;
    assert_eq!(
        listings, live as f64,
        "listings = the live listings published"
    );
    assert_eq!(listings, a.manifest().rows as f64);
    assert_eq!(
        one(&a, "SELECT COUNT(*) FROM changes").await,
        records as f64,
        "one row per record"
    );
    let earlier = one(&first, "SELECT COUNT(*) FROM changes").await;
    assert!(
        earlier > 0.0 && earlier < records as f64,
        "epoch 1 sees the changes up to its positions"
    );
    let with_gu = one(&a, "SELECT COUNT(*) FROM listings WHERE gu IS NOT NULL").await;
    assert_eq!(
        with_gu, listings,
        "every listing has its 구 (filled from its region code)"
    );

    // Every built-in query answers.
    let mut answers: BTreeMap<&str, Answer> = BTreeMap::new();
    for q in queries::QUERIES {
        let answer = a
            .sql(q.sql)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", q.name));
        eprintln!("{}: {} rows", q.name, answer.rows());
        assert!(answer.rows() > 0, "{} has rows", q.name);
        answers.insert(q.name, answer);
    }
    let ans = |name: &str| &answers[name];

    // The seed's six.
    let positions = ans("position_and_fee");
    assert_eq!(
        positions.rows() as f64,
        with_gu,
        "one row per listing with a 구"
    );
    assert!(
        texts(positions, "district")
            .iter()
            .all(|d| seoul.contains(d.as_str()))
    );
    let fee = positions.floats("rent_fee").expect("rent_fee");
    let rent = positions.floats("rent").expect("rent");
    assert!(
        fee.iter()
            .zip(&rent)
            .all(|(f, r)| f.unwrap_or(0.0) >= r.unwrap_or(0.0)),
        "rent_fee ≥ rent"
    );
    let lat = positions.floats("latitude").expect("lat");
    assert!(
        lat.iter().flatten().all(|l| (37.4..37.72).contains(l)),
        "positions in Seoul"
    );

    let facilities = ans("all_facilities_by_district");
    assert_eq!(total(facilities, "listings"), with_gu);
    let (all_six, known, of) = (
        facilities.floats("property_count").expect("n"),
        facilities.floats("known_count").expect("n"),
        facilities.floats("listings").expect("n"),
    );
    for i in 0..facilities.rows() {
        assert!(
            all_six[i] <= known[i] && known[i] <= of[i],
            "all six ≤ all known ≤ the 구's listings: row {i}"
        );
    }
    assert!(
        total(facilities, "known_count") > 0.0,
        "some flats have every known facility nearby"
    );
    assert!(
        texts(facilities, "district")
            .iter()
            .all(|d| seoul.contains(d.as_str()))
    );

    assert_eq!(
        total(ans("listings_per_agency"), "property_count"),
        listings,
        "agency counts add up"
    );

    let floors = ans("floor_distribution");
    let with_floor = one(
        &a,
        "SELECT COUNT(*) FROM listings WHERE floor_kind IN ('semi_basement', 'rooftop') \
         OR (floor_kind = 'level' AND floor_level IS NOT NULL)",
    )
    .await;
    assert_eq!(total(floors, "property_count"), with_floor);
    for f in texts(floors, "floor") {
        let n = f.strip_prefix("지하 ").unwrap_or(&f);
        assert!(
            f == "반지하"
                || f == "옥탑방"
                || n.strip_suffix('층')
                    .is_some_and(|d| d.parse::<u32>().is_ok()),
            "a floor label like the seed's: {f}"
        );
    }

    let certified = ans("broker_certification");
    assert_eq!(
        total(certified, "property_count"),
        listings,
        "statuses add up"
    );
    assert!(
        (total(certified, "share") - 1.0).abs() < 1e-3,
        "shares (rounded to 4 places) add up"
    );
    let statuses = texts(certified, "certificate_status");
    assert!(
        statuses.contains(&"인증".to_string()) && statuses.contains(&"미인증".to_string()),
        "{statuses:?}"
    );
    let uncertified = statuses
        .iter()
        .zip(certified.floats("property_count").expect("n"))
        .find(|(s, _)| s.as_str() == "미인증")
        .and_then(|(_, n)| n)
        .unwrap_or(0.0);
    assert_eq!(
        total(ans("uncertified_agents"), "property_count"),
        uncertified
    );

    // What the stream adds.
    let weekly = ans("price_changes_per_week");
    assert_eq!(
        total(weekly, "price_changes"),
        price_changes as f64,
        "every price change published, once"
    );
    assert!(total(weekly, "increases") + total(weekly, "decreases") <= price_changes as f64);
    for w in texts(weekly, "week") {
        let t = time::OffsetDateTime::parse(&w, &time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|e| panic!("{w}: {e}"));
        assert_eq!(
            (t.weekday(), t.hour(), t.offset().whole_hours()),
            (time::Weekday::Monday, 0, 9),
            "{w}"
        );
        assert!(
            t >= synthetic::START - time::Duration::days(7)
                && t <= synthetic::START + time::Duration::days(DAYS as i64),
            "{w}"
        );
    }

    let removal = ans("time_to_removal_by_district");
    assert_eq!(
        total(removal, "removals"),
        removals as f64,
        "every removal published, once"
    );
    assert!(
        texts(removal, "district")
            .iter()
            .all(|d| seoul.contains(d.as_str()))
    );
    for d in removal
        .floats("median_days")
        .expect("median")
        .into_iter()
        .flatten()
    {
        assert!(
            (0.0..=DAYS as f64).contains(&d),
            "a median within the fortnight: {d}"
        );
    }

    let cross = ans("cross_listing_share");
    assert_eq!(texts(cross, "platform"), ["zigbang", "dabang", "all"]);
    let (n, both, share) = (
        cross.floats("listings").expect("n"),
        cross.floats("cross_listed").expect("n"),
        cross.floats("share").expect("share"),
    );
    let v = |x: &Vec<Option<f64>>, i: usize| x[i].unwrap_or(f64::NAN);
    assert!(
        v(&both, 0) == v(&both, 1) && v(&both, 1) == v(&both, 2),
        "a cross-listed flat is on both"
    );
    assert_eq!(
        v(&n, 0) + v(&n, 1) - v(&both, 2),
        v(&n, 2),
        "zigbang ∪ dabang = all"
    );
    assert_eq!(v(&n, 2), listings);
    assert!(share.iter().flatten().all(|s| (0.0..=1.0).contains(s)));
    assert!(
        v(&share, 2) > 0.1,
        "the simulator puts about a third on both; dedup finds many"
    );

    // The command line.
    let csv = run_ok(
        &env,
        &[
            "query",
            "SELECT gu, COUNT(*) AS n FROM listings GROUP BY gu ORDER BY gu",
            "--format",
            "csv",
        ],
    );
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("gu,n"), "{csv}");
    let mut sum = 0.0;
    for line in lines {
        let (gu, count) = line.rsplit_once(',').expect("two columns");
        assert!(gu.is_empty() || seoul.contains(gu), "{line}");
        sum += count.parse::<f64>().expect("a count");
    }
    assert_eq!(sum, listings, "the CSV counts add up");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("queries/analytics/broker_certification.sql");
    let json = run_ok(
        &env,
        &[
            "query",
            "--file",
            &file.to_string_lossy(),
            "--format",
            "json",
        ],
    );
    let rows: serde_json::Value = serde_json::from_str(&json).expect("a JSON array");
    assert_eq!(rows[0]["certificate_status"], "인증", "{json}");
    let table = run_ok(
        &env,
        &[
            "query",
            "--snapshot",
            "1",
            "SELECT COUNT(*) AS n FROM changes",
        ],
    );
    assert!(
        table.contains(&format!("| {earlier}")) || table.contains(&format!("{earlier} |")),
        "{table}"
    );
    let bad = env.roomstream(&["query", "SELEC gu FROM listings"]);
    assert_eq!(bad.status.code(), Some(1), "bad SQL exits 1");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("query:"),
        "and says why"
    );
    let missing = env.roomstream(&["query", "--snapshot", "99", "SELECT 1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("complete epochs: [1, 2]"));

    // The report.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_ok(&env, &["report", "--out", &dir.path().to_string_lossy()]);
    let index = std::fs::read_to_string(dir.path().join("index.html")).expect("index.html");
    for q in queries::QUERIES {
        let svg = std::fs::read_to_string(dir.path().join(format!("{}.svg", q.name)))
            .unwrap_or_else(|e| panic!("{}.svg: {e}", q.name));
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{}",
            q.name
        );
        assert!(!svg.contains("데이터 없음"), "{} has data to draw", q.name);
        assert!(
            index.contains(&format!("src=\"{}.svg\"", q.name)),
            "index shows {}",
            q.name
        );
        assert!(
            dir.path().join(format!("{}.csv", q.name)).exists(),
            "{}",
            q.name
        );
        if q.name.contains("district") || q.name == "position_and_fee" {
            let want = texts(&answers[q.name], "district")
                .into_iter()
                .collect::<BTreeSet<_>>();
            let drawn = want.iter().filter(|g| svg.contains(g.as_str())).count();
            assert!(
                drawn == want.len() && drawn >= 5,
                "{}: Korean 구 names are drawn ({drawn} of {})",
                q.name,
                want.len()
            );
        }
    }
    assert!(out.contains("report of snapshot epoch 2"), "{out}");
}
