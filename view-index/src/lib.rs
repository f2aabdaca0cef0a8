//! Flume views on LMDB: indexes in key order and the collection/member key-value view.
//!
//! An [`Index`] maps each record to index operations (put or delete a key tuple); its reads
//! ([`IndexReads`]) look records up by key or by range, in the order of [`key::encode`], which
//! sorts tuples of document values (null < false < true < numbers < strings < arrays < objects,
//! numbers numerically). The [`KeyValue`] view keeps `collection/member` keys written by log
//! records ([`KvRecord`]), so every write is durable, ordered and visible to log subscribers.
//!
//! All views of a database directory share one LMDB environment ([`Lmdb`]); each view's rows and
//! its `since` are committed in one write transaction per batch. This crate is not a general LMDB
//! wrapper and does not store the records themselves: an index holds seqs and reads records from
//! the log.
//!
//! ```
//! use flume_core::{Db, Document, Postcard};
//! use flume_log_memory::MemoryLog;
//! use flume_view_index::{Index, IndexOpts, IndexReads, KeyValue, KvDb, KvReads, KvValue, Lmdb};
//! use futures::TryStreamExt;
//! use serde_json::json;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let lmdb = Lmdb::open(dir.path())?;
//! let db: Db<Document> = Db::open(MemoryLog::new(), Postcard).await?;
//!
//! // Index posts by author, then by time.
//! let by_author = db
//!     .use_view("by_author", Index::new(&lmdb, "by_author", 1, |doc: &Document, ops| {
//!         if let (Some(a), Some(t)) = (doc.get("author"), doc.get("ts")) {
//!             ops.put([a.clone(), t.clone()]);
//!         }
//!     }))
//!     .await?;
//! db.append(Document(json!({"author": "@bob", "ts": 2, "text": "hi"}))).await?;
//! db.append(Document(json!({"author": "@amy", "ts": 1, "text": "hello"}))).await?;
//! db.append(Document(json!({"author": "@bob", "ts": 1, "text": "first"}))).await?;
//! let bob: Vec<_> = by_author.read(IndexOpts::new().prefix([json!("@bob")])).try_collect().await?;
//! let texts: Vec<_> = bob.iter().map(|e| e.value.as_ref().unwrap()["text"].clone()).collect();
//! assert_eq!(texts, [json!("first"), json!("hi")]);
//!
//! // The key-value view over the same log.
//! let kv = db.use_view("kv", KeyValue::new(&lmdb, "kv")).await?;
//! db.kv_put("users/amy", KvValue::Bytes(b"admin".to_vec())).await?;
//! assert_eq!(kv.get("users/amy").await?.unwrap().value, KvValue::Bytes(b"admin".to_vec()));
//! assert!(db.kv_put("no-collection", KvValue::Bytes(vec![])).await.is_err());
//! db.close().await?;
//! # Ok(()) }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod env;
mod error;
mod index;
pub mod key;
mod kv;
pub mod meta;
mod range;
mod tables;

pub use env::{Lmdb, Table};
pub use error::{LmdbError, ReadError};
pub use index::{Index, IndexItem, IndexOps, IndexOpts, IndexReads};
pub use kv::{
    AsKvRecord, KeyValue, KvDb, KvEntry, KvError, KvReads, KvRecord, KvValue, MAX_KEY_LEN,
    check_collection, split_key,
};
pub use tables::{Row, ViewTables};

pub(crate) fn index_err(e: flume_core::ViewError) -> ReadError {
    ReadError::Db(flume_core::DbError::View {
        view: "index".into(),
        source: e,
    })
}

pub(crate) fn key_value_err(e: flume_core::ViewError) -> ReadError {
    ReadError::Db(flume_core::DbError::View {
        view: "key-value".into(),
        source: e,
    })
}
