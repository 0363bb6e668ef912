//! The API and the web page (`roomstream serve`): reads the production database only (the MySQL
//! sink's serving schema, `migrations/mysql/`), as its read-only user, and never writes.
//!
//! - [`listings`] — `GET /api/v1/listings` (search) and `/api/v1/listings/{id}` (detail), over
//!   [`filter`] (parameters → `WHERE`), [`page`] (sorts, keyset cursors) and [`card`] (the JSON);
//! - [`recommend`] — `GET /api/v1/recommendations`: a person's weights ([`crate::rank`]) as SQL;
//! - [`cache`] — search and recommendation answers kept until the MySQL sink's next commit;
//! - [`regions`] — `GET /api/v1/regions` and `/api/v1/regions/{code}/stats`; [`directory`] resolves
//!   place names to codes;
//! - [`ops`] — `/healthz`, `/readyz`, `/api/v1/status`, `/metrics` ([`metrics`]); [`openapi`] —
//!   `/openapi.json`; [`web`] — the page at `/`;
//! - [`params`] and [`error`] — strict query strings and the JSON errors every handler returns.
//!
//! Every request gets an `x-request-id` (kept if the client sent one) that its log lines carry, is
//! answered within `api.request_timeout` (503 otherwise; the database statement is cut off too) and
//! is gzip-compressed when the client accepts it. At most `api.max_in_flight` requests are handled at
//! once (one more gets a 503 at once), request bodies are capped, and a client that has not sent its
//! headers within `api.header_timeout` is disconnected ([`crate::http`]). Invariant 5: `/api/v1/status` says which epoch of
//! each sink is being served.

pub mod cache;
pub mod card;
pub mod directory;
pub mod error;
pub mod filter;
pub mod listings;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod page;
pub mod params;
pub mod recommend;
pub mod regions;
pub mod web;

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{ConnectOptions, Executor, MySqlPool};

use crate::db::{Backend, Pool};
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::config::{Config, DatabaseConfig};
use directory::{Directory, DirectoryCache};
use error::ApiError;
use metrics::ApiMetrics;
use ops::StatusCache;

/// Request bodies are not used by any endpoint; anything larger than this is refused (413).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Why `serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The production database URL cannot be used.
    #[error("mysql.url: {0}")]
    Url(String),
    /// The address is taken or not ours.
    #[error("cannot listen on {addr} ({key})")]
    Bind {
        /// The address.
        addr: String,
        /// The config key it came from.
        key: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("serving failed")]
    Serve(#[source] std::io::Error),
}

/// What every handler shares: the read-only pool, the configuration and the caches.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    pool: Pool,
    status_cfg: Config,
    metrics: ApiMetrics,
    directory: DirectoryCache,
    status: StatusCache,
    cache: cache::ResponseCache,
    request_timeout: Duration,
    /// Permits of `api.max_in_flight`.
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl AppState {
    /// A state for `cfg`: a lazily connecting pool of at most `api.max_connections` connections as
    /// `mysql.reader_user` (or, without one, as the sink's user, with a warning), or to the SQLite
    /// file of a `sqlite:` URL, read-only. Starts even when the database is down: `/readyz` says so
    /// until it answers.
    pub fn new(cfg: &Config) -> Result<AppState, ServeError> {
        let timeout = cfg.api.request_timeout;
        let mut status_cfg = cfg.clone();
        status_cfg.postgres.url = reader_url(&cfg.postgres).map_err(ServeError::Url)?;
        let pool = match Backend::of(&cfg.mysql.url).map_err(ServeError::Url)? {
            // SQLite (the demo): the file opened read-only — SQLite has no users. A statement is
            // not cut off at the timeout (SQLite has no statement timeout); the response still is.
            Backend::Sqlite => Pool::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(cfg.api.max_connections)
                    .min_connections(0)
                    .acquire_timeout(timeout.min(Duration::from_secs(5)))
                    .connect_lazy_with(
                        crate::db::sqlite_options(&cfg.mysql.url, true)
                            .map_err(|e| ServeError::Url(e.to_string()))?,
                    ),
            ),
            Backend::Mysql => {
                let (pool, url) = mysql_reader(cfg)?;
                status_cfg.mysql.url = url;
                Pool::Mysql(pool)
            }
        };
        Ok(AppState(Arc::new(Inner {
            pool,
            status_cfg,
            metrics: ApiMetrics::default(),
            directory: DirectoryCache::default(),
            status: StatusCache::default(),
            cache: cache::ResponseCache::new(cfg.api.cache_entries),
            request_timeout: timeout,
            in_flight: Arc::new(tokio::sync::Semaphore::new(cfg.api.max_in_flight)),
        })))
    }
}

