//! `explain` picks the expected index: exact beats range, ties go to fewer paths, an index is
//! never used when a record lacking one of its paths could match.

#![allow(clippy::unwrap_used)]

mod common;

use flume_view_query::{Query, QueryOpts, QueryReads};
use serde_json::{Value, json};

#[tokio::test]
async fn explain_picks_the_expected_index() {
    let fx = common::fixture().await;
    let cases: Vec<(Value, Option<&str>, &str)> = vec![
        (
            json!({"$filter": {"type": "post"}}),
            Some("type"),
            "exact on the only usable index",
        ),
        (
            json!({"$filter": {"type": "post", "author": "@a"}}),
            Some("type_author"),
            "two exact paths beat one",
        ),
        (
            json!({"$filter": {"author": "@a", "ts": {"$gt": 5}}}),
            Some("author_ts"),
            "exact then range",
        ),
        (
            json!({"$filter": {"ts": {"$gt": 5}}}),
            Some("ts"),
            "a range alone",
        ),
        (
            json!({"$filter": {"author": {"$prefix": "@"}, "ts": {"$is": "number"}}}),
            Some("author_ts"),
            "a prefix is a range",
        ),
        (json!({"$filter": {"n": 5}}), None, "no index on the path"),
        (json!([{"$map": "id"}]), None, "no leading filter"),
        (
            json!({"$filter": {"type": "post", "author": {"$is": "string"}}}),
            Some("type"),
            "a tie goes to fewer paths",
        ),
        (
            json!({"$filter": {"type": {"$in": ["a", "b"]}}}),
            None,
            "$in gives no bounds",
        ),
        (
            json!({"$filter": {"author": "@a", "ts": 10}}),
            Some("author_ts"),
            "exact on both paths",
        ),
        (
            json!({"$filter": {"type": {"$ne": "post"}}}),
            None,
            "$ne matches missing fields: no index",
        ),
        (
            json!({"$filter": {"type": "post", "ts": {"$lt": 3}}}),
            Some("type"),
            "exact (2) beats a range (1)",
        ),
        (
            json!([{"$map": true}, {"$filter": {"type": "post"}}]),
            None,
            "only a leading filter is planned",
        ),
    ];
    for (query, want, why) in cases {
        let q = Query::parse(&query).unwrap();
        let plan = fx.view.explain(&q, &QueryOpts::new());
        match want {
            Some(name) => {
                assert_eq!(plan["plan"], "index", "{why}: {plan}");
                assert_eq!(plan["index"], name, "{why}: {plan}");
            }
            None => assert_eq!(plan["plan"], "scan", "{why}: {plan}"),
        }
        assert_eq!(
            plan["scores"].as_array().unwrap().len(),
            4,
            "every index is scored: {plan}"
        );
    }
    fx.db.close().await.unwrap();
}

#[tokio::test]
async fn explain_reports_bounds_and_order() {
    let fx = common::fixture().await;
    let q =
        Query::parse(&json!({"$filter": {"author": "@a", "ts": {"$gte": 14, "$lt": 21}}})).unwrap();
    let plan = fx.view.explain(&q, &QueryOpts::new());
    assert_eq!(plan["bounds"]["exact"], json!(["@a"]));
    assert_eq!(
        plan["bounds"]["range"]["lower"],
        json!({"value": 14, "inclusive": true})
    );
    assert_eq!(
        plan["bounds"]["range"]["upper"],
        json!({"value": 21, "inclusive": false})
    );
    assert_eq!(plan["order"], "log");
    let sorted = json!([{"$filter": {"author": {"$prefix": "@"}, "ts": {"$is": "number"}}}, {"$sort": [["author"], ["ts"]]}]);
    let plan = fx
        .view
        .explain(&Query::parse(&sorted).unwrap(), &QueryOpts::new());
    assert_eq!(
        plan["order"], "index",
        "a final $sort equal to the index's paths uses its order: {plan}"
    );
    let forced = fx.view.explain(&q, &QueryOpts::new().force_scan());
    assert_eq!(forced["plan"], "scan");
    fx.db.close().await.unwrap();
}
