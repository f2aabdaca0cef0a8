//! Errors of LMDB-backed views.

use std::path::{Path, PathBuf};

use flume_core::{DbError, ViewError};

/// Errors from the LMDB environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LmdbError {
    /// The environment was closed (its writer stopped).
    #[error("the LMDB environment is closed: open the database again")]
    Closed,
    /// LMDB could not open the environment.
    #[error("cannot open the LMDB environment in {}: {source}; check the directory's permissions and free space", path.display())]
    Open {
        /// The directory.
        path: PathBuf,
        /// LMDB's error.
        source: heed::Error,
    },
    /// An I/O error on the environment's directory.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// Any other LMDB error.
    #[error("LMDB: {0}")]
    Lmdb(#[source] heed::Error),
}

impl LmdbError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LmdbError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    pub(crate) fn open(path: &Path, source: heed::Error) -> Self {
        LmdbError::Open {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<LmdbError> for ViewError {
    fn from(e: LmdbError) -> Self {
        ViewError::Other(Box::new(e))
    }
}

/// Errors from reads on an index or the key-value view.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The view or database is not readable (closed, failed) or a record could not be read.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The LMDB environment failed.
    #[error(transparent)]
    Lmdb(#[from] LmdbError),
    /// A stored key could not be decoded: the index is damaged; rebuild it.
    #[error("a stored index key is unreadable ({0}): rebuild the view with `flume rebuild`")]
    BadKey(String),
}
