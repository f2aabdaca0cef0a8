//! Group commit for appenders that await each batch: the writer sleeps, briefly, until the
//! appenders it has just acknowledged have queued their next batches, so that one sync carries
//! them all.
//!
//! Without it, n such appenders settle into two half-groups taking turns: while one group is
//! synced, the other's appenders come back and queue; the writer takes them the moment the sync
//! ends, and the first group's appenders come back during that sync. Each sync then carries n/2
//! batches, though a sync of twice as many small batches costs little more (the device flush
//! dominates). The wait is a sleep, not a poll: when appenders are slow to come back because the
//! CPU is busy (a database applying views), a polling writer would take the core they need.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicIsize, Ordering::SeqCst};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Counts the queued batches and wakes the writer when as many as it waits for are queued.
///
/// `queued` rises after a batch is sent and falls when the writer counts what it took (once per
/// group, before it waits or reads the count), so it can dip below zero for a moment; it is
/// signed for that. `want` and `queued` form a Dekker pair (both
/// `SeqCst`): the writer publishes `want` then reads `queued`, an appender raises `queued` then
/// reads `want`, so at least one of them sees that the group is complete.
pub(crate) struct Gather {
    queued: AtomicIsize,
    /// While the writer sleeps: the queued count that should wake it; zero otherwise.
    want: AtomicIsize,
    writer: OnceLock<Thread>,
}

impl Gather {
    pub(crate) fn new() -> Self {
        Gather {
            queued: AtomicIsize::new(0),
            want: AtomicIsize::new(0),
            writer: OnceLock::new(),
        }
    }

    /// Called on the writer's thread before it first waits.
    pub(super) fn register_writer(&self) {
        let _ = self.writer.set(std::thread::current());
        // Linux lets a sleep's timeout run late by the thread's timer slack, 50 µs by default:
        // as long as the waits themselves. The writer's waits must end on time. (Best effort:
        // without it a wait that times out is only longer.)
        #[cfg(target_os = "linux")]
        let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(TIMER_SLACK_NS));
    }

    /// An appender has queued a batch.
    pub(crate) fn queued_one(&self) {
        let queued = self.queued.fetch_add(1, SeqCst) + 1;
        let want = self.want.load(SeqCst);
        if want > 0
            && queued >= want
            && self.want.compare_exchange(want, 0, SeqCst, SeqCst).is_ok()
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }

    /// The writer has taken `n` batches off the queue (counted once per group, not per batch:
    /// the count is shared with every appender).
    pub(super) fn taken(&self, n: usize) {
        if n > 0 {
            self.queued
                .fetch_sub(isize::try_from(n).unwrap_or(isize::MAX), SeqCst);
        }
    }

    /// Batches queued and not yet taken.
    pub(super) fn queued(&self) -> usize {
        usize::try_from(self.queued.load(SeqCst)).unwrap_or(0)
    }

    /// Batches counted as queued minus those counted as taken: zero once every append sent has
    /// been taken, if both sides count every batch.
    #[cfg(test)]
    pub(crate) fn net(&self) -> isize {
        self.queued.load(SeqCst)
    }

    /// On the writer's thread: sleep until `want` batches are queued or `timeout` has passed.
    /// True if they were queued before the timeout.
    pub(super) fn wait(&self, want: usize, timeout: Duration) -> bool {
        let want = isize::try_from(want).unwrap_or(isize::MAX);
        let start = Instant::now();
        loop {
            // Checked first, so a wake-up that never came (the group completed, the writer not
            // woken) shows as a timeout.
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                self.want.store(0, SeqCst);
                return false;
            }
            // Published again each round: an appender that read an earlier wait's equal `want`
            // may clear it late, and later appenders would then not wake us. The count alone
            // decides: only the writer takes batches, so a count that completed the group stays.
            self.want.store(want, SeqCst);
            if self.queued.load(SeqCst) >= want {
                self.want.store(0, SeqCst);
                return true;
            }
            // Parking can end early (an old wake-up, or none at all): the loop checks again.
            std::thread::park_timeout(left);
        }
    }
}

/// When the writer waits for a group, and for how long.
pub(super) struct Policy {
    /// Batches expected in the next group: those of the group just acknowledged (their
    /// appenders come back) and those that were queued behind it.
    expect: usize,
    /// Groups to commit without waiting, after waits that did not pay.
    skip: u32,
    /// What `skip` is set to after the next wait that does not pay: doubled by each such wait
    /// in a row, reset by one that pays, so appenders that cannot come back quickly (a busy
    /// CPU, a full queue) cost a wait only now and then.
    backoff: u32,
    /// The last sync's duration: a wait never exceeds half of it.
    last_sync: Duration,
}

/// The writer thread's timer slack (see [`Gather::register_writer`]).
#[cfg(target_os = "linux")]
const TIMER_SLACK_NS: u64 = 1_000;
/// The longest wait for a group.
const MAX_WAIT: Duration = Duration::from_micros(50);
/// The most groups committed without waiting after waits that did not pay.
const MAX_BACKOFF: u32 = 64;

impl Policy {
    pub(super) fn new() -> Self {
        Policy {
            expect: 0,
            skip: 0,
            backoff: 0,
            last_sync: Duration::ZERO,
        }
    }

    /// A group of `batches` was synced in `took` and acknowledged with `queued` batches behind it.
    /// (Reported per write: a group split by a segment roll reports the part after the roll.)
    pub(super) fn synced(&mut self, batches: usize, queued: usize, took: Duration) {
        self.expect = batches + queued;
        self.last_sync = took;
    }

