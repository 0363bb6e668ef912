//! Scenario `api`: the API's latency and throughput under load from a second process (`wrk`, Debian's
//! package) on loopback, for search and for detail.
//!
//! The data: the simulator's feed through the processor's engine, its listings written through the
//! MySQL sink into a scratch database. The API runs in this process as `serve` would (read-only user,
//! same layers); `wrk` runs closed-loop with `--latency` at each connection count, cycling through
//! search URLs built from the data (구, 동, budgets, facilities, every sort, second pages) or listing
//! ids. Search runs twice: with answers kept per epoch (`api.cache_entries`, as served) and on a
//! second server that keeps none, so that every request reads MySQL. Baseline: `/healthz` on the same
//! server at the same connection count — this machine's floor for an HTTP answer from axum.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Context, bail};

use super::feed::{self, Core};
use super::report::{Better, Figure, Report};
use super::{Ctx, fresh_namespace};
use crate::sink::mysql::MysqlSink;
use crate::sink::runner::Destination;

/// One wrk run.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadResult {
    /// Requests per second.
    pub rps: f64,
    /// Latency percentiles, milliseconds: 50, 90, 99.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    /// Answers that were not 2xx/3xx.
    pub non_2xx: u64,
    /// Requests in all.
    pub requests: u64,
}

