//! `GET /api/v1/recommendations`: a person's preferences (the filters of `/listings`) and their weights
//! of the seven score components → listings ranked by [`Weights::rank_score`], computed in SQL over the
//! stored components and paged by the same keyset as `/listings`.

use crate::db::Sql;
use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::AppState;
use super::card::{CARD_COLUMNS, CardRow, cards};
use super::error::ApiError;
use super::filter::{FILTER_PARAMS, Filters};
use super::listings::{HasId, ListingPage, next_cursor};
use super::page::{PageRequest, Sort, float_key};
use super::params::Params;
use crate::rank::{COMPONENTS, Weights};

/// Weight parameters, in [`COMPONENTS`] order.
pub const WEIGHT_PARAMS: [&str; 7] = [
    "w_cost",
    "w_value",
    "w_facilities",
    "w_floor",
    "w_direction",
    "w_broker",
    "w_freshness",
];

/// The component columns, in [`COMPONENTS`] order.
const COMPONENT_COLUMNS: [&str; 7] = [
    "score_cost",
    "score_value",
    "score_facilities",
    "score_floor",
    "score_direction",
    "score_broker",
    "score_freshness",
];

/// Documentation of the weights (the filters are those of `/listings`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct WeightParamsDoc {
    /// Weight of the monthly cost, 0–100 (default 3).
    w_cost: Option<f64>,
    /// Weight of value for money against comparable flats (default 3).
    w_value: Option<f64>,
    /// Weight of facilities nearby (default 2).
    w_facilities: Option<f64>,
    /// Weight of the floor (default 1).
    w_floor: Option<f64>,
    /// Weight of the direction (default 1).
    w_direction: Option<f64>,
    /// Weight of a verified broker (default 1).
    w_broker: Option<f64>,
    /// Weight of freshness (default 1).
    w_freshness: Option<f64>,
    /// Results per page, 1–100 (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RankedRow {
    #[sqlx(flatten)]
    card: CardRow,
    rank_score: f64,
}

impl HasId for RankedRow {
    fn id(&self) -> &str {
        &self.card.listing_id
    }
}

/// Ranked listings for one person.
#[utoipa::path(
    get,
    path = "/api/v1/recommendations",
    params(super::listings::FilterParamsDoc, WeightParamsDoc),
    responses(
        (status = 200, description = "Listings ranked by the person's weights; each card has `rank`", body = ListingPage),
        (status = 400, description = "A bad parameter, named", body = super::error::ErrorBody),
    ),
    tag = "listings"
)]
pub async fn recommendations(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let known: Vec<&str> = FILTER_PARAMS
        .iter()
        .chain(&WEIGHT_PARAMS)
        .chain(&["limit", "cursor"])
        .copied()
        .collect();
    let p = Params::parse(raw.as_deref(), &known)?;
    let mut weights = Weights::default();
    for (param, name) in WEIGHT_PARAMS.iter().zip(COMPONENTS) {
        if let Some(w) = p.float(param, 0.0, 100.0, "a weight")? {
            weights.set(name, w);
        }
    }
    let page = PageRequest::parse(&p, Sort::Rank, &[])?;
    let filters = Filters::parse(&p, &*state.directory().await?)?;
    let key = format!("recommendations?{}", raw.unwrap_or_default());
    let s = state.clone();
    state.cached(key, ranked(s, filters, page, weights)).await
}

async fn ranked(
    state: AppState,
    filters: Filters,
    page: PageRequest,
    weights: Weights,
) -> Result<ListingPage, ApiError> {
    let mut q = Sql::new(format!("SELECT * FROM (SELECT {CARD_COLUMNS}, "));
    push_rank(&mut q, &weights);
    q.push(" AS rank_score FROM listings WHERE TRUE");
    filters.push_where(&mut q, state.pool().backend());
    q.push(") ranked WHERE TRUE");
    page.push_after(&mut q);
    page.push_order(&mut q);
    let mut rows: Vec<RankedRow> = state.pool().fetch_all(&q).await?;
    let next_cursor = next_cursor(&page, &mut rows, |r| float_key(Some(r.rank_score)));
    let ranks: Vec<f64> = rows.iter().map(|r| r.rank_score).collect();
    let mut items = cards(state.pool(), rows.into_iter().map(|r| r.card).collect()).await?;
    for (card, rank) in items.iter_mut().zip(ranks) {
        card.rank = Some(rank);
    }
    Ok(ListingPage {
        items,
        next_cursor,
        unmatched: filters.unmatched,
    })
}

/// [`Weights::rank_score`] as SQL: the terms in the same order and the same double arithmetic (the
/// weights are bound as doubles), so MySQL and Rust give the same number.
fn push_rank(q: &mut Sql, w: &Weights) {
    let weights = w.as_array();
    q.push("COALESCE((");
    for (i, (col, w)) in COMPONENT_COLUMNS.iter().zip(weights).enumerate() {
        if i > 0 {
            q.push(" + ");
        }
        q.push_bind(w).push(format_args!(" * COALESCE({col}, 0)"));
    }
    q.push(") / NULLIF(");
    for (i, (col, w)) in COMPONENT_COLUMNS.iter().zip(weights).enumerate() {
        if i > 0 {
            q.push(" + ");
        }
        q.push_bind(w).push(format_args!(" * ({col} IS NOT NULL)"));
    }
    // 0.0, not 0: SQLite would return the integer 0 for a listing with no component.
    q.push(", 0), 0.0)");
}
