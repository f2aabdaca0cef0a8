//! Helpers shared by the integration tests: run the built `flume` on a database directory.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

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

/// A database with small segments (several of them) holding 300 records in batches of 10.
pub(crate) fn database(dir: &Path) -> Vec<u64> {
    small_segments(dir);
    append_300(dir)
}

/// An empty database whose log has 4 KiB segments.
pub(crate) fn small_segments(dir: &Path) {
    ok(dir.parent().unwrap(), &["init", dir.to_str().unwrap()]);
    let toml = std::fs::read_to_string(dir.join("flume.toml"))
        .unwrap()
        .replace("# segment_size = 67108864", "segment_size = 4096 #");
    std::fs::write(dir.join("flume.toml"), toml).unwrap();
}

/// Append 300 records of about 80 bytes in batches of 10; their seqs.
pub(crate) fn append_300(dir: &Path) -> Vec<u64> {
    let input: String = (0..300)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(60)))
        .collect();
    ok_in(dir, &["append", "--batch", "10"], &input)
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

/// The segment files of the log, oldest first, with their base seqs.
pub(crate) fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir.join("log"))
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let base = p
                .file_name()?
                .to_str()?
                .strip_suffix(".log")?
                .parse()
                .ok()?;
            Some((base, p))
        })
        .collect();
    v.sort();
    v
}
