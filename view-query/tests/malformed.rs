//! Malformed queries: the error names the stage and the operator at fault.

#![allow(clippy::unwrap_used)]

mod common;

use flume_view_query::{Query, QueryError, QueryOpts, QueryReads};
use futures::StreamExt;
use serde_json::{Value, json};

fn error(query: Value) -> String {
    match Query::parse(&query) {
        Err(e @ QueryError::Malformed { .. }) => e.to_string(),
        Err(other) => panic!("{query}: not a Malformed error: {other}"),
        Ok(_) => panic!("{query}: parsed, but it is malformed"),
    }
}

#[test]
fn every_operator_reports_its_stage_and_name() {
    let cases = [
        (
            json!([{"$map": "id"}, {"$filter": {"n": {"$gt": [1]}}}]),
            "stage 2 ($filter), operator $gt",
            "number, string or boolean",
        ),
        (
            json!({"$filter": {"n": {"$gte": {"a": 1}}}}),
            "stage 1 ($filter), operator $gte",
            "not",
        ),
        (
            json!({"$filter": {"n": {"$lt": null}}}),
            "operator $lt",
            "not null",
        ),
        (
            json!({"$filter": {"n": {"$lte": []}}}),
            "operator $lte",
            "not []",
        ),
        (
            json!({"$filter": {"s": {"$prefix": 3}}}),
            "operator $prefix",
            "expects a string",
        ),
        (
            json!({"$filter": {"s": {"$in": "abc"}}}),
            "operator $in",
            "array of values",
        ),
        (
            json!({"$filter": {"s": {"$is": "text"}}}),
            "operator $is",
            "type name",
        ),
        (
            json!({"$filter": {"s": {"$type": 7}}}),
            "operator $type",
            "type name",
        ),
        (
            json!({"$filter": {"s": {"$truthy": "yes"}}}),
            "operator $truthy",
            "true or false",
        ),
        (
            json!({"$filter": {"s": {"$not": {"$gt": {}}}}}),
            "operator $not",
            "number, string or boolean",
        ),
        (
            json!({"$filter": {"s": {"$regex": "a"}}}),
            "operator $regex",
            "not a filter operator",
        ),
        (
            json!({"$filter": {"s": {"$eq": 1, "plain": 2}}}),
            "stage 1 ($filter)",
            "cannot mix operators",
        ),
        (
            json!([{"$filter": {}}, {"$map": 5}]),
            "stage 2 ($map)",
            "key or a path",
        ),
        (
            json!({"$map": {"x": {"$sum": "n"}}}),
            "stage 1 ($map), operator $sum",
            "not a $map rule",
        ),
        (
            json!({"$reduce": {"total": {"$avg": "n"}}}),
            "stage 1 ($reduce), operator $avg",
            "not a reducer",
        ),
        (
            json!({"$reduce": {"total": {"$sum": 3}}}),
            "stage 1 ($reduce), operator $sum",
            "key or a path",
        ),
        (
            json!({"$reduce": {"c": {"$count": true, "$sum": "n"}}}),
            "stage 1 ($reduce)",
            "one operator",
        ),
        (json!({"$reduce": {}}), "stage 1 ($reduce)", "at least one"),
        (json!({"$reduce": "n"}), "stage 1 ($reduce)", "an object"),
        (json!([{"$sort": 1}]), "stage 1 ($sort)", "key or a path"),
        (json!([{"$group": "n"}]), "stage 1 (stage)", "not a stage"),
        (
            json!([{"$filter": {}, "$map": "n"}]),
            "stage 1 (stage)",
            "exactly one",
        ),
        (json!([5]), "stage 1 (stage)", "a stage is an object"),
        (json!("type"), "stage 0 (query)", "array of stages"),
    ];
    for (query, at, says) in cases {
        let msg = error(query.clone());
        assert!(msg.contains(at), "{query}: {msg:?} should name {at:?}");
        assert!(msg.contains(says), "{query}: {msg:?} should say {says:?}");
    }
}

#[tokio::test]
async fn live_queries_refuse_reduce_and_sort() {
    let fx = common::fixture().await;
    for (stages, stage) in [
        (json!([{"$reduce": {"$count": true}}]), "stage 1 ($reduce)"),
        (json!([{"$filter": {}}, {"$sort": "n"}]), "stage 2 ($sort)"),
    ] {
        let q = Query::parse(&stages).unwrap();
        let items: Vec<_> = fx.view.query(&q, QueryOpts::new().live()).collect().await;
        match items.as_slice() {
            [Err(e)] => assert!(
                e.to_string().contains(stage) && e.to_string().contains("live"),
                "{e}"
            ),
            other => panic!("expected one error, got {other:?}"),
        }
    }
    fx.db.close().await.unwrap();
}

#[test]
fn bad_json_text_is_a_malformed_query() {
    assert!(matches!(
        Query::from_json("[{\"$filter\":"),
        Err(QueryError::Malformed { .. })
    ));
}
