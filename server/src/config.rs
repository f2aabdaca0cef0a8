//! What a server listens on and the limits it enforces.

use std::net::SocketAddr;
use std::time::Duration;

/// The default HTTP address (loopback).
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// The default memcached address (loopback).
pub const DEFAULT_MEMCACHED_ADDR: &str = "127.0.0.1:11211";
/// The default key-value collection that memcached keys live in: key `K` is `mc/K`.
pub const DEFAULT_MEMCACHED_COLLECTION: &str = "mc";

/// How a [`Server`](crate::Server) is started: addresses (`None` turns a front off) and limits.
///
/// ```
/// use flume_server::{Limits, ServerConfig};
/// let config = ServerConfig::default()
///     .http(Some("127.0.0.1:0".parse()?))
///     .memcached(None)
///     .limits(Limits::default().max_connections(64));
/// assert!(config.memcached.is_none());
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Where HTTP listens; `None` disables it. Default `127.0.0.1:8080`.
    pub http: Option<SocketAddr>,
    /// Where the memcached protocol listens; `None` disables it. Default `127.0.0.1:11211`.
    pub memcached: Option<SocketAddr>,
    /// The key-value collection memcached keys map to (`K` ↔ `<collection>/K`). Default `mc`.
    pub memcached_collection: String,
    /// Limits on connections, requests and subscribers.
    pub limits: Limits,
    /// How long a graceful shutdown waits for connections to finish before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: DEFAULT_HTTP_ADDR.parse().ok(),
            memcached: DEFAULT_MEMCACHED_ADDR.parse().ok(),
            memcached_collection: DEFAULT_MEMCACHED_COLLECTION.to_string(),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl ServerConfig {
    /// The defaults: both fronts on loopback, default limits.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set (or, with `None`, disable) the HTTP address.
    pub fn http(mut self, addr: Option<SocketAddr>) -> Self {
        self.http = addr;
        self
    }
    /// Set (or, with `None`, disable) the memcached address.
    pub fn memcached(mut self, addr: Option<SocketAddr>) -> Self {
        self.memcached = addr;
        self
    }
    /// Set the key-value collection memcached keys live in.
    pub fn memcached_collection(mut self, collection: impl Into<String>) -> Self {
        self.memcached_collection = collection.into();
        self
    }
    /// Set the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
    /// Set the graceful shutdown's grace period.
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }
}

/// Limits that keep memory bounded and misbehaving clients contained.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Open connections per front (HTTP, memcached); more are refused with an error reply.
    /// Default 1024.
    pub max_connections: usize,
    /// The largest HTTP request body, in bytes. Default 16 MiB (the log's default record limit).
    pub max_request_bytes: usize,
    /// The longest memcached command line, in bytes (a `get` of many keys is one line).
    /// Default 64 KiB.
    pub max_line_bytes: usize,
    /// The largest key-value value (memcached and HTTP), in bytes. Default 1 MiB.
    pub max_value_bytes: usize,
    /// A connection with no progress in either direction for this long is closed; `None`
    /// never. Default 5 minutes. Live streams send a keep-alive every 15 seconds, so only a
    /// subscriber that stops reading is closed (it resumes with `Last-Event-ID`).
    pub idle_timeout: Option<Duration>,
    /// Bytes the server holds per live subscriber (frames waiting for the socket plus one log
    /// read); the shared broadcast ring is sized from it too. Default 1 MiB.
    pub subscriber_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_request_bytes: 16 << 20,
            max_line_bytes: 64 << 10,
            max_value_bytes: 1 << 20,
            idle_timeout: Some(Duration::from_secs(300)),
            subscriber_buffer_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// Set the connection limit per front (at least 1).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }
    /// Set the largest HTTP request body.
    pub fn max_request_bytes(mut self, n: usize) -> Self {
        self.max_request_bytes = n;
        self
    }
    /// Set the longest memcached command line (at least 512 bytes, so any single key fits).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.max_line_bytes = n.max(512);
        self
    }
    /// Set the largest value.
    pub fn max_value_bytes(mut self, n: usize) -> Self {
        self.max_value_bytes = n;
        self
    }
    /// Set (or, with `None`, disable) the idle timeout.
    pub fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
    /// Set the per-subscriber buffer (at least 16 KiB).
    pub fn subscriber_buffer_bytes(mut self, n: usize) -> Self {
        self.subscriber_buffer_bytes = n.max(16 << 10);
        self
    }
}