/// Reads wrk's `--latency` report.
pub fn parse_wrk(out: &str) -> Option<LoadResult> {
    let ms = |v: &str| -> Option<f64> {
        let v = v.trim();
        if let Some(x) = v.strip_suffix("us") {
            x.parse::<f64>().ok().map(|x| x / 1000.0)
        } else if let Some(x) = v.strip_suffix("ms") {
            x.parse().ok()
        } else if let Some(x) = v.strip_suffix('s') {
            x.parse::<f64>().ok().map(|x| x * 1000.0)
        } else {
            None
        }
    };
    let pct = |p: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(ms)
    };
    let rps = out
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let requests = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let non_2xx = out
        .lines()
        .find(|l| l.trim_start().starts_with("Non-2xx or 3xx responses:"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    Some(LoadResult {
        rps,
        p50_ms: pct("50%")?,
        p90_ms: pct("90%")?,
        p99_ms: pct("99%")?,
        non_2xx,
        requests,
    })
}

/// A wrk script that cycles through `paths`.
fn lua(paths: &[String]) -> String {
    let mut s = String::from("local paths = {\n");
    for p in paths {
        let _ = writeln!(s, "  {:?},", p);
    }
    s.push_str("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n");
    s
}

/// Search URLs over the data: 구 and 동 names, budgets, facilities, each sort, and second pages.
async fn search_paths(base: &str, gus: &[String], dongs: &[String]) -> anyhow::Result<Vec<String>> {
    let sorts = ["score", "cost", "newest", "area"];
    let mut out = Vec::new();
    for (i, gu) in gus.iter().enumerate() {
        let sort = sorts[i % sorts.len()];
        out.push(format!("/api/v1/listings?gu={gu}&sort={sort}&limit=20"));
        out.push(format!(
            "/api/v1/listings?place={gu}&rent_max={}&include_fee=true&facility=subway&exclude_semi_basement=true&sort=cost",
            50 + (i % 4) * 10
        ));
        out.push(format!(
            "/api/v1/listings?gu={gu}&deposit_max=2000&verified_only=true&sort={sort}"
        ));
    }
    for (i, dong) in dongs.iter().enumerate() {
        out.push(format!(
            "/api/v1/listings?dong={dong}&sort={}",
            sorts[i % sorts.len()]
        ));
    }
    out.push("/api/v1/listings?sort=score&limit=20".into());
    out.push("/api/v1/listings?sort=cost&limit=20&area_min=20".into());
    // Second pages: follow a cursor once for a few of them.
    let client = reqwest::Client::new();
    let firsts: Vec<String> = out.iter().step_by(5).cloned().collect();
    for p in firsts {
        let body: serde_json::Value = client
            .get(format!("{base}{p}"))
            .send()
            .await?
            .json()
            .await?;
        if let Some(c) = body["next_cursor"].as_str() {
            out.push(format!("{p}&cursor={c}"));
        }
    }
    Ok(out
        .into_iter()
        .map(|p| {
            url::Url::parse(&format!("http://x{p}"))
                .map(|u| format!("{}?{}", u.path(), u.query().unwrap_or("")))
                .unwrap_or(p)
        })
        .collect())
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!("wrk is not installed: apt-get install wrk");
    }
    let (flats, days, duration, connections): (u32, u32, u64, &[u32]) = ctx.size.pick(
        (1_000, 3, 1, &[4]),
        (20_000, 7, 4, &[4, 16]),
        (30_000, 7, 10, &[4, 16, 64]),
    );
    let duration = Duration::from_secs(duration);
    // The data: the feed through the engine, its listings through the MySQL sink.
    let cfg = fresh_namespace(&ctx.cfg, "api");
    let mut core = Core::new(&cfg)?;
    core.keep = true;
    for (t, k, v) in &feed::synthetic(flats, days, 7)? {
        core.feed(*t, k, v)?;
    }
    core.finish()?;
    let published = std::mem::take(&mut core.kept);
    drop(core);
    let mut sink = MysqlSink::open(&cfg).await.context("mysql")?;
    let mut offset = 0;
    super::incremental::write(&mut sink, &published, &mut offset, cfg.sink.batch_rows).await?;
    sink.close().await?; // the group statistics the page and the search URLs read
    drop((sink, published));

    // What to ask for, from the data itself.
    let pool = sqlx::MySqlPool::connect(&cfg.mysql.url).await?;
    let listings: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM listings")
        .fetch_one(&pool)
        .await?;
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT listing_id FROM listings ORDER BY value_sha256 LIMIT 500")
            .fetch_all(&pool)
            .await?;
    let gus: Vec<String> = sqlx::query_scalar(
        "SELECT gu FROM region_stats WHERE dong_code = '' AND gu IS NOT NULL ORDER BY listings DESC",
    )
    .fetch_all(&pool)
    .await?;
    let dongs: Vec<String> = sqlx::query_scalar(
        "SELECT dong FROM region_stats WHERE dong_code <> '' AND dong IS NOT NULL ORDER BY listings DESC LIMIT 40",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;

    // Two servers on the same database: answers kept per epoch as configured, and none kept.
    let mut uncached = cfg.clone();
    uncached.api.cache_entries = 0;
    let kept = crate::api::spawn_loopback(&cfg).await?;
    let none_kept = crate::api::spawn_loopback(&uncached).await?;
    let (base, base_uncached) = (kept.base.clone(), none_kept.base.clone());
    let search = search_paths(&base, &gus, &dongs).await?;
    let detail: Vec<String> = ids
        .iter()
        .map(|i| format!("/api/v1/listings/{i}"))
        .collect();
    let dir = tempfile_dir()?;
    let mut report = Report::new(
        "api",
        format!(
            "{listings} listings in MySQL (simulator {flats} flats × {days} days); {} search URLs, {} detail URLs; wrk -t1, {} s a run, closed loop; API, MariaDB and wrk share the cores",
            search.len(),
            detail.len(),
            duration.as_secs()
        ),
        &ctx.machine,
    );
    let health = dir.join("healthz.lua");
    std::fs::write(&health, lua(&["/healthz".to_string()]))?;
    for (name, paths, url) in [
        ("search", &search, &base),
        ("search, nothing kept", &search, &base_uncached),
        ("detail", &detail, &base),
    ] {
        let script = dir.join(format!("{}.lua", name.replace([' ', ','], "_")));
        std::fs::write(&script, lua(paths))?;
        // Warm the pool, the statement caches and the buffer pool.
        run_wrk(url, &script, 4, Duration::from_secs(2)).await?;
        for &c in connections {
            let floor = run_wrk(url, &health, c, duration).await?;
            let r = run_wrk(url, &script, c, duration).await?;
            anyhow::ensure!(
                r.non_2xx == 0,
                "{name}: {} of {} answers were not 2xx",
                r.non_2xx,
                r.requests
            );
            // The headline: search at 16 connections (or the most there are below that).
            let headline_c = connections.iter().copied().filter(|&x| x <= 16).max();
            let headline = name == "search" && Some(c) == headline_c;
            let mut p99 = Figure::new(
                &format!("{name} p99, {c} connections"),
                r.p99_ms,
                "ms",
                Better::Lower,
            )
            .vs("/healthz p99", floor.p99_ms);
            let mut rps = Figure::new(
                &format!("{name} requests/s, {c} connections"),
                r.rps,
                "req/s",
                Better::Higher,
            )
            .vs("/healthz", floor.rps);
            if name.starts_with("search") {
                p99 = p99.target(5.0);
                rps = rps.target(5000.0);
            }
            if headline {
                p99 = p99.headline();
                rps = rps.headline();
            }
            report.push(p99);
            report.push(rps);
            report.push(
                Figure::new(
                    &format!("{name} p50, {c} connections"),
                    r.p50_ms,
                    "ms",
                    Better::Lower,
                )
                .vs("/healthz p50", floor.p50_ms),
            );
        }
    }
    kept.stop().await?;
    none_kept.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    super::drop_namespace(&cfg).await;
    report.note("the search target (p99 ≤ 5 ms at ≥ 5,000 requests/s) is read off one closed-loop run: both must hold at the same connection count");
    Ok(report)
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("roomstream-bench-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn run_wrk(
    base: &str,
    script: &std::path::Path,
    connections: u32,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{}s", duration.as_secs().max(1)),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(base)
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).with_context(|| format!("unreadable wrk output:\n{text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_latency_reports() {
        let out = "Running 10s test @ http://127.0.0.1:1\n  1 threads and 8 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     1.20ms  300.00us   9.00ms   80.00%\n  Latency Distribution\n     50%  850.00us\n     75%    1.10ms\n     90%    1.90ms\n     99%    4.50ms\n  51234 requests in 10.00s, 80.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   5123.40\nTransfer/sec:      8.00MB\n";
        let r = parse_wrk(out).expect("parsed");
        assert_eq!(r.rps, 5123.40);
        assert_eq!((r.p50_ms, r.p90_ms, r.p99_ms), (0.85, 1.9, 4.5));
        assert_eq!((r.requests, r.non_2xx), (51234, 3));
        assert!(lua(&["/a?x=\"1\"".into()]).contains("\"/a?x=\\\"1\\\"\""));
    }
}
