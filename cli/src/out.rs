//! Writing data to stdout: JSON lines, and aligned tables for people.

use std::io::{BufWriter, Stdout, Write};

use base64::Engine;
use clap::ValueEnum;
use flume_view_index::KvValue;
use serde::Serialize;
use serde_json::{Value, json};

/// How a command prints its data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// JSON: one object per line (ndjson) for lists.
    #[default]
    Json,
    /// An aligned table for people.
    Table,
}

/// Buffered stdout. Call [`flush`](Out::flush) when a reader should see what was written (live
/// streams) and at the end.
pub(crate) struct Out {
    w: BufWriter<Stdout>,
}

impl Out {
    pub(crate) fn new() -> Self {
        Out {
            w: BufWriter::with_capacity(64 << 10, std::io::stdout()),
        }
    }

    /// One JSON value and a newline.
    pub(crate) fn json(&mut self, value: &impl Serialize) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.w, value)?;
        self.w.write_all(b"\n")?;
        Ok(())
    }

    /// Text as it is.
    pub(crate) fn text(&mut self, text: &str) -> anyhow::Result<()> {
        self.w.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Raw bytes as they are.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.w.write_all(bytes)?;
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> anyhow::Result<()> {
        self.w.flush()?;
        Ok(())
    }
}

/// Rows under a header, columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut s = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            l.push_str(cell);
            l.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        s.push_str(l.trim_end());
        s.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    s
}

/// An optional number for a table cell.
pub(crate) fn cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A key-value value as JSON with its encoding: documents as themselves (`"json"`), bytes as
/// text when they are UTF-8 (`"utf-8"`), else base64 (`"base64"`).
pub(crate) fn kv_value(value: &KvValue) -> (Value, &'static str) {
    match value {
        KvValue::Document(d) => (d.0.clone(), "json"),
        KvValue::Bytes(b) => match std::str::from_utf8(b) {
            Ok(text) => (json!(text), "utf-8"),
            Err(_) => (
                json!(base64::engine::general_purpose::STANDARD.encode(b)),
                "base64",
            ),
        },
    }
}

/// A byte count for people.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
