//! Local HTTP servers standing in for Zigbang, Dabang and a VWORLD download, serving the real fixture
//! payloads with faults on demand: 429s, 500s, malformed bodies and slow responses.
//!
//! - Zigbang: the rows of a real daily crawl file (`zigbang_daily_seoul_20260515.csv`) as
//!   `house/property/v1` list items, placed in the seed geohash tile holding their 동's centroid;
//!   `GET /house/property/v1/items/{kind}?geohash=` lists ids, `POST /house/property/v1/items/list`
//!   returns ≤ 15 items (more is a 400, as on the real API).
//! - Dabang: the real `roomList` sample, optionally with jittered copies (new ids) so that a box
//!   reaches the result cap; `GET /api/v5/room-list/category/one-two/bbox` filters by `randomLocation`
//!   inside `bbox`, pages by `page_size`, and, like the real API, never serves more than `cap` rooms
//!   of one query while reporting `total = min(rooms, cap)`.
//! - Any path: `GET /files/{name}` serves bytes registered with [`Sites::file`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roomstream::crawl::calibration::Calibration;
use serde_json::{Value, json};

/// What to do to requests whose path-and-query contains `pattern`, the next `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub pattern: String,
    pub kind: FaultKind,
    pub times: usize,
}

#[derive(Debug, Clone, Copy)]
pub enum FaultKind {
    /// 429 with `Retry-After: 0`.
    TooMany,
    /// 500.
    ServerError,
    /// 200 with a body that is not the expected JSON.
    Malformed,
    /// The normal answer, after this delay.
    Slow(Duration),
    /// The normal answer, but `total` reports one room more than the server has (Dabang).
    InflateTotal,
}

#[derive(Default)]
struct Inner {
    faults: Vec<Fault>,
    /// Every request's path and query, in arrival order, with the status served.
    log: Vec<(String, u16)>,
    files: BTreeMap<String, Vec<u8>>,
    /// kind → tile → items.
    zigbang: BTreeMap<String, BTreeMap<String, Vec<Value>>>,
    dabang: Vec<Value>,
    dabang_page_size: usize,
    dabang_cap: usize,
}

/// What the fake Zigbang serves: kind → tile → ids, and the 구 of the items in each tile.
#[derive(Debug, Default)]
pub struct ZigbangServed {
    pub ids: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    pub regions_in_tile: BTreeMap<String, std::collections::BTreeSet<String>>,
}

/// A running fake-site server.
#[derive(Clone)]
pub struct Sites {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

impl Sites {
    /// A test environment whose Zigbang crawler talks to these sites, quickly: no politeness wait,
    /// a 2 s request timeout, 4 attempts 10 ms apart.
    pub async fn zigbang_env(&self) -> super::TestEnv {
        super::spawn_env(&[
            ("zigbang", "base_url", &self.base_url()),
            ("zigbang", "min_interval", "0s"),
            ("crawl", "backoff", "10ms"),
            ("crawl", "request_timeout", "2s"),
            ("crawl", "max_attempts", "4"),
        ])
        .await
    }

    /// Starts the server on an ephemeral loopback port.
    pub async fn start() -> Sites {
        let inner = Arc::new(Mutex::new(Inner {
            dabang_page_size: 24,
            dabang_cap: 10_000,
            ..Default::default()
        }));
        let app = Router::new()
            .route("/house/property/v1/items/list", post(zigbang_list))
            .route("/house/property/v1/items/{kind}", get(zigbang_ids))
            .route("/api/v5/room-list/category/one-two/bbox", get(dabang_bbox))
            .route("/files/{name}", get(file))
            .route("/stream/{name}", get(stream))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
        Sites { inner, addr }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn fault(&self, pattern: &str, kind: FaultKind, times: usize) {
        self.lock().faults.push(Fault {
            pattern: pattern.into(),
            kind,
            times,
        });
    }

    pub fn file(&self, name: &str, bytes: Vec<u8>) {
        self.lock().files.insert(name.into(), bytes);
    }

    /// (path and query, status) of every request so far.
    pub fn log(&self) -> Vec<(String, u16)> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("fake site state")
    }

