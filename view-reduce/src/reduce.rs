//! [`Reduce`]: construction, direct reads, and the [`View`] implementation.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use flume_core::{Seq, View, ViewError, ViewMeta, async_trait};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::cell::Shared;
use crate::checkpoint::{self, Checkpoints, TAIL_BATCH, Writer, blocking, sooner};
use crate::handle::Reduced;
use crate::store::{self, Header, Store};

type Fold<T, S> = Box<dyn Fn(&mut S, Seq, &T) + Send + Sync>;

/// A view that folds every record of the log into one state `S`, like `Iterator::fold`.
///
/// Build it with [`new`](Reduce::new) or [`with_map`](Reduce::with_map), optionally
/// [`persist_in`](Reduce::persist_in) a directory, and hand it to
/// [`Db::use_view`](flume_core::Db::use_view). Read it through the returned handle with
/// [`ReduceExt`](crate::ReduceExt), which waits until the state includes your writes.
///
/// The reduce function must be deterministic: the state is rebuilt from the log whenever the
/// stored one cannot be used, and a rebuild must give the same result. Change the version
/// whenever the function or the type of `S` changes; the state is then rebuilt. `S` must
/// round-trip through postcard (no `skip_serializing_if`, untagged enums or `serde_json::Value`),
/// or every open finds the state unreadable and rebuilds it.
pub struct Reduce<T, S> {
    fold: Fold<T, S>,
    initial: S,
    checkpoints: Checkpoints,
    /// `None`: memory only, rebuilt on every open.
    store: Option<Arc<Store>>,
    shared: Arc<Shared<S>>,
    writer: Mutex<Option<Writer>>,
}

impl<T, S> Reduce<T, S>
where
    T: Send + Sync + 'static,
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// A view starting from `initial` and folding every record with `reduce(&mut state, seq,
    /// &record)`; memory only until [`persist_in`](Reduce::persist_in).
    pub fn new(
        version: u32,
        initial: S,
        reduce: impl Fn(&mut S, Seq, &T) + Send + Sync + 'static,
    ) -> Self {
        Reduce {
            fold: Box::new(reduce),
            shared: Arc::new(Shared::new(version, initial.clone())),
            initial,
            checkpoints: Checkpoints::default(),
            store: None,
            writer: Mutex::new(None),
        }
    }

    /// A view that first maps each record with `map`, skips those mapped to `None`, and folds
    /// the others with `reduce(&mut state, seq, mapped)`.
    ///
    /// Skipped records still advance the view's `since`.
    pub fn with_map<M>(
        version: u32,
        initial: S,
        map: impl Fn(&T) -> Option<M> + Send + Sync + 'static,
        reduce: impl Fn(&mut S, Seq, M) + Send + Sync + 'static,
    ) -> Self {
        Self::new(version, initial, move |state: &mut S, seq, record: &T| {
            if let Some(mapped) = map(record) {
                reduce(state, seq, mapped);
            }
        })
    }

    /// Keep the state in `dir` (created if missing; one view per directory), so that reopening
    /// resumes from the last checkpoint instead of re-reading the log.
    pub fn persist_in(mut self, dir: impl Into<PathBuf>) -> Self {
        self.store = Some(Arc::new(Store::new(dir.into())));
        self
    }

    /// Set when checkpoints are written (persistent views only).
    pub fn checkpoints(mut self, policy: Checkpoints) -> Self {
        self.checkpoints = policy;
        self
    }
}

impl<T, S: Clone> Reduce<T, S> {
    /// A copy of the current state, without waiting for the view to catch up. Through a
    /// [`ViewHandle`](flume_core::ViewHandle), prefer [`ReduceExt::get`](crate::ReduceExt::get).
    pub fn get(&self) -> S {
        self.shared.read().value.clone()
    }

    /// A copy of the current state with the seq of the last record it includes and the view's
    /// version, without waiting.
    pub fn get_meta(&self) -> Reduced<S> {
        let cell = self.shared.read();
        Reduced {
            seq: cell.since,
            version: self.shared.version,
            value: cell.value.clone(),
        }
    }
}

