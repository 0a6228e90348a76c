//! `Counters`: domain ids and generations, never handed out twice, not even across a crash.
//!
//! Both are reserved ahead in blocks written to the store (`STATE_DIR/counters` and its copy
//! `counters.2`, checksummed, fsynced) before any value of the block is used, so after a crash
//! the daemon continues above the last reservation. A job reserves the generation it will commit
//! before it records its change, so every file the change writes carries (in its header) a
//! reservation at or above it: if both counters copies are unreadable, loading continues above
//! the highest of those, one block further, never from 0. A clean shutdown writes the exact
//! values, so after one the numbers continue where they stopped.

use crate::error::Result;
use crate::store::{self, Store};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Ids reserved per write of the counters file.
pub(crate) const ID_BLOCK: i32 = 1000;
/// Generations reserved per write of the counters file.
pub(crate) const GENERATION_BLOCK: u64 = 10_000;

/// The daemon's id and generation reservations.
#[derive(Debug)]
pub struct Counters {
    /// The highest generation the registry may commit without a new reservation. Read by every
    /// commit, under the registry lock, which is why it is an atomic and not behind `ids`.
    generation_ceiling: AtomicU64,
    /// The next id and the first id not yet reserved. A std mutex, held across the rare write
    /// of the counters file, never across an await.
    ids: Mutex<(i32, i32)>,
}

impl Counters {
    /// Counters continuing from what was loaded: nothing above `generation` or at/after
    /// `next_id` has been reserved yet.
    pub fn new(generation: u64, next_id: i32) -> Self {
        Counters { generation_ceiling: AtomicU64::new(generation), ids: Mutex::new((next_id, next_id)) }
    }

    /// The highest generation that may be committed now.
    pub fn generation_ceiling(&self) -> u64 {
        self.generation_ceiling.load(Ordering::Acquire)
    }

    /// Makes generations up to at least `needed` usable, reserving a block on disk first.
    pub fn reserve_generations(&self, store: &Store, needed: u64) -> Result<()> {
        if needed <= self.generation_ceiling() {
            return Ok(());
        }
        let ids = self.lock_ids();
        if needed <= self.generation_ceiling() {
            return Ok(());
        }
        let ceiling = needed + GENERATION_BLOCK;
        store.write_counters(store::Counters { generation: ceiling, next_id: ids.1 })?;
        self.generation_ceiling.store(ceiling, Ordering::Release);
        Ok(())
    }

    /// The next domain id, reserving a block on disk when the current one is used up.
    pub fn allocate_id(&self, store: &Store) -> Result<i32> {
        let mut ids = self.lock_ids();
        if ids.0 >= ids.1 {
            let ceiling = ids.0.saturating_add(ID_BLOCK);
            store.write_counters(store::Counters {
                generation: self.generation_ceiling(),
                next_id: ceiling,
            })?;
            ids.1 = ceiling;
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Writes the exact values (clean shutdown): the next start continues from them.
    pub fn write_exact(&self, store: &Store, generation: u64) -> Result<()> {
        let ids = self.lock_ids();
        store.write_counters(store::Counters { generation, next_id: ids.0 })
    }

    fn lock_ids(&self) -> std::sync::MutexGuard<'_, (i32, i32)> {
        self.ids.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
