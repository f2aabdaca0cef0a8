//! The key-value view over HTTP: `GET|PUT|DELETE /kv/{collection}/{member}`,
//! `GET|DELETE /kv/{collection}`.
//!
//! Values are JSON documents, or raw bytes with `Content-Type: application/octet-stream` (as
//! memcached stores them). `PUT` takes `?flags=` and `?ttl=` (seconds) or `?expires=` (unix
//! seconds), and `If-Match: <seq>` to write only if the key's last write is that seq
//! (`412` otherwise). Writes take the same per-key locks as the memcached front.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flume_core::Document;
use flume_store::Record;
use flume_view_index::{KvEntry, KvReads, KvRecord, KvValue, check_collection, split_key};
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::memcached::now_unix;

const OCTETS: &str = "application/octet-stream";

fn key(collection: &str, member: &str) -> Result<String, ApiError> {
    let key = format!("{collection}/{member}");
    split_key(&key)?;
    Ok(key)
}

fn number<T: std::str::FromStr>(
    params: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("`{name}` is a number, not {v:?}")))
        })
        .transpose()
}

fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    headers
        .get(header::IF_MATCH)
        .map(|v| {
            v.to_str()
                .ok()
                .map(|s| s.trim().trim_matches('"'))
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ApiError::bad_request("If-Match is the seq of the key's last write"))
        })
        .transpose()
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path((collection, member)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let key = key(&collection, &member)?;
    let entry = state
        .kv()?
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no key {key:?}")))?;
    let (seq, flags, expires) = (entry.seq.0, entry.flags, entry.expires);
    let mut response = match entry.value {
        KvValue::Bytes(b) => ([(header::CONTENT_TYPE, OCTETS)], b).into_response(),
        KvValue::Document(d) => Json(d.0).into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from(seq));
    h.insert("x-flume-seq", HeaderValue::from(seq));
    h.insert("x-flume-flags", HeaderValue::from(flags));
    h.insert("x-flume-expires", HeaderValue::from(expires));
    Ok(response)
}

pub(crate) async fn put(
    State(state): State<AppState>,
    Path((collection, member)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let key = key(&collection, &member)?;
    if body.len() > state.limits.max_value_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the value is {} bytes; the limit is {}",
                body.len(),
                state.limits.max_value_bytes
            ),
        ));
    }
    let raw = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(OCTETS));
    let value = if raw {
        KvValue::Bytes(body.to_vec())
    } else {
        let doc: Value = serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!(
                "the value is not JSON ({e}); send raw bytes with Content-Type: {OCTETS}"
            ))
        })?;
        KvValue::Document(Document(doc))
    };
    let flags = number::<u32>(&params, "flags")?.unwrap_or(0);
    let expires = match (
        number::<u64>(&params, "ttl")?,
        number::<u64>(&params, "expires")?,
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give `ttl` or `expires`, not both"));
        }
        (Some(ttl), None) => now_unix().saturating_add(ttl),
        (None, Some(at)) => at,
        (None, None) => 0,
    };
    let expected = if_match(&headers)?;
    let _guard = state.locks.lock(&key).await;
    if let Some(expected) = expected {
        let current = state.kv()?.get(&key).await?;
        if current.map(|e| e.seq.0) != Some(expected) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                format!("{key:?} was written since seq {expected} (or is absent)"),
            ));
        }
    }
    let record = Record::Kv(KvRecord::Put {
        key,
        value,
        flags,
        expires,
    });
    state.append(record, body.len() as u64).await
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path((collection, member)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let key = key(&collection, &member)?;
    let _guard = state.locks.lock(&key).await;
    if state.kv()?.get(&key).await?.is_none() {
        return Err(ApiError::not_found(format!("no key {key:?}")));
    }
    state.append(Record::Kv(KvRecord::Delete { key }), 0).await
}

fn entry_json(member: String, e: KvEntry) -> Value {
    let mut v = json!({ "member": member, "seq": e.seq.0, "flags": e.flags, "expires": e.expires });
    match e.value {
        KvValue::Document(d) => v["value"] = d.0,
        KvValue::Bytes(b) => v["bytes"] = Value::from(b),
    }
    v
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(collection): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_collection(&collection)?;
    let members = state.kv()?.get_all(&collection).await?;
    Ok(Json(Value::Array(
        members.into_iter().map(|(m, e)| entry_json(m, e)).collect(),
    )))
}

pub(crate) async fn delete_all(
    State(state): State<AppState>,
    Path(collection): Path<String>,
) -> Result<Json<Value>, ApiError> {
    check_collection(&collection)?;
    let _all = state.locks.lock_all().await;
    state
        .append(Record::Kv(KvRecord::DeleteAll { collection }), 0)
        .await
}
