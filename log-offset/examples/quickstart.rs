//! Flume end to end on the embedded default, the durable file log: a database of JSON documents
//! with a view, gated reads, a stream, a live subscription and a rebuild.
//!
//! Run it with `cargo run -p flume-log-offset --example quickstart [DIR]` (default
//! `./flume-quickstart`). Run it again: the log keeps every earlier run's records.

use std::collections::BTreeMap;
use std::sync::Mutex;

use flume_core::{Db, Document, Postcard, Seq, StreamOpts, View, ViewError, ViewMeta, async_trait};
use flume_log_offset::OffsetLog;
use futures::{StreamExt, TryStreamExt};

/// A view that counts documents by their `type` field (kept in memory here).
#[derive(Default)]
struct CountByType {
    state: Mutex<(BTreeMap<String, u64>, Option<Seq>)>,
}

impl CountByType {
    fn counts(&self) -> BTreeMap<String, u64> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }
}

#[async_trait]
impl View<Document> for CountByType {
    fn version(&self) -> u32 {
        1
    }
    async fn open(&self) -> Result<ViewMeta, ViewError> {
        Ok(ViewMeta::default())
    }
    fn since(&self) -> Option<Seq> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1
    }
    async fn apply(&self, batch: &[(Seq, &Document)]) -> Result<(), ViewError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (seq, doc) in batch {
            let kind = doc
                .path(&["type"])
                .and_then(|v| v.as_str())
                .unwrap_or("(none)");
            *state.0.entry(kind.to_string()).or_default() += 1;
            state.1 = Some(*seq);
        }
        Ok(())
    }
    async fn destroy(&self) -> Result<(), ViewError> {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
        Ok(())
    }
    async fn close(&self) -> Result<(), ViewError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "flume-quickstart".into());
    let db: Db<Document> = Db::open(OffsetLog::open(&dir)?, Postcard).await?;
    println!(
        "database in {dir}: {} record(s) from earlier runs",
        db.stream(StreamOpts::new().seqs()).count().await
    );
    let counts = db.use_view("count_by_type", CountByType::default()).await?;

    // A live subscription: everything appended from now on, in log order.
    let mut live = db.stream(StreamOpts::new().live().old(false));

    let docs = [
        r#"{"type":"post","author":"@alice","text":"hello flume"}"#,
        r#"{"type":"like","author":"@bob","of":0}"#,
        r#"{"type":"post","author":"@bob","text":"héllo wörld 🦀"}"#,
    ];
    let batch: Vec<Document> = docs.iter().map(|d| d.parse()).collect::<Result<_, _>>()?;
    let seqs = db.append_batch(batch).await?;
    println!("appended {} documents at seqs {seqs:?}", seqs.len());

    // Gated read: waits until the view includes the batch just appended.
    println!("count by type: {:?}", counts.ready().await?.counts());

    println!("newest first:");
    let newest: Vec<_> = db
        .stream(StreamOpts::new().reverse().limit(2))
        .try_collect()
        .await?;
    for item in newest {
        println!(
            "  {} {}",
            item.seq().map_or(0, Seq::get),
            item.value().map(|d| d.to_string()).unwrap_or_default()
        );
    }

    for _ in 0..seqs.len() {
        if let Some(item) = live.next().await {
            println!(
                "live: {}",
                item?
                    .into_value()
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            );
        }
    }

    db.rebuild(Some("count_by_type")).await?;
    for status in db.status() {
        println!(
            "view {}: v{} since {:?} lag {} {}",
            status.name, status.version, status.since, status.lag, status.state
        );
    }
    println!("after rebuild: {:?}", counts.ready().await?.counts());
    db.close().await?;
    Ok(())
}
