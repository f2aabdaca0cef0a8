//! Appending records read from an input (ndjson, a JavaScript flumelog-offset file) in atomic
//! batches.
//!
//! A reader thread parses the input and sends whole batches through a short queue, so parsing
//! overlaps with appending. A batch is sent only once every record in it parsed: a bad line
//! therefore appends nothing from its batch, and the error says exactly which input lines (or
//! records) were appended before it. Batches are appended one after the other, in input order.

pub(crate) mod flumelog;
pub(crate) mod ndjson;

use anyhow::anyhow;
use flume_core::Seq;
use flume_store::{Record, Store};
use indicatif::ProgressBar;
use tokio::sync::mpsc;

/// Records per batch unless `--batch` says otherwise.
pub(crate) const DEFAULT_BATCH: usize = 1000;
/// A batch is also cut at this many input bytes, so huge records do not make huge batches.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// What a reader thread sends.
pub(crate) enum Item {
    /// Records covering input units (lines or records, counted from 1) `first..=last`.
    Batch {
        records: Vec<Record>,
        first: u64,
        last: u64,
        /// Input bytes consumed so far (for progress).
        consumed: u64,
    },
    /// Unit `at` cannot be read; the current batch, which began at unit `batch_first`, is dropped.
    Bad {
        message: String,
        batch_first: u64,
        at: u64,
    },
    /// The input could not be read.
    Failed(anyhow::Error),
    /// The input ended; `skipped` units held no record (deleted records of a JavaScript log).
    Done { skipped: u64 },
}

/// Collects records into batches and sends them.
pub(crate) struct Emitter {
    tx: mpsc::Sender<Item>,
    size: usize,
    records: Vec<Record>,
    bytes: usize,
    /// The first unit not yet sent in a batch.
    start: u64,
    last: u64,
}

impl Emitter {
    fn new(tx: mpsc::Sender<Item>, size: usize) -> Self {
        Emitter {
            tx,
            size: size.max(1),
            records: Vec::new(),
            bytes: 0,
            start: 1,
            last: 0,
        }
    }

    /// Add the record of unit `unit` (`len` input bytes). False when the receiver is gone.
    pub(crate) fn push(&mut self, unit: u64, record: Record, len: usize, consumed: u64) -> bool {
        self.records.push(record);
        self.bytes += len;
        self.last = unit;
        if self.records.len() >= self.size || self.bytes >= MAX_BATCH_BYTES {
            return self.send(consumed);
        }
        true
    }

    /// Send what is collected.
    fn send(&mut self, consumed: u64) -> bool {
        if self.records.is_empty() {
            return true;
        }
        let records = std::mem::take(&mut self.records);
        let item = Item::Batch {
            records,
            first: self.start,
            last: self.last,
            consumed,
        };
        self.start = self.last + 1;
        self.bytes = 0;
        self.tx.blocking_send(item).is_ok()
    }

    /// Unit `at` is bad: drop the current batch and report.
    pub(crate) fn bad(&mut self, at: u64, message: String) {
        let _ = self.tx.blocking_send(Item::Bad {
            message,
            batch_first: self.start,
            at,
        });
    }

    pub(crate) fn failed(&mut self, e: anyhow::Error) {
        let _ = self.tx.blocking_send(Item::Failed(e));
    }

    /// The input ended at `consumed` bytes.
    pub(crate) fn finish(&mut self, consumed: u64, skipped: u64) {
        if self.send(consumed) {
            let _ = self.tx.blocking_send(Item::Done { skipped });
        }
    }
}

/// Run `read` on its own thread, sending batches of `size` records.
pub(crate) fn spawn(
    size: usize,
    read: impl FnOnce(&mut Emitter) + Send + 'static,
) -> anyhow::Result<mpsc::Receiver<Item>> {
    let (tx, rx) = mpsc::channel(2);
    std::thread::Builder::new()
        .name("flume-input".into())
        .spawn(move || {
            let mut emitter = Emitter::new(tx, size);
            read(&mut emitter);
        })?;
    Ok(rx)
}

/// What was appended.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct Summary {
    pub(crate) records: u64,
    pub(crate) batches: u64,
    pub(crate) first: Option<Seq>,
    pub(crate) last: Option<Seq>,
    /// Input units with no record (deleted records of a JavaScript log).
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) skipped: u64,
    #[serde(skip)]
    last_unit: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Append every batch from `rx`, in order, calling `on_batch` with each batch's seqs. `unit` names
/// the input's units in messages ("line", "record"); `resume` turns the first unit not appended
/// into a hint on how to continue.
pub(crate) async fn append_all(
    store: &Store,
    mut rx: mpsc::Receiver<Item>,
    unit: &str,
    bar: &ProgressBar,
    resume: &dyn Fn(u64) -> String,
    mut on_batch: impl FnMut(&[Seq]) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let mut sum = Summary::default();
    let before = |sum: &Summary| {
        if sum.records == 0 {
            "nothing was appended".to_string()
        } else {
            format!(
                "{unit}s 1-{} were appended before it ({} records, seqs {}-{})",
                sum.last_unit,
                sum.records,
                sum.first.map_or(0, |s| s.0),
                sum.last.map_or(0, |s| s.0)
            )
        }
    };
    let mut done = false;
    while let Some(item) = rx.recv().await {
        match item {
            Item::Batch {
                records,
                first,
                last,
                consumed,
            } => {
                let n = records.len() as u64;
                let seqs = match store.db().append_batch(records).await {
                    Ok(seqs) => seqs,
                    Err(e) => {
                        return Err(anyhow!(
                            "{unit}s {first}-{last}: {}; nothing from them was appended; {}. {}",
                            e.error,
                            before(&sum),
                            resume(first)
                        ));
                    }
                };
                sum.records += n;
                sum.batches += 1;
                sum.first = sum.first.or(seqs.first().copied());
                sum.last = seqs.last().copied().or(sum.last);
                sum.last_unit = last;
                if bar.length().is_some() {
                    bar.set_position(consumed);
                } else {
                    bar.inc(n);
                }
                on_batch(&seqs)?;
            }
            Item::Bad {
                message,
                batch_first,
                at,
            } => {
                let batch = if batch_first == at {
                    format!("nothing from {unit} {at} on was appended")
                } else {
                    format!("nothing from its batch ({unit}s {batch_first}-{at}) was appended")
                };
                return Err(anyhow!(
                    "{message}; {batch}; {}. {}",
                    before(&sum),
                    resume(batch_first)
                ));
            }
            Item::Failed(e) => return Err(e.context(before(&sum))),
            Item::Done { skipped } => {
                sum.skipped = skipped;
                done = true;
            }
        }
    }
    if !done {
        return Err(anyhow!(
            "the input reader stopped unexpectedly (a bug: please report it); {}",
            before(&sum)
        ));
    }
    Ok(sum)
}
