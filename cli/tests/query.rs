//! `flume query`: results, --explain with indexes declared in flume.toml, options, bad queries.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fails, ok, ok_in};
use serde_json::json;

const DOCS: &str = r#"{"type":"post","author":"@a","n":1}
{"type":"like","author":"@b","n":2}
{"type":"post","author":"@b","n":3}
{"type":"post","author":"@a","n":4}
"#;

#[test]
fn queries_filter_map_reduce_and_sort() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    ok_in(db, &["append"], DOCS);
    let authors = ok(
        db,
        &[
            "query",
            r#"[{"$filter":{"type":"post"}},{"$map":"author"}]"#,
        ],
    );
    assert_eq!(authors, [json!("@a"), json!("@b"), json!("@a")]);
    let totals = ok(
        db,
        &[
            "query",
            r#"{"$reduce":{"author":"author","n":{"$sum":"n"}}}"#,
        ],
    );
    assert_eq!(
        totals,
        [
            json!({"author": "@a", "n": 5}),
            json!({"author": "@b", "n": 5})
        ]
    );
    let newest = ok(
        db,
        &["query", "--reverse", "--limit", "2", r#"{"$map":"n"}"#],
    );
    assert_eq!(newest, [json!(4), json!(3)]);
    let sorted = ok(
        db,
        &[
            "query",
            "--reverse",
            r#"[{"$filter":{}},{"$sort":"n"},{"$map":"n"}]"#,
        ],
    );
    assert_eq!(sorted, [json!(4), json!(3), json!(2), json!(1)]);
    let with_seqs = ok(
        db,
        &["query", "--with-seqs", "--limit", "1", r#"{"$map":"n"}"#],
    );
    assert_eq!(with_seqs, [json!({"seq": 0, "value": 1})]);
}

#[test]
fn explain_uses_the_indexes_flume_toml_declares() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    std::fs::write(
        db.join("flume.toml"),
        r#"
        [[view]]
        name = "q"
        kind = "query"
        indexes = [{ name = "type_author", paths = [["type"], ["author"]] }]
        "#,
    )
    .unwrap();
    ok_in(db, &["append"], DOCS);
    let plan = ok(
        db,
        &[
            "query",
            "--explain",
            r#"{"$filter":{"type":"post","author":"@a"}}"#,
        ],
    );
    assert_eq!(plan[0]["plan"], "index");
    assert_eq!(plan[0]["index"], "type_author");
    let via_index = ok(
        db,
        &[
            "query",
            r#"[{"$filter":{"type":"post","author":"@a"}},{"$map":"n"}]"#,
        ],
    );
    let via_scan = ok(
        db,
        &[
            "query",
            "--scan",
            r#"[{"$filter":{"type":"post","author":"@a"}},{"$map":"n"}]"#,
        ],
    );
    assert_eq!(via_index, [json!(1), json!(4)]);
    assert_eq!(via_scan, via_index);
}

#[test]
fn bad_queries_name_the_stage_and_operator() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path();
    ok_in(db, &["append"], DOCS);
    let err = fails(
        db,
        &["query", r#"[{"$map":"n"},{"$filter":{"n":{"$near":1}}}]"#],
        "",
        1,
    );
    assert!(err.contains("stage 2 ($filter), operator $near"), "{err}");
    let err = fails(db, &["query", "[{"], "", 1);
    assert!(err.contains("not JSON"), "{err}");
    let err = fails(
        db,
        &["query", "--live", r#"{"$reduce":{"$count":true}}"#],
        "",
        1,
    );
    assert!(err.contains("live"), "{err}");
    let err = fails(db, &["query", "--view", "nope", r#"{"$map":"n"}"#], "", 1);
    assert!(err.contains("nope"), "{err}");
    fails(db, &["query", "--old", "false", r#"{"$map":"n"}"#], "", 2);
}
