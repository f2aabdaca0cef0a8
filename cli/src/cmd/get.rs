//! `flume get SEQ`: print one record as JSON.

use std::path::Path;

use anyhow::{Context, bail};
use flume_core::{Log, Seq};

use crate::open;
use crate::out::Out;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The record's seq (as printed by append, stream or import)
    seq: u64,
}

pub(crate) async fn run(db: &Path, args: Args) -> anyhow::Result<()> {
    let Some(log) = open::read_log(db)? else {
        bail!("no record starts at seq {}: the log is empty", args.seq);
    };
    let seq = Seq(args.seq);
    let bytes = log
        .get(seq)
        .await
        .with_context(|| format!("cannot read seq {seq}"))?;
    let record = open::decode(seq, &bytes)?;
    let mut out = Out::new();
    out.json(&record)?;
    out.flush()
}
