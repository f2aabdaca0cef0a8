//! `GET /log`: the log with flumedb's stream options, as ndjson or Server-Sent Events.
//!
//! Query: `gt`, `gte`, `lt`, `lte` (seqs), `reverse`, `limit`, `live`, `old`,
//! `output=records|values|seqs`, `format=ndjson|sse`. Live streams default to SSE (so does
//! `Accept: text/event-stream`), others to ndjson. Each SSE event's `id` is its seq; a
//! reconnect's `Last-Event-ID` resumes right after it.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use flume_core::{Output, Seq, StreamOpts};

use super::{ApiError, AppState};
use crate::broadcast::subscriber::{self, Format, StreamSpec};

fn flag(params: &HashMap<String, String>, name: &str) -> Result<Option<bool>, ApiError> {
    params
        .get(name)
        .map(|v| match v.as_str() {
            "" | "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ApiError::bad_request(format!(
                "`{name}` is true or false, not {v:?}"
            ))),
        })
        .transpose()
}

fn seq(params: &HashMap<String, String>, name: &str) -> Result<Option<Seq>, ApiError> {
    params
        .get(name)
        .map(|v| {
            v.parse().map(Seq).map_err(|_| {
                ApiError::bad_request(format!("`{name}` is a seq (a number), not {v:?}"))
            })
        })
        .transpose()
}

/// The stream a request asks for.
fn spec(params: &HashMap<String, String>, headers: &HeaderMap) -> Result<StreamSpec, ApiError> {
    const KNOWN: [&str; 11] = [
        "gt", "gte", "lt", "lte", "reverse", "limit", "live", "old", "output", "format", "values",
    ];
    if let Some(unknown) = params.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown option {unknown:?}; the options are {}",
            KNOWN[..10].join(", ")
        )));
    }
    let mut opts = StreamOpts::new();
    if let Some(s) = seq(params, "gte")? {
        opts = opts.gte(s);
    }
    if let Some(s) = seq(params, "gt")? {
        opts = opts.gt(s);
    }
    if let Some(s) = seq(params, "lte")? {
        opts = opts.lte(s);
    }
    if let Some(s) = seq(params, "lt")? {
        opts = opts.lt(s);
    }
    if flag(params, "reverse")? == Some(true) {
        opts = opts.reverse();
    }
    if let Some(n) = params.get("limit") {
        opts = opts.limit(
            n.parse()
                .map_err(|_| ApiError::bad_request(format!("`limit` is a count, not {n:?}")))?,
        );
    }
    if flag(params, "live")? == Some(true) {
        opts = opts.live();
    }
    if let Some(old) = flag(params, "old")? {
        opts = opts.old(old);
    }
    opts.output = match params.get("output").map(String::as_str) {
        None | Some("records") => Output::Records,
        Some("values") => Output::Values,
        Some("seqs") => Output::Seqs,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`output` is records, values or seqs, not {other:?}"
            )));
        }
    };
    if flag(params, "values")? == Some(true) {
        opts.output = Output::Values;
    }
    opts.validate()?;
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let format = match params.get("format").map(String::as_str) {
        Some("sse") => Format::Sse,
        Some("ndjson") => Format::Ndjson,
        None if opts.live || wants_sse => Format::Sse,
        None => Format::Ndjson,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`format` is ndjson or sse, not {other:?}"
            )));
        }
    };
    if format == Format::Sse
        && let Some(last) = headers.get("last-event-id")
    {
        // Resume exactly after the last event the client saw (and ignore `old`: it asked).
        let last = last
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ApiError::bad_request("Last-Event-ID is the seq of an event"))?;
        opts = opts.gt(Seq(last)).old(true);
    }
    Ok(StreamSpec {
        lower: opts.lower,
        upper: opts.upper,
        reverse: opts.reverse,
        limit: opts.limit,
        live: opts.live,
        old: opts.old,
        output: opts.output,
        format,
    })
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let spec = spec(&params, &headers)?;
    let format = spec.format;
    let frames = subscriber::spawn(
        state.hub.clone(),
        spec,
        state.limits.subscriber_buffer_bytes,
        state.metrics.clone(),
        state.shutdown.clone(),
    );
    let body = futures::stream::unfold(frames, |mut frames| async move {
        frames
            .recv()
            .await
            .map(|f: Bytes| (Ok::<_, Infallible>(f), frames))
    });
    let mut response = Body::from_stream(body).into_response();
    let h = response.headers_mut();
    match format {
        Format::Sse => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert("x-accel-buffering", HeaderValue::from_static("no"));
        }
        Format::Ndjson => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
        }
    }
    Ok(response)
}
