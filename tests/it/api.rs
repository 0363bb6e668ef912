//! The API on real MariaDB, fed by the real pipeline (synthetic crawl → processor → MySQL sink): every
//! filter, sort and the recommendations return exactly what the same rule computed over the table
//! gives, in the same order, across pages without duplicates or gaps; bad parameters get JSON 400s
//! naming them, unknown ids 404s; the API's user cannot write.

use roomstream::api;
use roomstream::db::Sql;
use roomstream::rank::Weights;
use serde_json::Value;
use std::collections::BTreeSet;

use crate::support::{TestEnv, spawn_env};

/// A test's own MariaDB database and read-only user, a namespace, and the API serving them.
pub struct Served {
    pub env: TestEnv,
    pub db: String,
    pub reader: String,
    pub base: String,
    api: Option<api::Running>,
}

impl Served {
    pub fn root_url(&self) -> String {
        format!("mysql://root@127.0.0.1:3306/{}", self.db)
    }

    pub async fn root(&self) -> sqlx::MySqlPool {
        sqlx::MySqlPool::connect(&self.root_url())
            .await
            .expect("mysql")
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let r = reqwest::get(format!("{}{path_and_query}", self.base))
            .await
            .expect("the API answers");
        let status = r.status().as_u16();
        let body = r.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Every page of a listing query (`limit` per page): the ids in order, asserting no id twice.
    pub async fn all_pages(&self, path: &str, query: &str, limit: u32) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..10_000 {
            let mut q = format!("{query}&limit={limit}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let (status, body) = self.get(&format!("{path}?{q}")).await;
            assert_eq!(status, 200, "{path}?{q}: {body}");
            let items = body["items"].as_array().expect("items");
            assert!(items.len() <= limit as usize);
            ids.extend(
                items
                    .iter()
                    .map(|i| i["id"].as_str().expect("id").to_string()),
            );
            match body["next_cursor"].as_str() {
                Some(c) => {
                    assert_eq!(items.len(), limit as usize, "only the last page is short");
                    cursor = Some(c.to_string());
                }
                None => break,
            }
        }
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{path}?{query}: an id came twice");
        ids
    }

    pub async fn shutdown(mut self) {
        if let Some(a) = self.api.take() {
            a.stop().await.expect("the API stops cleanly");
        }
        if let Ok(p) = sqlx::MySqlPool::connect("mysql://root@127.0.0.1:3306/mysql").await {
            for sql in [
                format!("DROP DATABASE IF EXISTS {}", self.db),
                format!("DROP USER IF EXISTS '{}'@'%'", self.reader),
                format!("DROP USER IF EXISTS '{}'@'localhost'", self.reader),
            ] {
                let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&p).await;
            }
        }
    }
}

/// A namespace and database with a read-only user; `feed` = Some((flats, days)) runs the pipeline
/// into it first, None only creates the schema. Then serves the API on a free port.
pub async fn serve(feed: Option<(&str, &str)>, extra: &[(&str, &str, &str)]) -> Served {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let db = format!("rs_{id}");
    let reader = format!("r_{}", id.chars().rev().take(12).collect::<String>());
    let url = format!("mysql://root@127.0.0.1:3306/{db}");
    let mut all: Vec<(&str, &str, &str)> = vec![
        ("mysql", "url", &url),
        ("mysql", "reader_user", &reader),
        ("mysql", "reader_password", "reader-pw"),
        ("sink", "stats_interval", "200ms"),
    ];
    all.extend_from_slice(extra);
    let env = spawn_env(&all).await;
    match feed {
        Some((flats, days)) => {
            for args in [
                &[
                    "crawl",
                    "synthetic",
                    "--listings",
                    flats,
                    "--days",
                    days,
                    "--seed",
                    "7",
                ][..],
                &["process", "--exit-when-idle"],
                &["sink", "mysql", "--exit-when-idle"],
            ] {
                assert!(env.roomstream(args).status.success(), "roomstream {args:?}");
            }
        }
        None => {
            roomstream::sink::mysql::connect(&env.cfg.mysql, 1)
                .await
                .expect("schema and reader user");
        }
    }
    let running = api::spawn_loopback(&env.cfg).await.expect("the API serves");
    Served {
        env,
        db,
        reader,
        base: running.base.clone(),
        api: Some(running),
    }
}

