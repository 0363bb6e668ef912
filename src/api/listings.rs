//! `GET /api/v1/listings` (search: filters, sorts, keyset pages) and `GET /api/v1/listings/{id}` (one
//! canonical listing with every source listing, its price history, score explanation, broker and
//! merge explanation).

use crate::db::Sql;
use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde::Serialize;

use super::AppState;
use super::card::{CARD_COLUMNS, Card, CardRow, cards};
use super::error::ApiError;
use super::filter::{FILTER_PARAMS, Filters};
use super::page::{PageRequest, Sort, float_key};
use super::params::Params;

/// Paging parameters.
pub const PAGE_PARAMS: [&str; 4] = ["sort", "order", "limit", "cursor"];

/// A page of results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListingPage {
    /// The listings of this page, in order.
    pub items: Vec<Card>,
    /// Pass as `cursor` (with the same other parameters) for the next page; null on the last.
    pub next_cursor: Option<String>,
    /// Words of `place`/`dong` that matched no 구 or 동 (they match no listing).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
}

/// Documentation of the filter parameters of `/listings` and `/recommendations` (parsed by
/// [`Filters`]; a test holds the two lists equal).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct FilterParamsDoc {
    /// 구 by name (마포구) or 5-digit code (11440); repeatable, any of.
    gu: Option<Vec<String>>,
    /// 법정동 by name (신사동: every 구's) or 10-digit code; repeatable, any of.
    dong: Option<Vec<String>>,
    /// Free text such as the seed's `address`: `서울 잠실, 마포구` — comma-separated alternatives,
    /// each word a 구 or 동 (part of a name is enough).
    place: Option<String>,
    /// 보증금 at least, 만원.
    deposit_min: Option<u32>,
    /// 보증금 at most, 만원.
    deposit_max: Option<u32>,
    /// 월세 at least, 만원 (with 관리비 when `include_fee`).
    rent_min: Option<f64>,
    /// 월세 at most, 만원 (with 관리비 when `include_fee`).
    rent_max: Option<f64>,
    /// Rent bounds apply to 월세 + 관리비 (관리비 포함).
    include_fee: Option<bool>,
    /// 전용면적 at least, m².
    area_min: Option<f64>,
    /// 전용면적 at most, m².
    area_max: Option<f64>,
    /// one_room (원룸), separated_one_room (분리형), duplex (복층), two_room (투룸); repeatable.
    room_type: Option<Vec<String>>,
    /// one_room_house, villa, officetel, apartment (or in Korean); repeatable.
    building: Option<Vec<String>>,
    /// monthly (월세) or jeonse (전세).
    lease: Option<String>,
    /// Leave out 반지하.
    exclude_semi_basement: Option<bool>,
    /// Leave out 옥탑.
    exclude_rooftop: Option<bool>,
    /// Required within 1 km: subway, convenience_store, cafe, mart, restaurant, hospital (or 지하철,
    /// 편의점, 카페, 대형마트, 음식점, 병원); repeatable, all of.
    facility: Option<Vec<String>>,
    /// Only listings whose broker is in the VWORLD registry (안심 중개사).
    verified_only: Option<bool>,
    /// Listed on zigbang or dabang; repeatable, any of.
    platform: Option<Vec<String>>,
    /// `lat,lng`: only listings within `radius_m` of this point.
    near: Option<String>,
    /// Radius around `near`, metres (50–20000, default 1000).
    radius_m: Option<f64>,
}

/// Documentation of the paging parameters of `/listings` (parsed by [`PageRequest`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParamsDoc {
    /// score (best first), cost (cheapest first), newest, area (largest first).
    sort: Option<String>,
    /// asc or desc (default: the sort's natural order).
    order: Option<String>,
    /// Results per page, 1–100 (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Search.
#[utoipa::path(
    get,
    path = "/api/v1/listings",
    params(FilterParamsDoc, PageParamsDoc),
    responses(
        (status = 200, description = "A page of listings", body = ListingPage),
        (status = 400, description = "A bad parameter, named", body = super::error::ErrorBody),
        (status = 503, description = "The database is unavailable or the request timed out", body = super::error::ErrorBody),
    ),
    tag = "listings"
)]
pub async fn search(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let known: Vec<&str> = FILTER_PARAMS.iter().chain(&PAGE_PARAMS).copied().collect();
    let p = Params::parse(raw.as_deref(), &known)?;
    let page = PageRequest::parse(&p, Sort::Score, &Sort::LISTING_SORTS)?;
    let dir = state.directory().await?;
    let filters = Filters::parse(&p, &dir)?;
    let key = format!("listings?{}", raw.unwrap_or_default());
    let s = state.clone();
    state.cached(key, search_page(s, filters, page)).await
}

