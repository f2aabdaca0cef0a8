//! Every command and flag, run through the built binary on temporary directories.

#![allow(clippy::unwrap_used)]

mod common;

use common::{bare, fails, flume, lines, ok, ok_in, values};
use predicates::prelude::*;
use serde_json::{Value, json};

fn ndjson(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"i\":{i},\"type\":\"t{}\"}}\n", i % 3))
        .collect()
}

fn seqs(v: &[Value]) -> Vec<u64> {
    v.iter().map(|x| x.as_u64().unwrap()).collect()
}

#[test]
fn init_writes_the_template_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let out = ok(tmp.path(), &["init", dir.to_str().unwrap()]);
    assert_eq!(out[0]["config"], json!(dir.join("flume.toml")));
    let text = std::fs::read_to_string(dir.join("flume.toml")).unwrap();
    assert!(text.contains("[[view]]") && text.contains("durability = \"sync\""));
    let err = fails(tmp.path(), &["init", dir.to_str().unwrap()], "", 1);
    assert!(err.contains("already exists"), "{err}");
    // Without DIR it initialises --db, and FLUME_DB stands for --db.
    let other = tmp.path().join("other");
    bare()
        .env("FLUME_DB", &other)
        .arg("init")
        .assert()
        .success();
    assert!(other.join("flume.toml").is_file());
    bare()
        .env("FLUME_DB", &other)
        .args(["append", "{\"x\":1}"])
        .assert()
        .success()
        .stdout("0\n");
}