    /// How many more batches to wait for, and for how long, when the group has `have`; `None`
    /// when the writer should commit at once: one appender, a group already three quarters
    /// full, a sync too quick to measure, or after waits that did not pay.
    ///
    /// It waits for three quarters of the expected batches, not all: the last appenders to
    /// come back are the slowest (on a busy CPU, much slower), and the rest of them still join
    /// the group if they are queued when the writer wakes.
    pub(super) fn wait_for(&mut self, have: usize) -> Option<(usize, Duration)> {
        let target = (self.expect * 3).div_ceil(4);
        let timeout = (self.last_sync / 2).min(MAX_WAIT);
        if self.expect < 2 || have >= target || timeout.is_zero() {
            return None;
        }
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        Some((target - have, timeout))
    }

    /// The outcome of a wait of `took` that added `gained` batches to a group of `had`.
    ///
    /// The wait paid if batches came at least as fast as they did before it, over the last sync
    /// (`had` in `last_sync`): then the group grew by more than the wait made the cycle longer.
    /// Appenders slowed by a busy CPU come back no faster than usual, and waiting for them only
    /// delays every batch of the group.
    pub(super) fn waited(&mut self, had: usize, gained: usize, took: Duration) {
        let paid = gained > 0
            && gained as u128 * self.last_sync.as_nanos() >= had as u128 * took.as_nanos();
        if paid {
            self.backoff = 0;
        } else {
            self.backoff = (self.backoff * 2 + 1).min(MAX_BACKOFF);
            self.skip = self.backoff;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A waiting writer: the outcome of `gather.wait(want, timeout)` on a thread of its own.
    fn waiter(
        gather: &Arc<Gather>,
        want: usize,
        timeout: Duration,
    ) -> std::thread::JoinHandle<bool> {
        let gather = gather.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            gather.register_writer();
            ready_tx.send(()).unwrap();
            gather.wait(want, timeout)
        });
        ready_rx.recv().unwrap();
        t
    }

    #[test]
    fn the_last_batch_wanted_wakes_the_writer() {
        let gather = Arc::new(Gather::new());
        // Far longer than the test: the wait reports a filled group only if the last batch woke
        // it (without the wake-up it sleeps out the timeout and reports one).
        let t = waiter(&gather, 3, Duration::from_secs(30));
        // Most likely asleep by now (if not, it finds the batches queued: also a pass).
        std::thread::sleep(Duration::from_millis(10));
        for _ in 0..3 {
            gather.queued_one();
        }
        assert!(t.join().unwrap());
        assert_eq!(gather.queued(), 3);
    }

    #[test]
    fn batches_queued_before_the_wait_fill_it_at_once() {
        let gather = Arc::new(Gather::new());
        gather.queued_one();
        gather.queued_one();
        assert!(waiter(&gather, 2, Duration::from_secs(30)).join().unwrap());
    }

    #[test]
    fn too_few_batches_time_out() {
        let gather = Arc::new(Gather::new());
        gather.queued_one();
        assert!(!waiter(&gather, 2, Duration::from_millis(1)).join().unwrap());
    }

    #[test]
    fn a_batch_taken_before_it_is_counted_nets_out() {
        let gather = Gather::new();
        gather.taken(1);
        assert_eq!(gather.queued(), 0);
        gather.queued_one();
        assert_eq!(gather.queued(), 0);
        gather.queued_one();
        assert_eq!(gather.queued(), 1);
    }

    #[test]
    fn the_policy_waits_for_three_quarters_of_the_last_group_and_those_behind_it() {
        let mut p = Policy::new();
        // No group synced yet, then one appender: never wait.
        assert_eq!(p.wait_for(1), None);
        p.synced(1, 0, Duration::from_micros(80));
        assert_eq!(p.wait_for(1), None);
        // Two half-groups taking turns: the next group waits for the first half's appenders.
        p.synced(32, 32, Duration::from_micros(80));
        assert_eq!(p.wait_for(32), Some((16, Duration::from_micros(40))));
        assert_eq!(p.wait_for(48), None);
        // A slow sync caps the wait.
        p.synced(64, 0, Duration::from_millis(5));
        assert_eq!(p.wait_for(10), Some((38, MAX_WAIT)));
        // A sync too quick to measure is not worth a wait (a wait of zero could not pay).
        p.synced(64, 0, Duration::ZERO);
        assert_eq!(p.wait_for(10), None);
        assert_eq!(p.skip, 0);
    }

    #[test]
    fn waits_that_do_not_pay_skip_more_and_more_chances() {
        let us = Duration::from_micros;
        let mut p = Policy::new();
        // 8 batches came over an 80 µs sync: 1 per 10 µs.
        p.synced(8, 0, us(80));
        let waits_in =
            |p: &mut Policy, groups: usize| (0..groups).filter(|_| p.wait_for(1).is_some()).count();
        let paid = |p: &mut Policy| p.waited(8, 5, us(40)); // 1 per 8 µs
        let unpaid = |p: &mut Policy| p.waited(8, 3, us(40)); // 1 per 13 µs
        paid(&mut p);
        assert_eq!(waits_in(&mut p, 3), 3);
        unpaid(&mut p); // skip 1
        assert_eq!(waits_in(&mut p, 2), 1);
        unpaid(&mut p); // skip 3
        assert_eq!(waits_in(&mut p, 4), 1);
        paid(&mut p); // resets the back-off
        unpaid(&mut p); // skip 1
        assert_eq!(waits_in(&mut p, 2), 1);
        for _ in 0..20 {
            unpaid(&mut p);
        }
        assert_eq!(waits_in(&mut p, MAX_BACKOFF as usize + 1), 1);
        // A wait that brought nothing never pays.
        p.waited(8, 0, Duration::ZERO);
        assert_eq!(p.skip, MAX_BACKOFF);
    }
}
