//! The table-driven corpus (tests/data/corpus.json): every case runs through the index the
//! planner picks and through a forced full scan, and both must equal the expected result.

#![allow(clippy::unwrap_used)]

mod common;

use flume_view_query::{Query, QueryOpts, QueryReads};
use serde_json::Value;

fn opts(case: &Value) -> QueryOpts {
    let mut o = QueryOpts::new();
    if let Some(n) = case["opts"]["limit"].as_u64() {
        o = o.limit(n as usize);
    }
    if case["opts"]["reverse"].as_bool() == Some(true) {
        o = o.reverse();
    }
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corpus_through_the_planner_and_a_full_scan() {
    let fx = common::fixture().await;
    let corpus: Value = serde_json::from_str(common::CORPUS).unwrap();
    let cases = corpus["cases"].as_array().unwrap();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    let mut indexed = 0;
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let query = Query::parse(&case["query"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected: Vec<Value> = match (&case["expect"], &case["expect_ids"]) {
            (Value::Array(v), _) => v.clone(),
            (_, Value::Array(ids)) => ids.clone(),
            _ => panic!("{name}: no expectation"),
        };
        let by_id = case.get("expect_ids").is_some();
        let plan = fx.view.explain(&query, &opts(case));
        if plan["plan"] == "index" {
            indexed += 1;
        }
        for (how, o) in [("planned", opts(case)), ("scan", opts(case).force_scan())] {
            let mut got = common::run(&fx.view, &query, o).await;
            if by_id {
                got = got.into_iter().map(|d| d["id"].clone()).collect();
            }
            if got != expected {
                failures.push(format!(
                    "{name} ({how}, plan {plan}):\n   got      {got:?}\n   expected {expected:?}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        indexed >= 20,
        "only {indexed} cases used an index: the corpus should exercise the planner"
    );
    fx.db.close().await.unwrap();
}
