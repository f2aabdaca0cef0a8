//! Logs written by the JavaScript `flumelog-offset` 3.x with the JSON codec (`flumecodec/json`),
//! so flumedb users can migrate.
//!
//! The file is a sequence of records, each
//!
//! ```text
//! length (u32 BE) | data (length bytes) | length (u32 BE) | end (u32, u48 or u53 BE)
//! ```
//!
//! where `end` is the file offset just after the record (the file's length once it was written)
//! in 4, 6 or 8 bytes: the `offsetCodec` option of 32 (the default), 48 or 53 bits. A record's
//! key in JavaScript is its starting byte offset. `data` is `JSON.stringify(value)` in UTF-8. A
//! deleted record (`log.del`) has its data overwritten with zero bytes; it is skipped. A crash
//! during an append leaves a record cut short at the end of the file: flumelog-offset truncates it
//! when it opens the file, and so this reader ignores it (with a warning).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use clap::ValueEnum;
use flume_core::Document;
use flume_store::Record;
use tokio::sync::mpsc;

use super::{Item, spawn};

/// The width of the end-of-record offsets (flumelog-offset's `offsetCodec`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OffsetBits {
    /// Detect it from the first record.
    Auto,
    /// 32-bit offsets (the default of flumelog-offset; files up to 4 GiB).
    #[value(name = "32")]
    B32,
    /// 48-bit offsets.
    #[value(name = "48")]
    B48,
    /// 53-bit offsets (8 bytes).
    #[value(name = "53")]
    B53,
}

impl OffsetBits {
    fn width(self) -> Option<u64> {
        match self {
            OffsetBits::Auto => None,
            OffsetBits::B32 => Some(4),
            OffsetBits::B48 => Some(6),
            OffsetBits::B53 => Some(8),
        }
    }
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b))
}

/// The offset width of the file, checked on its first record.
fn detect(path: &Path, len: u64, bits: OffsetBits) -> anyhow::Result<u64> {
    if len == 0 {
        return Ok(bits.width().unwrap_or(4));
    }
    let mut f = File::open(path)?;
    let mut head = [0u8; 4];
    f.read_exact(&mut head)
        .context("the file is shorter than one record header")?;
    let n = be(&head);
    let want = (n + 16).min(len);
    let mut first = vec![0u8; usize::try_from(want).unwrap_or(0)];
    File::open(path)?.read_exact(&mut first)?;
    let fits = |w: u64| {
        let end = 8 + n + w;
        end <= len
            && be(&first[(4 + n) as usize..(8 + n) as usize]) == n
            && be(&first[(8 + n) as usize..end as usize]) == end
    };
    if n + 8 > len {
        bail!(
            "{}: the first record claims {n} bytes but the file has {len}: this is not a flumelog-offset 3.x log (or it is damaged)",
            path.display()
        );
    }
    match bits.width() {
        Some(w) if fits(w) => Ok(w),
        Some(w) => bail!(
            "{}: the first record does not end with a {}-bit offset: try `--offset-bits auto`; logs written by \
             flumelog-offset before 3.0 are not supported",
            path.display(),
            match w {
                4 => 32,
                6 => 48,
                _ => 53,
            }
        ),
        None => [4, 6, 8].into_iter().find(|&w| fits(w)).with_context(|| {
            format!(
                "{}: the first record ends with no 32-, 48- or 53-bit offset: this is not a flumelog-offset 3.x log \
                 (logs written before 3.0 are not supported)",
                path.display()
            )
        }),
    }
}

/// Read the log at `path` on a reader thread into batches of `size` records. Units are record
/// numbers (from 1); messages also give byte offsets (the JavaScript keys). Returns the offset
/// width in bits.
pub(crate) fn read(
    path: &Path,
    bits: OffsetBits,
    size: usize,
) -> anyhow::Result<(mpsc::Receiver<Item>, u32)> {
    let len = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let w = detect(path, len, bits)?;
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.display().to_string();
    let rx = spawn(size, move |em| {
        let mut r = BufReader::with_capacity(256 << 10, file);
        let (mut pos, mut unit, mut skipped) = (0u64, 0u64, 0u64);
        let mut data = Vec::new();
        let mut word = [0u8; 12];
        while pos < len {
            unit += 1;
            let at = |what: &str| format!("{name}: record {unit} (byte offset {pos}): {what}");
            if pos + 4 > len {
                tracing::warn!(
                    "{}",
                    at(
                        "ignoring a record cut short at the end of the file (an interrupted append)"
                    )
                );
                break;
            }
            if let Err(e) = r.read_exact(&mut word[..4]) {
                em.failed(anyhow::Error::new(e).context(at("cannot read")));
                return;
            }
            let n = be(&word[..4]);
            let end = pos + 8 + n + w;
            if end > len {
                tracing::warn!(
                    "{}",
                    at(&format!(
                        "ignoring the {} bytes of a record cut short at the end of the file (an interrupted append)",
                        len - pos
                    ))
                );
                break;
            }
            data.resize(n as usize, 0);
            let tail = &mut word[..(4 + w) as usize];
            let read = r.read_exact(&mut data).and_then(|()| r.read_exact(tail));
            if let Err(e) = read {
                em.failed(anyhow::Error::new(e).context(at("cannot read")));
                return;
            }
            if be(&tail[..4]) != n {
                em.bad(
                    unit,
                    at("the trailing length does not match the leading one: the file is damaged"),
                );
                return;
            }
            if be(&tail[4..]) != end {
                em.bad(
                    unit,
                    at(&format!(
                        "the record's end offset says {} but it ends at {end}: the file is damaged",
                        be(&tail[4..])
                    )),
                );
                return;
            }
            pos = end;
            if data.iter().all(|b| *b == 0) {
                // Deleted with `log.del`: flumelog-offset skips it too.
                skipped += 1;
                continue;
            }
            match serde_json::from_slice::<Document>(&data) {
                Ok(doc) => {
                    if !em.push(unit, Record::from_document(doc), data.len(), pos) {
                        return;
                    }
                }
                Err(e) => {
                    let why = format!(
                        "not JSON ({e}): was the log written with flumecodec's json codec?"
                    );
                    em.bad(
                        unit,
                        format!(
                            "{name}: record {unit} (byte offset {}): {why}",
                            pos - (8 + n + w)
                        ),
                    );
                    return;
                }
            }
        }
        em.finish(pos, skipped);
    })?;
    Ok((rx, (w * 8).min(53) as u32))
}
