//! `GET /views`, `GET /views/{name}` (status, and the value of reduce views), `GET /health`
//! and `GET /metrics`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use flume_core::{ViewState, ViewStatus};
use serde_json::{Value, json};

use super::{ApiError, AppState};

fn status_json(s: &ViewStatus) -> Value {
    json!({
        "name": s.name,
        "version": s.version,
        "since": s.since.map(|s| s.0),
        "lag": s.lag,
        "state": s.state.to_string(),
    })
}

pub(crate) async fn list(State(state): State<AppState>) -> Json<Value> {
    Json(Value::Array(
        state
            .store
            .views()
            .iter()
            .map(|(_, v)| status_json(&v.status()))
            .collect(),
    ))
}

pub(crate) async fn one(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .store
        .view(&name)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    // The value first: its read waits for the view, so the status after it describes a view
    // that includes at least what the value does.
    let value = view.value().await?;
    let mut body = status_json(&view.status());
    if let Some(value) = value {
        body["value"] = value;
    }
    Ok(Json(body))
}

pub(crate) async fn health(State(state): State<AppState>) -> Response {
    let db = state.store.db();
    let failed: Vec<String> = state
        .store
        .views()
        .iter()
        .filter(|(_, v)| matches!(v.status().state, ViewState::Failed(_)))
        .map(|(name, _)| name.clone())
        .collect();
    let status = if db.is_closed() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({
        "status": if db.is_closed() { "closed" } else if failed.is_empty() { "ok" } else { "degraded" },
        "since": db.since().map(|s| s.0),
        "failed_views": failed,
    });
    (status, Json(body)).into_response()
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state.store),
    )
        .into_response()
}
