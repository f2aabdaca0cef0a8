//! Frees the records of acknowledged groups on a thread of their own, while the writer waits on
//! the next group's `fdatasync`.
//!
//! Freeing a batch's records costs about as much per record as encoding it (an atomic reference
//! count decrement each, often a `free`). Done by the writer after the acknowledgement, it delays
//! the next group (and, when the appender still holds the same buffers, both threads contend for
//! them); done by the appender, it delays its next batch. Here it overlaps with the disk.

use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

use bytes::Bytes;

pub(super) struct Reclaimer {
    /// A rendezvous: records are handed over only while the thread waits for work; while it is
    /// still freeing earlier ones, the writer frees the next ones itself. So the thread holds at
    /// most one handover's records, and nothing piles up if it falls behind.
    jobs: Option<SyncSender<Vec<Vec<Bytes>>>>,
    thread: Option<JoinHandle<()>>,
}

impl Reclaimer {
    /// Start the thread; `None` if it cannot be spawned (the writer then frees records itself).
    pub(super) fn start() -> Option<Self> {
        let (jobs, rx) = mpsc::sync_channel::<Vec<Vec<Bytes>>>(0);
        let thread = std::thread::Builder::new()
            .name("flume-log-free".into())
            .spawn(move || while rx.recv().is_ok() {})
            .ok()?;
        Some(Reclaimer {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Free `records` on the reclaimer's thread, or here if it is busy or gone.
    pub(super) fn free(&self, records: Vec<Vec<Bytes>>) {
        if let Some(jobs) = &self.jobs {
            // A refused handover gives the records back inside the error, dropped right here.
            let _ = jobs.try_send(records);
        }
    }
}

impl Drop for Reclaimer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
