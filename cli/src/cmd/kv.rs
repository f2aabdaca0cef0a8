//! `flume kv get|put|delete|list`: the key-value view. Keys are `collection/member`.
//!
//! Values are JSON documents or raw bytes. On output a value comes with its `encoding`: `json`
//! for documents, `utf-8` for bytes that are valid UTF-8 (printed as a string), `base64`
//! otherwise. `kv get --raw` prints the value alone (bytes as they are).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use flume_core::{Document, Seq};
use flume_store::Store;
use flume_view_index::{KvDb, KvEntry, KvReads, KvValue};
use serde_json::{Value, json};

use crate::app::Exit;
use crate::open;
use crate::out::{self, Format, Out};

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Print a key's value and metadata (exit 1 when absent)
    Get {
        /// The key, `collection/member`
        key: String,
        /// Print the value alone: a document as JSON, bytes as they are
        #[arg(long)]
        raw: bool,
    },
    /// Set a key: VALUE is stored as a JSON document when it parses as JSON, else as bytes
    Put {
        /// The key, `collection/member`
        key: String,
        /// The value (or --file)
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Store VALUE as raw bytes (its UTF-8), even when it parses as JSON
        #[arg(long)]
        bytes: bool,
        /// Store the bytes of this file (`-` for stdin)
        #[arg(long, value_name = "PATH")]
        file: Option<PathBuf>,
        /// Opaque client flags stored with the value (memcached's)
        #[arg(long, value_name = "N", default_value_t = 0)]
        flags: u32,
        /// Unix time in seconds after which the key reads as absent (0: never)
        #[arg(long, value_name = "UNIX_SECONDS", default_value_t = 0)]
        expires: u64,
    },
    /// Remove a key, or every member of a collection
    Delete {
        /// The key, `collection/member`
        #[arg(required_unless_present = "collection", conflicts_with = "collection")]
        key: Option<String>,
        /// Remove every member of this collection instead
        #[arg(long, value_name = "COLLECTION")]
        collection: Option<String>,
    },
    /// Print every member of a collection, in key order
    List {
        /// The collection
        collection: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

pub(crate) async fn run(db: &Path, command: Command) -> anyhow::Result<()> {
    let writes = matches!(command, Command::Put { .. } | Command::Delete { .. });
    // Read the value before opening the database (stdin may be slow).
    let value = match &command {
        Command::Put {
            value, bytes, file, ..
        } => Some(read_value(value.as_deref(), *bytes, file.as_deref())?),
        _ => None,
    };
    let store = open::store(db, writes).await?;
    let result = run_on(&store, command, value).await;
    let closed = store.close().await;
    result?;
    Ok(closed?)
}

async fn run_on(store: &Store, command: Command, value: Option<KvValue>) -> anyhow::Result<()> {
    let mut out = Out::new();
    match command {
        Command::Get { key, raw } => {
            let Some(entry) = store.kv()?.get(&key).await? else {
                eprintln!("error: no value for key {key:?} (never put, deleted, or expired)");
                return Err(Exit(1).into());
            };
            if raw {
                match &entry.value {
                    KvValue::Bytes(b) => out.bytes(b)?,
                    KvValue::Document(d) => out.json(d)?,
                }
            } else {
                out.json(&entry_json(&key, &entry))?;
            }
        }
        Command::Put {
            key,
            flags,
            expires,
            ..
        } => {
            let value = value.ok_or_else(|| anyhow!("no value given"))?;
            let seq = store.db().kv_put_with(&key, value, flags, expires).await?;
            out.json(&seq.0)?;
        }
        Command::Delete { key, collection } => {
            let seq: Seq = match (key, collection) {
                (_, Some(c)) => store.db().kv_delete_all(&c).await?,
                (Some(k), None) => store.db().kv_delete(&k).await?,
                (None, None) => bail!("give a key, or --collection"),
            };
            out.json(&seq.0)?;
        }
        Command::List { collection, format } => {
            let members = store.kv()?.get_all(&collection).await?;
            match format {
                Format::Json => {
                    for (member, entry) in &members {
                        out.json(&entry_json(&format!("{collection}/{member}"), entry))?;
                    }
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = members
                        .iter()
                        .map(|(member, e)| {
                            let (value, encoding) = out::kv_value(&e.value);
                            let text = match value {
                                Value::String(s) if encoding != "json" => s,
                                v => v.to_string(),
                            };
                            vec![
                                format!("{collection}/{member}"),
                                e.seq.0.to_string(),
                                encoding.into(),
                                shorten(&text, 60),
                            ]
                        })
                        .collect();
                    out.text(&out::table(&["key", "seq", "encoding", "value"], &rows))?;
                }
            }
        }
    }
    out.flush()
}

/// The value `kv put` stores.
fn read_value(value: Option<&str>, bytes: bool, file: Option<&Path>) -> anyhow::Result<KvValue> {
    if let Some(path) = file {
        let mut buf = Vec::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read stdin")?;
        } else {
            buf = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        return Ok(KvValue::Bytes(buf));
    }
    let text = value.ok_or_else(|| anyhow!("give a VALUE or --file"))?;
    if bytes {
        return Ok(KvValue::Bytes(text.as_bytes().to_vec()));
    }
    Ok(match Document::from_json(text) {
        Ok(doc) => KvValue::Document(doc),
        Err(_) => {
            tracing::info!("the value is not JSON: stored as bytes (its UTF-8)");
            KvValue::Bytes(text.as_bytes().to_vec())
        }
    })
}

fn entry_json(key: &str, e: &KvEntry) -> Value {
    let (value, encoding) = out::kv_value(&e.value);
    json!({
        "key": key,
        "seq": e.seq.0,
        "flags": e.flags,
        "expires": e.expires,
        "encoding": encoding,
        "value": value,
    })
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max - 1).collect();
    t.push('…');
    t
}
