//! `flume export`: every record as one JSON document per line, oldest first.
//!
//! Documents are printed as they are; key-value records as their `{"$kv": ...}` documents (raw
//! bytes as a `"bytes"` array), which is how `flume import` and `flume append` read them back, so
//! `flume export | flume --db NEW import` rebuilds the same records and views. Seqs are not
//! exported: the new log assigns its own.

use std::ops::Bound;
use std::path::Path;

use flume_core::{Item, Log, LogError, StreamOpts};
use futures::TryStreamExt;

use crate::app::Exit;
use crate::out::Out;
use crate::{open, progress};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

pub(crate) async fn run(db: &Path, _args: Args) -> anyhow::Result<()> {
    let Some(log) = open::read_log(db)? else {
        return Ok(());
    };
    let total = log.current_since().map_or(0, |s| s.0);
    let bar = progress::bytes(total, "exporting");
    let mut out = Out::new();
    let mut n = 0u64;
    let mut damage = log.corruption();
    let mut lower = Bound::Unbounded;
    let mut upper = Bound::Unbounded;
    loop {
        let mut opts = StreamOpts::new();
        (opts.lower, opts.upper) = (lower, upper);
        let mut records = log.stream(opts);
        let failed = loop {
            match records.try_next().await {
                Ok(Some(Item::Record { seq, value })) => {
                    out.json(&open::decode(seq, &value)?)?;
                    lower = Bound::Excluded(seq);
                    n += 1;
                    if n.is_multiple_of(4096) {
                        bar.set_position(seq.0);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => break None,
                Err(e @ LogError::Corrupt { .. }) => break Some(e),
                Err(e) => return Err(e.into()),
            }
        };
        match failed {
            // Reads fail a whole chunk at a time: export what precedes the damage, then stop.
            Some(e) if damage.is_none() => {
                damage = Some(e);
                match open::cap_upper(Bound::Unbounded, open::last_readable(db)?) {
                    Some(u) => upper = u,
                    None => break,
                }
            }
            _ => break,
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    tracing::debug!("exported {n} records");
    if let Some(e) = damage {
        eprintln!(
            "error: {e}\nexported the {n} records before the damage; run `flume verify` for details and `flume repair` to cut the log there"
        );
        return Err(Exit(1).into());
    }
    log.close().await?;
    Ok(())
}
