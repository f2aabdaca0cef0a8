//! One error enum per concern: the log, codecs, views and the database that ties them together.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::Seq;

/// A boxed error from an implementation (a view's storage engine, a user's reduce function).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Errors from a [`Log`](crate::Log).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The log was closed; nothing can be read or appended through this handle any more.
    #[error("the log is closed: open it again to read or append")]
    Closed,
    /// `get` was given a seq at which no record starts.
    #[error("no record starts at seq {seq}: use a seq returned by append, stream or since")]
    NotARecord {
        /// The seq that was asked for.
        seq: Seq,
    },
    /// The records below `first` were retired (retention) and cannot be read.
    #[error("seq {seq} is below the oldest retained record ({first}): those records were retired")]
    Truncated {
        /// The seq that was asked for.
        seq: Seq,
        /// The first seq still in the log.
        first: Seq,
    },
    /// Stream options that contradict each other.
    #[error("invalid stream options: {0}")]
    InvalidOptions(String),
    /// A record larger than the log accepts; checked before anything is written.
    #[error(
        "a record of {size} bytes exceeds the maximum record size of {max} bytes: split it or raise the limit"
    )]
    TooLarge {
        /// The record's size in bytes.
        size: u64,
        /// The configured maximum.
        max: u64,
    },
    /// Another writer holds the log.
    #[error("the log is already open for writing by {holder}: close that first, or open read-only")]
    Locked {
        /// Who holds it (a process id, a file, another handle).
        holder: String,
    },
    /// Stored data failed its checks somewhere other than a torn tail: acknowledged data may be lost.
    #[error("the log is corrupt in {} at offset {offset}: {reason}; run `flume verify` and `flume repair`", file.display())]
    Corrupt {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// The byte offset in that file where the bad frame starts, or where it ends when it was
        /// read backwards and its start is not known (the reason then says "ending at").
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// An earlier write or sync failed; the writer refuses appends so nothing unsynced is acknowledged.
    #[error(
        "the log's writer failed earlier ({reason}) and refuses appends until the log is reopened"
    )]
    Poisoned {
        /// The failure that poisoned the writer.
        reason: String,
    },
    /// The log is read-only.
    #[error("the log is open read-only: open it for writing to append")]
    ReadOnly,
    /// An operating-system I/O error.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Any other failure of a log implementation.
    #[error("{0}")]
    Other(BoxError),
}

/// An append that failed, with the rejected records handed back so the caller can retry or report
/// them (as tokio's `SendError<T>`).
///
/// No record of a failed batch is ever visible: batches are all-or-nothing.
pub struct AppendError<V, E = LogError> {
    /// Why the append failed.
    pub error: E,
    /// The records that were not appended.
    pub rejected: V,
}

impl<V, E> AppendError<V, E> {
    /// Take the rejected records back.
    pub fn into_rejected(self) -> V {
        self.rejected
    }
}

impl<V, E: fmt::Debug> fmt::Debug for AppendError<V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<V, E: fmt::Display> fmt::Display for AppendError<V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "append failed, nothing was written: {}", self.error)
    }
}

impl<V, E: StdError + 'static> StdError for AppendError<V, E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.error)
    }
}

/// Errors from a [`Codec`](crate::Codec).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("could not encode the record: {0}")]
    Encode(String),
    /// The bytes are not a valid record for this codec and type.
    #[error(
        "could not decode the record: {0} (was the log written with another codec or record type?)"
    )]
    Decode(String),
}

/// Errors raised by a [`View`](crate::View) implementation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The view's stored state cannot be read; the database destroys and rebuilds it.
    #[error("the view's stored state is unreadable ({0}); it is rebuilt from the log")]
    Unreadable(String),
    /// An I/O error in the view's storage.
    #[error("view storage I/O error: {0}")]
    Io(#[from] io::Error),
    /// Any other failure (a user function, a storage engine).
    #[error("{0}")]
    Other(BoxError),
}

/// Errors from a [`Db`](crate::Db) and its view handles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The database was closed; open it again.
    #[error("the database is closed: open it again to read or append")]
    Closed,
    /// `use_view` was called twice with one name.
    #[error("a view named {0:?} is already in use: view names must be unique")]
    DuplicateView(String),
    /// No view has this name.
    #[error("no view named {0:?}: `flume views` lists the views in use")]
    UnknownView(String),
    /// The view failed; it is being rebuilt with backoff. Its status holds the same reason.
    #[error("view {view:?} failed ({reason}); it is being rebuilt, retry the read later")]
    ViewFailed {
        /// The view's name.
        view: String,
        /// What went wrong.
        reason: String,
    },
    /// The view could not be destroyed or opened.
    #[error("view {view:?}: {source}")]
    View {
        /// The view's name.
        view: String,
        /// The view's error.
        source: ViewError,
    },
    /// A record could not be encoded or decoded.
    #[error("record {}: {source}", seq.map_or("(new)".to_string(), |s| s.to_string()))]
    Codec {
        /// The record's seq, when it was read from the log.
        seq: Option<Seq>,
        /// The codec's error.
        source: CodecError,
    },
    /// The log failed.
    #[error(transparent)]
    Log(LogError),
}

impl From<LogError> for DbError {
    /// A closed log means a closed database; other log errors are wrapped.
    fn from(e: LogError) -> Self {
        match e {
            LogError::Closed => DbError::Closed,
            e => DbError::Log(e),
        }
    }
}
