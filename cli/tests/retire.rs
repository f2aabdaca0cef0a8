//! `flume retire` through the built binary: what it deletes, what stays readable, and what the
//! views keep.

#![allow(clippy::unwrap_used)]

mod common;

use common::{append_300, database, fails, flume, ok, segments, small_segments, values};
use serde_json::json;

#[test]
fn retire_deletes_the_oldest_segments_and_the_views_keep_their_state() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    small_segments(&db);
    // Written first, so its record is retired.
    let amy = ok(&db, &["kv", "put", "users/amy", r#"{"admin":true}"#])[0]
        .as_u64()
        .unwrap();
    let seqs = append_300(&db);
    let last = seqs[299];
    let before = segments(&db);
    assert!(before.len() > 4, "{} segments", before.len());
    let sizes: std::collections::HashMap<u64, u64> = before
        .iter()
        .map(|(base, p)| (*base, std::fs::metadata(p).unwrap().len()))
        .collect();

    // A script is not asked: it is refused, and nothing changes.
    let err = fails(&db, &["retire", "--keep", "8KiB"], "", 1);
    assert!(err.contains("rerun with --yes"), "{err}");
    assert!(
        err.contains("segment file(s)"),
        "what would go is shown: {err}"
    );
    assert_eq!(segments(&db), before);

    let done = &ok(&db, &["retire", "--keep", "8KiB", "--yes"])[0];
    assert_eq!(done["retired"], true);
    let cut = last - 8192;
    assert_eq!(done["before"], json!(cut));
    let after = segments(&db);
    let gone = &before[..before.len() - after.len()];
    assert_eq!(
        &before[gone.len()..],
        after.as_slice(),
        "only the oldest go"
    );
    assert_eq!(done["segments"], json!(gone.len()));
    let freed: u64 = gone.iter().map(|(base, _)| sizes[base]).sum();
    assert_eq!(done["bytes"], json!(freed));
    assert!(gone.iter().all(|(_, p)| !p.exists()));
    let first = after[0].0;
    assert_eq!(done["first"], json!(first));
    assert_eq!(done["from"], json!(amy));
    assert!(first > seqs[0] && first <= cut, "first {first}, cut {cut}");

    // Every record from `first` on still reads; those before it are reported retired.
    let kept: Vec<u64> = ok(&db, &["stream", "--seqs"])
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let want: Vec<u64> = seqs.iter().copied().filter(|s| *s >= first).collect();
    assert_eq!(kept, want);
    assert!(want.len() < 300 && want.iter().any(|s| *s <= cut));
    let err = fails(&db, &["get", &amy.to_string()], "", 1);
    assert!(err.contains("retired"), "{err}");
    let stats = &ok(&db, &["stats"])[0];
    assert_eq!(
        (stats["first"].clone(), stats["records"].clone()),
        (json!(first), json!(want.len()))
    );
    assert_eq!(ok(&db, &["verify"])[0]["ok"], true);

    // The views keep what they derived from the retired records.
    let count = |db| {
        ok(db, &["views", "--values"])
            .into_iter()
            .find(|v| v["name"] == "count")
            .unwrap()["value"]
            .clone()
    };
    assert_eq!(count(&db), json!(301));
    assert_eq!(
        ok(&db, &["kv", "get", "users/amy"])[0]["value"],
        json!({"admin": true})
    );

    // Nothing more lies below the same seq.
    let again = &ok(&db, &["retire", "--before", &cut.to_string()])[0];
    assert_eq!(again["retired"], false);
    assert_eq!(again["first"], json!(first));
    assert_eq!(segments(&db), after);

    // A rebuild sees only what remains, and says so.
    let out = flume(&db)
        .arg("rebuild")
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("below seq {first} were retired")),
        "{err}"
    );
    assert_eq!(count(&db), json!(want.len()));
    assert_eq!(values(&db).len(), want.len());
}

#[test]
fn retire_needs_a_bound_and_a_size_it_understands() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let seqs = database(&db);
    let err = fails(&db, &["retire", "--yes"], "", 2);
    assert!(err.contains("--before <SEQ>|--keep <SIZE>"), "{err}");
    let err = fails(&db, &["retire", "--keep", "1.5GB"], "", 2);
    assert!(err.contains("not a size"), "{err}");
    let err = fails(&db, &["retire", "--keep", "3 parsecs"], "", 2);
    assert!(err.contains("unknown size unit"), "{err}");
    let err = fails(&db, &["retire", "--before", "1", "--keep", "1"], "", 2);
    assert!(err.contains("cannot be used with"), "{err}");
    // Keeping more than the log holds retires nothing.
    let done = &ok(&db, &["retire", "--keep", "1TiB"])[0];
    assert_eq!(
        (done["retired"].clone(), done["first"].clone()),
        (json!(false), json!(0))
    );
    // A bound past the end is lowered to just after the last record, whose segment stays.
    let done = &ok(&db, &["retire", "--before", &u64::MAX.to_string(), "--yes"])[0];
    assert_eq!(done["retired"], true);
    assert_eq!(done["before"], json!(seqs[299] + 1));
    assert_eq!(segments(&db).len(), 1);
    // An empty log has nothing to retire.
    let empty = tmp.path().join("empty");
    small_segments(&empty);
    let done = &ok(&empty, &["retire", "--keep", "1KiB"])[0];
    assert_eq!(done["reason"], "the log is empty");
}