    /// Loads a real daily Zigbang crawl file as list items; returns kind → tile → item ids.
    pub fn load_zigbang(&self, fixtures: &Path) -> ZigbangServed {
        let cal = Calibration::embedded();
        let text = std::fs::read_to_string(fixtures.join("zigbang_daily_seoul_20260515.csv"))
            .expect("daily file");
        let mut reader = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        let headers = reader.headers().expect("headers").clone();
        let mut inner = self.lock();
        let mut served = ZigbangServed::default();
        for row in reader.records() {
            let row = row.expect("row");
            let get = |name: &str| {
                headers
                    .iter()
                    .position(|h| h == name)
                    .and_then(|i| row.get(i))
                    .unwrap_or_default()
                    .to_string()
            };
            let (gu, dong) = (get("구군"), get("읍면동"));
            let Some(gu_code) = roomstream::region::code_for_gu(&gu) else {
                continue;
            };
            let Some(centroid) = cal.dongs_of(gu_code).find(|d| d.dong == dong) else {
                continue;
            };
            // Spread around the 동 centroid by up to ±1.5 spreads (deterministic in the id), so that
            // listings reach into neighbouring tiles as real ones do.
            let id = get("매물ID");
            let h = id
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
            let jitter = |k: u64| ((h >> k) % 7) as f64 / 3.0 - 1.0; // -1 … 1
            let lat = centroid.lat + 1.5 * centroid.lat_sd * jitter(0);
            let lng = centroid.lng + 1.5 * centroid.lng_sd * jitter(8);
            // The seed tile holding it (four of them are precision 6), else its precision-5 cell.
            let tile = roomstream::crawl::zigbang::SEED_TILES
                .iter()
                .find(|t| {
                    roomstream::crawl::zigbang::geohash_bbox(t)
                        .is_some_and(|b| b.contains(lat, lng))
                })
                .map_or_else(|| geohash(lat, lng, 5), |t| t.to_string());
            let kind = match get("매물유형").as_str() {
                "오피스텔" => "officetels",
                "원룸" => "onerooms",
                _ => "villas",
            };
            let number = |s: String| s.parse::<f64>().map(Value::from).unwrap_or(Value::Null);
            let item = json!({
                "item_id": id.parse::<u64>().unwrap_or_default(),
                "section_type": null,
                "sales_type": get("거래유형"),
                "deposit": number(get("보증금(만원)")),
                "rent": number(get("월세(만원)")),
                "size_m2": number(get("면적(m2)")),
                "room_type": get("방유형"),
                "floor": get("층"),
                "title": get("제목"),
                "service_type": get("매물유형"),
                "random_location": {"lat": lat, "lng": lng},
                "addressOrigin": {"local1": "서울시", "local2": gu, "local3": dong, "fullText": get("시도")},
                "reg_date": get("수집시간"),
            });
            inner
                .zigbang
                .entry(kind.into())
                .or_default()
                .entry(tile.clone())
                .or_default()
                .push(item);
            served
                .regions_in_tile
                .entry(tile.clone())
                .or_default()
                .insert(gu_code.to_string());
            served
                .ids
                .entry(kind.into())
                .or_default()
                .entry(tile)
                .or_default()
                .push(id);
        }
        served
    }

    /// Removes a field from a served Zigbang item, as a changed API would.
    pub fn corrupt_zigbang_item(&self, id: &str, field: &str) {
        let mut inner = self.lock();
        for item in inner
            .zigbang
            .values_mut()
            .flat_map(|t| t.values_mut())
            .flatten()
        {
            if item["item_id"]
                .as_u64()
                .is_some_and(|n| n.to_string() == id)
                && let Some(obj) = item.as_object_mut()
            {
                obj.remove(field);
            }
        }
    }

