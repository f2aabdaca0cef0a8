use std::path::{Path, PathBuf};

use flume_core::{DbError, LogError};
use flume_view_index::LmdbError;

/// Errors opening or using a database directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// `flume.toml` is not valid.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        message: String,
    },
    /// An I/O error on the directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No view has that name.
    #[error("no view named {name:?}; the views are: {}", known.join(", "))]
    UnknownView {
        /// The name asked for.
        name: String,
        /// The names declared.
        known: Vec<String>,
    },
    /// The configuration declares no key-value view.
    #[error(
        "this database has no key-value view: add `[[view]] name = \"kv\" kind = \"kv\"` to flume.toml"
    )]
    NoKeyValueView,
    /// A view could not be made durable before a retirement, so nothing was deleted.
    #[error(
        "view {name:?} could not be made durable ({source}); nothing was retired: check the view's status (`flume views`) and retry"
    )]
    ViewSync {
        /// The view.
        name: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The LMDB environment failed.
    #[error(transparent)]
    Lmdb(#[from] LmdbError),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
