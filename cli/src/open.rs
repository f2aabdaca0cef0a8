//! Opening a database directory: the whole store (views included) for commands that write or
//! read views, or only the log, read-only and without the writer lock, for commands that read
//! records (so they work beside a running writer).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use flume_core::{Codec, LogError, Postcard, Seq};
use flume_log_offset::{OffsetLog, Options};
use flume_store::{CONFIG_FILE, Config, Record, Store, StoreError};

/// The log's directory inside a database directory.
pub(crate) fn log_dir(db: &Path) -> PathBuf {
    db.join("log")
}

/// True when `db` holds a database (a log or a flume.toml).
pub(crate) fn exists(db: &Path) -> bool {
    log_dir(db).is_dir() || db.join(CONFIG_FILE).is_file()
}

/// Fail unless `db` holds a database, saying how to make one.
pub(crate) fn require(db: &Path) -> anyhow::Result<()> {
    if !exists(db) {
        bail!(
            "no Flume database at {}: create one with `flume init {}` or `flume append`, or point --db (or FLUME_DB) at one",
            db.display(),
            db.display()
        );
    }
    Ok(())
}

/// The directory's flume.toml, or the defaults.
pub(crate) fn config(db: &Path) -> anyhow::Result<Config> {
    Ok(Config::load(db)?)
}

/// The log options flume.toml asks for.
pub(crate) fn log_options(config: &Config) -> Options {
    Options::new()
        .durability(config.log.durability.into())
        .segment_size(config.log.segment_size)
        .max_record_size(config.log.max_record_size)
}

/// Open the whole database (created when `create`), with a hint when another process has it.
pub(crate) async fn store(db: &Path, create: bool) -> anyhow::Result<Store> {
    if !create {
        require(db)?;
    }
    Store::open(db).await.map_err(|e| explain(db, e))
}

fn explain(db: &Path, e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Log(LogError::Locked { holder }) => anyhow::anyhow!(
            "the database {} is in use by {holder} (another flume command, or `flume serve`): wait for it \
             to finish or stop it; `get`, `stream`, `export`, `stats` and `verify` work meanwhile",
            db.display()
        ),
        e => anyhow::Error::new(e).context(format!("cannot open the database {}", db.display())),
    }
}

/// The log opened read-only: no lock, nothing cut or written. `None` when the database has no log
/// yet.
pub(crate) fn read_log(db: &Path) -> anyhow::Result<Option<OffsetLog>> {
    require(db)?;
    let dir = log_dir(db);
    if !dir.is_dir() {
        return Ok(None);
    }
    let config = config(db)?;
    let options = log_options(&config)
        .read_only(true)
        .verify_tail_bytes(64 << 10);
    let log = OffsetLog::open_with(&dir, options)
        .with_context(|| format!("cannot read the log in {}", dir.display()))?;
    Ok(Some(log))
}

/// Decode a record read from the log.
pub(crate) fn decode(seq: Seq, bytes: &[u8]) -> anyhow::Result<Record> {
    Postcard
        .decode(bytes)
        .with_context(|| format!("record {seq} is not a record of a Flume database directory"))
}

/// The last record before the log's first damage (a full check of the log: for salvaging what
/// still reads after a read hit corruption).
pub(crate) fn last_readable(db: &Path) -> anyhow::Result<Option<Seq>> {
    let opts = log_options(&config(db)?);
    Ok(flume_log_offset::verify_with(log_dir(db), &opts, &mut |_| {})?.last)
}

/// The tighter of an upper bound and "up to `last`".
pub(crate) fn cap_upper(
    upper: std::ops::Bound<Seq>,
    last: Option<Seq>,
) -> Option<std::ops::Bound<Seq>> {
    use std::ops::Bound;
    let last = last?;
    Some(match upper {
        Bound::Included(u) if u <= last => upper,
        Bound::Excluded(u) if u.0 <= last.0 => upper,
        _ => Bound::Included(last),
    })
}
