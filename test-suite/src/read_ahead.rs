//! Where an owned stream reads ahead: on a thread of its own, also when its consumer is a task.
//!
//! Tokio puts a task spawned from a worker in that worker's LIFO slot, which no other worker may
//! steal; a read-ahead spawned that way ran on the consumer's own thread, only once the consumer
//! waited for it, so reading never overlapped with consuming. Where each read runs is what makes
//! the overlap possible, so that is what this case checks (no timing).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::thread::{self, ThreadId};

use flume_core::{
    AppendError, Bytes, Log, LogError, ReadRange, Seq, StreamOpts, async_trait, stream_owned,
};
use futures::StreamExt;
use tokio::sync::watch;

use crate::log_cases::{MANY, append_many};
use crate::{LogFactory, open};

/// A log that notes the thread of each `read`.
struct Reads {
    log: Arc<dyn Log>,
    threads: Mutex<Vec<ThreadId>>,
}

#[async_trait]
impl Log for Reads {
    async fn append_batch(&self, records: Vec<Bytes>) -> Result<Vec<Seq>, AppendError<Vec<Bytes>>> {
        self.log.append_batch(records).await
    }

    async fn get(&self, seq: Seq) -> Result<Bytes, LogError> {
        self.log.get(seq).await
    }

    async fn read(&self, range: ReadRange) -> Result<Vec<(Seq, Bytes)>, LogError> {
        self.threads.lock().unwrap().push(thread::current().id());
        self.log.read(range).await
    }

    fn since(&self) -> watch::Receiver<Option<Seq>> {
        self.log.since()
    }

    async fn close(&self) -> Result<(), LogError> {
        self.log.close().await
    }
}

/// An owned stream consumed inside a spawned task yields every record, and reads every chunk
/// after the first (which it reads itself, with nothing read ahead yet) on threads the consumer
/// never ran on.
pub(crate) async fn owned_reads_ahead_off_the_consumers_thread<F: LogFactory>(f: F) {
    let inner = open(&f).await;
    let all = append_many(&*inner, 0, MANY).await;
    let log = Arc::new(Reads {
        log: inner,
        threads: Mutex::new(Vec::new()),
    });
    let stream = stream_owned(Arc::clone(&log), StreamOpts::new());
    let consumer = tokio::spawn(async move {
        let (mut threads, mut seqs) = (HashSet::new(), Vec::new());
        let mut stream = stream;
        while let Some(item) = stream.next().await {
            threads.insert(thread::current().id());
            seqs.push(item.expect("no error").seq());
        }
        (threads, seqs)
    });
    let (consumer, seqs) = consumer.await.expect("the consumer task");
    assert_eq!(seqs, all.iter().map(|r| Some(r.0)).collect::<Vec<_>>());
    let reads = log.threads.lock().unwrap().clone();
    assert!(
        reads.len() >= 3,
        "{MANY} records read in {} chunks",
        reads.len()
    );
    let on_consumer = reads[1..].iter().filter(|t| consumer.contains(t)).count();
    assert_eq!(
        on_consumer,
        0,
        "{on_consumer} of {} read-aheads ran on the consumer's threads",
        reads.len() - 1
    );
    log.close().await.expect("close");
}
