//! Helpers shared by the integration tests: run the built `flume` on a database directory.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use serde_json::Value;

/// `flume --db DB` with a clean environment (no FLUME_DB, no RUST_LOG).
pub(crate) fn flume(db: &Path) -> assert_cmd::Command {
    let mut c = bare();
    c.arg("--db").arg(db);
    c
}

/// `flume` with a clean environment and no `--db`.
pub(crate) fn bare() -> assert_cmd::Command {
    let mut c = assert_cmd::cargo::cargo_bin_cmd!("flume");
    c.env_remove("FLUME_DB")
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1");
    c
}

/// The path of the built binary (for `std::process::Command`).
pub(crate) fn exe() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("flume")
}

/// Each stdout line parsed as JSON.
pub(crate) fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// Run `flume --db DB ARGS` successfully and return its stdout lines as JSON.
pub(crate) fn ok(db: &Path, args: &[&str]) -> Vec<Value> {
    let out = flume(db)
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    lines(&out)
}

/// Run `flume --db DB ARGS` with `stdin`, successfully, returning stdout lines as JSON.
pub(crate) fn ok_in(db: &Path, args: &[&str], stdin: &str) -> Vec<Value> {
    let out = flume(db)
        .args(args)
        .write_stdin(stdin)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    lines(&out)
}

/// Stderr of a run that failed with `code`.
pub(crate) fn fails(db: &Path, args: &[&str], stdin: &str, code: i32) -> String {
    let out = flume(db)
        .args(args)
        .write_stdin(stdin)
        .assert()
        .code(code)
        .get_output()
        .clone();
    String::from_utf8(out.stderr).unwrap()
}

/// The values `flume stream --values` prints.
pub(crate) fn values(db: &Path) -> Vec<Value> {
    ok(db, &["stream", "--values"])
}

/// Flip one byte of a file.
pub(crate) fn flip(path: &Path, offset: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], offset).unwrap();
}
