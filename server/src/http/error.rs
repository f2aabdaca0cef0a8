//! HTTP errors: a status and a JSON body `{"error": "..."}` saying what to do.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flume_core::{DbError, LogError};
use flume_view_index::{KvError, ReadError};

/// An error answered to an HTTP client.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

impl From<LogError> for ApiError {
    fn from(e: LogError) -> Self {
        let status = match &e {
            LogError::NotARecord { .. } => StatusCode::NOT_FOUND,
            LogError::Truncated { .. } => StatusCode::GONE,
            LogError::InvalidOptions(_) => StatusCode::BAD_REQUEST,
            LogError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            LogError::Closed | LogError::Poisoned { .. } | LogError::ReadOnly => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, e.to_string())
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Log(e) => e.into(),
            DbError::Closed | DbError::ViewFailed { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            DbError::Codec { seq: None, .. } => Self::bad_request(e.to_string()),
            DbError::UnknownView(_) => Self::not_found(e.to_string()),
            e => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Db(e) => e.into(),
            e => Self::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
}

impl From<KvError> for ApiError {
    fn from(e: KvError) -> Self {
        match e {
            KvError::Db(e) => e.into(),
            e => Self::bad_request(e.to_string()),
        }
    }
}
