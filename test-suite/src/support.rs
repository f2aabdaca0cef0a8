//! Test doubles shared by the cases: a recording view and a counting codec.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flume_core::{
    Bytes, Codec, CodecError, Item, Log, LogError, Seq, StreamOpts, View, ViewError, ViewMeta,
    async_trait,
};
use futures::StreamExt;
use tokio::sync::watch;

/// Yield to other tasks until `done` holds (for states a case sees but cannot await).
pub(crate) async fn until(mut done: impl FnMut() -> bool) {
    while !done() {
        tokio::task::yield_now().await;
    }
}

/// Wraps a codec and counts decodes, to prove each record is decoded once.
pub struct CountingCodec<C> {
    inner: C,
    decodes: Arc<AtomicU64>,
}

impl<C> CountingCodec<C> {
    /// Count the decodes of `inner`.
    pub fn new(inner: C) -> Self {
        CountingCodec {
            inner,
            decodes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A shared counter of decodes so far.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.decodes)
    }
}

impl<T, C: Codec<T>> Codec<T> for CountingCodec<C> {
    fn encode(&self, value: &T) -> Result<Bytes, CodecError> {
        self.inner.encode(value)
    }
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        self.decodes.fetch_add(1, Ordering::Relaxed);
        self.inner.decode(bytes)
    }
}

/// The stored state of a [`TestView`], shared so a test can inspect it and open the "same"
/// view again.
#[derive(Debug, Default, Clone)]
pub struct TestViewState {
    /// The version that wrote the state (`None` when empty).
    pub stored_version: Option<u32>,
    /// The last applied seq.
    pub since: Option<Seq>,
    /// Every record applied, in order.
    pub records: Vec<(Seq, String)>,
    /// How many times it was destroyed.
    pub destroys: usize,
    /// How many batches were applied.
    pub applies: usize,
    /// How many applies of a [`gated`](TestView::gated) view reached the gate (counted before
    /// they wait there).
    pub at_gate: usize,
    /// Broken invariants seen by `apply` (a batch out of order, or at or before `since`).
    pub violations: Vec<String>,
    /// When set, `open` reports the state as unreadable.
    pub unreadable: bool,
    /// When set, `apply` fails while the batch holds a record equal to it.
    pub fail_on: Option<String>,
    /// True from the start of a `destroy` until it emptied the state.
    pub destroying: bool,
}

/// A view of `String` records that records everything it is fed, for conformance tests.
#[derive(Clone)]
pub struct TestView {
    /// The shared stored state.
    pub state: Arc<Mutex<TestViewState>>,
    version: u32,
    delay: Option<Duration>,
    gate: Option<watch::Receiver<bool>>,
    destroy_gate: Option<watch::Receiver<bool>>,
}

impl TestView {
    /// A new, empty view with code version 1.
    pub fn new() -> Self {
        TestView {
            state: Arc::default(),
            version: 1,
            delay: None,
            gate: None,
            destroy_gate: None,
        }
    }

    /// The same stored state, opened by code of version `version`.
    pub fn with_version(&self, version: u32) -> Self {
        TestView {
            state: Arc::clone(&self.state),
            version,
            delay: self.delay,
            gate: self.gate.clone(),
            destroy_gate: self.destroy_gate.clone(),
        }
    }

    /// Sleep `delay` in every apply: a slow view, to stand in for a long rebuild.
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Hold every apply until the returned sender sends `true`: a view stuck in a long rebuild.
    pub fn gated(mut self) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        self.gate = Some(rx);
        (self, tx)
    }

    /// Hold every destroy (after it set `destroying`, before it empties anything) until the
    /// returned sender sends `true`.
    pub fn gated_destroy(mut self) -> (Self, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        self.destroy_gate = Some(rx);
        (self, tx)
    }

    /// Lock the state for inspection.
    pub fn lock(&self) -> MutexGuard<'_, TestViewState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The values applied, in order.
    pub fn values(&self) -> Vec<String> {
        self.lock().records.iter().map(|(_, v)| v.clone()).collect()
    }
}

impl Default for TestView {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl View<String> for TestView {
    fn version(&self) -> u32 {
        self.version
    }

    async fn open(&self) -> Result<ViewMeta, ViewError> {
        let s = self.lock();
        if s.unreadable {
            return Err(ViewError::Unreadable("test view marked unreadable".into()));
        }
        Ok(ViewMeta {
            version: s.stored_version,
            since: s.since,
        })
    }

    fn since(&self) -> Option<Seq> {
        self.lock().since
    }

    async fn apply(&self, batch: &[(Seq, &String)]) -> Result<(), ViewError> {
        if let Some(delay) = self.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(gate) = &self.gate {
            self.lock().at_gate += 1;
            let mut gate = gate.clone();
            let _ = gate.wait_for(|open| *open).await;
        }
        let mut s = self.lock();
        if let Some(bad) = &s.fail_on
            && batch.iter().any(|(_, v)| *v == bad)
        {
            return Err(ViewError::Other(format!("refusing record {bad:?}").into()));
        }
        for (seq, value) in batch {
            if s.since.is_some_and(|since| *seq <= since) {
                let msg = format!("fed {seq} at or before since {:?}", s.since);
                s.violations.push(msg);
            }
            s.since = Some(*seq);
            s.records.push((*seq, (*value).clone()));
        }
        s.applies += 1;
        s.stored_version = Some(self.version);
        Ok(())
    }

    async fn destroy(&self) -> Result<(), ViewError> {
        self.lock().destroying = true;
        if let Some(gate) = &self.destroy_gate {
            let mut gate = gate.clone();
            let _ = gate.wait_for(|open| *open).await;
        }
        let mut s = self.lock();
        s.destroying = false;
        s.records.clear();
        s.since = None;
        s.stored_version = Some(self.version);
        s.unreadable = false;
        s.destroys += 1;
        Ok(())
    }

    async fn close(&self) -> Result<(), ViewError> {
        Ok(())
    }
}

/// Collect a log stream, panicking on an error item.
pub(crate) async fn collect(log: &dyn Log, opts: StreamOpts) -> Vec<Item<Bytes>> {
    let items: Vec<Result<Item<Bytes>, LogError>> = log.stream(opts).collect().await;
    items
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("stream error: {e}")))
        .collect()
}

/// Append one record, panicking on failure.
pub(crate) async fn append(log: &dyn Log, value: &str) -> Seq {
    match log.append(Bytes::copy_from_slice(value.as_bytes())).await {
        Ok(seq) => seq,
        Err(e) => panic!("append failed: {e}"),
    }
}

/// Append a batch, panicking on failure.
pub(crate) async fn append_batch(log: &dyn Log, values: &[&str]) -> Vec<Seq> {
    let records = values
        .iter()
        .map(|v| Bytes::copy_from_slice(v.as_bytes()))
        .collect();
    match log.append_batch(records).await {
        Ok(seqs) => seqs,
        Err(e) => panic!("append failed: {e}"),
    }
}