impl<T, S> Reduce<T, S> {
    /// Run `f` on the current state without copying it, and without waiting.
    ///
    /// `f` runs under a read lock that holds off the next batch: keep it short.
    pub fn read<R>(&self, f: impl FnOnce(&S) -> R) -> R {
        f(&self.shared.read().value)
    }

    /// The directory holding the state, or `None` for a memory-only view.
    pub fn dir(&self) -> Option<&Path> {
        self.store.as_deref().map(Store::dir)
    }

    /// The checkpoint policy.
    pub fn checkpoint_policy(&self) -> Checkpoints {
        self.checkpoints
    }
}

/// What `open` found in the view's directory.
enum Loaded<S> {
    Nothing,
    OtherVersion(Header),
    State(Header, S),
}

impl<T, S> Reduce<T, S>
where
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn start_writer(&self, store: &Arc<Store>) {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if writer.is_none() {
            let shared = Arc::clone(&self.shared);
            *writer = Some(Writer::spawn(shared, Arc::clone(store), self.checkpoints));
        }
    }

    async fn stop_writer(&self) {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            writer.stop().await;
        }
    }

    async fn load(&self, store: &Arc<Store>) -> Result<Loaded<S>, ViewError> {
        let version = self.shared.version;
        let store = Arc::clone(store);
        blocking(move || {
            let Some(bytes) = store.open()? else {
                return Ok(Loaded::Nothing);
            };
            let path = store.state_path();
            let unreadable =
                |why: String| ViewError::Unreadable(format!("{}: {why}", path.display()));
            let (header, state) = store::decode(&bytes).map_err(unreadable)?;
            if header.version != version {
                // Another version's state may not even have this type: do not decode it.
                return Ok(Loaded::OtherVersion(header));
            }
            let value = postcard::from_bytes(state).map_err(|e| {
                unreadable(format!(
                    "the state does not decode as this view's type ({e}); change the view's \
                     version whenever the state type changes"
                ))
            })?;
            Ok(Loaded::State(header, value))
        })
        .await
    }
}

