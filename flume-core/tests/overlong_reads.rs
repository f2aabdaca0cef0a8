//! Streams over a log whose reads return more records than asked: `ReadRange::max` says a log
//! may return fewer, never more, and streams do not take that on trust. A stream's limit and its
//! cursor count only the records it asked for, whether it read them itself or ahead.

use std::sync::Arc;

use flume_core::{
    AppendError, Bytes, Log, LogError, ReadRange, Seq, StreamOpts, async_trait, stream_owned,
};
use flume_log_memory::MemoryLog;
use futures::StreamExt;
use tokio::sync::watch;

/// A log that reads every record in the range, whatever `max` says.
struct Overlong(MemoryLog);

#[async_trait]
impl Log for Overlong {
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>> {
        self.0.append_batch(records).await
    }

    async fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        self.0.get(seq).await
    }

    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError> {
        let all = ReadRange {
            max: usize::MAX,
            max_bytes: usize::MAX,
            ..range
        };
        self.0.read(all).await
    }

    fn since(&self) -> watch::Receiver<Option<Seq>> {
        self.0.since()
    }

    async fn close(&self) -> Result<(), LogError> {
        self.0.close().await
    }
}

/// A log of `n` records, and their seqs.
async fn filled(n: usize) -> (Arc<Overlong>, Vec<Seq>) {
    let log = Arc::new(Overlong(MemoryLog::new()));
    let records = (0..n).map(|i| Bytes::from(format!("r{i}"))).collect();
    let seqs = log.append_batch(records).await.expect("append");
    (log, seqs)
}

async fn seqs_of(log: Arc<Overlong>, opts: StreamOpts) -> Vec<Seq> {
    stream_owned(log, opts)
        .map(|item| item.expect("no error").seq().expect("a record"))
        .collect()
        .await
}

/// On a current-thread runtime a stream reads every chunk itself: a limit below one read.
#[tokio::test]
async fn a_limit_holds_when_a_read_returns_more_than_asked() {
    let (log, seqs) = filled(30).await;
    assert_eq!(seqs_of(log, StreamOpts::new().limit(10)).await, seqs[..10]);
}

/// On a multi-threaded runtime the reads after the first are read ahead: a limit that ends
/// inside the first read-ahead, forward and in reverse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_holds_when_a_read_ahead_returns_more_than_asked() {
    let (log, seqs) = filled(6000).await;
    let forward = seqs_of(Arc::clone(&log), StreamOpts::new().limit(1500)).await;
    assert_eq!(forward, seqs[..1500]);
    let reverse = seqs_of(log, StreamOpts::new().reverse().limit(1500)).await;
    let mut want = seqs[4500..].to_vec();
    want.reverse();
    assert_eq!(reverse, want);
}
