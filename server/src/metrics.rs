//! Counters and gauges, rendered in the Prometheus text format by `GET /metrics`.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use flume_store::Store;

/// A gauge that guards increment and decrement on drop, so it cannot drift.
#[derive(Clone, Default)]
pub(crate) struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub(crate) fn guard(&self) -> GaugeGuard {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(Arc::clone(&self.0))
    }
    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One unit of a [`Gauge`], released on drop.
pub(crate) struct GaugeGuard(Arc<AtomicI64>);

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything the server counts.
#[derive(Default)]
pub(crate) struct Metrics {
    /// Records appended through the server (HTTP appends, key-value and memcached writes).
    pub(crate) appends: AtomicU64,
    /// Payload bytes of those records (JSON bodies, values).
    pub(crate) append_bytes: AtomicU64,
    pub(crate) append_errors: AtomicU64,
    pub(crate) http_requests: AtomicU64,
    pub(crate) http_client_errors: AtomicU64,
    pub(crate) http_server_errors: AtomicU64,
    pub(crate) http_connections: Gauge,
    pub(crate) mc_connections: Gauge,
    pub(crate) mc_connections_total: AtomicU64,
    pub(crate) connections_rejected: Arc<AtomicU64>,
    pub(crate) mc_commands: AtomicU64,
    pub(crate) mc_get_hits: AtomicU64,
    pub(crate) mc_get_misses: AtomicU64,
    pub(crate) mc_writes: AtomicU64,
    /// `ERROR`, `CLIENT_ERROR` and `SERVER_ERROR` replies.
    pub(crate) mc_errors: AtomicU64,
    pub(crate) subscribers: Gauge,
    pub(crate) subscribers_total: AtomicU64,
    /// Times a live subscriber fell out of the broadcast ring and caught up from the log.
    pub(crate) subscriber_catchups: AtomicU64,
    /// Events written to subscribers.
    pub(crate) subscriber_events: AtomicU64,
    pub(crate) broadcast_errors: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Metrics {
    pub(crate) fn appended(&self, records: u64, bytes: u64) {
        add(&self.appends, records);
        add(&self.append_bytes, bytes);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self, store: &Store) -> String {
        let mut out = String::with_capacity(4096);
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "{name}{labels} {v}");
            }
        };
        metric(
            "flume_appends_total",
            "counter",
            "Records appended through the server.",
            &[("", get(&self.appends) as f64)],
        );
        metric(
            "flume_append_bytes_total",
            "counter",
            "Payload bytes appended through the server.",
            &[("", get(&self.append_bytes) as f64)],
        );
        metric(
            "flume_append_errors_total",
            "counter",
            "Appends that failed.",
            &[("", get(&self.append_errors) as f64)],
        );
        let since = store.db().since().map_or(-1.0, |s| s.0 as f64);
        metric(
            "flume_log_since",
            "gauge",
            "Seq of the last acknowledged record (-1: empty log).",
            &[("", since)],
        );
        let q = store.db().queue_stats();
        metric(
            "flume_append_queue_bytes",
            "gauge",
            "Bytes handed to the log and not yet acknowledged.",
            &[("", q.in_flight_bytes as f64)],
        );
        let statuses: Vec<_> = store.views().iter().map(|(_, v)| v.status()).collect();
        let labels: Vec<String> = statuses
            .iter()
            .map(|s| format!("{{view=\"{}\"}}", escape(&s.name)))
            .collect();
        let lag: Vec<(&str, f64)> = labels
            .iter()
            .zip(&statuses)
            .map(|(l, s)| (l.as_str(), s.lag as f64))
            .collect();
        metric(
            "flume_view_lag",
            "gauge",
            "How far each view is behind the log, in seq units.",
            &lag,
        );
        let failed: Vec<(&str, f64)> = labels
            .iter()
            .zip(&statuses)
            .map(|(l, s)| {
                (
                    l.as_str(),
                    if matches!(s.state, flume_core::ViewState::Failed(_)) {
                        1.0
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        metric(
            "flume_view_failed",
            "gauge",
            "1 while a view is failed (being rebuilt).",
            &failed,
        );
        metric(
            "flume_subscribers",
            "gauge",
            "Open streams (ndjson and Server-Sent Events).",
            &[("", self.subscribers.get() as f64)],
        );
        metric(
            "flume_subscribers_total",
            "counter",
            "Streams opened.",
            &[("", get(&self.subscribers_total) as f64)],
        );
        metric(
            "flume_subscriber_events_total",
            "counter",
            "Records written to streams.",
            &[("", get(&self.subscriber_events) as f64)],
        );
        metric(
            "flume_subscriber_catchups_total",
            "counter",
            "Times a slow live subscriber left the broadcast ring and read from the log.",
            &[("", get(&self.subscriber_catchups) as f64)],
        );
        metric(
            "flume_connections",
            "gauge",
            "Open connections.",
            &[
                ("{front=\"http\"}", self.http_connections.get() as f64),
                ("{front=\"memcached\"}", self.mc_connections.get() as f64),
            ],
        );
        metric(
            "flume_connections_rejected_total",
            "counter",
            "Connections refused at the limit.",
            &[("", get(&self.connections_rejected) as f64)],
        );
        metric(
            "flume_http_requests_total",
            "counter",
            "HTTP requests answered.",
            &[("", get(&self.http_requests) as f64)],
        );
        metric(
            "flume_errors_total",
            "counter",
            "Errors by kind.",
            &[
                (
                    "{kind=\"http_client\"}",
                    get(&self.http_client_errors) as f64,
                ),
                (
                    "{kind=\"http_server\"}",
                    get(&self.http_server_errors) as f64,
                ),
                ("{kind=\"memcached\"}", get(&self.mc_errors) as f64),
                ("{kind=\"append\"}", get(&self.append_errors) as f64),
                ("{kind=\"broadcast\"}", get(&self.broadcast_errors) as f64),
            ],
        );
        metric(
            "flume_memcached_commands_total",
            "counter",
            "Memcached commands executed.",
            &[("", get(&self.mc_commands) as f64)],
        );
        metric(
            "flume_memcached_get_hits_total",
            "counter",
            "Memcached keys found.",
            &[("", get(&self.mc_get_hits) as f64)],
        );
        metric(
            "flume_memcached_get_misses_total",
            "counter",
            "Memcached keys not found.",
            &[("", get(&self.mc_get_misses) as f64)],
        );
        metric(
            "flume_memcached_writes_total",
            "counter",
            "Memcached commands that appended a record.",
            &[("", get(&self.mc_writes) as f64)],
        );
        out
    }
}

/// Escape a Prometheus label value.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