async fn search_page(
    state: AppState,
    filters: Filters,
    page: PageRequest,
) -> Result<ListingPage, ApiError> {
    let mut q = Sql::new(format!("SELECT {CARD_COLUMNS} FROM listings WHERE TRUE"));
    filters.push_where(&mut q, state.pool().backend());
    page.push_after(&mut q);
    page.push_order(&mut q);
    let mut rows: Vec<CardRow> = state.pool().fetch_all(&q).await?;
    let next_cursor = next_cursor(&page, &mut rows, |r| match page.sort {
        Sort::Score => float_key(Some(r.score_total)),
        Sort::Cost => float_key(r.monthly_cost),
        Sort::Newest => Some(r.first_seen.into()),
        Sort::Area | Sort::Rank => float_key(r.area_m2),
    });
    Ok(ListingPage {
        items: cards(state.pool(), rows).await?,
        next_cursor,
        unmatched: filters.unmatched,
    })
}

/// Cuts the extra row fetched past the page and returns the cursor after the page's last row.
pub fn next_cursor<R: HasId>(
    page: &PageRequest,
    rows: &mut Vec<R>,
    key: impl Fn(&R) -> Option<serde_json::Number>,
) -> Option<String> {
    if rows.len() <= page.limit as usize {
        return None;
    }
    rows.truncate(page.limit as usize);
    rows.last().map(|r| page.cursor_after(key(r), r.id()))
}

/// A row with a listing id.
pub trait HasId {
    /// The listing id.
    fn id(&self) -> &str;
}

impl HasId for CardRow {
    fn id(&self) -> &str {
        &self.listing_id
    }
}

/// One canonical listing with everything behind it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListingDetail {
    /// What the result card shows.
    #[serde(flatten)]
    pub card: Card,
    /// Every platform listing merged into this one, with its link and terms.
    pub members: Vec<Member>,
    /// Price history of the leading listing, oldest first.
    pub price_history: Vec<PriceStep>,
    /// The broker as the listing names them, and how the registry check went.
    pub broker_check: BrokerCheck,
    /// The figures behind the score: monthly cost, fair cost, 만원/m², facilities, age, unknowns.
    #[schema(value_type = Object)]
    pub score_explanation: serde_json::Value,
    /// Why the members are one flat: threshold and each link with its evidence.
    #[schema(value_type = Object)]
    pub merge_explanation: serde_json::Value,
    /// Medians of the listing's 구 and 법정동, for comparison.
    pub comparables: Vec<super::regions::RegionStats>,
}

/// One platform listing of a canonical listing.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Member {
    /// `zigbang` or `dabang`.
    pub platform: String,
    /// The platform's id.
    pub source_listing_id: String,
    /// Which crawler saw it.
    pub source: String,
    /// The page.
    pub url: String,
    /// 보증금, 만원.
    pub deposit: i32,
    /// 월세, 만원.
    pub rent: i32,
    /// 관리비, 만원.
    pub fee: Option<f64>,
    /// Title on that platform.
    pub title: String,
    /// First seen (RFC 3339).
    pub first_seen_at: String,
}

/// A price from a point in time on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PriceStep {
    /// Since (RFC 3339).
    pub from: String,
    /// 보증금, 만원.
    pub deposit: i32,
    /// 월세, 만원.
    pub rent: i32,
    /// 관리비, 만원.
    pub fee: Option<f64>,
}

/// The broker and the registry check.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct BrokerCheck {
    /// 중개사무소 등록번호 as the listing gives it.
    pub registration: Option<String>,
    /// The person named.
    pub person: Option<String>,
    /// The office.
    pub office: Option<String>,
    /// Why the broker is (not) verified.
    pub reason: String,
}