#[async_trait]
impl<T, S> View<T> for Reduce<T, S>
where
    T: Send + Sync + 'static,
    S: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn version(&self) -> u32 {
        self.shared.version
    }

    /// Load the last checkpoint. A memory-only view reports what it holds (nothing, when new).
    ///
    /// # Errors
    /// [`ViewError::Unreadable`] for a torn, corrupt or undecodable state file (the database
    /// rebuilds the view); [`ViewError::Other`] when another view holds the directory;
    /// [`ViewError::Io`].
    async fn open(&self) -> Result<ViewMeta, ViewError> {
        let Some(store) = &self.store else {
            let since = self.shared.read().since;
            return Ok(ViewMeta {
                version: since.map(|_| self.shared.version),
                since,
            });
        };
        let loaded = self.load(store).await;
        let mut cell = self.shared.write();
        let meta = match loaded {
            Ok(Loaded::Nothing) => {
                cell.reset(self.initial.clone(), None);
                ViewMeta::default()
            }
            Ok(Loaded::OtherVersion(header)) => {
                // The database destroys the view next; until then hold nothing.
                cell.reset(self.initial.clone(), None);
                ViewMeta {
                    version: Some(header.version),
                    since: header.since,
                }
            }
            Ok(Loaded::State(header, value)) => {
                cell.reset(value, header.since);
                ViewMeta {
                    version: Some(header.version),
                    since: header.since,
                }
            }
            Err(e) => {
                cell.reset(self.initial.clone(), None);
                return Err(e);
            }
        };
        drop(cell);
        self.start_writer(store);
        Ok(meta)
    }

    fn since(&self) -> Option<Seq> {
        self.shared.read().since
    }

    /// Fold the batch in memory; a checkpoint follows in the background when one is due.
    ///
    /// The View contract asks that state and `since` be committed together. Here they always
    /// change together in memory, and every checkpoint writes one consistent snapshot of both
    /// in one atomic file replacement. What a crash can lose is the tail folded since the last
    /// checkpoint, and losing it is sound: `open` then reports the checkpoint's older `since`,
    /// and the database feeds the lost records again.
    ///
    /// # Errors
    /// [`ViewError::Io`] when the last background checkpoint failed; [`ViewError::Other`] when
    /// the reduce function panicked (the view is then rebuilt with backoff).
    async fn apply(&self, batch: &[(Seq, &T)]) -> Result<(), ViewError> {
        let Some(&(last, _)) = batch.last() else {
            return Ok(());
        };
        let mut cell = self.shared.write();
        if let Some(e) = cell.save_error.take() {
            return Err(e);
        }
        if let Some(why) = &cell.broken {
            return Err(ViewError::Other(why.clone().into()));
        }
        let before = self.checkpoints.deadline(&cell);
        let value = &mut cell.value;
        let folded = catch_unwind(AssertUnwindSafe(|| {
            for &(seq, record) in batch {
                (self.fold)(value, seq, record);
            }
        }));
        if let Err(panic) = folded {
            let why = format!(
                "the reduce function panicked ({}) in a batch ending at seq {last}; the view is \
                 rebuilt, and panics again unless the function is fixed",
                panic_message(&*panic)
            );
            cell.broken = Some(why.clone());
            return Err(ViewError::Other(why.into()));
        }
        cell.since = Some(last);
        cell.folded += batch.len() as u64;
        if cell.dirty_since.is_none() {
            cell.dirty_since = Some(Instant::now());
        }
        cell.at_tail = batch.len() < TAIL_BATCH;
        let wake = self.store.is_some() && sooner(self.checkpoints.deadline(&cell), before);
        drop(cell);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Reset to the initial state; a persistent view also writes it (with `since` = none) to
    /// disk, so a crash right after cannot resurrect the old state.
    ///
    /// # Errors
    /// [`ViewError::Io`]; the state in memory is reset regardless.
    async fn destroy(&self) -> Result<(), ViewError> {
        let Some(store) = &self.store else {
            self.shared.write().reset(self.initial.clone(), None);
            return Ok(());
        };
        let (shared, store) = (Arc::clone(&self.shared), Arc::clone(store));
        let initial = self.initial.clone();
        blocking(move || {
            store.exclusive(|| {
                let header = Header {
                    version: shared.version,
                    since: None,
                };
                let bytes = store::encode(header, &initial);
                shared.write().reset(initial, None);
                store.replace(&bytes?)
            })
        })
        .await
    }

    /// Write a checkpoint now, if anything was folded since the last one (a memory-only view
    /// has nothing to write). It supersedes a failed background write.
    ///
    /// # Errors
    /// [`ViewError::Io`]; the previous checkpoint is then still on disk. [`ViewError::Other`]
    /// when the reduce function panicked: the state is not saved, and `since` is not durable.
    async fn sync(&self) -> Result<(), ViewError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        {
            let mut cell = self.shared.write();
            if let Some(why) = &cell.broken {
                return Err(ViewError::Other(why.clone().into()));
            }
            cell.save_error = None;
        }
        checkpoint::save(&self.shared, store).await
    }

    /// Stop the checkpoint writer, write unsaved changes, and release the directory.
    ///
    /// # Errors
    /// [`ViewError::Io`] when the final checkpoint fails; the previous one is then still on
    /// disk.
    async fn close(&self) -> Result<(), ViewError> {
        self.stop_writer().await;
        let Some(store) = &self.store else {
            return Ok(());
        };
        // A failed background write is superseded by this one.
        self.shared.write().save_error = None;
        let result = checkpoint::save(&self.shared, store).await;
        store.unlock();
        result
    }
}

impl<T, S> std::fmt::Debug for Reduce<T, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reduce")
            .field("version", &self.shared.version)
            .field("since", &self.shared.read().since)
            .field("dir", &self.dir())
            .field("checkpoints", &self.checkpoints)
            .finish_non_exhaustive()
    }
}

impl<T, S> Drop for Reduce<T, S> {
    /// Dropped without `close` (a crash, as far as the state is concerned): unsaved changes are
    /// lost and the next open resumes from the last checkpoint. The background writer stops,
    /// and the directory is released at once so it can be opened again.
    fn drop(&mut self) {
        let writer = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        drop(writer.take());
        if let Some(store) = &self.store {
            store.retire();
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}
