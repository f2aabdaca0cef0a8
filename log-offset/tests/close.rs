//! Closing: every `close` call returns once the close is over, with its outcome, and a caller
//! that stops waiting leaves the close to finish.

#![allow(clippy::unwrap_used)] // test helpers panic on failure, like the tests

use std::sync::Arc;
use std::time::Duration;

use flume_core::{Bytes, Log, LogError, StreamOpts, stream_owned};
use flume_log_offset::storage::{Fault, FaultOp};
use flume_log_offset::{Durability, OffsetLog, Options, SimStorage};
use futures::{FutureExt, StreamExt};

/// A guard against hanging forever on a regression (not a timing assertion: nothing here takes
/// more than milliseconds).
const STUCK: Duration = Duration::from_secs(30);

fn buffered() -> Options {
    Options::new().durability(Durability::Buffered)
}

/// A close whose caller stops waiting (a timeout, a `select!`) still ends: `since` closes and
/// live streams end once the writer is done.
#[tokio::test]
async fn a_close_whose_caller_stops_waiting_still_ends_live_streams() {
    let storage = SimStorage::new();
    let log = Arc::new(OffsetLog::open_storage(Arc::new(storage.clone()), buffered()).unwrap());
    log.append(Bytes::from("a")).await.unwrap();
    let mut live = stream_owned(log.clone(), StreamOpts::new().live());
    assert!(live.next().await.unwrap().is_ok());
    let mut since = log.since();
    since.borrow_and_update();
    storage.hold_syncs();
    // One poll sends the close; the final sync then waits, and the caller gives up.
    assert!(log.close().now_or_never().is_none());
    storage.release_syncs();
    let closed = tokio::time::timeout(STUCK, since.changed()).await;
    assert!(matches!(closed, Ok(Err(_))), "since is closed: {closed:?}");
    let ended = tokio::time::timeout(STUCK, live.next()).await;
    assert!(
        matches!(ended, Ok(None | Some(Err(LogError::Closed)))),
        "the live stream ends (or says the log closed): {ended:?}"
    );
    log.close().await.unwrap();
}

/// A second `close` waits for the close in progress: when it returns, the log is closed and its
/// lock released.
#[tokio::test]
async fn a_second_close_waits_for_the_first() {
    let storage = SimStorage::new();
    let log = Arc::new(OffsetLog::open_storage(Arc::new(storage.clone()), Options::new()).unwrap());
    log.append(Bytes::from("a")).await.unwrap();
    storage.hold_syncs();
    // Its write done, "b" waits in the held sync when the close arrives.
    let mut appending = log.append(Bytes::from("b"));
    assert!(futures::poll!(&mut appending).is_pending());
    let mut first = log.close().boxed();
    assert!(
        futures::poll!(&mut first).is_pending(),
        "the first close waits"
    );
    let mut second = log.close().boxed();
    assert!(
        futures::poll!(&mut second).is_pending(),
        "the second close waits for the first"
    );
    storage.release_syncs();
    tokio::time::timeout(STUCK, second).await.unwrap().unwrap();
    // Closed by now: the lock is free.
    let reopened = OffsetLog::open_storage(Arc::new(storage.clone()), Options::new()).unwrap();
    first.await.unwrap();
    appending.await.unwrap();
    reopened.close().await.unwrap();
}

/// Every `close` reports a failed close, not only the first.
#[tokio::test]
async fn every_close_reports_a_failed_final_sync() {
    let storage = SimStorage::new();
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), buffered()).unwrap();
    log.append(Bytes::from("acknowledged, not synced"))
        .await
        .unwrap();
    storage.inject(Fault::new(FaultOp::Sync));
    let first = log.close().await.unwrap_err();
    assert!(matches!(first, LogError::Io { .. }), "{first}");
    let second = log.close().await.unwrap_err();
    assert!(
        second.to_string().contains("closing the log failed"),
        "{second}"
    );
}

/// A read-only log closes at once, and its `since` with it.
#[tokio::test]
async fn a_read_only_log_closes_and_ends_its_since() {
    let storage = SimStorage::new();
    let log = OffsetLog::open_storage(Arc::new(storage.clone()), Options::new()).unwrap();
    log.append(Bytes::from("a")).await.unwrap();
    let ro = OffsetLog::open_storage(Arc::new(storage), Options::new().read_only(true)).unwrap();
    let mut since = ro.since();
    ro.close().await.unwrap();
    ro.close().await.unwrap();
    let closed = tokio::time::timeout(STUCK, since.changed()).await;
    assert!(matches!(closed, Ok(Err(_))), "since is closed: {closed:?}");
    log.close().await.unwrap();
}
