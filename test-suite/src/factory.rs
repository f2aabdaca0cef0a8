use std::fmt::Debug;
use std::sync::Arc;

use flume_core::{Codec, Log, LogError, View, async_trait};

/// Opens a log at one storage location, again and again (to test reopening).
///
/// Any `Fn() -> Result<impl Log, LogError>` closure is a factory.
#[async_trait]
pub trait LogFactory: Send + Sync + 'static {
    /// Open the log at this location; the first open finds it empty. The previous log opened
    /// here has been closed.
    ///
    /// # Errors
    /// Whatever the log's open reports.
    async fn open(&self) -> Result<Arc<dyn Log>, LogError>;
}

#[async_trait]
impl<L: Log, F: Fn() -> Result<L, LogError> + Send + Sync + 'static> LogFactory for F {
    async fn open(&self) -> Result<Arc<dyn Log>, LogError> {
        Ok(Arc::new(self()?))
    }
}

/// Opens a view at one storage location, for [`check_view`](crate::check_view).
#[async_trait]
pub trait ViewFactory: Send + Sync + 'static {
    /// The record type the view reads.
    type Record: Clone + Send + Sync + 'static;
    /// The view.
    type View: View<Self::Record>;
    /// The view's whole observable state, to compare two views.
    type Snapshot: PartialEq + Debug + Send;

    /// Open the view at this location with code version `version`. The previous view opened
    /// here has been closed.
    async fn open(&self, version: u32) -> Self::View;

    /// The `i`th record of the test workload; views should react to most of them.
    fn record(&self, i: u64) -> Self::Record;

    /// The codec of the records.
    fn codec(&self) -> Arc<dyn Codec<Self::Record>>;

    /// The view's state, read after the view has caught up.
    async fn snapshot(&self, view: &Self::View) -> Self::Snapshot;

    /// True when the view keeps its state across close and open (false for memory-only views).
    fn persistent(&self) -> bool {
        true
    }
}