/// The MySQL pool as `mysql.reader_user` (read-only sessions, statements cut off at the request
/// timeout), lazily connecting, and its URL.
fn mysql_reader(cfg: &Config) -> Result<(MySqlPool, String), ServeError> {
    if cfg.mysql.reader_user.is_empty() {
        tracing::warn!(
            "The API connects as the sink's user: set mysql.reader_user (and ROOMSTREAM_MYSQL_READER_PASSWORD) to serve read-only."
        );
    }
    let url = reader_url(&cfg.mysql).map_err(ServeError::Url)?;
    let options = MySqlConnectOptions::from_str(&url)
        .map_err(|e| ServeError::Url(e.to_string()))?
        .log_statements(tracing::log::LevelFilter::Trace);
    let timeout = cfg.api.request_timeout;
    let pool = MySqlPoolOptions::new()
        .max_connections(cfg.api.max_connections)
        .min_connections(0)
        .acquire_timeout(timeout.min(Duration::from_secs(5)))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                // MariaDB counts seconds, MySQL milliseconds; whichever the server knows.
                let secs = timeout.as_secs_f64();
                let maria = format!("SET SESSION max_statement_time = {secs:.3}");
                if conn.execute(sqlx::AssertSqlSafe(maria)).await.is_err() {
                    let mysql = format!("SET SESSION max_execution_time = {}", timeout.as_millis());
                    conn.execute(sqlx::AssertSqlSafe(mysql)).await?;
                }
                conn.execute("SET SESSION TRANSACTION READ ONLY").await?;
                Ok(())
            })
        })
        .connect_lazy_with(options);
    Ok((pool, url))
}

impl AppState {
    /// The read-only pool.
    pub fn pool(&self) -> &Pool {
        &self.0.pool
    }

    fn metrics(&self) -> &ApiMetrics {
        &self.0.metrics
    }

    fn cache(&self) -> &cache::ResponseCache {
        &self.0.cache
    }

    /// Answers `key` from the cache at the current epoch, or with `compute`'s JSON, kept for the epoch.
    /// Either way the response says the epoch it was read at (`x-roomstream-epoch`).
    async fn cached<T, F>(&self, key: String, compute: F) -> Result<Response, ApiError>
    where
        T: serde::Serialize,
        F: Future<Output = Result<T, ApiError>>,
    {
        let epoch = self.cache().epoch(self.pool()).await;
        let body = match self.cache().get(&key, epoch) {
            Some(body) => body,
            None => {
                let value = compute.await?;
                let body = axum::body::Bytes::from(
                    serde_json::to_vec(&value).map_err(|e| ApiError::Internal(e.into()))?,
                );
                self.cache().put(&key, epoch, body.clone());
                body
            }
        };
        Ok((
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    HeaderName::from_static("x-roomstream-epoch"),
                    HeaderValue::from(epoch),
                ),
            ],
            body,
        )
            .into_response())
    }

    fn status_cache(&self) -> &StatusCache {
        &self.0.status
    }

    /// The configuration `sink::status` reads the destinations with (read-only users where set).
    fn status_config(&self) -> &Config {
        &self.0.status_cfg
    }

    async fn directory(&self) -> Result<Arc<Directory>, ApiError> {
        Ok(self.0.directory.get(&self.0.pool).await?)
    }
}

/// The database URL with the read-only user and password in place of the sink's (unchanged without
/// a `reader_user`).
pub fn reader_url(db: &DatabaseConfig) -> Result<String, String> {
    if db.reader_user.is_empty() {
        return Ok(db.url.clone());
    }
    let mut u = url::Url::parse(&db.url)
        .map_err(|e| format!("{}: {e}", crate::config::mask_url(&db.url)))?;
    u.set_username(&db.reader_user)
        .and_then(|_| {
            u.set_password((!db.reader_password.is_empty()).then_some(db.reader_password.as_str()))
        })
        .map_err(|_| format!("{}: cannot carry a user", crate::config::mask_url(&db.url)))?;
    Ok(u.to_string())
}

