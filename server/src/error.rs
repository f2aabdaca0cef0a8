use std::net::SocketAddr;

use flume_store::StoreError;

/// Errors starting or stopping a server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// An address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server using it? pick another address or port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The memcached front needs a key-value view, or the collection name is invalid.
    #[error("the memcached front cannot start: {0}")]
    Memcached(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Installing the signal handlers failed.
    #[error("cannot listen for SIGINT/SIGTERM: {0}")]
    Signal(std::io::Error),
}
