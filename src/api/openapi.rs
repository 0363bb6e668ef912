//! `GET /openapi.json`: the OpenAPI 3.1 description, generated from the handlers' `#[utoipa::path]`
//! annotations and the response types, so it cannot drift from the code.

use axum::Json;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "roomstream",
        description = "One-room listings in Seoul from Zigbang and Dabang, deduplicated (the same flat on \
            both sites is one listing), scored and checked against the broker registry. Money is in 만원, \
            areas in m². Errors are `{\"error\": {\"code\", \"message\", \"field\"}}`."
    ),
    paths(
        super::listings::search,
        super::listings::detail,
        super::recommend::recommendations,
        super::regions::list,
        super::regions::stats,
        super::ops::status,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
    ),
    tags(
        (name = "listings", description = "Search, detail and recommendations"),
        (name = "regions", description = "구 and 법정동 with their statistics"),
        (name = "ops", description = "Health, readiness, sink epochs, metrics"),
    )
)]
pub struct ApiDoc;

/// The description as JSON.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
