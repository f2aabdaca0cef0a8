//! A Flume database directory, opened as one: the durable file log of [`Record`]s, the LMDB
//! views and the reduce views that `flume.toml` declares. The `flume` CLI and `flume serve` both
//! open databases through [`Store`].
//!
//! It is not needed to embed Flume: a program can open a `Db` over any log with its own record
//! type and views. This crate fixes those choices for the command line and the server.
//!
//! ```
//! use flume_store::{Record, Store, StoreView};
//! use flume_view_index::{KvDb, KvReads, KvValue};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! // No flume.toml: the defaults (durable log, a key-value view "kv", a count "count").
//! let store = Store::open(dir.path()).await?;
//! store.db().append(Record::from_document(r#"{"type":"post"}"#.parse()?)).await?;
//! store.db().kv_put("users/amy", KvValue::Bytes(b"hi".to_vec())).await?;
//! assert_eq!(store.view("count")?.value().await?, Some(serde_json::json!(2)));
//! assert!(store.kv()?.get("users/amy").await?.is_some());
//! store.close().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod error;
mod record;
mod retain;
mod size;
mod store;
mod views;

pub use config::{
    CONFIG_FILE, Config, DocPath, DurabilityName, LogConfig, QueryIndex, TEMPLATE, ViewKind,
    ViewSpec,
};
pub use error::StoreError;
pub use record::Record;
pub use retain::{Planned, Retired};
pub use size::parse_size;
pub use store::{Store, StoredView};
pub use views::StoreView;