    /// Loads the real Dabang room list, plus `copies` jittered copies of each room (new ids), and sets
    /// paging. Returns every room served.
    pub fn load_dabang(
        &self,
        fixtures: &Path,
        copies: usize,
        page_size: usize,
        cap: usize,
    ) -> Vec<Value> {
        let text = std::fs::read_to_string(fixtures.join("dabang_v5_roomlist_result_sample.json"))
            .expect("dabang file");
        let body: Value = serde_json::from_str(&text).expect("dabang JSON");
        let real = body["result"]["roomList"]
            .as_array()
            .expect("roomList")
            .clone();
        let mut rooms = real.clone();
        for c in 1..=copies {
            for (i, room) in real.iter().enumerate() {
                let mut copy = room.clone();
                let id = room["id"].as_str().unwrap_or_default();
                copy["id"] = Value::from(format!("{}{:02x}", id.get(..22).unwrap_or(id), c));
                let jitter = ((i * 7 + c * 13) % 11) as f64 * 0.0004 - 0.002;
                copy["randomLocation"]["lat"] =
                    Value::from(room["randomLocation"]["lat"].as_f64().unwrap_or(0.0) + jitter);
                copy["randomLocation"]["lng"] =
                    Value::from(room["randomLocation"]["lng"].as_f64().unwrap_or(0.0) - jitter);
                rooms.push(copy);
            }
        }
        let mut inner = self.lock();
        inner.dabang = rooms.clone();
        inner.dabang_page_size = page_size;
        inner.dabang_cap = cap;
        rooms
    }
}

/// Geohash of a point (the standard base-32 interleaving).
pub fn geohash(lat: f64, lng: f64, precision: usize) -> String {
    const ALPHABET: &[u8] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let (mut la, mut lo) = ((-90.0f64, 90.0f64), (-180.0f64, 180.0f64));
    let (mut out, mut bits, mut idx, mut even) = (String::new(), 0, 0usize, true);
    while out.len() < precision {
        let (range, v) = if even { (&mut lo, lng) } else { (&mut la, lat) };
        let mid = (range.0 + range.1) / 2.0;
        idx <<= 1;
        if v >= mid {
            idx |= 1;
            range.0 = mid;
        } else {
            range.1 = mid;
        }
        even = !even;
        bits += 1;
        if bits == 5 {
            out.push(ALPHABET[idx] as char);
            (bits, idx) = (0, 0);
        }
    }
    out
}

type Shared = State<Arc<Mutex<Inner>>>;

/// Applies the first matching fault, if any; `Err` is the response to send instead of the real one.
async fn faults(state: &Arc<Mutex<Inner>>, uri: &Uri) -> Result<Option<FaultKind>, Response> {
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let decoded = percent_decode(&target);
    let fault = {
        let mut inner = state.lock().expect("state");
        let hit = inner
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && decoded.contains(&f.pattern))
            .map(|f| {
                f.times -= 1;
                f.kind
            });
        let status = match hit {
            Some(FaultKind::TooMany) => 429,
            Some(FaultKind::ServerError) => 500,
            _ => 200,
        };
        inner.log.push((decoded, status));
        hit
    };
    match fault {
        None => Ok(None),
        Some(FaultKind::InflateTotal) => Ok(fault),
        Some(FaultKind::TooMany) => Err((
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response()),
        Some(FaultKind::ServerError) => {
            Err((StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response())
        }
        Some(FaultKind::Malformed) => Err((
            StatusCode::OK,
            [("content-type", "application/json")],
            "{\"items\": [tru",
        )
            .into_response()),
        Some(FaultKind::Slow(d)) => {
            tokio::time::sleep(d).await;
            Ok(None)
        }
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(s.replace('+', "%2B").as_bytes())
        .map(|(k, v)| {
            if v.is_empty() {
                k.into_owned()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

async fn zigbang_ids(
    State(state): Shared,
    UrlPath(kind): UrlPath<String>,
    Query(q): Query<BTreeMap<String, String>>,
    uri: Uri,
) -> Response {
    if let Err(r) = faults(&state, &uri).await {
        return r;
    }
    let inner = state.lock().expect("state");
    let tile = q.get("geohash").cloned().unwrap_or_default();
    let items: Vec<Value> = inner
        .zigbang
        .get(&kind)
        .and_then(|t| t.get(&tile))
        .map(|items| items.iter().map(|i| json!({"id": i["item_id"], "lat": i["random_location"]["lat"], "lng": i["random_location"]["lng"]})).collect())
        .unwrap_or_default();
    axum::Json(json!({ "items": items })).into_response()
}

async fn zigbang_list(State(state): Shared, uri: Uri, body: Bytes) -> Response {
    if let Err(r) = faults(&state, &uri).await {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    let ids: Vec<u64> = body["itemIds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > 15 {
        return (
            StatusCode::BAD_REQUEST,
            format!("itemIds must hold 1 to 15 ids, got {}", ids.len()),
        )
            .into_response();
    }
    let inner = state.lock().expect("state");
    let items: Vec<Value> = inner
        .zigbang
        .values()
        .flat_map(|tiles| tiles.values().flatten())
        .filter(|i| i["item_id"].as_u64().is_some_and(|id| ids.contains(&id)))
        .cloned()
        .collect();
    axum::Json(json!({ "items": items })).into_response()
}

async fn dabang_bbox(
    State(state): Shared,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    uri: Uri,
) -> Response {
    if headers.get("d-api-version").is_none() {
        return (StatusCode::BAD_REQUEST, "missing D-Api-Version").into_response();
    }
    let inflate = match faults(&state, &uri).await {
        Err(r) => return r,
        Ok(kind) => matches!(kind, Some(FaultKind::InflateTotal)),
    };
    let Some(bbox) = q
        .get("bbox")
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
    else {
        return (StatusCode::BAD_REQUEST, "bad bbox").into_response();
    };
    let page: usize = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let f = |a: &str, b: &str| bbox[a][b].as_f64().unwrap_or(f64::NAN);
    let (sw_lat, sw_lng, ne_lat, ne_lng) = (
        f("sw", "lat"),
        f("sw", "lng"),
        f("ne", "lat"),
        f("ne", "lng"),
    );
    let inner = state.lock().expect("state");
    let inside: Vec<&Value> = inner
        .dabang
        .iter()
        .filter(|r| {
            let (lat, lng) = (
                r["randomLocation"]["lat"].as_f64().unwrap_or(0.0),
                r["randomLocation"]["lng"].as_f64().unwrap_or(0.0),
            );
            (sw_lat..=ne_lat).contains(&lat) && (sw_lng..=ne_lng).contains(&lng)
        })
        .collect();
    let total = inside.len().min(inner.dabang_cap);
    let size = inner.dabang_page_size;
    let from = ((page - 1) * size).min(total);
    let to = (page * size).min(total);
    let list: Vec<Value> = inside[from..to].iter().map(|r| (*r).clone()).collect();
    axum::Json(json!({
        "code": 200,
        "msg": "성공하였습니다.",
        "result": {"roomList": list, "premiumList": [], "total": total + usize::from(inflate), "limit": size, "hasMore": to < total, "page": page}
    }))
    .into_response()
}

/// A file sent in 64 KiB chunks without a `Content-Length`, as a streaming server would.
async fn stream(State(state): Shared, UrlPath(name): UrlPath<String>) -> Response {
    let Some(bytes) = state.lock().expect("state").files.get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let chunks: Vec<Result<Bytes, std::convert::Infallible>> = bytes
        .chunks(64 << 10)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response()
}

async fn file(State(state): Shared, UrlPath(name): UrlPath<String>, uri: Uri) -> Response {
    if let Err(r) = faults(&state, &uri).await {
        return r;
    }
    match state.lock().expect("state").files.get(&name) {
        Some(bytes) => bytes.clone().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
