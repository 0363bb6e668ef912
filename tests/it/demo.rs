//! `roomstream demo`, as a newcomer runs it: its own Tansu (a child process on a port of its own),
//! SQLite as the production database and a folder as the object store. The test reads the API while it
//! runs — scored, deduplicated listings, and live updates moving the served epoch — then stops it with
//! Ctrl-C (SIGINT) and checks its broker went with it; a second run with `--resume` continues from the
//! simulated day the first reached, a third without it starts clean.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A demo run in the background; its stdout lines collected.
struct Demo {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Demo {
    fn start(
        dir: &std::path::Path,
        api: &str,
        broker_port: u16,
        duration: &str,
        resume: bool,
    ) -> Demo {
        let port = broker_port.to_string();
        let mut args = vec![
            "demo",
            "--listings",
            "1500",
            "--days",
            "3",
            "--live-every",
            "300ms",
            "--duration",
            duration,
            "--broker-port",
            &port,
            "--dir",
            dir.to_str().expect("utf-8 path"),
        ];
        if resume {
            args.push("--resume");
        }
        eprintln!("$ roomstream {}", args.join(" "));
        let mut child = Command::new(env!("CARGO_BIN_EXE_roomstream"))
            .args(args)
            .env("ROOMSTREAM_API_LISTEN", api)
            .env("ROOMSTREAM_LOG", "warn")
            .env_remove("ROOMSTREAM_KAFKA_BROKERS")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the roomstream binary starts");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("stdout");
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                eprintln!("demo| {line}");
                l.lock().expect("lines").push(line);
            }
        });
        Demo { child, lines }
    }

    fn said(&self, what: &str) -> bool {
        self.lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains(what))
    }

    /// Ctrl-C, as a person stops it.
    fn interrupt(&self) {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "SIGINT sent");
    }

    fn wait(mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(300));
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the demo did not stop within 240 s of its --duration");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A page of listings and the epoch it was read at (None while the database is not ready).
async fn page(http: &reqwest::Client, base: &str, query: &str) -> Option<(serde_json::Value, i64)> {
    let r = http
        .get(format!("{base}/api/v1/listings?{query}"))
        .send()
        .await
        .ok()?;
    if !r.status().is_success() {
        return None;
    }
    let epoch = r
        .headers()
        .get("x-roomstream-epoch")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    Some((r.json().await.ok()?, epoch))
}

