//! Newline-delimited JSON: one document per line; blank lines are skipped.

use std::io::BufRead;

use flume_core::Document;
use flume_store::Record;
use tokio::sync::mpsc;

use super::{Item, spawn};

/// Parse `input` on a reader thread into batches of `size` records. Units are line numbers.
pub(crate) fn read(
    mut input: Box<dyn BufRead + Send>,
    size: usize,
) -> anyhow::Result<mpsc::Receiver<Item>> {
    spawn(size, move |em| {
        let mut buf = Vec::with_capacity(1024);
        let (mut line, mut consumed) = (0u64, 0u64);
        loop {
            buf.clear();
            let n = match input.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    em.failed(anyhow::Error::new(e).context(format!("reading line {}", line + 1)));
                    return;
                }
            };
            line += 1;
            consumed += n as u64;
            let mut text = buf.trim_ascii();
            if line == 1 {
                text = text
                    .strip_prefix(b"\xEF\xBB\xBF".as_slice())
                    .unwrap_or(text);
                if text.first() == Some(&0) {
                    em.bad(
                        line,
                        "line 1 is binary, not JSON: if this is a JavaScript flumelog-offset log, import it with \
                         `flume import --from flumelog-offset FILE`"
                            .into(),
                    );
                    return;
                }
            }
            if text.is_empty() {
                continue;
            }
            match serde_json::from_slice::<Document>(text) {
                Ok(doc) => {
                    if !em.push(line, Record::from_document(doc), n, consumed) {
                        return;
                    }
                }
                Err(e) => {
                    em.bad(
                        line,
                        format!(
                            "line {line}, column {}: not valid JSON ({})",
                            e.column(),
                            reason(&e)
                        ),
                    );
                    return;
                }
            }
        }
        em.finish(consumed, 0);
    })
}

/// serde_json's message without its " at line L column C" (which counts within the line).
fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