/// One row of `listings`, as the oracle sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    listing_id: String,
    region_code: String,
    gu: Option<String>,
    dong: Option<String>,
    lease: String,
    deposit: i32,
    rent: i32,
    rent_with_fee: f64,
    monthly_cost: Option<f64>,
    area_m2: Option<f64>,
    floor_kind: String,
    layout: String,
    building: String,
    subway_m: Option<i32>,
    convenience_store_m: Option<i32>,
    broker_verified: bool,
    platform_mask: i8,
    lat: Option<f64>,
    lng: Option<f64>,
    first_seen: i64,
    score_total: f64,
    score_cost: Option<f64>,
    score_value: Option<f64>,
    score_facilities: Option<f64>,
    score_floor: Option<f64>,
    score_direction: Option<f64>,
    score_broker: Option<f64>,
    score_freshness: Option<f64>,
}

/// The rows in a sort's order: key (NULL smallest), then id, both in the sort's direction.
fn ordered(rows: &[&Row], key: impl Fn(&Row) -> Option<f64>, descending: bool) -> Vec<String> {
    let mut v: Vec<(Option<f64>, &str)> = rows
        .iter()
        .map(|r| (key(r), r.listing_id.as_str()))
        .collect();
    v.sort_by(|a, b| {
        let k = match (a.0, b.0) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        };
        let o = k.then_with(|| a.1.cmp(b.1));
        if descending { o.reverse() } else { o }
    });
    v.into_iter().map(|(_, id)| id.to_string()).collect()
}

