//! `flume serve` as a real process: it reports its addresses, answers HTTP, and stops cleanly
//! on SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

#[test]
fn serve_answers_http_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(common::exe())
        .args([
            "--db",
            dir.path().to_str().unwrap(),
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
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "serve exited before listening"
        );
        addr = line
            .trim()
            .strip_prefix("flume serve: HTTP on http://")
            .map(str::to_string);
    }
    let addr = addr.unwrap();
    let mut conn = TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
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
