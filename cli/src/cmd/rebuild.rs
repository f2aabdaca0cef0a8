//! `flume rebuild [VIEW]`: destroy views and rebuild them from the log, with a progress bar.

use std::path::Path;
use std::time::{Duration, Instant};

use flume_store::Store;
use serde_json::{Value, json};

use crate::out::Out;
use crate::{open, progress};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The view to rebuild (default: every view)
    view: Option<String>,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let store = open::store(db, false).await?;
    let result = rebuild(&store, args.view.as_deref(), &mut |line| {
        let mut out = Out::new();
        out.json(&line)?;
        out.flush()
    })
    .await;
    let closed = store.close().await;
    result?;
    Ok(closed?)
}

/// Rebuild `view` (or all), one after the other, reporting each as a JSON object.
pub(crate) async fn rebuild(
    store: &Store,
    view: Option<&str>,
    report: &mut dyn FnMut(Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let Some(first) = store.log().first().filter(|s| s.0 > 0) {
        // A log starts at seq 0: records below `first` were retired (`flume retire`).
        tracing::warn!(
            "the records below seq {first} were retired (or their files removed): the rebuilt views see only those from there on"
        );
    }
    let names: Vec<String> = match view {
        Some(name) => {
            store.view(name)?;
            vec![name.to_string()]
        }
        None => store.views().iter().map(|(n, _)| n.clone()).collect(),
    };
    for name in names {
        let started = Instant::now();
        // The bar runs over the log's seqs (bytes for the file log): done = log since - lag.
        let total = store.db().since().map_or(0, |s| s.0 + 1);
        let bar = progress::bytes(total, &name);
        let rebuild = store.db().rebuild(Some(&name));
        tokio::pin!(rebuild);
        let done = loop {
            tokio::select! {
                r = &mut rebuild => break r,
                () = tokio::time::sleep(Duration::from_millis(100)) => {
                    let lag = store.view(&name)?.status().lag;
                    bar.set_position(total.saturating_sub(lag));
                }
            }
        };
        bar.finish_and_clear();
        done?;
        let status = store.view(&name)?.status();
        report(json!({
            "view": name,
            "since": status.since.map(|s| s.0),
            "state": status.state.to_string(),
            "seconds": (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        }))?;
    }
    Ok(())
}
