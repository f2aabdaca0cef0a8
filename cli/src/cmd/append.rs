//! `flume append [JSON...]`: append documents given as arguments (one atomic batch), or ndjson
//! from stdin in atomic batches, printing each record's seq on its own line.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::anyhow;
use flume_core::Document;
use flume_store::Record;

use crate::input::{self, DEFAULT_BATCH, ndjson};
use crate::out::Out;
use crate::{open, progress};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// JSON documents, appended together as one atomic batch. Without any, ndjson (one document
    /// per line) is read from stdin
    #[arg(value_name = "JSON")]
    documents: Vec<String>,
    /// Records per atomic batch when reading stdin: a line that is not JSON appends nothing from
    /// its batch
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BATCH as u32, value_parser = clap::value_parser!(u32).range(1..))]
    batch: u32,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let mut records = Vec::with_capacity(args.documents.len());
    for (i, text) in args.documents.iter().enumerate() {
        let doc = Document::from_json(text).map_err(|e| {
            anyhow!("argument {} is not valid JSON ({e}); nothing was appended (quote documents for the shell: '{{\"a\":1}}')", i + 1)
        })?;
        records.push(Record::from_document(doc));
    }
    let store = open::store(db, true).await?;
    let mut out = Out::new();
    let result = async {
        if !records.is_empty() {
            let seqs = store
                .db()
                .append_batch(records)
                .await
                .map_err(|e| anyhow!("{}; nothing was appended", e.error))?;
            for seq in seqs {
                out.json(&seq.0)?;
            }
            return out.flush();
        }
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            tracing::info!(
                "reading ndjson from the terminal: one JSON document per line, Ctrl-D to end"
            );
        }
        let rx = ndjson::read(
            Box::new(std::io::BufReader::with_capacity(256 << 10, stdin)),
            args.batch as usize,
        )?;
        let bar = progress::records("appending");
        let resume = |line: u64| {
            format!("Fix it, then append the rest with `tail -n +{line} FILE | flume append`")
        };
        let sum = input::append_all(&store, rx, "line", &bar, &resume, |seqs| {
            for seq in seqs {
                out.json(&seq.0)?;
            }
            out.flush()
        })
        .await;
        bar.finish_and_clear();
        let sum = sum?;
        tracing::debug!(
            "appended {} records in {} batches",
            sum.records,
            sum.batches
        );
        Ok(())
    }
    .await;
    let closed = store.close().await;
    result?;
    Ok(closed?)
}