fn distance_m(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let (dp, dl) = ((lat2 - lat1).to_radians(), (lng2 - lng1).to_radians());
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6_370_986.0 * a.sqrt().asin()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_filter_sort_and_page_matches_the_table() {
    // Arrange: 1,200 flats over 3 simulated days through the real pipeline into MariaDB.
    let s = serve(Some(("1200", "3")), &[]).await;
    let root = s.root().await;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT listing_id, region_code, gu, dong, lease, deposit, rent, rent_with_fee, \
         monthly_cost, area_m2, floor_kind, layout, building, subway_m, convenience_store_m, broker_verified, \
         platform_mask, lat, lng, first_seen, score_total, score_cost, score_value, score_facilities, \
         score_floor, score_direction, score_broker, score_freshness FROM listings",
    )
    .fetch_all(&root)
    .await
    .expect("rows");
    assert!(
        rows.len() > 800,
        "the pipeline filled the table: {}",
        rows.len()
    );
    let all: Vec<&Row> = rows.iter().collect();
    // The most common 구 and 동, a second 구, a layout and a point to search around, from the data.
    let common = |f: &dyn Fn(&Row) -> Option<String>| {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for r in &rows {
            if let Some(v) = f(r) {
                *counts.entry(v).or_default() += 1;
            }
        }
        let mut v: Vec<(usize, String)> = counts.into_iter().map(|(k, n)| (n, k)).collect();
        v.sort();
        v.into_iter().rev().map(|(_, k)| k).collect::<Vec<_>>()
    };
    let gus = common(&|r| r.gu.clone());
    let (gu1, gu2) = (gus[0].clone(), gus[1].clone());
    let gu1_code = rows
        .iter()
        .find(|r| r.gu.as_deref() == Some(&gu1))
        .map(|r| r.region_code.clone())
        .expect("a code");
    let gu2_code = rows
        .iter()
        .find(|r| r.gu.as_deref() == Some(&gu2))
        .map(|r| r.region_code.clone())
        .expect("a code");
    let dong1 = common(&|r| {
        if r.region_code == gu1_code {
            r.dong.clone()
        } else {
            None
        }
    })[0]
        .clone();
    let layout = common(&|r| Some(r.layout.clone()))
        .into_iter()
        .find(|l| l != "one_room" && l != "unknown")
        .expect("a second layout");
    let centre = rows
        .iter()
        .find_map(|r| r.lat.zip(r.lng))
        .expect("a located listing");

    let score = |r: &Row| Some(r.score_total);
    type Pred = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(String, Pred, &str)> = vec![
        ("".into(), Box::new(|_| true), "score"),
        (
            format!("gu={gu1}"),
            Box::new({
                let g = gu1_code.clone();
                move |r: &Row| r.region_code == g
            }),
            "score",
        ),
        (
            format!("gu={gu1_code}&gu={gu2}&sort=cost"),
            Box::new({
                let (a, b) = (gu1_code.clone(), gu2_code.clone());
                move |r: &Row| r.region_code == a || r.region_code == b
            }),
            "cost",
        ),
        (
            format!("dong={dong1}"),
            Box::new({
                let d = dong1.clone();
                move |r: &Row| r.dong.as_deref() == Some(&d)
            }),
            "score",
        ),
        (
            format!(
                "place=서울 {}, {dong1}",
                if gu2.chars().count() > 2 {
                    gu2.trim_end_matches('구')
                } else {
                    &gu2
                }
            ),
            Box::new({
                let (g, d) = (gu2_code.clone(), dong1.clone());
                move |r: &Row| r.region_code == g || r.dong.as_deref() == Some(&d)
            }),
            "score",
        ),
        (
            format!("place={gu1} {dong1}"),
            Box::new({
                let (g, d) = (gu1_code.clone(), dong1.clone());
                move |r: &Row| r.region_code == g && r.dong.as_deref() == Some(&d)
            }),
            "score",
        ),
        (
            "deposit_min=500&deposit_max=2000".into(),
            Box::new(|r: &Row| (500..=2000).contains(&r.deposit)),
            "score",
        ),
        (
            "rent_min=30&rent_max=60&sort=newest".into(),
            Box::new(|r: &Row| (30..=60).contains(&r.rent)),
            "newest",
        ),
        (
            "rent_max=60&include_fee=true&sort=cost".into(),
            Box::new(|r: &Row| r.rent_with_fee <= 60.0),
            "cost",
        ),
        (
            "area_min=20&area_max=33&sort=area".into(),
            Box::new(|r: &Row| r.area_m2.is_some_and(|a| (20.0..=33.0).contains(&a))),
            "area",
        ),
        (
            format!("room_type={layout}"),
            Box::new({
                let l = layout.clone();
                move |r: &Row| r.layout == l
            }),
            "score",
        ),
        (
            "building=오피스텔".into(),
            Box::new(|r: &Row| r.building == "officetel"),
            "score",
        ),
        (
            "lease=jeonse".into(),
            Box::new(|r: &Row| r.lease == "jeonse"),
            "score",
        ),
        (
            "exclude_semi_basement=true".into(),
            Box::new(|r: &Row| r.floor_kind != "semi_basement"),
            "score",
        ),
        (
            "exclude_rooftop=true".into(),
            Box::new(|r: &Row| r.floor_kind != "rooftop"),
            "score",
        ),
        (
            "facility=subway&facility=편의점".into(),
            Box::new(|r: &Row| {
                r.subway_m.is_some_and(|m| m <= 1000)
                    && r.convenience_store_m.is_some_and(|m| m <= 1000)
            }),
            "score",
        ),
        (
            "verified_only=true".into(),
            Box::new(|r: &Row| r.broker_verified),
            "score",
        ),
        (
            "platform=dabang".into(),
            Box::new(|r: &Row| r.platform_mask & 2 != 0),
            "score",
        ),
        (
            "platform=zigbang&platform=dabang&sort=area&order=asc".into(),
            Box::new(|_| true),
            "area_asc",
        ),
        (
            "sort=cost&order=desc".into(),
            Box::new(|_| true),
            "cost_desc",
        ),
        // The seed's getFilter, every parameter at once.
        (
            format!(
                "place={gu1}&deposit_max=3000&rent_max=70&include_fee=true&facility=지하철&exclude_semi_basement=true&exclude_rooftop=true&sort=cost"
            ),
            Box::new({
                let g = gu1_code.clone();
                move |r: &Row| {
                    r.region_code == g
                        && r.deposit <= 3000
                        && r.rent_with_fee <= 70.0
                        && r.subway_m.is_some_and(|m| m <= 1000)
                        && r.floor_kind != "semi_basement"
                        && r.floor_kind != "rooftop"
                }
            }),
            "cost",
        ),
    ];
    for (query, pred, sort) in &cases {
        // Act
        let got = s.all_pages("/api/v1/listings", query, 37).await;
        // Assert
        let matching: Vec<&Row> = all.iter().copied().filter(|r| pred(r)).collect();
        if !query.is_empty()
            && !query.starts_with("platform=zigbang")
            && !query.starts_with("sort=")
        {
            assert!(
                !matching.is_empty() && matching.len() < all.len(),
                "{query}: the filter must select some but not all of {} rows (it selects {})",
                all.len(),
                matching.len()
            );
        }
        let expected = match *sort {
            "score" => ordered(&matching, score, true),
            "cost" => ordered(&matching, |r| r.monthly_cost, false),
            "cost_desc" => ordered(&matching, |r| r.monthly_cost, true),
            "newest" => ordered(&matching, |r| Some(r.first_seen as f64), true),
            "area" => ordered(&matching, |r| r.area_m2, true),
            "area_asc" => ordered(&matching, |r| r.area_m2, false),
            other => panic!("no sort {other}"),
        };
        assert_eq!(got.len(), expected.len(), "{query}: count");
        assert_eq!(got, expected, "{query}: order");
        eprintln!("{query:?}: {} listings, in order", got.len());
    }

    // Near a point: the database's sphere and ours may disagree within a metre at the edge.
    let near = format!("near={},{}&radius_m=1500", centre.0, centre.1);
    let got: BTreeSet<String> = s
        .all_pages("/api/v1/listings", &near, 50)
        .await
        .into_iter()
        .collect();
    let within = |r: f64| -> BTreeSet<String> {
        rows.iter()
            .filter(|x| {
                x.lat
                    .zip(x.lng)
                    .is_some_and(|(a, b)| distance_m(centre.0, centre.1, a, b) <= r)
            })
            .map(|x| x.listing_id.clone())
            .collect()
    };
    assert!(
        within(1499.0).is_subset(&got) && got.is_subset(&within(1501.0)),
        "{near}"
    );
    assert!(!got.is_empty() && got.len() < rows.len());

    // Recommendations: the person's weights, ranked by the same function in Rust.
    let mut w = Weights::default();
    w.set("cost", 5.0);
    w.set("facilities", 0.0);
    w.set("floor", 4.0);
    let q = "w_cost=5&w_facilities=0&w_floor=4&exclude_rooftop=true";
    let got = s.all_pages("/api/v1/recommendations", q, 40).await;
    let matching: Vec<&Row> = all
        .iter()
        .copied()
        .filter(|r| r.floor_kind != "rooftop")
        .collect();
    let rank = |r: &Row| {
        Some(w.rank_score([
            r.score_cost,
            r.score_value,
            r.score_facilities,
            r.score_floor,
            r.score_direction,
            r.score_broker,
            r.score_freshness,
        ]))
    };
    assert_eq!(
        got,
        ordered(&matching, rank, true),
        "recommendations: order"
    );
    let (_, first) = s.get(&format!("/api/v1/recommendations?{q}&limit=1")).await;
    let top = rows
        .iter()
        .find(|r| r.listing_id == got[0])
        .expect("top row");
    assert_eq!(
        first["items"][0]["rank"].as_f64(),
        rank(top),
        "rank as computed in Rust"
    );

    // Detail of a listing on both platforms: members with links, price history, explanations.
    let both = rows
        .iter()
        .find(|r| r.platform_mask == 3)
        .expect("a cross-listed flat");
    let (status, d) = s
        .get(&format!("/api/v1/listings/{}", both.listing_id))
        .await;
    assert_eq!(status, 200, "{d}");
    let members: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM listing_members WHERE listing_id = ?")
            .bind(&both.listing_id)
            .fetch_one(&root)
            .await
            .expect("count");
    let prices: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM listing_prices WHERE listing_id = ?")
            .bind(&both.listing_id)
            .fetch_one(&root)
            .await
            .expect("count");
    assert_eq!(
        d["members"].as_array().map(Vec::len),
        Some(members as usize)
    );
    assert_eq!(
        d["price_history"].as_array().map(Vec::len),
        Some(prices as usize)
    );
    let platforms: BTreeSet<&str> = d["links"]
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["platform"].as_str().expect("p"))
        .collect();
    assert_eq!(platforms, BTreeSet::from(["dabang", "zigbang"]));
    assert!(
        d["links"]
            .as_array()
            .expect("links")
            .iter()
            .all(|l| l["url"].as_str().is_some_and(|u| u.starts_with("https://")))
    );
    assert!(
        !d["merge_explanation"]["links"]
            .as_array()
            .expect("merge links")
            .is_empty()
    );
    assert!(d["score_explanation"]["monthly_cost"].is_number());
    assert_eq!(
        d["score"]["components"].as_object().map(|c| c.len()),
        Some(7)
    );
    assert_eq!(d["score"]["total"].as_f64(), Some(both.score_total));
    assert!(d["broker_check"]["reason"].is_string());
    assert_eq!(d["comparables"][0]["dong_code"], "", "the 구 first");

    // Regions and their statistics count every listing once.
    let (status, regions) = s.get("/api/v1/regions").await;
    assert_eq!(status, 200);
    let total: i64 = regions
        .as_array()
        .expect("regions")
        .iter()
        .map(|r| r["listings"].as_i64().expect("n"))
        .sum();
    assert_eq!(total as usize, rows.len());
    let (status, st) = s.get(&format!("/api/v1/regions/{gu1_code}/stats")).await;
    assert_eq!(status, 200);
    assert_eq!(st[0]["gu"], Value::String(gu1.clone()));
    assert_eq!(
        st[0]["listings"].as_i64(),
        Some(rows.iter().filter(|r| r.region_code == gu1_code).count() as i64)
    );

    // The epoch being served: the MySQL sink, caught up.
    let (status, st) = s.get("/api/v1/status").await;
    assert_eq!(status, 200);
    let mysql = st["sinks"]
        .as_array()
        .expect("sinks")
        .iter()
        .find(|x| x["sink"] == "mysql")
        .expect("mysql")
        .clone();
    assert_eq!(mysql["lag"], 0, "{st}");
    assert!(
        mysql["committed_at"].is_string()
            && !mysql["positions"]
                .as_object()
                .expect("positions")
                .is_empty()
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_and_the_api_cannot_write() {
    // Arrange: the schema only (no listings), served as the read-only user.
    let s = serve(None, &[]).await;
    // Act + Assert: each bad parameter is a 400 naming it.
    let long = "가".repeat(300);
    let cases: Vec<(String, &str)> = vec![
        ("/api/v1/listings?deposit_max=abc".into(), "deposit_max"),
        (
            "/api/v1/listings?deposit_max=99999999999999999999".into(),
            "deposit_max",
        ),
        ("/api/v1/listings?rent_max=-5".into(), "rent_max"),
        ("/api/v1/listings?rent_max=".into(), "rent_max"),
        ("/api/v1/listings?area_min=1e400".into(), "area_min"),
        (
            "/api/v1/listings?gu=%27%3B%20DROP%20TABLE%20listings%3B--".into(),
            "gu",
        ),
        ("/api/v1/listings?sort=price".into(), "sort"),
        ("/api/v1/listings?limit=1000".into(), "limit"),
        ("/api/v1/listings?limit=0".into(), "limit"),
        ("/api/v1/listings?cursor=not-a-cursor".into(), "cursor"),
        ("/api/v1/listings?color=blue".into(), "color"),
        ("/api/v1/listings?facility=sauna".into(), "facility"),
        (
            "/api/v1/listings?verified_only=maybe".into(),
            "verified_only",
        ),
        ("/api/v1/listings?near=north".into(), "near"),
        (format!("/api/v1/listings?place={long}"), "place"),
        ("/api/v1/listings?place=%FF%FE".into(), "place"),
        ("/api/v1/listings/not%20an%20id".into(), "id"),
        ("/api/v1/recommendations?w_cost=-1".into(), "w_cost"),
        ("/api/v1/recommendations?sort=score".into(), "sort"),
        ("/api/v1/regions/11a/stats".into(), "code"),
    ];
    for (path, field) in &cases {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{path}");
        assert_eq!(body["error"]["field"], *field, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // A cursor made for one sort is refused by another.
    let (status, _) = s.get("/api/v1/listings?sort=cost&limit=1").await;
    assert_eq!(status, 200);
    for (path, code) in [
        ("/api/v1/listings/L0000000000000000", "not_found"),
        ("/api/v1/regions/99999/stats", "not_found"),
        ("/api/v2/anything", "not_found"),
    ] {
        let (status, body) = s.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], code, "{path}");
    }
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/listings", s.base))
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status(), 405);
    assert_eq!(
        r.json::<Value>().await.expect("json")["error"]["code"],
        "method_not_allowed"
    );
    let (status, body) = s.get("/api/v1/listings/%FF").await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("id")),
        "bad UTF-8 in a path"
    );
    // An empty result is a 200 with no items, and a place nobody knows is said so.
    let (status, body) = s.get("/api/v1/listings?place=아틀란티스").await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(0));
    assert_eq!(body["unmatched"][0], "아틀란티스");

    // Operator endpoints, the OpenAPI description, request ids and compression.
    let client = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("client");
    assert_eq!(
        client
            .get(format!("{}/healthz", s.base))
            .send()
            .await
            .expect("up")
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{}/readyz", s.base))
            .send()
            .await
            .expect("up")
            .status(),
        200
    );
    let r = client
        .get(format!("{}/openapi.json", s.base))
        .header("accept-encoding", "gzip")
        .header("x-request-id", "test-123")
        .send()
        .await
        .expect("openapi");
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(
        r.headers()["x-request-id"],
        "test-123",
        "a client's request id is kept"
    );
    let r = client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .expect("openapi");
    assert!(
        r.headers()
            .get("x-request-id")
            .is_some_and(|v| v.len() >= 32),
        "one is made otherwise"
    );
    let doc: Value = r.json().await.expect("json");
    for path in [
        "/api/v1/listings",
        "/api/v1/listings/{id}",
        "/api/v1/recommendations",
        "/api/v1/regions",
        "/api/v1/regions/{code}/stats",
        "/api/v1/status",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "openapi lacks {path}"
        );
    }
    let documented = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| p["name"].as_str().expect("name").to_string())
            .collect()
    };
    let parsed: BTreeSet<String> = api::filter::FILTER_PARAMS
        .iter()
        .chain(&api::listings::PAGE_PARAMS)
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        documented("/api/v1/listings"),
        parsed,
        "the description lists exactly the parameters parsed"
    );
    let parsed: BTreeSet<String> = api::filter::FILTER_PARAMS
        .iter()
        .chain(&api::recommend::WEIGHT_PARAMS)
        .chain(&["limit", "cursor"])
        .map(|p| p.to_string())
        .collect();
    assert_eq!(documented("/api/v1/recommendations"), parsed);
    let metrics = client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .contains("roomstream_api_requests_total{route=\"/api/v1/listings\",status=\"400\"}"),
        "{metrics}"
    );
    assert!(metrics.contains(
        "roomstream_api_request_duration_seconds_bucket{route=\"/api/v1/listings/{id}\""
    ));
    assert!(metrics.contains("roomstream_api_db_connections{state=\"idle\"}"));

    // The API's own connections are read-only: as its user, and as its session.
    let state = api::AppState::new(&s.env.cfg).expect("state");
    let write = state
        .pool()
        .execute(&Sql::new("DELETE FROM sink_progress"))
        .await;
    assert!(write.is_err(), "the API's user must not write");
    let (reader,): (String,) = state
        .pool()
        .fetch_optional(&Sql::new("SELECT CURRENT_USER()"))
        .await
        .expect("user")
        .expect("a row");
    assert!(reader.starts_with(&s.reader), "connected as {reader}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_endpoints_can_live_on_a_private_address_and_cors_is_opt_in() {
    // Arrange: the API with a separate operator listener and one allowed origin.
    let s = serve(
        None,
        &[("api", "cors_origins", "[\"https://roomstream.example\"]")],
    )
    .await;
    let mut cfg = s.env.cfg.clone();
    cfg.api.ops_listen = "127.0.0.1:0".into();
    let state = api::AppState::new(&cfg).expect("state");
    let public = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let private = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("port");
    let (pub_url, ops_url) = (
        format!("http://{}", public.local_addr().expect("a")),
        format!("http://{}", private.local_addr().expect("a")),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = cfg.clone();
    tokio::spawn(async move {
        let _ = api::serve(&served, state, public, Some(private), async {
            let _ = rx.await;
        })
        .await;
    });
    let client = reqwest::Client::new();
    // Act + Assert
    let get = |url: String| {
        let c = client.clone();
        async move {
            c.get(url)
                .header("origin", "https://roomstream.example")
                .send()
                .await
                .expect("answers")
        }
    };
    assert_eq!(
        get(format!("{pub_url}/metrics")).await.status(),
        404,
        "no metrics on the public address"
    );
    assert_eq!(get(format!("{pub_url}/api/v1/status")).await.status(), 404);
    assert_eq!(get(format!("{ops_url}/metrics")).await.status(), 200);
    let r = get(format!("{pub_url}/api/v1/listings")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://roomstream.example"
    );
    let r = client
        .get(format!("{pub_url}/api/v1/listings"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("answers");
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let _ = tx.send(());
    s.shutdown().await;
}

/// The demo's production database: the same changelog sunk into SQLite gives the same rows, and the
/// API over it the same answers as over MariaDB — every filter and sort (pages included), the
/// distance filter, recommendations, detail, regions — byte for byte after the epoch header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_serves_what_mariadb_serves() {
    let maria = serve(Some(("1200", "3")), &[]).await;
    let dir = std::env::temp_dir().join(format!("roomstream-sqlite-{}", maria.db));
    let sqlite_url = format!("sqlite://{}/serving.db", dir.display());
    let mut vars: Vec<(&str, &str)> = maria.env.env_vars();
    vars.retain(|(k, _)| *k != "ROOMSTREAM_MYSQL_URL");
    vars.push(("ROOMSTREAM_MYSQL_URL", &sqlite_url));
    let out = crate::support::roomstream_with(&vars, &["sink", "mysql", "--exit-when-idle"]);
    assert!(out.status.success(), "the MySQL sink writes SQLite");

    // The same rows: the sinks' checksum over (id, version, value hash).
    let sqlite = roomstream::db::Pool::connect(&sqlite_url, true, 1)
        .await
        .expect("sqlite");
    let maria_pool = roomstream::db::Pool::Mysql(maria.root().await);
    let mut a = roomstream::sink::mysql::contents(&maria_pool)
        .await
        .expect("rows");
    let mut b = roomstream::sink::mysql::contents(&sqlite)
        .await
        .expect("rows");
    a.sort();
    b.sort();
    assert!(a.len() > 1000, "{} rows", a.len());
    assert_eq!(a, b, "the same listings, versions and values in both");

    let mut cfg = maria.env.cfg.clone();
    cfg.mysql.url = sqlite_url.clone();
    cfg.mysql.reader_user.clear();
    let lite = api::spawn_loopback(&cfg)
        .await
        .expect("the API serves SQLite");
    // The API opens the SQLite file read-only: it cannot write.
    let state = api::AppState::new(&cfg).expect("state");
    let write = state
        .pool()
        .execute(&Sql::new("DELETE FROM sink_progress"))
        .await;
    assert!(
        write.is_err(),
        "the API must not write to SQLite: {write:?}"
    );
    let first: Value = reqwest::get(format!("{}/api/v1/listings?limit=1", maria.base))
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let id = first["items"][0]["id"].as_str().expect("an id").to_string();
    let (lat, lng) = (
        first["items"][0]["lat"].as_f64().unwrap_or(37.55),
        first["items"][0]["lng"].as_f64().unwrap_or(126.98),
    );
    let mut paths: Vec<String> = [
        "sort=score",
        "sort=score&order=asc",
        "sort=cost",
        "sort=cost&order=desc&include_fee=true&rent_max=70",
        "sort=newest",
        "sort=area&area_min=20",
        "gu=강남구&gu=마포구&deposit_max=1000",
        "place=서울 관악, 마포구&exclude_semi_basement=1&exclude_rooftop=1",
        "facility=subway&facility=cafe&verified_only=true",
        "platform=dabang&room_type=원룸&lease=월세",
        "building=officetel&sort=cost",
    ]
    .iter()
    .map(|q| format!("/api/v1/listings?{q}&limit=40"))
    .collect();
    paths.push(format!(
        "/api/v1/listings?near={lat},{lng}&radius_m=1500&sort=cost&limit=40"
    ));
    paths.push("/api/v1/recommendations?w_cost=5&w_floor=2&limit=40".into());
    paths.push(format!("/api/v1/listings/{id}"));
    paths.push("/api/v1/regions".into());
    paths.push("/api/v1/regions/11680/stats".into());
    let mut compared = 0;
    for path in &paths {
        // Every page, following each side's own cursor.
        let (mut pm, mut ps) = (path.clone(), path.clone());
        for _ in 0..100 {
            let (m, s) = (maria.get(&pm).await, get_value(&lite.base, &ps).await);
            assert_eq!(m.0, 200, "{pm}: {}", m.1);
            assert_eq!(m, s, "MariaDB and SQLite differ on {pm}");
            compared += 1;
            match m.1["next_cursor"].as_str() {
                Some(c) => {
                    pm = format!("{path}&cursor={c}");
                    ps = format!(
                        "{path}&cursor={}",
                        s.1["next_cursor"].as_str().expect("cursor")
                    );
                }
                None => break,
            }
        }
    }
    eprintln!("{compared} responses identical over MariaDB and SQLite");
    assert!(
        compared > paths.len(),
        "some queries ran over several pages"
    );
    lite.stop().await.expect("stops");
    maria.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn get_value(base: &str, path: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}{path}"))
        .await
        .expect("the API answers");
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// The API under schemathesis (from PyPI; `scripts/test.sh` installs it), generating requests from its
/// own `/openapi.json` — valid and invalid values, long strings, odd Unicode, huge numbers: no response
/// may be a server error, every one must match the documented status codes and content type, and
/// invalid input must be refused (4xx), not served. Skips, saying so, where schemathesis is missing.
#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let st = ["schemathesis", "st"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let Some(st) = st else {
        println!("SKIP: schemathesis is not installed (pip install schemathesis)");
        return;
    };
    let s = serve(Some(("400", "3")), &[]).await;
    let spec = format!("{}/openapi.json", s.base);
    let base = s.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
            .current_dir(std::env::temp_dir()) // its cache (.schemathesis/) stays out of the tree
            .args(["run", &spec, "--url", &base])
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection"])
            .args(["--max-examples", "60", "--seed", "7", "--workers", "2"])
            .output()
            .expect("schemathesis runs")
    })
    .await
    .expect("join");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    s.shutdown().await;
    assert!(out.status.success(), "schemathesis found failures (above)");
}

