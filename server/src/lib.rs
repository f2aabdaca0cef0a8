//! Flume's server: an HTTP API with live streams, and the memcached text protocol, over one
//! database directory ([`flume_store::Store`]). `flume serve` runs it.
//!
//! - **HTTP** (see the route table in the `http` module's docs below): append records, get
//!   them by seq, stream the log with flumedb's options as ndjson or, when live, as
//!   Server-Sent Events whose `id` is the seq (reconnect with `Last-Event-ID` to resume right
//!   after it); view status; key-value get/put/delete/list; `/health`; `/metrics`.
//! - **Broadcast after persist**: live subscribers receive only acknowledged records, in log
//!   order, exactly once. Appenders never wait on subscribers; a slow subscriber costs a
//!   bounded buffer and then reads its backlog from the log.
//! - **memcached**: `get`/`gets`/`gat`/`gats`, `set`/`add`/`replace`/`append`/`prepend`/`cas`,
//!   `delete`, `incr`/`decr`, `touch`, `flush_all`, `version`, `verbosity`, `stats`, `quit`,
//!   `noreply`, over the key-value view: key `K` is `mc/K`; `cas` is the seq of the key's last
//!   write; every write is durable before its reply. Read-modify-write commands are atomic per
//!   key.
//!
//! It is not a cache: nothing is evicted, and values stay in the log until retired.
//!
//! HTTP routes: `POST /log`, `POST /log/batch`, `GET /log/{seq}`,
//! `GET /log?gt=&gte=&lt=&lte=&reverse=&limit=&live=&old=&output=records|values|seqs&format=ndjson|sse`,
//! `GET /views`, `GET /views/{name}`, `GET|PUT|DELETE /kv/{collection}/{member}`,
//! `GET|DELETE /kv/{collection}`, `GET /health`, `GET /metrics`.
//!
//! ```
//! use std::sync::Arc;
//! use flume_server::{Server, ServerConfig};
//! use flume_store::Store;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Arc::new(Store::open(dir.path()).await?);
//! let config = ServerConfig::new().http(Some("127.0.0.1:0".parse()?)).memcached(Some("127.0.0.1:0".parse()?));
//! let server = Server::start(Arc::clone(&store), config).await?;
//!
//! // Any memcached client works; here, the protocol by hand.
//! let mut conn = tokio::net::TcpStream::connect(server.memcached_addr().ok_or("off")?).await?;
//! conn.write_all(b"set greeting 0 0 5\r\nhello\r\nget greeting\r\n").await?;
//! let mut reply = vec![0; 64];
//! let mut n = 0;
//! while !reply[..n].ends_with(b"END\r\n") {
//!     n += conn.read(&mut reply[n..]).await?;
//! }
//! assert_eq!(&reply[..n], b"STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n");
//!
//! server.shutdown().await;
//! store.close().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod broadcast;
mod config;
mod error;
mod http;
mod keylocks;
mod limits;
mod memcached;
mod metrics;
mod server;

pub use config::{
    DEFAULT_HTTP_ADDR, DEFAULT_MEMCACHED_ADDR, DEFAULT_MEMCACHED_COLLECTION, Limits, ServerConfig,
};
pub use error::ServerError;
pub use server::{Server, serve, shutdown_signal};
