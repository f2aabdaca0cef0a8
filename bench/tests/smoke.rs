//! Every quick workload runs end to end on a small log and reports each metric it documents.
//! No figure is judged here (timings belong to the benchmark runs, not to tests).

use std::process::Command;

/// The workloads that finish in about a second at 3,000 records, and the metrics each reports.
const EXPECTED: &[&str] = &[
    "disk_write_mb_s",
    "append_batch_disk_mb_s",
    "append_batch_rec_s",
    "append_batch_mb_s",
    "append_batch_disk_ratio",
    "append_durable_w1_rec_s",
    "append_durable_w64_rec_s",
    "append_durable_w64_over_w1",
    "append_durable_w1_sync_us",
    "append_durable_w64_sync_us",
    "append_durable_w64_per_sync",
    "stream_fwd_decode_rec_s",
    "stream_fwd_rec_s",
    "stream_fwd_over_decode",
    "stream_fwd_bytes_rec_s",
    "stream_rev_decode_rec_s",
    "stream_rev_rec_s",
    "stream_rev_over_decode",
    "stream_rev_bytes_rec_s",
    "heed_put_rec_s",
    "index_build_rec_s",
    "index_build_heed_ratio",
    "views1_rec_s",
    "views4_rec_s",
    "views4_over_views1",
    "heed_get_p50_ns",
    "heed_get_rec_s",
    "kv_get_p50_ns",
    "kv_get_p99_ns",
    "kv_get_rec_s",
    "query_indexed_ms",
    "query_scan_ms",
    "query_index_speedup",
    "mem_append_batch_rec_s",
    "mem_stream_fwd_decode_rec_s",
    "mem_stream_fwd_rec_s",
    "mem_stream_fwd_over_decode",
    "mem_stream_fwd_bytes_rec_s",
    "mem_stream_rev_decode_rec_s",
    "mem_stream_rev_rec_s",
    "mem_stream_rev_over_decode",
    "mem_stream_rev_bytes_rec_s",
    "reopen_ms_1gb",
    "rss_mb_append_10m",
];

#[test]
fn quick_workloads_report_every_metric_and_leave_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_flume-bench"))
        .args(["--json", "--records", "3000", "--dir"])
        .arg(dir.path())
        .args([
            "disk",
            "append_batch",
            "append_durable",
            "stream_fwd",
            "stream_rev",
            "index_build",
            "views4",
            "kv_get",
            "query",
            "mem_append_batch",
            "mem_stream_fwd",
            "mem_stream_rev",
            "reopen",
            "rss",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "flume-bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&out.stdout).unwrap();
    for name in EXPECTED {
        let value = metrics.get(*name).and_then(serde_json::Value::as_f64);
        assert!(
            value.is_some_and(|v| v.is_finite() && v > 0.0),
            "{name}: {value:?} in {metrics:?}"
        );
    }
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn an_unknown_workload_is_refused_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_flume-bench"))
        .arg("no_such_workload")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no_such_workload"), "{err}");
}