#[test]
fn append_from_arguments_and_stdin_then_get() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let a = ok(db, &["append", r#"{"a":1}"#]);
    let b = ok(db, &["append", r#"{"b":2}"#, r#"[1,"x"]"#]);
    let c = ok_in(
        db,
        &["append", "--batch", "2"],
        "{\"c\":3}\n\n  {\"d\":4}  \r\n5\n",
    );
    let all: Vec<u64> = [a, b, c].iter().flat_map(|v| seqs(v)).collect();
    assert_eq!(all.len(), 6);
    assert!(
        all.windows(2).all(|w| w[0] < w[1]),
        "seqs increase: {all:?}"
    );
    let expect = [
        json!({"a":1}),
        json!({"b":2}),
        json!([1, "x"]),
        json!({"c":3}),
        json!({"d":4}),
        json!(5),
    ];
    for (seq, want) in all.iter().zip(&expect) {
        assert_eq!(&ok(db, &["get", &seq.to_string()])[0], want);
    }
    assert_eq!(values(db), expect);
    let err = fails(db, &["get", "1"], "", 1);
    assert!(err.contains("no record starts at seq 1"), "{err}");
    let err = fails(db, &["append", r#"{"ok":1}"#, "{nope"], "", 1);
    assert!(
        err.contains("argument 2 is not valid JSON") && err.contains("nothing was appended"),
        "{err}"
    );
    assert_eq!(values(db).len(), 6);
}

#[test]
fn a_malformed_line_names_its_line_and_appends_nothing_from_its_batch() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let mut input = ndjson(7);
    input.push_str("{\"i\": 7,, }\n");
    input.push_str(&ndjson(3));
    // Batches of 3: lines 1-3 and 4-6 go in; lines 7-8 (the batch with the bad line) do not.
    for cmd in [
        vec!["append", "--batch", "3"],
        vec!["import", "--batch", "3"],
    ] {
        let db = db.join(cmd[0]);
        let err = fails(&db, &cmd, &input, 1);
        assert!(err.contains("line 8, column"), "{err}");
        assert!(err.contains("lines 7-8"), "{err}");
        assert!(err.contains("lines 1-6 were appended"), "{err}");
        assert!(err.contains("tail -n +7"), "{err}");
        let got: Vec<u64> = values(&db)
            .iter()
            .map(|v| v["i"].as_u64().unwrap())
            .collect();
        assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    }
    // Bad on the first line of a batch, and from a file.
    let file = tmp.path().join("in.ndjson");
    std::fs::write(&file, format!("{}not json\n", ndjson(2))).unwrap();
    let fresh = db.join("file");
    let err = fails(
        &fresh,
        &["import", "--batch", "2", file.to_str().unwrap()],
        "",
        1,
    );
    assert!(err.contains("line 3, column 2: not valid JSON"), "{err}");
    assert!(err.contains("lines 1-2 were appended"), "{err}");
    assert_eq!(values(&fresh).len(), 2);
    // Nothing appended at all.
    let err = fails(&db.join("none"), &["import"], "[1,\n", 1);
    assert!(
        err.contains("line 1") && err.contains("nothing was appended"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    for args in [
        vec!["frobnicate"],
        vec!["stream", "--old=false"],
        vec!["stream", "--reverse", "--live"],
        vec!["stream", "--values", "--seqs"],
        vec!["stream", "--gt", "1", "--gte", "2"],
        vec!["append", "--batch", "0"],
        vec!["get", "x"],
        vec!["kv", "put", "c/m"],
        vec!["import", "--from", "xml"],
    ] {
        let err = fails(db, &args, "", 2);
        assert!(
            err.contains("Usage") || err.contains("error"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn read_commands_need_a_database() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("missing");
    for args in [
        vec!["get", "0"],
        vec!["stream"],
        vec!["views"],
        vec!["kv", "get", "a/b"],
        vec!["stats"],
        vec!["verify"],
    ] {
        let err = fails(&db, &args, "", 1);
        assert!(
            err.contains("no Flume database at") && err.contains("flume init"),
            "{args:?}: {err}"
        );
    }
    assert!(!db.exists(), "reads create nothing");
    // An initialised database with no record yet reads as empty.
    ok(tmp.path(), &["init", db.to_str().unwrap()]);
    assert!(ok(&db, &["stream"]).is_empty());
    assert!(ok(&db, &["export"]).is_empty());
    assert_eq!(ok(&db, &["stats"])[0]["records"], 0);
}

#[test]
fn stream_options() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let s = seqs(&ok_in(db, &["append"], &ndjson(10)));
    let run = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["stream"];
        a.extend_from_slice(args);
        ok(db, &a)
            .iter()
            .map(|r| r["seq"].as_u64().unwrap())
            .collect()
    };
    let (s3, s6) = (s[3].to_string(), s[6].to_string());
    assert_eq!(run(&[]), s);
    assert_eq!(run(&["--gt", &s3]), s[4..]);
    assert_eq!(run(&["--gte", &s3]), s[3..]);
    assert_eq!(run(&["--lt", &s6]), s[..6]);
    assert_eq!(run(&["--lte", &s6]), s[..7]);
    assert_eq!(run(&["--gt", &s3, "--lt", &s6]), s[4..6]);
    let mut rev = s.clone();
    rev.reverse();
    assert_eq!(run(&["--reverse"]), rev);
    assert_eq!(run(&["--reverse", "--limit", "2"]), rev[..2]);
    assert_eq!(run(&["--limit", "3"]), s[..3]);
    // A bound between records is well defined.
    assert_eq!(run(&["--gt", &(s[3] + 1).to_string()]), s[4..]);
    let recs = ok(db, &["stream", "--limit", "1"]);
    assert_eq!(
        recs[0],
        json!({"seq": s[0], "value": {"i": 0, "type": "t0"}})
    );
    assert_eq!(
        ok(db, &["stream", "--values", "--limit", "2"]),
        [json!({"i":0,"type":"t0"}), json!({"i":1,"type":"t1"})]
    );
    assert_eq!(seqs(&ok(db, &["stream", "--seqs", "--lte", &s3])), s[..4]);
    // --live with an upper bound already reached ends like a plain stream.
    assert_eq!(run(&["--live", "--lte", &s3]), s[..4]);
    assert_eq!(run(&["--live", "--limit", "2"]), s[..2]);
}

#[test]
fn key_value_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let bin = tmp.path().join("blob");
    std::fs::write(&bin, [0u8, 159, 146, 150, 255]).unwrap();
    ok(db, &["kv", "put", "users/amy", r#"{"admin":true}"#]);
    ok(db, &["kv", "put", "users/bob", "hello"]);
    ok(db, &["kv", "put", "--bytes", "users/cat", r#"{"a":1}"#]);
    ok(
        db,
        &[
            "kv",
            "put",
            "users/dan",
            "--file",
            bin.to_str().unwrap(),
            "--flags",
            "7",
            "--expires",
            "0",
        ],
    );
    ok_in(db, &["kv", "put", "other/x", "--file", "-"], "from stdin");
    let amy = &ok(db, &["kv", "get", "users/amy"])[0];
    assert_eq!(
        (amy["encoding"].clone(), amy["value"].clone()),
        (json!("json"), json!({"admin": true}))
    );
    let bob = &ok(db, &["kv", "get", "users/bob"])[0];
    assert_eq!(
        (bob["encoding"].clone(), bob["value"].clone()),
        (json!("utf-8"), json!("hello"))
    );
    let cat = &ok(db, &["kv", "get", "users/cat"])[0];
    assert_eq!(
        (cat["encoding"].clone(), cat["value"].clone()),
        (json!("utf-8"), json!(r#"{"a":1}"#))
    );
    let dan = &ok(db, &["kv", "get", "users/dan"])[0];
    assert_eq!(
        (
            dan["encoding"].clone(),
            dan["value"].clone(),
            dan["flags"].clone()
        ),
        (json!("base64"), json!("AJ+Slv8="), json!(7))
    );
    flume(db)
        .args(["kv", "get", "--raw", "users/dan"])
        .assert()
        .success()
        .stdout(vec![0u8, 159, 146, 150, 255]);
    flume(db)
        .args(["kv", "get", "--raw", "other/x"])
        .assert()
        .success()
        .stdout("from stdin");
    let list = ok(db, &["kv", "list", "users"]);
    let keys: Vec<&str> = list.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["users/amy", "users/bob", "users/cat", "users/dan"]);
    flume(db)
        .args(["kv", "list", "users", "--format", "table"])
        .assert()
        .success()
        .stdout(
            predicate::str::starts_with("key        seq")
                .and(predicate::str::contains("users/bob  "))
                .and(predicate::str::contains("base64")),
        );

    ok(db, &["kv", "delete", "users/bob"]);
    let err = fails(db, &["kv", "get", "users/bob"], "", 1);
    assert!(err.contains("no value for key \"users/bob\""), "{err}");
    ok(db, &["kv", "delete", "--collection", "users"]);
    assert!(ok(db, &["kv", "list", "users"]).is_empty());
    assert_eq!(ok(db, &["kv", "list", "other"]).len(), 1);
    let err = fails(db, &["kv", "put", "no-collection", "1"], "", 1);
    assert!(err.contains("invalid key"), "{err}");
    // Every write was a log record.
    assert_eq!(values(db).len(), 7);
}

#[test]
fn views_rebuild_and_stats() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    ok(tmp.path(), &["init", db.to_str().unwrap()]);
    let toml = std::fs::read_to_string(db.join("flume.toml")).unwrap()
        + "\n[[view]]\nname = \"types\"\nkind = \"count_by\"\npath = [\"type\"]\n\n[[view]]\nname = \"by_type\"\nkind = \"index\"\npaths = [[\"type\"]]\n";
    std::fs::write(db.join("flume.toml"), toml).unwrap();
    let s = seqs(&ok_in(db, &["append"], &ndjson(9)));
    let last = *s.last().unwrap();

    let views = ok(db, &["views", "--values"]);
    let names: Vec<&str> = views.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["kv", "count", "query", "types", "by_type"]);
    let kinds: Vec<&str> = views.iter().map(|v| v["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["kv", "count", "query", "count_by", "index"]);
    for v in &views {
        // Caught up and on the live feed, not still joining it.
        assert_eq!(
            (v["since"].as_u64(), v["lag"].as_u64(), v["state"].as_str()),
            (Some(last), Some(0), Some("live")),
            "{v}"
        );
    }
    assert_eq!(views[1]["value"], json!(9));
    assert_eq!(
        views[2]["value"],
        json!(null),
        "a query view has no single value"
    );
    assert_eq!(
        views[3]["value"],
        json!({"\"t0\"": 3, "\"t1\"": 3, "\"t2\"": 3})
    );
    assert_eq!(ok(db, &["views"])[0].get("value"), None);
    flume(db)
        .args(["views", "--format", "table"])
        .assert()
        .success()
        .stdout(predicate::str::starts_with(
            "name     kind      version  since  lag  state\n",
        ));

    let rebuilt = ok(db, &["rebuild"]);
    assert_eq!(rebuilt.len(), 5);
    assert!(
        rebuilt
            .iter()
            .all(|r| r["since"].as_u64() == Some(last) && r["state"] == "live"),
        "{rebuilt:?}"
    );
    let one = ok(db, &["rebuild", "types"]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["view"], "types");
    let err = fails(db, &["rebuild", "nope"], "", 1);
    assert!(
        err.contains("no view named \"nope\"") && err.contains("kv, count, query, types, by_type"),
        "{err}"
    );

    let stats = &ok(db, &["stats"])[0];
    assert_eq!(stats["records"], 9);
    assert_eq!(
        (stats["first"].as_u64(), stats["last"].as_u64()),
        (Some(0), Some(last))
    );
    assert_eq!(stats["segments"], 1);
    assert!(stats["log_bytes"].as_u64().unwrap() > 32);
    assert_eq!(stats["views"].as_array().unwrap().len(), 5);
    assert!(
        stats["views"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["lag"] == 0)
    );
    flume(db)
        .args(["stats", "--format", "table"])
        .assert()
        .success()
        .stdout(predicate::str::contains("records").and(predicate::str::contains("view types")));
}

#[test]
fn export_then_import_reproduces_records_and_views() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok_in(&a, &["append"], &ndjson(50));
    ok(
        &a,
        &["kv", "put", "c/doc", r#"{"n":[1,2.5,-3,null],"s":"é"}"#],
    );
    ok(&a, &["kv", "put", "c/text", "plain"]);
    let blob = tmp.path().join("blob");
    std::fs::write(&blob, [0u8, 255, 10, 13]).unwrap();
    ok(
        &a,
        &[
            "kv",
            "put",
            "c/bin",
            "--file",
            blob.to_str().unwrap(),
            "--flags",
            "3",
        ],
    );
    ok(&a, &["kv", "put", "d/gone", "1"]);
    ok(&a, &["kv", "delete", "d/gone"]);
    ok(
        &a,
        &[
            "append",
            r#"{"big":18446744073709551615,"neg":-9223372036854775808,"f":0.1}"#,
        ],
    );

    let exported = flume(&a)
        .arg("export")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(exported.clone()).unwrap();
    assert_eq!(text.lines().count(), 56);
    assert!(
        text.contains(r#"{"$kv":"put","key":"c/bin","bytes":[0,255,10,13],"flags":3,"expires":0}"#),
        "{text}"
    );
    let imported = ok_in(&b, &["import"], &text);
    assert_eq!(imported[0]["records"], 56);

    flume(&b).arg("export").assert().success().stdout(exported);
    assert_eq!(
        ok(&a, &["stream"]),
        ok(&b, &["stream"]),
        "same records at the same seqs"
    );
    // Everything but `state`: a view that has just caught up may still be joining the live feed.
    let without_state = |views: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        views
            .into_iter()
            .map(|mut v| {
                v.as_object_mut().unwrap().remove("state");
                v
            })
            .collect()
    };
    assert_eq!(
        without_state(ok(&a, &["views", "--values"])),
        without_state(ok(&b, &["views", "--values"]))
    );
    for c in ["c", "d"] {
        assert_eq!(ok(&a, &["kv", "list", c]), ok(&b, &["kv", "list", c]));
    }
    flume(&b)
        .args(["kv", "get", "--raw", "c/bin"])
        .assert()
        .success()
        .stdout(vec![0u8, 255, 10, 13]);
}

#[test]
fn bench_runs_flume_bench() {
    let tmp = tempfile::tempdir().unwrap();
    bare()
        .args(["bench", "--list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("append_batch"));
    bare()
        .args(["bench", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Usage: flume bench"));
    bare().args(["bench", "nope"]).assert().failure();
    // Each workload runs in a child process, which is this binary again.
    let out = bare()
        .args(["bench", "--json", "--records", "2000", "--dir"])
        .arg(tmp.path().join("runs"))
        .arg("stream_fwd")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let metrics: Value = serde_json::from_slice(&out).unwrap();
    assert!(
        metrics["stream_fwd_rec_s"]
            .as_f64()
            .is_some_and(|v| v > 0.0)
    );
}

#[test]
fn logs_go_to_stderr_and_data_to_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path();
    let out = flume(db)
        .env("RUST_LOG", "debug")
        .args(["append", "1"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(lines(&out.stdout), [json!(0)]);
    let out = flume(db)
        .args(["kv", "put", "a/b", "text"])
        .assert()
        .success()
        .get_output()
        .clone();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("not JSON: stored as bytes")
    );
    assert_eq!(lines(&out.stdout).len(), 1);
}
