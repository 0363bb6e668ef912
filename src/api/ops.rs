//! Operator endpoints: `/healthz` (the process answers), `/readyz` (the production database answers),
//! `/api/v1/status` (each sink's epoch, lag and last commit) and `/metrics` (Prometheus).
//!
//! The sinks' positions are read from the destinations themselves (`sink::status`, the same as
//! `roomstream status`) at most every [`STATUS_MAX_AGE`], so scrapes and status calls do not load
//! the stores; MySQL and PostgreSQL are read as their read-only users when those are configured.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::Mutex;

use super::AppState;
use super::metrics::escape;
use crate::sink::status::SinkStatus;

/// How stale `/status` and the sink gauges may be.
pub const STATUS_MAX_AGE: Duration = Duration::from_secs(5);

/// The last status read, and when. At most one request reads afresh at a time; while it does, the
/// others are answered from the last read, so a slow store or broker never holds up scrapes.
#[derive(Debug, Default)]
pub struct StatusCache {
    last: std::sync::Mutex<Option<(Instant, Arc<Vec<SinkStatus>>)>>,
    reading: Mutex<()>,
}

/// Each sink's epoch.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusBody {
    /// One entry per sink and topic.
    pub sinks: Vec<SinkView>,
    /// When this was read (RFC 3339, UTC).
    pub read_at: String,
}

/// One sink's durable position on one topic.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SinkView {
    /// `mysql` (what this API serves), `s3`, `redshift`.
    pub sink: String,
    /// Topic suffix, e.g. `listings.v1`.
    pub topic: String,
    /// The epoch: next offset made durable, per partition (JSON object keys are strings: `"0"`…).
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub positions: std::collections::BTreeMap<i32, i64>,
    /// Records between the epoch and the topic's end; null when the broker did not answer in time.
    pub lag: Option<i64>,
    /// Latest commit (RFC 3339, UTC).
    pub committed_at: Option<String>,
    /// Why the destination could not be read, if it could not.
    pub error: Option<String>,
}

impl StatusCache {
    /// The last read if it is younger than [`STATUS_MAX_AGE`]; otherwise this request reads afresh
    /// (within ¾ of `api.request_timeout`), unless another already is: then it gets the last
    /// read, or waits for the first.
    async fn get(&self, state: &AppState) -> Arc<Vec<SinkStatus>> {
        let last = self.last();
        if let Some((at, s)) = &last
            && at.elapsed() < STATUS_MAX_AGE
        {
            return s.clone();
        }
        let _reading = match (self.reading.try_lock(), last) {
            (Ok(guard), _) => guard,
            (Err(_), Some((_, s))) => return s,
            (Err(_), None) => self.reading.lock().await,
        };
        // The read this request waited for may have just finished.
        if let Some((at, s)) = self.last()
            && at.elapsed() < STATUS_MAX_AGE
        {
            return s;
        }
        // Three quarters of the request timeout: the answer still fits inside it.
        let within = state.0.request_timeout * 3 / 4;
        let s = Arc::new(crate::sink::status::collect(state.status_config(), within).await);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), s.clone()));
        s
    }

    fn last(&self) -> Option<(Instant, Arc<Vec<SinkStatus>>)> {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "Up")), tag = "ops")]
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// The production database answers (and holds the serving schema).
#[utoipa::path(
    get,
    path = "/readyz",
    responses(
        (status = 200, description = "Ready"),
        (status = 503, description = "The database is unreachable or not migrated yet", body = super::error::ErrorBody),
    ),
    tag = "ops"
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state
        .pool()
        .fetch_optional::<(i64,)>(&crate::db::Sql::new("SELECT COUNT(*) FROM sink_progress"))
        .await
    {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "Not ready.");
            super::error::body(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the listing database is unreachable or not migrated yet".into(),
                None,
            )
        }
    }
}

/// Each sink's epoch, lag and last commit.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    responses((status = 200, description = "Per sink and topic", body = StatusBody)),
    tag = "ops"
)]
pub async fn status(State(state): State<AppState>) -> Json<StatusBody> {
    let all = state.status_cache().get(&state).await;
    Json(StatusBody {
        sinks: all
            .iter()
            .map(|s| SinkView {
                sink: s.sink.clone(),
                topic: s.topic.clone(),
                positions: s.positions.clone(),
                lag: s.lag,
                committed_at: s.committed_at.clone(),
                error: s.error.clone(),
            })
            .collect(),
        read_at: OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default(),
    })
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Text exposition format", content_type = "text/plain")), tag = "ops")]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut extra = String::new();
    let pool = state.pool();
    let (size, idle) = pool.connections();
    let idle = idle as u32;
    extra
        .push_str("# HELP roomstream_api_db_connections Connections to the production database.\n");
    extra.push_str("# TYPE roomstream_api_db_connections gauge\n");
    let _ = writeln!(
        extra,
        "roomstream_api_db_connections{{state=\"idle\"}} {idle}"
    );
    let _ = writeln!(
        extra,
        "roomstream_api_db_connections{{state=\"used\"}} {}",
        size.saturating_sub(idle)
    );
    let all = state.status_cache().get(&state).await;
    extra.push_str(
        "# HELP roomstream_sink_lag_records Records between a sink's epoch and the topic's end.\n",
    );
    extra.push_str("# TYPE roomstream_sink_lag_records gauge\n");
    for s in all.iter().filter(|s| s.error.is_none()) {
        let Some(lag) = s.lag else { continue };
        let _ = writeln!(
            extra,
            "roomstream_sink_lag_records{{sink=\"{}\",topic=\"{}\"}} {lag}",
            escape(&s.sink),
            escape(&s.topic),
        );
    }
    extra.push_str(
        "# HELP roomstream_sink_last_commit_age_seconds Seconds since a sink's last commit.\n",
    );
    extra.push_str("# TYPE roomstream_sink_last_commit_age_seconds gauge\n");
    let now = OffsetDateTime::now_utc();
    for s in all.iter() {
        let Some(at) = s
            .committed_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        else {
            continue;
        };
        let _ = writeln!(
            extra,
            "roomstream_sink_last_commit_age_seconds{{sink=\"{}\",topic=\"{}\"}} {:.3}",
            escape(&s.sink),
            escape(&s.topic),
            (now - at).as_seconds_f64().max(0.0)
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics().render(&extra),
    )
        .into_response()
}
