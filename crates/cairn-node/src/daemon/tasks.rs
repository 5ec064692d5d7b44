//! The daemon's background work: a cancellation signal every long task checks, the set of
//! tasks started on the node's behalf (syncs, the serving of peers' requests), which stopping
//! waits for, up to a deadline, and then aborts; and running blocking work off the async
//! threads.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::Error;
use tokio_util::sync::CancellationToken;

/// Started tasks and the signal that asks them to end.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    /// Cancelled when the node starts stopping. Syncs check it between pages, so one in the
    /// middle of a bootstrap ends within a page.
    stopping: CancellationToken,
    /// The tasks still running (finished ones are reaped whenever another starts).
    running: Mutex<JoinSet<()>>,
}

impl Tasks {
    /// Runs `task` in the background unless the node is stopping.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        // Checked under the lock that `stop` takes the set under, after signalling: a task
        // either starts before the set is taken (and is waited for) or not at all.
        let mut running = lock(&self.running);
        if self.stopping.is_cancelled() {
            return;
        }
        while running.try_join_next().is_some() {}
        running.spawn(task);
    }

    /// Whether the node has started stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Completes once the node starts stopping.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await;
    }

    /// Sends the stop signal: tasks end at their next check, and no new task starts.
    pub fn signal_stop(&self) {
        self.stopping.cancel();
    }

    /// Asks every task to end and waits for them up to `deadline`; what is still running then
    /// is aborted. Returns how many tasks had to be aborted.
    pub async fn stop(&self, deadline: Duration) -> usize {
        self.stopping.cancel();
        let mut running = std::mem::take(&mut *lock(&self.running));
        let drained = tokio::time::timeout(deadline, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_ok() {
            return 0;
        }
        let left = running.len();
        running.abort_all();
        while running.join_next().await.is_some() {}
        left
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Task(err.to_string()))?
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
