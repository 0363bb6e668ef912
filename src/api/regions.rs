//! `GET /api/v1/regions` (every 구 and 법정동 with listings, and their counts) and
//! `GET /api/v1/regions/{code}/stats` (the group statistics the MySQL sink keeps in `region_stats`).

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;

use super::AppState;
use super::error::ApiError;
use crate::db::Sql;

const STATS_COLUMNS: &str = "region_code, dong_code, gu, dong, listings, median_deposit, median_rent, \
     median_rent_with_fee, median_monthly_cost, median_area_m2, median_cost_m2, verified_share, \
     bait_share, cross_listed, zigbang, dabang";

/// [`RegionStats`] as JSON object fields (key, column, a double?) — the detail view reads them in
/// its one query.
pub const STATS_JSON_FIELDS: &[(&str, &str, bool)] = &[
    ("region_code", "r.region_code", false),
    ("dong_code", "r.dong_code", false),
    ("gu", "r.gu", false),
    ("dong", "r.dong", false),
    ("listings", "r.listings", false),
    ("median_deposit", "r.median_deposit", true),
    ("median_rent", "r.median_rent", true),
    ("median_rent_with_fee", "r.median_rent_with_fee", true),
    ("median_monthly_cost", "r.median_monthly_cost", true),
    ("median_area_m2", "r.median_area_m2", true),
    ("median_cost_m2", "r.median_cost_m2", true),
    ("verified_share", "r.verified_share", true),
    ("bait_share", "r.bait_share", true),
    ("cross_listed", "r.cross_listed", false),
    ("zigbang", "r.zigbang", false),
    ("dabang", "r.dabang", false),
];

/// Statistics of one 구 (`dong_code` empty) or 법정동 over its live listings.
#[derive(Debug, Clone, Serialize, serde::Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RegionStats {
    /// 5-digit 시군구 code.
    pub region_code: String,
    /// 10-digit 법정동 code; empty for the whole 구.
    pub dong_code: String,
    /// 구 name.
    pub gu: Option<String>,
    /// 동 name (null for the whole 구).
    pub dong: Option<String>,
    /// Live listings.
    pub listings: i32,
    /// Median 보증금, 만원.
    pub median_deposit: Option<f64>,
    /// Median 월세, 만원.
    pub median_rent: Option<f64>,
    /// Median 월세 + 관리비, 만원.
    pub median_rent_with_fee: Option<f64>,
    /// Median monthly cost (with the deposit's opportunity cost), 만원.
    pub median_monthly_cost: Option<f64>,
    /// Median 전용면적, m².
    pub median_area_m2: Option<f64>,
    /// Median monthly cost per m², 만원.
    pub median_cost_m2: Option<f64>,
    /// Share of listings with a verified broker, 0–1.
    pub verified_share: Option<f64>,
    /// Share of listings with a bait warning, 0–1.
    pub bait_share: Option<f64>,
    /// Listings on both platforms.
    pub cross_listed: i32,
    /// Listings on Zigbang.
    pub zigbang: i32,
    /// Listings on Dabang.
    pub dabang: i32,
}

/// A 구 and its 법정동.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Region {
    /// 5-digit 시군구 code.
    pub code: String,
    /// 구 name.
    pub name: Option<String>,
    /// Live listings.
    pub listings: i32,
    /// Median monthly cost, 만원.
    pub median_monthly_cost: Option<f64>,
    /// Its 법정동 with listings.
    pub dongs: Vec<Dong>,
}

/// A 법정동.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Dong {
    /// 10-digit 법정동 code.
    pub code: String,
    /// Name.
    pub name: Option<String>,
    /// Live listings.
    pub listings: i32,
}

/// Every region with listings.
#[utoipa::path(
    get,
    path = "/api/v1/regions",
    responses((status = 200, description = "구 with their 법정동, by code", body = Vec<Region>)),
    tag = "regions"
)]
pub async fn list(State(state): State<AppState>) -> Result<Json<Vec<Region>>, ApiError> {
    let rows: Vec<RegionStats> = state
        .pool()
        .fetch_all(&Sql::new(format!(
            "SELECT {STATS_COLUMNS} FROM region_stats ORDER BY region_code, dong_code"
        )))
        .await?;
    let mut out: Vec<Region> = Vec::new();
    for r in rows {
        if r.dong_code.is_empty() {
            out.push(Region {
                code: r.region_code,
                name: r.gu,
                listings: r.listings,
                median_monthly_cost: r.median_monthly_cost,
                dongs: Vec::new(),
            });
        } else if let Some(gu) = out.last_mut().filter(|g| g.code == r.region_code) {
            gu.dongs.push(Dong {
                code: r.dong_code,
                name: r.dong,
                listings: r.listings,
            });
        }
    }
    Ok(Json(out))
}

/// Statistics of one region: a 구 (5 digits: the 구 and each of its 법정동) or a 법정동 (10 digits).
#[utoipa::path(
    get,
    path = "/api/v1/regions/{code}/stats",
    params(("code" = String, Path, description = "5-digit 시군구 or 10-digit 법정동 code")),
    responses(
        (status = 200, description = "The region first, then its 법정동", body = Vec<RegionStats>),
        (status = 400, description = "Not a region code", body = super::error::ErrorBody),
        (status = 404, description = "No listings there", body = super::error::ErrorBody),
    ),
    tag = "regions"
)]
pub async fn stats(
    State(state): State<AppState>,
    code: Result<Path<String>, PathRejection>,
) -> Result<Json<Vec<RegionStats>>, ApiError> {
    let Path(code) = code.map_err(|e| ApiError::invalid("code", e.body_text()))?;
    if !(code.len() == 5 || code.len() == 10) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            "code",
            format!(
                "`{}` is not a 5-digit 시군구 or 10-digit 법정동 code",
                super::params::truncate(&code)
            ),
        ));
    }
    let mut q = Sql::new(format_args!(
        "SELECT {STATS_COLUMNS} FROM region_stats WHERE "
    ));
    if code.len() == 5 {
        q.push("region_code = ")
            .push_bind(&code)
            .push(" ORDER BY dong_code");
    } else {
        q.push("dong_code = ").push_bind(&code);
    }
    let rows: Vec<RegionStats> = state.pool().fetch_all(&q).await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!(
            "no listings in region `{code}`"
        )));
    }
    Ok(Json(rows))
}
