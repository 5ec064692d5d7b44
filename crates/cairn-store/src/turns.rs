//! Write order across batches: a line of batches that are checked at once but written one
//! after another, in the order they joined the line.
//!
//! A sync stores each page of fetched entries as it arrives. Stored one call after another,
//! each call's verifiers would wait for the previous call's writer, and each call would
//! start with its writer waiting for the first verified chunk. With a turn, the next page is
//! verified while the one before it is still being written, and its writes still follow
//! (chains are extended in order, never taking the slower out-of-order path).

use std::sync::mpsc;

/// Hands out turns in order. Each turn's writes wait until every batch given an earlier turn
/// has finished writing (or failed).
#[derive(Debug, Default)]
pub struct WriteLine {
    /// Closed when the batch holding the latest turn has finished writing.
    latest: Option<mpsc::Receiver<()>>,
}

impl WriteLine {
    pub fn new() -> Self {
        Self::default()
    }

    /// The turn after every turn handed out so far.
    pub fn next_turn(&mut self) -> WriteTurn {
        let (finished, finished_signal) = mpsc::sync_channel(0);
        WriteTurn {
            after: self.latest.replace(finished_signal),
            _finished: finished,
        }
    }
}

/// One batch's place in a [`WriteLine`]: pass it to [`crate::Store::insert_batch_in_turn`].
/// Dropping it (when that insert returns) lets the next turn write.
#[derive(Debug)]
pub struct WriteTurn {
    /// Closed when the batch before this one has finished; `None` once waited for.
    after: Option<mpsc::Receiver<()>>,
    /// Never sent on: dropping it closes the next turn's `after`.
    _finished: mpsc::SyncSender<()>,
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
    fn a_turn_dropped_without_writing_lets_the_next_one_go() {
        let mut line = WriteLine::new();
        let first = line.next_turn();
        let mut second = line.next_turn();
        drop(first);
        second.wait();
        WriteTurn::alone().wait();
    }
}