/// Every listing served (paged by `newest`, at most 3,000) and how many carry both platforms' links.
async fn count_all(http: &reqwest::Client, base: &str) -> (usize, usize) {
    let (mut listings, mut cross) = (0, 0);
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=100&sort=newest&cursor={c}"),
            None => "limit=100&sort=newest".to_string(),
        };
        let Some((p, _)) = page(http, base, &q).await else {
            panic!("a page failed while paging")
        };
        for c in p["items"].as_array().expect("items") {
            listings += 1;
            // (A live merge can move a listing past the cursor: count each id once.)
            if !seen.insert(c["id"].as_str().expect("id").to_string()) {
                listings -= 1;
                continue;
            }
            let platforms: BTreeSet<&str> = c["links"]
                .as_array()
                .expect("links")
                .iter()
                .filter_map(|l| l["platform"].as_str())
                .collect();
            if platforms.len() == 2 {
                cross += 1;
            }
        }
        cursor = p["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() || listings >= 3000 {
            return (listings, cross);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_scored_deduplicated_listings_and_resumes() {
    if !Command::new("tansu")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && !std::path::Path::new(&format!(
            "{}/.cargo/bin/tansu",
            std::env::var("HOME").unwrap_or_default()
        ))
        .is_file()
    {
        panic!("tansu is not installed (scripts/services.sh installs it)");
    }
    let dir = std::env::temp_dir().join(format!("roomstream-demo-{}", uuid::Uuid::now_v7()));
    let api = format!("127.0.0.1:{}", free_port());
    let base = format!("http://{api}");
    let broker_port = free_port();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let demo = Demo::start(&dir, &api, broker_port, "600s", false);
    // Listings served, scored; cross-listed flats served once with both platforms' links.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (first, first_epoch) = loop {
        if let Some((p, epoch)) = page(&http, &base, "limit=100&sort=score").await
            && p["items"].as_array().is_some_and(|i| i.len() == 100)
        {
            break (p, epoch);
        }
        assert!(
            Instant::now() < deadline,
            "the demo served no full page of listings within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(demo.said("Starting clean"), "a fresh folder starts clean");
    assert!(
        demo.said(&format!("The page: http://{api}/")),
        "the page's URL is printed"
    );
    assert!(demo.said("/metrics"), "the metrics' URL is printed");
    let items = first["items"].as_array().expect("items");
    let scores: Vec<f64> = items
        .iter()
        .map(|c| c["score"]["total"].as_f64().expect("a score"))
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted by score: {scores:?}"
    );
    assert!(scores.iter().all(|s| (0.0..=100.0).contains(s)));
    assert!(scores.first() > scores.last(), "scores differ");
    let ids: BTreeSet<&str> = items.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(ids.len(), items.len(), "no listing twice on a page");

    // Deduplicated: some listings carry both platforms, and every link of a listing is a different
    // page; every listing is counted once. (Read again until the fast days have been processed.)
    let deadline = Instant::now() + Duration::from_secs(90);
    let (listings, cross) = loop {
        let (listings, cross) = count_all(&http, &base).await;
        eprintln!("served {listings} listings, {cross} on both platforms");
        if listings > 500 && cross > 20 {
            break (listings, cross);
        }
        assert!(
            Instant::now() < deadline,
            "most of 1,500 flats are listed, cross-listed ones with both platforms' links: {listings}, {cross}"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    assert!(
        listings < 1500 + 1500 / 3,
        "cross-listed flats are merged: {listings} listings, {cross} on both platforms"
    );

    // Live: the crawl goes on, so the served epoch moves.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((_, epoch)) = page(&http, &base, "limit=1").await
            && epoch > first_epoch
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live update reached the API within 60 s (epoch {first_epoch})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Ctrl-C ends it: cleanly, saying where it stopped, and its broker is gone with it.
    demo.interrupt();
    let lines = demo.lines.clone();
    let status = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .expect("join");
    assert!(status.success(), "the demo exits 0 after Ctrl-C: {status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", broker_port)).is_err(),
        "the demo's broker stopped with it"
    );
    assert!(
        lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.starts_with("Stopped cleanly")),
        "it says it stopped cleanly"
    );
    let demo_saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("demo.json")).expect("demo.json"))
            .expect("demo.json is JSON");
    let next_day = demo_saved["next_day"].as_u64().expect("next_day");
    let day_of = |dir: &std::path::Path| -> u64 {
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("demo.json")).expect("demo.json"))
                .expect("JSON");
        saved["next_day"].as_u64().expect("next_day")
    };
    assert!(
        next_day >= 3,
        "the live part reached past the backfill: {demo_saved}"
    );

    // The second run, with --resume, continues: listings are served again, and it says so.
    let demo = Demo::start(&dir, &api, broker_port, "25s", true);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((p, _)) = page(&http, &base, "limit=100&sort=score").await
            && p["items"].as_array().is_some_and(|i| i.len() == 100)
        {
            break;
        }
        assert!(Instant::now() < deadline, "the resumed demo served nothing");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let lines = demo.lines.clone();
    let status = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .expect("join");
    let lines = lines.lock().expect("lines").clone();
    assert!(status.success(), "the resumed demo exits 0: {status}");
    assert!(
        lines.iter().any(|l| l.starts_with("Resuming the demo")),
        "the second run says it resumes: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("Stopped cleanly")),
        "and stops cleanly: {lines:?}"
    );
    let resumed_to = day_of(&dir);
    assert!(
        resumed_to > next_day,
        "the resumed crawl went on from day {next_day}, not from the start: now {resumed_to}"
    );

    // Without --resume the next run starts clean, and says what it removed.
    let demo = Demo::start(&dir, &api, broker_port, "5s", false);
    let lines = demo.lines.clone();
    let status = tokio::task::spawn_blocking(move || demo.wait())
        .await
        .expect("join");
    assert!(status.success(), "{status}");
    assert!(
        lines
            .lock()
            .expect("lines")
            .iter()
            .any(|l| l.contains("Starting clean") && l.contains("--resume keeps them")),
        "the third run says it starts clean"
    );
    assert!(
        day_of(&dir) < resumed_to,
        "the clean run simulated from day 0 again ({} vs {resumed_to})",
        day_of(&dir)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
