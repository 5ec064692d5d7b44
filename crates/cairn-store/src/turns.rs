//! Order across batches: a line of batches, each checked as soon as the one before it has
//! been checked and written once the one before it has been written.
//!
//! A sync stores each page of fetched entries as it arrives. Stored one call after another,
//! each call's verifiers would wait for the previous call's writer, and each call would
//! start with its writer waiting for the first verified chunk. With a turn, the next page is
//! verified while the one before it is still being written, and its writes still follow
//! (chains are extended in order, never taking the slower out-of-order path). Its checks
//! also wait for the previous page's checks to end, so that the writer, which waits for
//! those, does not share the cores with two pages' checking threads at once.

use std::sync::mpsc;

/// Hands out turns in order. Each turn's checks wait until the batch with the turn before
/// has finished its checks, and its writes until that batch has finished writing (or failed).
#[derive(Debug, Default)]
pub struct WriteLine {
    /// Closed when the batch holding the latest turn has finished writing.
    latest: Option<mpsc::Receiver<()>>,
    /// Closed when the batch holding the latest turn has finished checking its frames.
    latest_checked: Option<mpsc::Receiver<()>>,
}

impl WriteLine {
    pub fn new() -> Self {
        Self::default()
    }

    /// The turn after every turn handed out so far.
    pub fn next_turn(&mut self) -> WriteTurn {
        let (finished, finished_signal) = mpsc::sync_channel(0);
        let (checked, checked_signal) = mpsc::sync_channel(0);
        WriteTurn {
            after: self.latest.replace(finished_signal),
            _finished: finished,
            checks_after: self.latest_checked.replace(checked_signal),
            checked: Some(checked),
        }
    }
}

/// One batch's place in a [`WriteLine`]: pass it to [`crate::Store::insert_batch_in_turn`].
/// Dropping it (when that insert returns) lets the next turn check and write.
#[derive(Debug)]
pub struct WriteTurn {
    /// Closed when the batch before this one has finished; `None` once waited for.
    after: Option<mpsc::Receiver<()>>,
    /// Never sent on: dropping it closes the next turn's `after`.
    _finished: mpsc::SyncSender<()>,
    /// Closed when the batch before this one has checked its frames; `None` once waited for.
    checks_after: Option<mpsc::Receiver<()>>,
    /// Never sent on: once it and every clone handed to this batch's checking threads are
    /// dropped, the next turn's `checks_after` closes.
    checked: Option<mpsc::SyncSender<()>>,
}

/// Held while a batch checks its frames: the next batch's checks start once every one is
/// dropped, so two batches' checks do not share the cores with the writer at once.
#[derive(Debug, Clone)]
pub(crate) struct Checking {
    /// Never sent on; only its being dropped counts.
    _open: Option<mpsc::SyncSender<()>>,
}

impl WriteTurn {
    /// A turn that waits for nothing: a batch on its own.
    pub fn alone() -> Self {
        WriteLine::new().next_turn()
    }

    /// Blocks until the batches before this one have finished writing. Returns at once after
    /// the first call.
    pub(crate) fn wait(&mut self) {
        if let Some(after) = self.after.take() {
            // Nothing is ever sent: this returns when the previous turn is dropped.
            let _ = after.recv();
        }
    }

    /// Blocks until the batch before this one has finished checking its frames, then returns
    /// this batch's mark of checking, to be cloned into each checking thread. Once the turn
    /// and every clone are dropped, the next batch may check.
    pub(crate) fn start_checking(&mut self) -> Checking {
        if let Some(after) = self.checks_after.take() {
            // Nothing is ever sent: this returns when the previous batch's marks are dropped.
            let _ = after.recv();
        }
        Checking {
            _open: self.checked.take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn turns_write_in_the_order_they_were_handed_out() {
        let mut line = WriteLine::new();
        let turns: Vec<WriteTurn> = (0..4).map(|_| line.next_turn()).collect();
        let order = Arc::new(Mutex::new(Vec::new()));
        // Started last first: each still writes after the ones before it.
        let workers: Vec<_> = turns
            .into_iter()
            .enumerate()
            .rev()
            .map(|(index, mut turn)| {
                let order = order.clone();
                std::thread::spawn(move || {
                    turn.wait();
                    order.lock().expect("order").push(index);
                    drop(turn);
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("worker");
        }
        assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_turn_checks_once_every_checking_thread_of_the_turn_before_is_done() {
        let mut line = WriteLine::new();
        let mut first = line.next_turn();
        let mut second = line.next_turn();
        let checking = first.start_checking();
        let threads = [checking.clone(), checking];
        let (started, started_signal) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _checking = second.start_checking();
            started.send(()).expect("send");
            // Checking does not wait for the writes before.
            drop(second);
        });
        // The first turn's writing (or its end) does not matter: only its checking threads.
        drop(first);
        let [one, other] = threads;
        drop(one);
        assert!(
            started_signal
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "checks began while a thread of the turn before was still checking"
        );
        drop(other);
        started_signal
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("checks begin once the turn before has checked");
        waiter.join().expect("waiter");
    }

    #[test]
    fn a_turn_dropped_without_writing_lets_the_next_one_go() {
        let mut line = WriteLine::new();
        let first = line.next_turn();
        let mut second = line.next_turn();
        drop(first);
        second.wait();
        WriteTurn::alone().wait();
    }
}
