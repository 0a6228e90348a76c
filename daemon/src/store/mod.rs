//! `Store`: the daemon's state on disk, one file per object, every change failure-atomic.
//!
//! Layout (like libvirt's `/etc/libvirt/qemu` + `/var/lib/libvirt/qemu` + `/run/libvirt/qemu`):
//!
//! ```text
//! STATE_DIR/lock                       advisory lock: one daemon per state folder
//! STATE_DIR/counters, counters.2       generation and domain-id reservations (two checksummed copies)
//! STATE_DIR/config/UUID.xml            persistent definition (domain XML)
//! STATE_DIR/autostart/UUID             autostart mark (holds the name, for people)
//! STATE_DIR/save/UUID.save             managed-save image
//! STATE_DIR/snapshot/UUID/NAME.xml     snapshot metadata (<domainsnapshot>)
//! STATE_DIR/checkpoint/UUID/NAME.xml   checkpoint metadata (<domaincheckpoint>)
//! STATE_DIR/journal/PID-SEQ.xml        a multi-file change being applied (before and after images)
//! RUNTIME_DIR/status/UUID.xml          an active domain's runtime status (<domstatus>)
//! RUNTIME_DIR/booted                   written once per host boot: its absence means a reboot
//! ```
//!
//! Modules: `fs` is the seam every file operation goes through (`Fs`, `RealFs`) and the atomic
//! write primitives; `format` the file formats; `journal` multi-file changes, their undo and
//! their replay; `load` reading it all back.
//!
//! Durability and failure atomicity:
//! - Every file is written to a temporary name, fsynced, renamed over the old one, and the folder
//!   fsynced; a removal fsyncs the folder; a new folder is fsynced into its parent before anything
//!   is written into it. A change that touches one file is that one rename; one that touches
//!   several goes through the journal (`journal.rs`). A change is on disk before its RPC answers.
//! - A change that fails is undone before the call answers: a single file gets its old content
//!   back, a journalled change is rolled back from the before-images and its entry removed. If
//!   the undo fails too, the store is *poisoned* (see `poison`).
//! - Everything that becomes a file name is checked against NAME_MAX before anything is written.
//! - Before each change the state folder and its lock file are checked to be the ones opened at
//!   start: a folder removed or replaced under a running daemon is never written into.
//!
//! Loading never stops on a bad file: a damaged or foreign file (or a journal entry that cannot
//! be applied) is renamed to `*.damaged`, logged with its path and why, and the rest loads.

mod format;
pub mod fs;
mod journal;
mod load;
#[cfg(test)]
pub(crate) mod model;
#[cfg(test)]
mod tests;

pub use format::Counters;
pub use fs::{Fs, RealFs};
pub use load::Loaded;

use crate::domain::Domain;
use crate::error::{Error, Result};
use format::{FileOp, Root};
use fs::{Failed, FsResult};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use uuid::Uuid;

/// The two copies of the counters, written one after the other.
const COUNTERS_FILES: [&str; 2] = ["counters", "counters.2"];

/// The state folder and the runtime folder of one daemon.
#[derive(Debug)]
pub struct Store {
    fs: Arc<dyn Fs>,
    state: PathBuf,
    runtime: PathBuf,
    /// The next journal sequence number.
    journal_seq: AtomicU64,
    /// `(device, inode)` of the state folder and of the lock file, as opened.
    identity: [(u64, u64); 2],
    /// Set when a failed change could not be undone: every later change is refused.
    poisoned: OnceLock<String>,
    /// The reservations last made durable, written into the header of every file.
    reserved_generation: AtomicU64,
    reserved_id: AtomicI32,
    /// Held for the daemon's life: the advisory lock on `STATE_DIR/lock`.
    _lock: fs::LockGuard,
}

impl Store {
    /// Opens (creating) the folders on the real file system and takes the state folder's advisory
    /// lock; a second daemon on the same folder fails here.
    pub fn open(state: &Path, runtime: &Path) -> anyhow::Result<Self> {
        Self::open_with(Arc::new(RealFs), state, runtime)
    }

