//! Scenario `sinks`: the MySQL and PostgreSQL sinks' write path — decoded `listings.v1` changes → one
//! transaction per batch with the fence, the version guard, members, price history and the progress
//! row — in rows/s by batch size, into scratch databases beside the configured ones. Each listing is
//! inserted, then updated with a newer version. Baseline: the database's own floor on this machine —
//! the same values inserted by plain multi-row `INSERT`s (id and text value, no guard, no index
//! besides the key), in the same batches, one transaction each.

use std::time::Instant;

use anyhow::Context;
use sqlx::QueryBuilder;

use super::report::{Better, Figure, Report};
use super::{Ctx, fresh_namespace};
use crate::sink::mysql::MysqlSink;
use crate::sink::postgres::RedshiftSink;
use crate::sink::runner;
use crate::topics::TopicKind;

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> anyhow::Result<Report> {
    let (rows, sizes): (u32, &[usize]) = ctx.size.pick(
        (1_000, &[500]),
        (20_000, &[500, 2000, 5000]),
        (100_000, &[500, 2000, 5000]),
    );
    let mut report = Report::new(
        "sinks",
        format!(
            "{rows} listings (values of {} bytes, a third with two members, two price steps) inserted, then updated with a newer version; MySQL {}, PostgreSQL {}",
            bench_value(1, 1).1.len(),
            ctx.cfg.mysql.url.split('@').next_back().unwrap_or(""),
            ctx.cfg.postgres.url.split('@').next_back().unwrap_or("")
        ),
        &ctx.machine,
    );
    for &size in sizes {
        let cfg = fresh_namespace(&ctx.cfg, "sinks");
        let mut m = MysqlSink::open(&cfg).await.context("mysql")?;
        let (ins, upd) = bench_one(&mut m, rows, size).await?;
        drop(m);
        let plain = plain_mysql(&cfg.mysql.url, rows, size).await?;
        // The headline: the configured batch size, or the largest measured when it is not among them.
        let is_default = if sizes.contains(&ctx.cfg.sink.batch_rows) {
            size == ctx.cfg.sink.batch_rows
        } else {
            Some(&size) == sizes.iter().max()
        };
        let mut f = Figure::new(
            &format!("MySQL inserts, batch {size}"),
            ins,
            "rows/s",
            Better::Higher,
        )
        .vs("plain INSERT", plain)
        .target(50_000.0);
        if is_default {
            f = f.headline();
        }
        report.push(f);
        report.push(
            Figure::new(
                &format!("MySQL updates, batch {size}"),
                upd,
                "rows/s",
                Better::Higher,
            )
            .vs("plain INSERT", plain)
            .target(50_000.0),
        );
        let mut r = RedshiftSink::open(&cfg).await.context("postgres")?;
        let (ins, upd) = bench_one(&mut r, rows, size).await?;
        drop(r);
        let plain = plain_postgres(&cfg.postgres.url, rows, size).await?;
        let mut f = Figure::new(
            &format!("PostgreSQL inserts, batch {size}"),
            ins,
            "rows/s",
            Better::Higher,
        )
        .vs("plain INSERT", plain);
        if is_default {
            f = f.headline();
        }
        report.push(f);
        report.push(
            Figure::new(
                &format!("PostgreSQL updates, batch {size}"),
                upd,
                "rows/s",
                Better::Higher,
            )
            .vs("plain INSERT", plain),
        );
        super::drop_namespace(&cfg).await;
    }
    report.note(format!(
        "a listing is about five row writes in the serving schema (the listing row with its indexes, 1.3 members, 2 price steps); headline at the configured sink.batch_rows = {}",
        ctx.cfg.sink.batch_rows
    ));
    Ok(report)
}

/// Rows/s of plain multi-row INSERTs of the same values into a bare table (`$ddl`), one transaction a
/// batch — the same code for either database, whose pool and query builder types differ.
macro_rules! plain_insert {
    ($pool:ty, $db:ty, $url:expr, $ddl:expr, $rows:expr, $size:expr) => {{
        let pool = <$pool>::connect($url).await?;
        sqlx::query($ddl).execute(&pool).await?;
        let values: Vec<(String, String)> = (0..$rows)
            .map(|i| {
                let (id, v) = bench_value(i, 10);
                (id, String::from_utf8_lossy(&v).into_owned())
            })
            .collect();
        let started = Instant::now();
        for chunk in values.chunks($size) {
            let mut tx = pool.begin().await?;
            let mut q = QueryBuilder::<$db>::new("INSERT INTO plain_insert (listing_id, value) ");
            q.push_values(chunk, |mut b, (id, v)| {
                b.push_bind(id).push_bind(v);
            });
            q.build().execute(&mut *tx).await?;
            tx.commit().await?;
        }
        let rate = f64::from($rows) / started.elapsed().as_secs_f64();
        pool.close().await;
        anyhow::Ok(rate)
    }};
}

/// [`plain_insert!`] into MySQL.
async fn plain_mysql(url: &str, rows: u32, size: usize) -> anyhow::Result<f64> {
    plain_insert!(
        sqlx::MySqlPool,
        sqlx::MySql,
        url,
        "CREATE TABLE plain_insert (listing_id VARCHAR(40) PRIMARY KEY, value LONGTEXT NOT NULL)",
        rows,
        size
    )
}