/// The API's connection limits: a request over `api.max_in_flight` is shed at once (503 `overloaded`,
/// `Retry-After`), and a client that does not finish its headers within `api.header_timeout` is
/// disconnected. The database is a black hole (a socket that accepts and never answers), so a search
/// stays in flight until `api.request_timeout`.
#[tokio::test(flavor = "multi_thread")]
async fn requests_over_the_in_flight_limit_are_shed_and_slow_headers_are_cut_off() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hole_url = format!("mysql://root@{}/nothing", hole.local_addr().expect("addr"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });
    let env = spawn_env(&[
        ("mysql", "url", hole_url.as_str()),
        ("mysql", "reader_user", ""),
        ("api", "max_in_flight", "1"),
        ("api", "header_timeout", "1s"),
        ("api", "request_timeout", "3s"),
    ])
    .await;
    let running = api::spawn_loopback(&env.cfg).await.expect("the API serves");
    let base = running.base.clone();
    let slow = tokio::spawn({
        let url = format!("{base}/api/v1/listings");
        async move { reqwest::get(url).await.expect("get").status().as_u16() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let shed = reqwest::get(format!("{base}/api/v1/listings?limit=1"))
        .await
        .expect("get");
    assert_eq!(shed.status().as_u16(), 503);
    assert_eq!(
        shed.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let body: Value = shed.json().await.expect("a JSON error");
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shed at once, not queued: {:?}",
        started.elapsed()
    );
    assert_eq!(
        slow.await.expect("slow request"),
        503,
        "the first ran into its timeout"
    );

    // A store that never answers is reported, not waited for: /api/v1/status answers within about
    // ¾ of the 3 s request timeout (2.25 s), inside it, naming the silent store.
    let started = std::time::Instant::now();
    let status = reqwest::get(format!("{base}/api/v1/status"))
        .await
        .expect("get");
    let took = started.elapsed();
    assert_eq!(status.status().as_u16(), 200, "after {took:?}");
    let body: Value = status.json().await.expect("JSON");
    let mysql = body["sinks"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["sink"] == "mysql"))
        .unwrap_or_else(|| panic!("a mysql entry: {body}"));
    assert!(
        mysql["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer within 2s 250ms")),
        "{mysql}"
    );
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    eprintln!("limits: /api/v1/status with a silent MySQL answered in {took:?}");

    // Headers begun and never finished: the connection is closed after about a second.
    let addr = base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    sock.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 512];
    let read = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
        .await
        .expect("closed within 10 s");
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"),
        "closed or 408: {read:?} {}",
        String::from_utf8_lossy(&buf)
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "cut off after {waited:?}"
    );
    eprintln!("limits: slow headers cut off after {waited:?}");
    // A well-behaved client is still served.
    let ok = reqwest::get(format!("{base}/healthz")).await.expect("get");
    assert_eq!(ok.status().as_u16(), 200);
    running.stop().await.expect("stops");
}