/// The public routes: the API, the page and, unless `ops_separate`, the operator endpoints.
pub fn router(state: AppState, cfg: &Config, ops_separate: bool) -> Router {
    let mut r = Router::new()
        .route("/api/v1/listings", get(listings::search))
        .route("/api/v1/listings/{id}", get(listings::detail))
        .route("/api/v1/recommendations", get(recommend::recommendations))
        .route("/api/v1/regions", get(regions::list))
        .route("/api/v1/regions/{code}/stats", get(regions::stats))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/", get(web::index))
        .route("/assets/app.js", get(web::app_js))
        .route("/assets/app.css", get(web::app_css))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz));
    if !ops_separate {
        r = r
            .route("/api/v1/status", get(ops::status))
            .route("/metrics", get(ops::metrics));
    }
    let r = with_layers(
        r.fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed),
        &state,
    );
    let r = match cors(&cfg.api.cors_origins) {
        Some(c) => r.layer(c),
        None => r,
    };
    r.with_state(state)
}

/// The operator routes alone, for `api.ops_listen`.
pub fn ops_router(state: AppState) -> Router {
    let r = Router::new()
        .route("/api/v1/status", get(ops::status))
        .route("/metrics", get(ops::metrics))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .fallback(not_found);
    with_layers(r, &state).with_state(state)
}

fn with_layers(r: Router<AppState>, state: &AppState) -> Router<AppState> {
    let request_id = HeaderName::from_static("x-request-id");
    r.layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(CompressionLayer::new())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(CorsLayer::new().allow_origin(allow).allow_methods([
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
    ]))
}

/// Sheds a request over `api.max_in_flight`, times the others against `api.request_timeout`, and
/// counts every one by route template.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let Ok(_permit) = state.0.in_flight.clone().try_acquire_owned() else {
        let mut response = error::body(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight (api.max_in_flight): try again shortly".into(),
            None,
        );
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        );
        state
            .metrics()
            .observe(&route, response.status().as_u16(), started.elapsed());
        return response;
    };
    let response = match tokio::time::timeout(state.0.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => error::body(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {}",
                humantime::format_duration(state.0.request_timeout)
            ),
            None,
        ),
    };
    state
        .metrics()
        .observe(&route, response.status().as_u16(), started.elapsed());
    response
}

async fn method_not_allowed() -> Response {
    error::body(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "the API only reads: use GET".into(),
        None,
    )
}

async fn not_found() -> Response {
    error::body(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint: see /openapi.json".into(),
        None,
    )
}

/// Serves `router` on `listener` (and the operator routes on `ops`, if given) until `shutdown`
/// completes; in-flight requests finish first.
pub async fn serve(
    cfg: &Config,
    state: AppState,
    listener: TcpListener,
    ops: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let headers = cfg.api.header_timeout;
    let public = crate::http::serve(
        listener,
        router(state.clone(), cfg, ops.is_some()),
        headers,
        stop(rx.clone()),
    );
    match ops {
        None => public.await.map_err(ServeError::Serve),
        Some(ops) => {
            let private = crate::http::serve(ops, ops_router(state), headers, stop(rx));
            let (a, b) = tokio::join!(public, private);
            a.and(b).map_err(ServeError::Serve)
        }
    }
}

/// An API serving in the background of this process, on a free loopback port (`bench api`, tests).
pub struct Running {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Stops serving (requests in flight finish) and returns how serving ended.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| ServeError::Serve(std::io::Error::other(e)))?
    }
}

/// Serves `cfg` on a free loopback port in the background.
pub async fn spawn_loopback(cfg: &Config) -> Result<Running, ServeError> {
    let state = AppState::new(cfg)?;
    let addr = "127.0.0.1:0".to_string();
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr,
            key: "api.listen",
            source,
        })?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(ServeError::Serve)?
    );
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = cfg.clone();
    let task = tokio::spawn(async move {
        serve(&cfg, state, listener, None, async {
            let _ = rx.await;
        })
        .await
    });
    Ok(Running { base, stop, task })
}

/// `roomstream serve`: binds `api.listen` (and `api.ops_listen`), prints the addresses, serves until
/// `shutdown`.
pub async fn run(
    cfg: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = AppState::new(cfg)?;
    let bind = |addr: String, key: &'static str| async move {
        TcpListener::bind(&addr)
            .await
            .map_err(|source| ServeError::Bind { addr, key, source })
    };
    let listener = bind(cfg.api.listen.clone(), "api.listen").await?;
    let ops = if cfg.api.ops_listen.is_empty() {
        None
    } else {
        Some(bind(cfg.api.ops_listen.clone(), "api.ops_listen").await?)
    };
    if let Ok(a) = listener.local_addr() {
        println!("serving http://{a}/ (API under /api/v1, OpenAPI at /openapi.json)");
    }
    if let Some(a) = ops.as_ref().and_then(|o| o.local_addr().ok()) {
        println!("operator endpoints http://{a}/metrics and /api/v1/status");
    }
    serve(cfg, state, listener, ops, shutdown).await
}