/// [`plain_insert!`] into PostgreSQL.
async fn plain_postgres(url: &str, rows: u32, size: usize) -> anyhow::Result<f64> {
    plain_insert!(
        sqlx::PgPool,
        sqlx::Postgres,
        url,
        "CREATE TABLE plain_insert (listing_id TEXT PRIMARY KEY, value TEXT NOT NULL)",
        rows,
        size
    )
}

/// A listing value as `listings.v1` carries it, varied by `i` (two members for every third listing,
/// a price history of two steps, four facilities), at version `clock`.
fn bench_value(i: u32, clock: i64) -> (String, Vec<u8>) {
    const REGIONS: [&str; 5] = ["11620", "11680", "11440", "11410", "11215"];
    let id = format!("L{:016x}", u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let rent = 30 + i64::from(i % 70) + clock % 3;
    let mut members = vec![
        serde_json::json!({"platform": "zigbang", "source_listing_id": format!("{i}"),
        "source": "synthetic", "url": format!("https://sp.zigbang.com/share/oneroom/{i}"), "deposit": 1000,
        "rent": rent, "fee": 7.0, "title": "신축 풀옵션 원룸, 역세권 5분", "first_seen_at": "2026-11-01T09:00:00+09:00"}),
    ];
    if i.is_multiple_of(3) {
        members.push(serde_json::json!({"platform": "dabang", "source_listing_id": format!("d{i:023x}"),
            "source": "synthetic", "url": format!("https://www.dabangapp.com/room/d{i:023x}"), "deposit": 1000,
            "rent": rent, "fee": null, "title": "역세권 풀옵션 원룸", "first_seen_at": "2026-11-02T09:00:00+09:00"}));
    }
    let v = serde_json::json!({
        "schema": "roomstream.listing/1", "listing_id": id, "region_code": REGIONS[(i % 5) as usize],
        "version": {"partition": 0, "clock": clock, "observed": 0, "sweeps": 0, "brokers": 0},
        "gu": "관악구", "dong": "신림동", "bjd_code": format!("{}10100", REGIONS[(i % 5) as usize]),
        "lease": "monthly", "deposit": 1000, "rent": rent, "fee": 7.0, "area_m2": 19.8 + f64::from(i % 20),
        "area_pyeong": 6.0, "floor": {"level": 2 + (i % 5)}, "building_floors": 5, "layout": "one_room",
        "building": "villa", "direction": "S", "location": {"lat": 37.48, "lng": 126.93, "precision": "exact"},
        "facilities": {"subway": 420.0, "convenience_store": 90.0, "cafe": 150.0, "hospital": 700.0},
        "subway_stations": ["신림"], "title": "신축 풀옵션 원룸, 역세권 5분", "image_url": "https://img.example/1.jpg",
        "first_seen_at": "2026-11-01T09:00:00+09:00",
        "broker": {"status": "verified", "registration_number": "11620-2020-00001", "person": "김중개", "office": "신림공인", "reason": "licensed"},
        "members": members,
        "price_history": [{"from": "2026-11-01T09:00:00+09:00", "deposit": 1000, "rent": rent + 5, "fee": 7.0},
                          {"from": "2026-11-10T09:00:00+09:00", "deposit": 1000, "rent": rent, "fee": 7.0}],
        "merge": {"threshold": 0.72, "links": []},
        "score": {"total": 61.5, "components": {"cost": 50.0, "value": 62.0, "facilities": 80.0, "floor": 70.0,
                  "direction": 100.0, "broker": 100.0, "freshness": 40.0},
                  "bait": {"risk": 0.0, "warning": false, "evidence": []},
                  "explanation": {"monthly_cost": 61.2, "deposit_rate": 0.05, "fair_cost": 58.0, "cost_m2": 2.1,
                                  "facilities": {}, "age": "7-14d", "unknown": []}}
    });
    (id, serde_json::to_vec(&v).unwrap_or_default())
}

fn bench_changes(rows: u32, clock: i64, first_offset: i64) -> Vec<crate::sink::change::Change> {
    (0..rows)
        .filter_map(|i| {
            let (id, v) = bench_value(i, clock);
            crate::sink::change::decode(
                0,
                first_offset + i64::from(i),
                Some(id.as_bytes()),
                Some(&v),
                (None, None),
            )
            .ok()
        })
        .collect()
}

/// Writes `rows` listings in batches of `size` through a destination (inserts, then the same listings
/// with a newer version: updates); returns (insert rows/s, update rows/s).
async fn bench_one<D: runner::Destination>(
    dest: &mut D,
    rows: u32,
    size: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut rates = Vec::new();
    for pass in 0..2i64 {
        let changes = bench_changes(rows, 10 + pass, pass * i64::from(rows));
        let started = Instant::now();
        let mut from = pass * i64::from(rows);
        for chunk in changes.chunks(size) {
            let next = chunk.last().map_or(from, |c| c.offset + 1);
            dest.write(runner::Batch {
                topic: TopicKind::Listings,
                partition: 0,
                from,
                first: chunk.first().map_or(from, |c| c.offset),
                next,
                records: Vec::new(),
                changes: chunk.to_vec(),
            })
            .await?;
            from = next;
        }
        rates.push(f64::from(rows) / started.elapsed().as_secs_f64());
    }
    Ok((rates[0], rates[1]))
}
