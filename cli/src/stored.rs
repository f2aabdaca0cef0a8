//! What each declared view has stored (its version and `since`), read without opening the
//! database: no lock, no catching up, no automatic rebuild that would hide a view ahead of its log.

use std::path::Path;

use flume_core::{Seq, ViewMeta};
use flume_store::{Config, Store, ViewKind};

/// The name of a view kind, as flume.toml spells it.
pub(crate) fn kind_name(kind: &ViewKind) -> &'static str {
    kind.name()
}

/// One declared view's stored state.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    /// The version the view's code stores now.
    pub(crate) version: u32,
    /// What is stored, or why it could not be read.
    pub(crate) meta: Result<ViewMeta, String>,
}

/// Read every declared view's stored meta (see [`Store::stored`]).
pub(crate) async fn read(db: &Path, config: &Config) -> Vec<Stored> {
    match Store::stored(db, config).await {
        Ok(views) => views
            .into_iter()
            .map(|v| Stored {
                name: v.name,
                kind: v.kind,
                version: v.version,
                meta: v.meta,
            })
            .collect(),
        Err(e) => config
            .views
            .iter()
            .map(|spec| Stored {
                name: spec.name.clone(),
                kind: spec.kind.name(),
                version: spec.version,
                meta: Err(e.to_string()),
            })
            .collect(),
    }
}

/// A note on a view that is not a problem: its state is rebuilt when the database next opens.
pub(crate) fn note(view: &Stored) -> Option<String> {
    match &view.meta {
        Err(e) => Some(format!(
            "its stored state cannot be read now ({e}); it is rebuilt if it is unreadable"
        )),
        Ok(ViewMeta {
            version: Some(v), ..
        }) if *v != view.version => Some(format!(
            "stored by version {v}, its settings now give version {}: it is rebuilt when the database next opens",
            view.version
        )),
        Ok(_) => None,
    }
}

/// A view's problem relative to the log's last seq: being ahead of it.
pub(crate) fn problem(view: &Stored, log_last: Option<Seq>) -> Option<String> {
    let meta = view.meta.as_ref().ok()?;
    match (meta.since, log_last) {
        (Some(s), None) => Some(format!(
            "view {:?} includes records up to seq {s} but the log is empty: it is ahead of the log and is \
             rebuilt when the database is next opened for writing (or run `flume rebuild {}`)",
            view.name, view.name
        )),
        (Some(s), Some(last)) if s > last => Some(format!(
            "view {:?} includes records up to seq {s} but the log ends at seq {last}: it is ahead of the log \
             (records were lost) and is rebuilt when the database is next opened for writing (or run `flume rebuild {}`)",
            view.name, view.name
        )),
        _ => None,
    }
}
