//! `flume serve` as a real process: it reports its addresses, answers HTTP, and stops cleanly
//! on SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// Start `flume serve` on `db` (HTTP on a free loopback port, no memcached); the child, its
/// HTTP address, and its stderr after the line that gave the address.
fn serve(db: &Path) -> (Child, String, BufReader<ChildStderr>) {
    let mut child = Command::new(common::exe())
        .args([
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--http",
            "127.0.0.1:0",
            "--memcached",
            "off",
        ])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("serve exited before listening: {status}");
        }
        if let Some(addr) = line.trim().strip_prefix("flume serve: HTTP on http://") {
            break addr.to_string();
        }
    };
    (child, addr, stderr)
}

/// One HTTP/1.1 request with a JSON body; the whole response.
fn request(addr: &str, method: &str, path: &str, body: &str) -> String {
    let mut conn = TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_answers_http_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr, mut stderr) = serve(dir.path());
    let response = request(&addr, "GET", "/health", "");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "serve must exit 0 after SIGTERM: {rest}"
    );
    assert!(rest.contains("stopped cleanly"), "{rest}");
    // The database is closed: another command can open it for writing.
    common::ok(dir.path(), &["append", r#"{"after":"serve"}"#]);
}

#[test]
fn serve_refuses_nothing_to_serve() {
    let dir = tempfile::tempdir().unwrap();
    let err = common::fails(
        dir.path(),
        &["serve", "--http", "off", "--memcached", "off"],
        "",
        1,
    );
    assert!(err.contains("nothing to serve"), "{err}");
    common::fails(dir.path(), &["serve", "--http", "not-an-address"], "", 2);
}

/// `[log] retain` while serving: the oldest segments go in the background, and a SIGKILL right
/// after loses nothing the views derived from them. Records are appended without pause until
/// the first retirement, then the server is killed at once. A reduce view checkpoints only some
/// time after a change (100 ms at the tail), while 4 KiB of records take a few milliseconds to
/// append: had the retirement not made the views durable first, the count view's last
/// checkpoint would lie below the new first seq, and it would be rebuilt from what remains with
/// a lower count (it was, in 4 runs of 4 with the syncs left out). The kv entry checks that its
/// retired record's value is kept; a SIGKILL cannot show a missing LMDB sync (the page cache
/// survives it).
#[test]
fn serve_retains_in_the_background_and_a_kill_loses_no_view_state() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    common::small_segments(&db);
    let toml = std::fs::read_to_string(db.join("flume.toml"))
        .unwrap()
        .replace("# retain = \"10GiB\"", "retain = \"4KiB\"")
        .replace("# retain_every = 60", "retain_every = 1");
    std::fs::write(db.join("flume.toml"), toml).unwrap();
    let (mut child, addr, stderr) = serve(&db);
    // Drained, so that the server never blocks on a full pipe.
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap());

    // Written first, so its record is retired.
    let put = request(&addr, "PUT", "/kv/users/amy", r#"{"admin":true}"#);
    assert!(put.starts_with("HTTP/1.1 200"), "{put}");
    let oldest = db.join("log").join("00000000000000000000.log");
    let mut appended = 0;
    // A hang guard, not a timing assertion: retention checks every second.
    let start = Instant::now();
    while oldest.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "nothing was retired"
        );
        let batch: Vec<_> = (0..10)
            .map(|i| json!({ "i": appended + i, "pad": "x".repeat(60) }))
            .collect();
        let body = serde_json::to_string(&batch).unwrap();
        let response = request(&addr, "POST", "/log/batch", &body);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        appended += 10;
    }
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    log.join().unwrap();

    assert!(common::segments(&db)[0].0 > 0);
    let count = common::ok(&db, &["views", "--values"])
        .into_iter()
        .find(|v| v["name"] == "count")
        .unwrap()["value"]
        .clone();
    assert_eq!(
        count,
        json!(appended + 1),
        "the count view was rebuilt from what remains"
    );
    assert_eq!(
        common::ok(&db, &["kv", "get", "users/amy"])[0]["value"],
        json!({"admin": true})
    );
}
