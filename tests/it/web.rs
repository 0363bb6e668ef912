//! The web page in headless Debian Chromium (playwright-core, `tests/browser/flow.cjs`) over a database
//! the real pipeline filled: the whole flow 동네 → 비용 → 시설 → 층 → 결과 → 다음 페이지 → 상세 shows
//! exactly the listings, prices, scores, badges and links the API gives for the same choices.
//! Screenshots: `target/browser/results.png` and `detail.png`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::api::serve;

/// Where the screenshots go: `target/browser` beside the build (CARGO_TARGET_DIR if set).
fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("browser")
}

/// 만원 as the page writes it (ko-KR grouping).
fn won(v: i64) -> String {
    let s = v.abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_walks_the_flow_and_shows_what_the_api_serves() {
    let browser_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        browser_dir.join("node_modules/playwright-core").exists()
            && PathBuf::from("/usr/bin/chromium").exists(),
        "the browser test needs Debian chromium and tests/browser/node_modules: scripts/test.sh installs both \
         (apt-get install chromium; npm ci --prefix tests/browser)"
    );
    // Arrange: 1,000 flats over 2 days through the pipeline; the 구 with enough results for 2 pages.
    let s = serve(Some(("1000", "2")), &[]).await;
    let filters = "rent_max=70&include_fee=true&facility=subway&exclude_semi_basement=true&sort=score&limit=10";
    let (_, regions) = s.get("/api/v1/regions").await;
    let mut place = None;
    for r in regions.as_array().expect("regions") {
        let name = r["name"].as_str().unwrap_or_default().to_string();
        let (_, page) = s
            .get(&format!("/api/v1/listings?place={name}&{filters}"))
            .await;
        if page["next_cursor"].is_string() {
            place = Some(name);
            break;
        }
    }
    let place = place.expect("a 구 with more than one page of results");
    let out = screenshot_dir();
    std::fs::create_dir_all(&out).expect("screenshot folder");

    // Act
    let run = Command::new("node")
        .arg(browser_dir.join("flow.cjs"))
        .args([
            s.base.as_str(),
            out.to_str().expect("utf-8 path"),
            place.as_str(),
        ])
        .output()
        .expect("node runs");
    eprintln!("{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "the browser flow failed");
    let seen: Value = serde_json::from_slice(
        run.stdout
            .split(|b| *b == b'\n')
            .find(|l| l.starts_with(b"{"))
            .expect("a JSON line"),
    )
    .expect("JSON");

    // Assert: no page errors, no request elsewhere; the cards are the API's, in order, as shown.
    assert_eq!(seen["problems"], Value::Array(vec![]), "{seen}");
    assert!(
        seen["summary"].as_str().is_some_and(|t| t.contains(&place)
            && t.contains("반지하 제외")
            && t.contains("지하철"))
    );
    let (_, p1) = s
        .get(&format!("/api/v1/listings?place={place}&{filters}"))
        .await;
    let cursor = p1["next_cursor"].as_str().expect("a second page");
    let (_, p2) = s
        .get(&format!(
            "/api/v1/listings?place={place}&{filters}&cursor={cursor}"
        ))
        .await;
    for (shown, api) in [(&seen["first"], &p1), (&seen["second"], &p2)] {
        let shown = shown.as_array().expect("cards");
        let items = api["items"].as_array().expect("items");
        assert_eq!(shown.len(), items.len(), "cards on the page");
        for (c, l) in shown.iter().zip(items) {
            assert_eq!(c["id"], l["id"]);
            let price = if l["lease"] == "jeonse" {
                format!("전세 {}", won(l["deposit"].as_i64().expect("deposit")))
            } else {
                format!(
                    "보증금 {} / 월세 {}",
                    won(l["deposit"].as_i64().expect("deposit")),
                    won(l["rent"].as_i64().expect("rent"))
                )
            };
            assert_eq!(c["price"], Value::String(price), "{}", l["id"]);
            assert_eq!(
                c["score"],
                Value::String(format!(
                    "{:.1}",
                    l["score"]["total"].as_f64().expect("score")
                ))
            );
            assert_eq!(c["verified"], l["broker"]["verified"]);
            assert_eq!(c["bait"], l["bait"]["warning"]);
            let platforms: Vec<&Value> = l["links"]
                .as_array()
                .expect("links")
                .iter()
                .map(|k| &k["platform"])
                .collect();
            assert_eq!(
                c["links"]
                    .as_array()
                    .expect("links")
                    .iter()
                    .collect::<Vec<_>>(),
                platforms
            );
            assert_eq!(c["breakdown"], 7, "every score component is shown");
        }
    }
    let first_id = p1["items"][0]["id"].as_str().expect("id");
    assert_eq!(seen["detail"]["id"], first_id);
    let (_, detail) = s.get(&format!("/api/v1/listings/{first_id}")).await;
    assert_eq!(
        seen["detail"]["prices"].as_u64(),
        detail["price_history"].as_array().map(|a| a.len() as u64)
    );
    assert_eq!(
        seen["detail"]["members"].as_u64(),
        detail["members"].as_array().map(|a| a.len() as u64)
    );
    assert!(
        seen["detail"]["comparables"]
            .as_str()
            .is_some_and(|t| t.contains("중위"))
    );
    assert!(out.join("results.png").exists() && out.join("detail.png").exists());
    eprintln!("screenshots: {}", out.display());
    s.shutdown().await;
}
