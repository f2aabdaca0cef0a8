//! `POST /log` (one record), `POST /log/batch` (a JSON array, appended atomically) and
//! `GET /log/{seq}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use flume_core::{Document, Seq};
use flume_store::Record;
use flume_view_index::{AsKvRecord, KvRecord, check_collection, split_key};
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// A JSON body as records. Key-value records (`{"$kv": ...}`) are checked as the key-value
/// helpers check them, so the view never has to skip one.
fn records(body: &[u8], batch: bool) -> Result<Vec<Record>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let docs = match (batch, value) {
        (false, v) => vec![v],
        (true, Value::Array(items)) => items,
        (true, _) => {
            return Err(ApiError::bad_request(
                "a batch is a JSON array of documents",
            ));
        }
    };
    docs.into_iter()
        .map(|v| {
            let record = Record::from_document(Document(v));
            if let Some(kv) = record.as_kv() {
                match kv.as_ref() {
                    KvRecord::Put { key, .. } | KvRecord::Delete { key } => {
                        split_key(key)?;
                    }
                    KvRecord::DeleteAll { collection } => check_collection(collection)?,
                }
            }
            Ok(record)
        })
        .collect()
}

pub(crate) async fn append(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let mut records = records(&body, false)?;
    let record = records
        .pop()
        .ok_or_else(|| ApiError::bad_request("nothing to append"))?;
    state.append(record, body.len() as u64).await
}

pub(crate) async fn append_batch(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let records = records(&body, true)?;
    let n = records.len() as u64;
    let seqs = state
        .store
        .db()
        .append_batch(records)
        .await
        .map_err(|e| state.append_failed(e.error))?;
    state.metrics.appended(n, body.len() as u64);
    Ok(Json(
        json!({ "seqs": seqs.iter().map(|s| s.0).collect::<Vec<_>>() }),
    ))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(seq): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let seq: u64 = seq.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "{seq:?} is not a seq: use a number returned by an append or a stream"
        ))
    })?;
    let record = state.store.db().get(Seq(seq)).await?;
    Ok(Json(
        json!({ "seq": seq, "value": record.to_document().into_owned().0 }),
    ))
}
