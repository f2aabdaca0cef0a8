//! Shared by the integration tests: the workload, its model, and a view factory.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use flume_core::{Codec, Postcard, Seq, async_trait};
use flume_test_suite::ViewFactory;
use flume_view_reduce::{Reduce, Reduced};
use serde::{Deserialize, Serialize};

/// The state the tests fold: it depends on every kept record, its order and its seq.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub count: u64,
    pub sum: u64,
    /// An order-sensitive hash of the kept records and their seqs.
    pub hash: u64,
    pub last: Option<String>,
}

pub fn record(i: u64) -> String {
    format!("record {i}")
}

/// The map: records whose number is a multiple of 3 are skipped.
#[allow(clippy::ptr_arg)] // it is the map of a `Reduce<String, _>`: `Fn(&String)`
pub fn keep(record: &String) -> Option<u64> {
    let n: u64 = record.strip_prefix("record ")?.parse().ok()?;
    (!n.is_multiple_of(3)).then_some(n)
}

pub fn fold(s: &mut Stats, seq: Seq, n: u64) {
    s.count += 1;
    s.sum += n;
    s.hash = s
        .hash
        .wrapping_mul(1_000_003)
        .wrapping_add(n ^ (seq.get() << 20));
    s.last = Some(record(n));
}

/// The state after folding `records` (with their seqs) from scratch.
pub fn model(records: &[(Seq, String)]) -> Stats {
    let mut s = Stats::default();
    for (seq, r) in records {
        if let Some(n) = keep(r) {
            fold(&mut s, *seq, n);
        }
    }
    s
}

/// The view under test, with the map (`mapped`) or with the map folded into the reduce.
pub fn view(version: u32, dir: Option<&Path>, mapped: bool) -> Reduce<String, Stats> {
    let v = if mapped {
        Reduce::with_map(version, Stats::default(), keep, fold)
    } else {
        Reduce::new(
            version,
            Stats::default(),
            |s: &mut Stats, seq, r: &String| {
                if let Some(n) = keep(r) {
                    fold(s, seq, n);
                }
            },
        )
    };
    match dir {
        Some(d) => v.persist_in(d),
        None => v,
    }
}

/// One storage location of the view, for `check_view`.
pub struct Location {
    dir: Option<tempfile::TempDir>,
    mapped: bool,
}

impl Location {
    pub fn persistent(mapped: bool) -> Self {
        Location {
            dir: Some(tempfile::tempdir().unwrap()),
            mapped,
        }
    }

    pub fn memory(mapped: bool) -> Self {
        Location { dir: None, mapped }
    }

    fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("view"))
    }
}

#[async_trait]
impl ViewFactory for Location {
    type Record = String;
    type View = Reduce<String, Stats>;
    /// The state and its seq (not the version: the version-change case compares two versions).
    type Snapshot = (Option<Seq>, Stats);

    async fn open(&self, version: u32) -> Self::View {
        view(version, self.path().as_deref(), self.mapped)
    }
    fn record(&self, i: u64) -> String {
        record(i)
    }
    fn codec(&self) -> Arc<dyn Codec<String>> {
        Arc::new(Postcard)
    }
    async fn snapshot(&self, view: &Self::View) -> (Option<Seq>, Stats) {
        let Reduced { seq, value, .. } = view.get_meta();
        (seq, value)
    }
    fn persistent(&self) -> bool {
        self.dir.is_some()
    }
}

/// The `since` recorded in a state file, read by its documented layout (`None` when absent).
pub fn stored_since(dir: &Path) -> Option<Option<Seq>> {
    let bytes = std::fs::read(dir.join("state")).ok()?;
    let flags = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
    let since = u64::from_le_bytes(bytes[20..28].try_into().unwrap());
    Some((flags & 1 == 1).then_some(Seq(since)))
}
