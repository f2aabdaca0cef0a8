//! Live streams: Server-Sent Events resumed with `Last-Event-ID`, and subscribers that see the
//! writers' records in log order, exactly once.
#![allow(clippy::unwrap_used)]

mod common;

use common::{SseReader, TestServer};
use serde_json::{Value, json};

async fn append(http: &reqwest::Client, t: &TestServer, n: u64) -> u64 {
    let r: Value = http
        .post(t.url("/log"))
        .json(&json!({ "n": n }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resumes_after_last_event_id_exactly_once() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut written = Vec::new();
    for n in 0..50 {
        written.push(append(&http, &t, n).await);
    }
    // Read 20 events, then hang up.
    let mut seen: Vec<(u64, Value)> = Vec::new();
    {
        let mut sse = SseReader::new(http.get(t.url("/log?live=true")).send().await.unwrap());
        while seen.len() < 20 {
            let e = sse.next().await.unwrap();
            let data: Value = serde_json::from_str(&e.data).unwrap();
            let id: u64 = e.id.unwrap().parse().unwrap();
            assert_eq!(data["seq"], json!(id));
            seen.push((id, data["value"].clone()));
        }
    }
    // Written while nobody listens.
    for n in 50..80 {
        written.push(append(&http, &t, n).await);
    }
    // Resume from the last id seen; then more arrive live.
    let last = seen.last().unwrap().0;
    let mut sse = SseReader::new(
        http.get(t.url("/log?live=true"))
            .header("last-event-id", last.to_string())
            .send()
            .await
            .unwrap(),
    );
    let writer = {
        let (http, url) = (http.clone(), t.url("/log"));
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 80..120 {
                let r: Value = http
                    .post(&url)
                    .json(&json!({ "n": n }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                seqs.push(r["seq"].as_u64().unwrap());
            }
            seqs
        })
    };
    while seen.len() < 120 {
        let e = sse.next().await.unwrap();
        let data: Value = serde_json::from_str(&e.data).unwrap();
        seen.push((e.id.unwrap().parse().unwrap(), data["value"].clone()));
    }
    written.extend(writer.await.unwrap());
    let ids: Vec<u64> = seen.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, written, "every record exactly once, in log order");
    for (n, (_, value)) in seen.iter().enumerate() {
        assert_eq!(value, &json!({ "n": n }));
    }
    // Shutdown ends the stream with the id to resume from.
    t.server.shutdown().await;
    let close = sse.next().await.unwrap();
    assert_eq!(close.event.as_deref(), Some("close"));
    let data: Value = serde_json::from_str(&close.data).unwrap();
    assert_eq!(data["last_event_id"], json!(written.last().unwrap()));
    assert!(sse.next().await.is_none());
    t.store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_see_the_writers_records_in_the_same_order() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();
    let total = 300;
    let mut subscribers = Vec::new();
    for _ in 0..2 {
        let mut sse = SseReader::new(
            http.get(t.url("/log?live=true&output=seqs"))
                .send()
                .await
                .unwrap(),
        );
        subscribers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while ids.len() < total {
                let e = sse.next().await.unwrap();
                assert_eq!(e.id.as_deref(), Some(e.data.as_str()));
                ids.push(e.data.parse::<u64>().unwrap());
            }
            ids
        }));
    }
    // One sequential writer (its order is the log's), plus concurrent writers and batches,
    // through HTTP and memcached.
    let sequential = {
        let (http, url) = (http.clone(), t.url("/log"));
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..100 {
                let r: Value = http
                    .post(&url)
                    .json(&json!({ "w": 0, "n": n }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                seqs.push(r["seq"].as_u64().unwrap());
            }
            seqs
        })
    };
    let batches = {
        let (http, url) = (http.clone(), t.url("/log/batch"));
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..20 {
                let r: Value = http
                    .post(&url)
                    .json(&json!([{ "b": n }, { "b": n }, { "b": n }, { "b": n }, { "b": n }]))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                seqs.extend(
                    r["seqs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_u64().unwrap()),
                );
            }
            seqs
        })
    };
    let mut mc = common::Mc::connect(t.mc).await;
    for n in 0..100 {
        assert_eq!(mc.cmd(&format!("set k{n} 0 0 1\r\nx\r\n")).await, "STORED");
    }
    let sequential = sequential.await.unwrap();
    assert!(sequential.windows(2).all(|w| w[0] < w[1]));
    let mut all = sequential.clone();
    all.extend(batches.await.unwrap());
    let a = subscribers.remove(0).await.unwrap();
    let b = subscribers.remove(0).await.unwrap();
    assert_eq!(a, b, "both subscribers see one order");
    assert!(a.windows(2).all(|w| w[0] < w[1]), "log order");
    assert_eq!(a.len(), total);
    // The sequential writer's records appear in its order, and every HTTP write is there.
    let positions: Vec<usize> = sequential
        .iter()
        .map(|s| a.iter().position(|x| x == s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]));
    all.sort_unstable();
    assert!(all.iter().all(|s| a.binary_search(s).is_ok()));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_ndjson_honours_bounds_and_limits() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();
    let first = append(&http, &t, 0).await;
    let response = http
        .get(t.url(&format!(
            "/log?live=true&format=ndjson&gt={first}&limit=3&output=values"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = tokio::spawn(async move { response.text().await.unwrap() });
    for n in 1..=5 {
        append(&http, &t, n).await;
    }
    assert_eq!(body.await.unwrap(), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
    t.stop().await;
}
