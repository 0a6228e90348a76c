//! `WorkPool`: CPU-heavy work (cutting large listing pages, parsing large XML) on a fixed set of
//! low-priority threads fed by a bounded queue, never a thread per request and never on the async
//! workers. A full queue is refused at once: the caller answers RESOURCE_EXHAUSTED instead of
//! queueing without bound.

use crate::error::{Error, Result};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

type Task = Box<dyn FnOnce() + Send>;

/// A fixed pool of low-priority threads.
#[derive(Debug, Clone)]
pub struct WorkPool {
    queue: SyncSender<Task>,
    threads: usize,
    capacity: usize,
}

impl WorkPool {
    /// `threads` workers (at least one) behind a queue of `capacity` waiting tasks.
    pub fn new(threads: usize, capacity: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (queue, receiver) = sync_channel::<Task>(capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        for n in 0..threads {
            let receiver = receiver.clone();
            std::thread::Builder::new().name(format!("rvirtd-work-{n}")).spawn(move || {
                // Below the async workers: a mutation never waits behind another client's listing.
                crate::systemd::lower_thread_priority();
                loop {
                    // The lock is held only while waiting for the next task, never while running it.
                    let task = match receiver.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match task {
                        Ok(task) => task(),
                        Err(_) => return, // the pool was dropped
                    }
                }
            })?;
        }
        Ok(WorkPool { queue, threads, capacity })
    }

    /// Runs `work` on the pool and waits for its result; refused with `Error::Busy` when
    /// `capacity` tasks already wait. Dropping the returned future does not stop `work` once it
    /// runs, but its result is then discarded.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            // A caller that gave up has dropped its receiver: nothing to do with the result.
            let _ = sender.send(work());
        });
        match self.queue.try_send(task) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(Error::Busy(format!(
                    "{} heavy requests are already waiting for the daemon's {} work threads; retry later",
                    self.capacity, self.threads
                )));
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(Error::Busy("the work pool has stopped".into()));
            }
        }
        receiver.await.map_err(|_| Error::Busy("a work thread failed while serving this request".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Multi-threaded: the test blocks one runtime thread while a spawned task waits on the pool.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_on_the_pool_and_a_full_queue_is_refused_at_once() {
        let pool = WorkPool::new(1, 2).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        // Block the only thread, fill the queue, then one more is refused without waiting.
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || {
                    started_tx.send(()).unwrap();
                    blocked.recv().unwrap()
                })
                .await
            }
        });
        started.recv().unwrap();
        let waiting: Vec<_> = (0..2)
            .map(|n| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(move || n).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let refused = pool.run(|| 0).await.unwrap_err();
        assert!(matches!(refused, Error::Busy(_)), "{refused}");
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        for (n, task) in waiting.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), n);
        }
    }
}
