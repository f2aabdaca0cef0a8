//! The HTTP API with a real client (reqwest) over loopback.
#![allow(clippy::unwrap_used)]

mod common;

use common::{SseReader, TestServer};
use flume_server::Limits;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_get_stream_views_and_errors() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();

    let one: Value = http
        .post(t.url("/log"))
        .body(r#"{"type":"post","n":1}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = one["seq"].as_u64().unwrap();
    let batch: Value = http
        .post(t.url("/log/batch"))
        .json(&json!([{"n": 2}, {"n": 3}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seqs: Vec<u64> = batch["seqs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 2);
    assert!(first < seqs[0] && seqs[0] < seqs[1]);

    let got: Value = http
        .get(t.url(&format!("/log/{}", seqs[1])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, json!({"seq": seqs[1], "value": {"n": 3}}));

    // ndjson, with the log's options.
    let text = http
        .get(t.url("/log"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0],
        json!({"seq": first, "value": {"type": "post", "n": 1}})
    );
    let text = http
        .get(t.url(&format!("/log?reverse=true&output=values&gt={first}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, "{\"n\":3}\n{\"n\":2}\n");
    let text = http
        .get(t.url("/log?output=seqs&limit=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text, format!("{first}\n{}\n", seqs[0]));

    // SSE without live ends after the old records.
    let response = http
        .get(t.url("/log?format=sse&output=values"))
        .send()
        .await
        .unwrap();
    let mut sse = SseReader::new(response);
    let mut ids = Vec::new();
    while let Some(e) = sse.next().await {
        ids.push(e.id.unwrap().parse::<u64>().unwrap());
    }
    assert_eq!(ids, [first, seqs[0], seqs[1]]);

    // Views.
    let views: Value = http
        .get(t.url("/views"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = views
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kv", "count", "query"]);
    let count: Value = http
        .get(t.url("/views/count"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(count["value"], json!(3));
    assert_eq!(count["state"], "live");

    // Health and metrics.
    let health: Value = http
        .get(t.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["since"], json!(seqs[1]));
    let metrics = http
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("flume_appends_total 3\n"), "{metrics}");
    assert!(metrics.contains("flume_view_lag{view=\"kv\"}"), "{metrics}");
    assert!(
        metrics.contains("# TYPE flume_subscribers gauge"),
        "{metrics}"
    );

    // Errors: status codes and a JSON message.
    for (method, path, body, status) in [
        ("POST", "/log", "not json", 400),
        ("POST", "/log/batch", "{}", 400),
        (
            "POST",
            "/log",
            r#"{"$kv":"put","key":"nocollection","value":1}"#,
            400,
        ),
        ("GET", "/log/1", "", 404),
        ("GET", "/log/abc", "", 400),
        ("GET", "/log?live=true&reverse=true", "", 400),
        ("GET", "/log?old=false", "", 400),
        ("GET", "/log?colour=red", "", 400),
        ("GET", "/views/nope", "", 404),
        ("GET", "/kv/users/nobody", "", 404),
        ("GET", "/nowhere", "", 404),
    ] {
        let request = match method {
            "POST" => http.post(t.url(path)).body(body),
            _ => http.get(t.url(path)),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: {error}"
        );
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_over_http_and_memcached() {
    let t = TestServer::start_with(Limits::default().max_value_bytes(1000)).await;
    let http = reqwest::Client::new();

    // A document.
    let put: Value = http
        .put(t.url("/kv/users/amy"))
        .json(&json!({"name": "Amy"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let seq = put["seq"].as_u64().unwrap();
    let got = http.get(t.url("/kv/users/amy")).send().await.unwrap();
    assert_eq!(got.headers()["x-flume-seq"], seq.to_string().as_str());
    assert_eq!(got.json::<Value>().await.unwrap(), json!({"name": "Amy"}));

    // Raw bytes with flags, read back through memcached (collection "mc").
    let put = http
        .put(t.url("/kv/mc/blob?flags=7"))
        .header("content-type", "application/octet-stream")
        .body(vec![0u8, 1, 2, 255])
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success());
    let mut mc = common::Mc::connect(t.mc).await;
    let hits = mc.get("get blob\r\n").await;
    assert_eq!(hits, [("blob".to_string(), 7, None, vec![0, 1, 2, 255])]);

    // And a memcached value read over HTTP.
    assert_eq!(mc.cmd("set greeting 3 0 5\r\nhello\r\n").await, "STORED");
    let got = http.get(t.url("/kv/mc/greeting")).send().await.unwrap();
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    assert_eq!(got.headers()["x-flume-flags"], "3");
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"hello");

    // Members with `/`, listing, conditional writes, deletes.
    http.put(t.url("/kv/users/bob/2"))
        .json(&json!(2))
        .send()
        .await
        .unwrap();
    let list: Value = http
        .get(t.url("/kv/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let members: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["amy", "bob/2"]);
    let stale = http
        .put(t.url("/kv/users/amy"))
        .header("if-match", (seq + 1).to_string())
        .json(&json!(0))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let fresh = http
        .put(t.url("/kv/users/amy"))
        .header("if-match", seq.to_string())
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert!(fresh.status().is_success());
    assert_eq!(
        http.delete(t.url("/kv/users/amy"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        http.delete(t.url("/kv/users/amy"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert!(
        http.delete(t.url("/kv/users"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let list: Value = http
        .get(t.url("/kv/users"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));

    // Limits and bad keys.
    let big = http
        .put(t.url("/kv/users/big"))
        .header("content-type", "application/octet-stream")
        .body(vec![1u8; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    let bad = http
        .put(t.url("/kv/users/a%0Ab"))
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let expired = http
        .put(t.url("/kv/users/old?expires=1"))
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert!(expired.status().is_success());
    assert_eq!(
        http.get(t.url("/kv/users/old"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_size_and_connection_limits() {
    let limits = Limits::default().max_request_bytes(4096).max_connections(2);
    let t = TestServer::start_with(limits).await;
    let http = reqwest::Client::new();
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    let response = http.post(t.url("/log")).body(big).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 413);

    // Two connections held open; a third is refused with 503 and closed.
    let a = tokio::net::TcpStream::connect(t.http).await.unwrap();
    let b = tokio::net::TcpStream::connect(t.http).await.unwrap();
    let mut c = tokio::net::TcpStream::connect(t.http).await.unwrap();
    let mut reply = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut c, &mut reply)
        .await
        .unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    drop((a, b));
    t.stop().await;
}