    /// `open` on any file system.
    pub fn open_with(fs: Arc<dyn Fs>, state: &Path, runtime: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let created = |dir: PathBuf| {
            fs::ensure_dir_all(&*fs, &dir)
                .map_err(|f| anyhow::anyhow!("cannot create {}: {}", f.path.display(), f.source))
        };
        for dir in ["config", "autostart", "save", "snapshot", "checkpoint", "journal"] {
            created(state.join(dir))?;
        }
        created(runtime.join("status"))?;
        let lock_path = state.join("lock");
        let (lock, lock_identity) = match fs.lock(&lock_path, std::process::id()) {
            Ok(held) => held,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let holder = fs.read(&lock_path).unwrap_or_default();
                anyhow::bail!(
                    "another rvirtd (pid {}) is using the state folder {}; stop it or pick another --state-dir",
                    String::from_utf8_lossy(&holder).trim(),
                    state.display()
                );
            }
            Err(e) => return Err(e).with_context(|| format!("cannot lock {}", lock_path.display())),
        };
        let state_identity =
            fs.identity(state).with_context(|| format!("cannot stat {}", state.display()))?;
        Ok(Store {
            fs,
            state: state.to_owned(),
            runtime: runtime.to_owned(),
            journal_seq: AtomicU64::new(0),
            identity: [state_identity, lock_identity],
            poisoned: OnceLock::new(),
            reserved_generation: AtomicU64::new(0),
            reserved_id: AtomicI32::new(1),
            _lock: lock,
        })
    }

    /// The reservations on disk: the larger of the two readable copies (zero when there are
    /// none yet).
    pub fn read_counters(&self) -> Counters {
        self.counters_on_disk().0.unwrap_or(Counters { generation: 0, next_id: 1 })
    }

    /// `(the larger of the readable copies, whether any copy exists but is unreadable)`.
    fn counters_on_disk(&self) -> (Option<Counters>, bool) {
        let mut found: Option<Counters> = None;
        let mut garbled = false;
        for name in COUNTERS_FILES {
            let path = self.state.join(name);
            match self.fs.read(&path) {
                Ok(bytes) => match format::parse_counters(&String::from_utf8_lossy(&bytes)) {
                    Some(c) => found = Some(found.map_or(c, |f| f.max(c))),
                    None => {
                        tracing::warn!(path = %path.display(), "the counters file is garbled; ignoring it");
                        garbled = true;
                    }
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot read the counters file");
                    garbled = true;
                }
            }
        }
        (found, garbled)
    }

    /// Makes `counters` durable, in both copies, one after the other: a crash between them leaves
    /// one old and one new copy, and loading takes the larger.
    pub fn write_counters(&self, counters: Counters) -> Result<()> {
        self.check_usable()?;
        let text = format::counters_text(counters);
        for name in COUNTERS_FILES {
            fs::write_atomic(&*self.fs, &self.state, name, text.as_bytes())
                .map_err(|failed| persist("the counters", failed))?;
        }
        self.reserved_generation.store(counters.generation, Ordering::Release);
        self.reserved_id.store(counters.next_id, Ordering::Release);
        Ok(())
    }

    /// Records the change from `old` to `new` (None: absent) durably. On failure nothing of it
    /// is left, on disk or after a restart (or the store is poisoned, see `poison`).
    pub fn record(&self, uuid: Uuid, old: Option<&Domain>, new: Option<&Domain>) -> Result<()> {
        self.check_usable()?;
        let ops = format::diff(uuid, old, new);
        for op in &ops {
            for part in op.path.split('/') {
                fs::check_name_length(part).map_err(|length| {
                    Error::InvalidArg(format!(
                        "the file name for {} would be {length} bytes long, the limit is {} (NAME_MAX)",
                        op.path.split('/').next().unwrap_or("it"),
                        fs::NAME_MAX
                    ))
                })?;
            }
        }
        let what = || format!("domain {uuid}");
        match ops.len() {
            0 => Ok(()),
            1 => match self.apply(&ops[0]) {
                Ok(()) => Ok(()),
                Err(failed) => {
                    // The rename may have happened with only the folder fsync failing: put the
                    // old content back (a no-op rewrite when the failure came before).
                    if let Err(undo) = self.apply(&ops[0].inverse()) {
                        self.poison(&failed, &undo);
                    }
                    Err(persist(&what(), failed))
                }
            },
            _ => self.record_journalled(&ops).map_err(|failed| persist(&what(), failed)),
        }
    }

    /// Undoes a change `record` made durable but that could not be committed. If that fails
    /// the store is poisoned: the registry holds `old`, the disk may hold `new`.
    pub fn unrecord(&self, uuid: Uuid, old: Option<&Domain>, new: Option<&Domain>) {
        if let Err(error) = self.record(uuid, new, old) {
            let message = format!(
                "a change to domain {uuid} could not be undone ({error}); refusing every change: restart rvirtd"
            );
            tracing::error!(%message, "store poisoned");
            let _ = self.poisoned.set(message);
        }
    }

    /// Poisons the store after a failed change whose undo failed too: what is on disk may no
    /// longer be what the registry holds, and a journal entry may be left that the next start
    /// replays (finishing the failed change). So no later change is accepted — a later
    /// acknowledged change could otherwise be undone by that replay, or built on files the
    /// registry does not know. Only a restart, which loads what is on disk, clears it.
    fn poison(&self, failed: &Failed, undo: &Failed) {
        let message = format!(
            "a change to the state folder {} failed ({}: {}) and could not be undone ({}: {}); \
             refusing every change: restart rvirtd",
            self.state.display(),
            failed.path.display(),
            crate::error::describe_io(&failed.source),
            undo.path.display(),
            crate::error::describe_io(&undo.source),
        );
        tracing::error!(%message, "store poisoned");
        let _ = self.poisoned.set(message);
    }

    /// Refuses changes once poisoned, or when the state folder or its lock file is no longer the
    /// one opened at start (removed or replaced under the running daemon): writing into a new
    /// folder would lose every change at the next start, or share it with a second daemon.
    fn check_usable(&self) -> Result<()> {
        if let Some(message) = self.poisoned.get() {
            return Err(Error::StoreUnusable(message.clone()));
        }
        let lock = self.state.join("lock");
        for (path, opened) in [(&self.state, self.identity[0]), (&lock, self.identity[1])] {
            match self.fs.identity(path) {
                Ok(now) if now == opened => {}
                Ok(_) => return Err(self.replaced()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(self.replaced()),
                Err(e) => return Err(persist("the state folder", Failed { path: path.clone(), source: e })),
            }
        }
        Ok(())
    }

    /// Why the store refuses every change, if it does.
    #[cfg(test)]
    pub(crate) fn poisoned(&self) -> Option<&str> {
        self.poisoned.get().map(String::as_str)
    }

    fn replaced(&self) -> Error {
        Error::StoreUnusable(format!(
            "the state folder {} was removed or replaced; restart rvirtd",
            self.state.display()
        ))
    }

    fn root(&self, root: Root) -> &Path {
        match root {
            Root::State => &self.state,
            Root::Runtime => &self.runtime,
        }
    }

    fn reserved(&self) -> Counters {
        Counters {
            generation: self.reserved_generation.load(Ordering::Acquire),
            next_id: self.reserved_id.load(Ordering::Acquire),
        }
    }

    /// Writes `text` (after the reservation header) to `path` under `root`, atomically.
    fn put(&self, root: Root, path: &str, text: &str) -> FsResult {
        let full = self.root(root).join(path);
        let (dir, name) = (full.parent().expect("file in a folder"), full.file_name().expect("file name"));
        if path.matches('/').count() > 1 {
            // A snapshot or checkpoint folder: created (durably) on first use.
            fs::ensure_dir(&*self.fs, dir)?;
        }
        let mut data = format::header(self.reserved());
        data.push_str(text);
        fs::write_atomic(&*self.fs, dir, &name.to_string_lossy(), data.as_bytes())
    }

    /// Brings one file to its `after` state.
    fn apply(&self, op: &FileOp) -> FsResult {
        match &op.after {
            Some(text) => self.put(op.root, &op.path, text),
            None => fs::remove_durably(&*self.fs, &self.root(op.root).join(&op.path)),
        }
    }
}

fn persist(what: &str, failed: Failed) -> Error {
    Error::Persist { what: what.to_owned(), path: failed.path, source: failed.source }
}

/// Checks that a snapshot or checkpoint name can be stored: its file name (percent-encoded, with
/// `.xml`, and the temporary name it is first written under) must fit NAME_MAX.
///
/// Differs from libvirt: libvirt fails with a system error when it writes the file; rvirt refuses
/// the name up front with VIR_ERR_INVALID_ARG.
pub fn check_moment_name(kind: &str, name: &str) -> Result<()> {
    let file = format::file_name(name);
    fs::check_name_length(&file).map_err(|length| {
        Error::InvalidArg(format!(
            "{kind} name of {} bytes needs a file name of {length} bytes (special characters are \
             stored as %XX), the limit is {} (NAME_MAX)",
            name.len(),
            fs::NAME_MAX
        ))
    })
}
