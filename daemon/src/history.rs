//! `History`: the registry's recent changes, kept in memory so a watcher can follow every change
//! after a listing's generation (Kubernetes' resourceVersion, etcd's revision).
//!
//! `Registry::commit`, the only writer, appends one `Entry` per generation while it holds the
//! registry's write lock, so the log is in generation order with no gap; it trims it by count
//! and by age at the same moment. Readers take the log's own lock only to clone a batch of
//! `Arc`s, never the registry's. `head` wakes waiting watchers through a `watch` channel, so a
//! caught-up watcher sleeps until the next generation instead of polling.
//!
//! Generations are comparable only within one history. The log lives in memory, so it cannot be
//! continued after the daemon restarts: each daemon gets a new random *incarnation*, returned with
//! every listing, change and event, and a watch from another incarnation is refused.

use crate::domain::Domain;
use crate::events::{self, Lifecycle};
use crate::lifecycle::Change;
use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// One committed change.
#[derive(Debug)]
pub struct Entry {
    /// The generation the change produced.
    pub generation: u64,
    /// The domain changed.
    pub uuid: Uuid,
    /// The domain before (`None`: it did not exist)...
    pub before: Option<Arc<Domain>>,
    /// ...and after (`None`: removed).
    pub after: Option<Arc<Domain>>,
    /// libvirt's lifecycle events for it.
    pub lifecycle: Lifecycle,
    /// `rvirt_proto::event::changed` bits.
    pub changed: u32,
    at: Instant,
}

/// Why a watch cannot resume from a generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    /// The history no longer reaches back that far.
    TooOld {
        /// The oldest generation it can resume after.
        oldest: u64,
    },
    /// That generation has not happened yet.
    Future {
        /// The current one.
        head: u64,
    },
}

/// How much history to keep.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Entries at most.
    pub max_changes: usize,
    /// Entries older than this go at the next commit.
    pub max_age: Duration,
}

impl Retention {
    /// The `[watch]` table's retention.
    pub fn of(config: &crate::config::WatchConfig) -> Self {
        Retention {
            max_changes: config.history_max_changes,
            max_age: Duration::from_secs(config.history_max_age_secs),
        }
    }
}

#[derive(Debug)]
struct Log {
    entries: VecDeque<Arc<Entry>>,
    /// The generation the log starts after: a watch may resume after `floor..=head`.
    floor: u64,
}

/// The change history of one daemon incarnation.
#[derive(Debug)]
pub struct History {
    incarnation: u64,
    log: RwLock<Log>,
    head: tokio::sync::watch::Sender<u64>,
    retention: Retention,
}

impl History {
    /// An empty history at `generation`, with a fresh random incarnation (never 0, which
    /// requests use for "none").
    pub fn new(generation: u64, retention: Retention) -> Self {
        let incarnation = loop {
            let (high, low) = Uuid::new_v4().as_u64_pair();
            if high ^ low != 0 {
                break high ^ low;
            }
        };
        History {
            incarnation,
            log: RwLock::new(Log { entries: VecDeque::new(), floor: generation }),
            head: tokio::sync::watch::Sender::new(generation),
            retention,
        }
    }

    /// This daemon's incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The latest generation.
    pub fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// A receiver that wakes when the head moves.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Appends the change that produced `generation`; called by `Registry::commit` under its
    /// write lock, so generations arrive in order and each exactly once.
    pub(crate) fn push(
        &self,
        generation: u64,
        before: Option<Arc<Domain>>,
        after: Option<Arc<Domain>>,
        change: &Change,
    ) {
        let uuid = before.as_ref().or(after.as_ref()).map_or(Uuid::nil(), |d| d.uuid());
        let entry = Entry {
            generation,
            uuid,
            lifecycle: events::lifecycle(before.as_deref(), after.as_deref(), change.stopped_as),
            changed: events::changed(before.as_deref(), after.as_deref()),
            before,
            after,
            at: Instant::now(),
        };
        {
            let mut log = self.log.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            debug_assert_eq!(generation, log.floor + log.entries.len() as u64 + 1);
            log.entries.push_back(Arc::new(entry));
            let now = Instant::now();
            while let Some(oldest) = log.entries.front()
                && (log.entries.len() > self.retention.max_changes
                    || now.duration_since(oldest.at) > self.retention.max_age)
            {
                log.floor = oldest.generation;
                log.entries.pop_front();
            }
        }
        self.head.send_replace(generation);
    }

    /// Up to `max` entries after generation `after`, in order (empty when `after` is the head).
    pub fn read(&self, after: u64, max: usize) -> Result<Vec<Arc<Entry>>, Gap> {
        let log = self.log.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let head = log.floor + log.entries.len() as u64;
        if after < log.floor {
            return Err(Gap::TooOld { oldest: log.floor });
        }
        if after > head {
            return Err(Gap::Future { head });
        }
        let start = (after - log.floor) as usize;
        Ok(log.entries.range(start..).take(max).cloned().collect())
    }

    /// When the change that produced `generation` was committed, if the history holds it.
    pub fn committed_at(&self, generation: u64) -> Option<Instant> {
        let log = self.log.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = generation.checked_sub(log.floor + 1)?;
        log.entries.get(usize::try_from(index).ok()?).map(|entry| entry.at)
    }

    /// Whether a watch may resume after `after`.
    pub fn check(&self, after: u64) -> Result<(), Gap> {
        self.read(after, 0).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention(max_changes: usize) -> Retention {
        Retention { max_changes, max_age: Duration::from_secs(600) }
    }

    #[test]
    fn resumes_anywhere_it_reaches_and_refuses_elsewhere() {
        let history = History::new(10, retention(3));
        assert_ne!(history.incarnation(), History::new(10, retention(3)).incarnation());
        assert_eq!(history.read(10, 5).unwrap().len(), 0);
        for generation in 11..=14 {
            history.push(generation, None, None, &Change::remove());
        }
        assert_eq!(history.head(), 14);
        // Three kept: 12, 13, 14; resuming after 11 is still gap-free.
        let all: Vec<u64> = history.read(11, 10).unwrap().iter().map(|e| e.generation).collect();
        assert_eq!(all, [12, 13, 14]);
        assert_eq!(history.read(12, 1).unwrap()[0].generation, 13);
        assert_eq!(history.read(10, 1).unwrap_err(), Gap::TooOld { oldest: 11 });
        assert_eq!(history.read(15, 1).unwrap_err(), Gap::Future { head: 14 });
        assert!(history.read(14, 1).unwrap().is_empty());
    }

    #[test]
    fn old_changes_age_out() {
        let history = History::new(0, Retention { max_changes: 100, max_age: Duration::from_millis(1) });
        history.push(1, None, None, &Change::remove());
        std::thread::sleep(Duration::from_millis(5));
        history.push(2, None, None, &Change::remove());
        assert_eq!(history.check(0), Err(Gap::TooOld { oldest: 1 }));
        assert_eq!(history.read(1, 5).unwrap().len(), 1);
    }
}
