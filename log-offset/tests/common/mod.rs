//! Helpers shared by the integration tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flume_core::ReadRange;
use flume_log_offset::storage::{LockError, LockGuard, Storage, StorageFile};

/// Every record, oldest first, with its value.
pub(crate) fn all() -> ReadRange {
    ReadRange {
        lower: Bound::Unbounded,
        upper: Bound::Unbounded,
        reverse: false,
        max: usize::MAX,
        max_bytes: usize::MAX,
        values: true,
    }
}

/// The segment files of a log directory, oldest first, with their base seqs.
pub(crate) fn segments(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_str()?.to_string();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, path))
        })
        .collect();
    v.sort();
    v
}

/// A storage on which a writer's process retires segments at a chosen moment: just before the
/// first call of `at`, the files named in `remove` are deleted (`remove` empties then, so the
/// race happens once). Otherwise it is `inner`.
pub(crate) struct Racing<S> {
    pub(crate) inner: Arc<S>,
    pub(crate) at: At,
    pub(crate) remove: Mutex<Vec<String>>,
}

/// The call that [`Racing`] deletes files before.
#[derive(PartialEq, Eq)]
pub(crate) enum At {
    /// A listing of the directory (which still names the deleted files: it was made before).
    List,
    /// The length of this file.
    FileLen(String),
}

impl<S: Storage> Racing<S> {
    pub(crate) fn new(inner: Arc<S>, at: At, remove: &[&str]) -> Self {
        let remove = remove.iter().map(|n| n.to_string()).collect();
        Racing {
            inner,
            at,
            remove: Mutex::new(remove),
        }
    }

    /// Whether the race happened.
    pub(crate) fn raced(&self) -> bool {
        self.remove.lock().unwrap().is_empty()
    }

    fn race(&self, at: &At) -> std::io::Result<()> {
        if *at == self.at {
            for name in std::mem::take(&mut *self.remove.lock().unwrap()) {
                self.inner.remove(&name)?;
            }
        }
        Ok(())
    }
}

impl<S: Storage> Storage for Racing<S> {
    fn path(&self, name: &str) -> PathBuf {
        self.inner.path(name)
    }
    fn list(&self) -> std::io::Result<Vec<String>> {
        let names = self.inner.list()?;
        self.race(&At::List)?;
        Ok(names)
    }
    fn file_len(&self, name: &str) -> std::io::Result<u64> {
        self.race(&At::FileLen(name.to_string()))?;
        self.inner.file_len(name)
    }
    fn open(&self, name: &str, write: bool) -> std::io::Result<Arc<dyn StorageFile>> {
        self.inner.open(name, write)
    }
    fn create(&self, name: &str) -> std::io::Result<Arc<dyn StorageFile>> {
        self.inner.create(name)
    }
    fn rename(&self, from: &str, to: &str) -> std::io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove(&self, name: &str) -> std::io::Result<()> {
        self.inner.remove(name)
    }
    fn sync_dir(&self) -> std::io::Result<()> {
        self.inner.sync_dir()
    }
    fn lock(&self) -> Result<LockGuard, LockError> {
        self.inner.lock()
    }
}
