//! The API's one error type: every failure a handler can have, and the JSON it becomes.
//!
//! `{"error": {"code": "invalid_parameter", "message": "…", "field": "deposit_max"}}`. A 4xx shows its
//! message; a 5xx is logged with its cause and answers a generic message (the cause may name tables or
//! hosts).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter, path segment or cursor that cannot be used.
    #[error("parameter `{field}`: {message}")]
    InvalidParameter {
        /// The parameter, e.g. `deposit_max`.
        field: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// No such listing or region.
    #[error("{0}")]
    NotFound(String),
    /// The production database did not answer (down, or the statement ran past the timeout).
    #[error("the listing database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// Anything else: a bug, or a row the code did not expect.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A bad parameter.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::InvalidParameter {
            field: field.into(),
            message: message.into(),
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParameter { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParameter { .. } => "invalid_parameter",
            ApiError::NotFound(_) => "not_found",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => ApiError::Unavailable(e),
            // 1969 (MariaDB) / 3024 (MySQL): the statement ran past the request timeout; 1044, 1045,
            // 1049, 1146: the reader user, the database or the table is not there yet (the sink
            // creates them).
            sqlx::Error::Database(ref d)
                if d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .is_some_and(|m| {
                        [1969, 3024, 1044, 1045, 1049, 1146].contains(&m.number())
                    }) =>
            {
                ApiError::Unavailable(e)
            }
            // SQLite: the file is not there yet (CANTOPEN, 14), busy (BUSY, 5) or not migrated yet
            // ("no such table"). sqlx reports extended codes: the primary code is the low byte.
            sqlx::Error::Database(ref d)
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && (d
                        .code()
                        .and_then(|c| c.parse::<i32>().ok())
                        .is_some_and(|c| matches!(c & 0xff, 5 | 14))
                        || d.message().starts_with("no such table")) =>
            {
                ApiError::Unavailable(e)
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The JSON body of every error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `invalid_parameter`, `not_found`, `unavailable`, `timeout`, `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// The parameter at fault, for `invalid_parameter`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error response with `code`, `message` and the `field` at fault.
pub fn body(status: StatusCode, code: &str, message: String, field: Option<String>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message,
                field,
            },
        }),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            let cause = std::error::Error::source(&self)
                .map(|s| format!("{s:#}"))
                .unwrap_or_default();
            tracing::error!(code = self.code(), %cause, "Request failed.");
        }
        let field = match &self {
            ApiError::InvalidParameter { field, .. } => Some(field.clone()),
            _ => None,
        };
        let message = match &self {
            ApiError::InvalidParameter { message, .. } => message.clone(),
            other => other.to_string(),
        };
        body(status, self.code(), message, field)
    }
}
