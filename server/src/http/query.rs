//! `POST /query`: run a map-filter-reduce query over the database's query view.
//!
//! The body is `{"query": [stages...], "limit": N, "reverse": bool, "live": bool, "old": bool,
//! "explain": bool, "view": "name"}` (only `query` is required), or the query itself. Results
//! are ndjson lines `{"seq": S, "value": V}`; a live query answers with Server-Sent Events whose
//! `id` is the seq. `explain` returns the plan instead.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use flume_view_query::{Query, QueryOpts, QueryReads};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{ApiError, AppState};

pub(crate) async fn query(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Response, ApiError> {
    let (spec, opts, explain, view) = parse(&body)?;
    let query = Query::parse(spec).map_err(|e| ApiError::bad_request(e.to_string()))?;
    query
        .check(&opts)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let view = state
        .store
        .query(view)
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    if explain {
        return Ok(Json(view.explain(&query, &opts)).into_response());
    }
    let sse = opts.live
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"));
    let frames = view.query(&query, opts).map(move |item| {
        let frame = match item {
            Ok(item) => {
                let line = json!({"seq": item.seq.map(|s| s.0), "value": item.value});
                match (sse, item.seq) {
                    (true, Some(seq)) => format!("id: {}\ndata: {line}\n\n", seq.0),
                    (true, None) => format!("data: {line}\n\n"),
                    (false, _) => format!("{line}\n"),
                }
            }
            Err(e) => {
                let line = json!({"error": e.to_string()});
                if sse {
                    format!("event: error\ndata: {line}\n\n")
                } else {
                    format!("{line}\n")
                }
            }
        };
        Ok::<_, Infallible>(Bytes::from(frame))
    });
    let mut response = Body::from_stream(frames).into_response();
    let content_type = if sse {
        "text/event-stream"
    } else {
        "application/x-ndjson"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

type Parsed<'a> = (&'a Value, QueryOpts, bool, Option<&'a str>);

fn parse(body: &Value) -> Result<Parsed<'_>, ApiError> {
    let Some(obj) = body.as_object().filter(|o| o.contains_key("query")) else {
        // The body is the query itself.
        return Ok((body, QueryOpts::new(), false, None));
    };
    for key in obj.keys() {
        if ![
            "query", "limit", "reverse", "live", "old", "explain", "view", "scan",
        ]
        .contains(&key.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "unknown field {key:?}: the body takes query, limit, reverse, live, old, explain, view, scan"
            )));
        }
    }
    let flag = |k: &str| -> Result<Option<bool>, ApiError> {
        match obj.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ApiError::bad_request(format!(
                "`{k}` is true or false, not {other}"
            ))),
        }
    };
    let mut opts = QueryOpts::new().old(flag("old")?.unwrap_or(true));
    opts.reverse = flag("reverse")?.unwrap_or(false);
    opts.live = flag("live")?.unwrap_or(false);
    opts.force_scan = flag("scan")?.unwrap_or(false);
    opts.limit = match obj.get("limit") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ApiError::bad_request(format!("`limit` is a count, not {v}")))?,
        ),
    };
    if !opts.old && !opts.live {
        return Err(ApiError::bad_request("`old: false` needs `live: true`"));
    }
    let view = match obj.get("view") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`view` is a name, not {other}"
            )));
        }
    };
    Ok((&obj["query"], opts, flag("explain")?.unwrap_or(false), view))
}
