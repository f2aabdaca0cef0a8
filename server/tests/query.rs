//! `POST /query`: results as ndjson, explain, and clear errors for bad queries.

#![allow(clippy::unwrap_used)]

mod common;

use common::TestServer;
use serde_json::{Value, json};

async fn post(client: &reqwest::Client, ts: &TestServer, body: Value) -> (u16, String) {
    let r = client
        .post(ts.url("/query"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn queries_run_over_http() {
    let ts = TestServer::start().await;
    let client = reqwest::Client::new();
    for (t, n) in [("post", 1), ("like", 2), ("post", 3)] {
        let r = client
            .post(ts.url("/log"))
            .json(&json!({"type": t, "n": n}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let (status, text) = post(
        &client,
        &ts,
        json!({"query": [{"$filter": {"type": "post"}}, {"$map": "n"}], "reverse": true}),
    )
    .await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines.iter().map(|l| l["value"].clone()).collect::<Vec<_>>(),
        [json!(3), json!(1)]
    );
    assert!(lines.iter().all(|l| l["seq"].is_u64()));
    // The body may be the query itself.
    let (status, text) = post(&client, &ts, json!({"$reduce": {"$count": true}})).await;
    assert_eq!((status, text.trim()), (200, r#"{"seq":null,"value":3}"#));
    let (status, text) = post(
        &client,
        &ts,
        json!({"query": {"$filter": {"type": "post"}}, "explain": true}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["plan"],
        "scan"
    );
    ts.stop().await;
}

#[tokio::test]
async fn bad_queries_are_400_with_the_stage_and_operator() {
    let ts = TestServer::start().await;
    let client = reqwest::Client::new();
    let (status, text) = post(
        &client,
        &ts,
        json!({"query": [{"$filter": {"n": {"$gt": {}}}}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("stage 1 ($filter), operator $gt"), "{text}");
    let (status, text) = post(
        &client,
        &ts,
        json!({"query": {"$reduce": {"$count": true}}, "live": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("live"), "{text}");
    let (status, text) = post(&client, &ts, json!({"query": [], "limit": "ten"})).await;
    assert_eq!(status, 400);
    assert!(text.contains("limit"), "{text}");
    ts.stop().await;
}