/// One listing.
#[utoipa::path(
    get,
    path = "/api/v1/listings/{id}",
    params(("id" = String, Path, description = "Canonical listing id, e.g. L0123456789abcdef")),
    responses(
        (status = 200, description = "The listing", body = ListingDetail),
        (status = 400, description = "Not an id", body = super::error::ErrorBody),
        (status = 404, description = "No such listing (or no longer listed)", body = super::error::ErrorBody),
    ),
    tag = "listings"
)]
pub async fn detail(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ListingDetail>, ApiError> {
    let Path(id) = id.map_err(|e| ApiError::invalid("id", e.body_text()))?;
    check_id(&id)?;
    // One round trip: the row, and its members, prices and region statistics as JSON arrays
    // (sorted here: MySQL 8's JSON_ARRAYAGG has no ORDER BY).
    let json = |fields: &[(&str, &str, bool)]| state.pool().backend().json_array_of_objects(fields);
    let mut q = Sql::new(format_args!(
        "SELECT {CARD_COLUMNS}, broker_registration AS registration, broker_person AS person, \
         broker_office AS office, broker_reason AS reason, merge_explanation, \
         (SELECT {members} FROM listing_members m WHERE m.listing_id = listings.listing_id) AS members_json, \
         (SELECT {prices} FROM listing_prices p WHERE p.listing_id = listings.listing_id) AS prices_json, \
         (SELECT {stats} FROM region_stats r \
            WHERE r.region_code = listings.region_code AND r.dong_code IN ('', COALESCE(listings.bjd_code, ''))) \
           AS stats_json \
         FROM listings WHERE listing_id = ",
        members = json(&[
            ("platform", "platform", false),
            ("source_listing_id", "source_listing_id", false),
            ("source", "source", false),
            ("url", "url", false),
            ("deposit", "deposit", false),
            ("rent", "rent", false),
            ("fee", "fee", true),
            ("title", "title", false),
            ("first_seen_at", "first_seen_at", false),
        ]),
        prices = json(&[
            ("seq", "seq", false),
            ("from", "from_at", false),
            ("deposit", "deposit", false),
            ("rent", "rent", false),
            ("fee", "fee", true),
        ]),
        stats = json(super::regions::STATS_JSON_FIELDS),
    ));
    q.push_bind(&id);
    let Some(DetailRow {
        row,
        broker_check,
        merge_explanation: merge,
        members_json: members,
        prices_json: prices,
        stats_json: stats,
    }) = state.pool().fetch_optional(&q).await?
    else {
        return Err(ApiError::NotFound(format!(
            "no listing `{id}` (never seen, or no longer listed)"
        )));
    };
    let mut members: Vec<Member> = json_rows(members.as_deref())?;
    members.sort_by(|a, b| {
        (&a.platform, &a.source_listing_id).cmp(&(&b.platform, &b.source_listing_id))
    });
    let mut prices: Vec<PriceRow> = json_rows(prices.as_deref())?;
    prices.sort_by_key(|p| p.seq);
    let price_history = prices
        .into_iter()
        .map(|p| PriceStep {
            from: p.from,
            deposit: p.deposit,
            rent: p.rent,
            fee: p.fee,
        })
        .collect();
    let mut comparables: Vec<super::regions::RegionStats> = json_rows(stats.as_deref())?;
    comparables.sort_by(|a, b| a.dong_code.cmp(&b.dong_code));
    let explanation: serde_json::Value =
        serde_json::from_str(&row.score_explanation).unwrap_or_default();
    let links = members
        .iter()
        .map(|m| super::card::Link {
            platform: m.platform.clone(),
            url: m.url.clone(),
        })
        .collect();
    Ok(Json(ListingDetail {
        card: Card::new(row, links),
        members,
        price_history,
        broker_check,
        score_explanation: explanation
            .get("explanation")
            .cloned()
            .unwrap_or(serde_json::Value::Null),
        merge_explanation: serde_json::from_str(&merge).unwrap_or_default(),
        comparables,
    }))
}

/// The detail query's row.
#[derive(sqlx::FromRow)]
struct DetailRow {
    #[sqlx(flatten)]
    row: CardRow,
    #[sqlx(flatten)]
    broker_check: BrokerCheck,
    merge_explanation: String,
    members_json: Option<String>,
    prices_json: Option<String>,
    stats_json: Option<String>,
}

/// One price step as the detail query returns it.
#[derive(serde::Deserialize)]
struct PriceRow {
    seq: i64,
    from: String,
    deposit: i32,
    rent: i32,
    fee: Option<f64>,
}

/// The rows of a JSON array the database built (absent: none).
fn json_rows<T: serde::de::DeserializeOwned>(json: Option<&str>) -> Result<Vec<T>, ApiError> {
    match json {
        None => Ok(Vec::new()),
        Some(j) => serde_json::from_str(j).map_err(|e| ApiError::Internal(e.into())),
    }
}

/// A listing id is `L` and hex digits (at most 40 characters of letters, digits, `-`, `_`).
fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 40
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ApiError::invalid(
            "id",
            format!(
                "`{}` is not a listing id (e.g. L0123456789abcdef)",
                super::params::truncate(id)
            ),
        ));
    }
    Ok(())
}
