//! The HTTP API (axum). Routes:
//!
//! | route | what |
//! |---|---|
//! | `POST /log` | append one JSON document → `{"seq"}` |
//! | `POST /log/batch` | append a JSON array atomically → `{"seqs"}` |
//! | `GET /log/{seq}` | one record → `{"seq", "value"}` |
//! | `GET /log?gt=&lt=&live&...` | stream: ndjson, or Server-Sent Events when live |
//! | `POST /query` | a map-filter-reduce query: ndjson, or SSE when live; `explain` |
//! | `GET /views`, `GET /views/{name}` | view status (and reduce values) |
//! | `GET|PUT|DELETE /kv/{collection}/{member}` | key-value entries |
//! | `GET|DELETE /kv/{collection}` | a whole collection |
//! | `GET /health`, `GET /metrics` | liveness; Prometheus text |
//!
//! New endpoints are a file here and a line in [`router`].

mod error;
mod kv;
mod log;
mod query;
mod stream;
mod views;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use flume_core::{DbError, ViewHandle};
use flume_store::{Record, Store};
use flume_view_index::KeyValue;
use serde_json::{Value, json};
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;

pub(crate) use error::ApiError;

use crate::Limits;
use crate::broadcast::Hub;
use crate::keylocks::KeyLocks;
use crate::metrics::{Metrics, inc};

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<Store>,
    pub(crate) hub: Arc<Hub>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) locks: Arc<KeyLocks>,
    pub(crate) limits: Limits,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub(crate) fn kv(&self) -> Result<&ViewHandle<KeyValue<Record>>, ApiError> {
        self.store
            .kv()
            .map_err(|e| ApiError::not_found(e.to_string()))
    }

    /// Append one record, count it (as `bytes` of request), and answer `{"seq": S}`.
    pub(crate) async fn append(&self, record: Record, bytes: u64) -> Result<Json<Value>, ApiError> {
        let seq = self
            .store
            .db()
            .append(record)
            .await
            .map_err(|e| self.append_failed(e.error))?;
        self.metrics.appended(1, bytes);
        Ok(Json(json!({ "seq": seq.0 })))
    }

    pub(crate) fn append_failed(&self, e: DbError) -> ApiError {
        inc(&self.metrics.append_errors);
        e.into()
    }
}

/// The HTTP routes over `state`.
pub(crate) fn router(state: AppState) -> Router {
    let max_body = state.limits.max_request_bytes;
    Router::new()
        .route("/health", get(views::health))
        .route("/metrics", get(views::metrics))
        .route("/log", get(stream::stream).post(log::append))
        .route("/log/batch", post(log::append_batch))
        .route("/log/{seq}", get(log::get))
        .route("/query", post(query::query))
        .route("/views", get(views::list))
        .route("/views/{name}", get(views::one))
        .route("/kv/{collection}", get(kv::list).delete(kv::delete_all))
        .route(
            "/kv/{collection}/{*member}",
            get(kv::get).put(kv::put).delete(kv::delete),
        )
        .fallback(|| async {
            ApiError::not_found("no such endpoint: see the routes in the flume-server docs")
        })
        .layer(axum::middleware::map_response_with_state(
            Arc::clone(&state.metrics),
            count,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .with_state(state)
}

async fn count(State(metrics): State<Arc<Metrics>>, response: Response) -> Response {
    inc(&metrics.http_requests);
    let status = response.status();
    if status.is_client_error() {
        inc(&metrics.http_client_errors);
    } else if status.is_server_error() {
        inc(&metrics.http_server_errors);
    }
    response
}
