//! Multi-file changes: the journal.
//!
//! A change that touches several files is first written whole to `journal/PID-SEQ.xml` (every
//! file with its before- and after-image), then applied file by file, then the entry is removed
//! durably; only then does the call answer.
//!
//! - A crash (or power cut) while the entry exists: the next start finishes the change from the
//!   entry (the call never answered, so whole is allowed). Once the entry's removal is durable it
//!   can never replay over a later change.
//! - A failure while applying: the files already applied are rolled back from the
//!   before-images, newest first, and the entry removed, before the call answers its error. If
//!   the rollback or that removal fails, the store is poisoned (`Store::poison`): the entry may
//!   still replay at the next start, so no later change may be acknowledged.
//! - At start, an entry that cannot be applied is rolled back as far as it can be, then set aside
//!   as `*.damaged` with the reason logged, and loading goes on.

use super::format::{self, FileOp, Root};
use super::fs::{self, FsResult};
use super::{Store, load};
use std::sync::atomic::Ordering;

impl Store {
    /// Records a multi-file change through the journal (see the module comment).
    pub(super) fn record_journalled(&self, ops: &[FileOp]) -> FsResult {
        let seq = self.journal_seq.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{seq:08}.xml", std::process::id());
        let dir = self.state.join("journal");
        let entry = dir.join(&name);
        let mut text = format::header(self.reserved());
        text.push_str(&format::journal_text(ops));
        if let Err(failed) = fs::write_atomic(&*self.fs, &dir, &name, text.as_bytes()) {
            // The rename may have happened with only the folder fsync failing.
            if let Err(undo) = fs::remove_durably(&*self.fs, &entry) {
                self.poison(&failed, &undo);
            }
            return Err(failed);
        }
        let mut applied = 0;
        let mut result = Ok(());
        for op in ops {
            // Counted before it is tried: a failed write may still have renamed.
            applied += 1;
            if let Err(failed) = self.apply(op) {
                result = Err(failed);
                break;
            }
        }
        if result.is_ok() {
            result = fs::remove_durably(&*self.fs, &entry);
        }
        let Err(failed) = result else { return Ok(()) };
        let undone = ops[..applied]
            .iter()
            .rev()
            .try_for_each(|op| self.apply(&op.inverse()))
            .and_then(|()| fs::remove_durably(&*self.fs, &entry));
        if let Err(undo) = undone {
            self.poison(&failed, &undo);
        }
        Err(failed)
    }

    /// Finishes the journal entries left by a crash, oldest first. After a host reboot, writes
    /// to the runtime folder are skipped: those guests are gone. An entry that cannot be read
    /// or applied is undone as far as it can be and set aside; loading goes on.
    pub(super) fn replay_journal(&self, rebooted: bool, found: &mut load::Found) -> anyhow::Result<()> {
        let dir = self.state.join("journal");
        let mut entries: Vec<String> = self
            .fs
            .read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", dir.display()))?
            .into_iter()
            .map(|e| e.name)
            .filter(|name| name.ends_with(".xml") && !fs::is_temp(name))
            .collect();
        entries.sort();
        for name in entries {
            let path = dir.join(&name);
            let ops = self
                .fs
                .read(&path)
                .map_err(|e| e.to_string())
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .and_then(|text| {
                    let (reserved, body) = format::split_header(&text);
                    found.reserved(reserved);
                    format::parse_journal(body)
                });
            let ops = match ops {
                Ok(ops) => ops,
                Err(why) => {
                    load::set_aside(&*self.fs, &path, &why);
                    continue;
                }
            };
            let skip = |op: &&FileOp| rebooted && op.root == Root::Runtime;
            let names_fit = ops.iter().all(|op| op.path.split('/').all(|p| fs::check_name_length(p).is_ok()));
            let forward = if names_fit {
                ops.iter().filter(|op| !skip(op)).try_for_each(|op| self.apply(op))
            } else {
                Err(fs::Failed {
                    path: path.clone(),
                    source: std::io::Error::other(format!("a file name longer than {} bytes", fs::NAME_MAX)),
                })
            };
            match forward {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), files = ops.len(), "finished a change interrupted by a crash");
                    fs::remove_durably(&*self.fs, &path)
                        .map_err(|f| anyhow::anyhow!("cannot remove {}: {}", f.path.display(), f.source))?;
                }
                Err(failed) => {
                    let why = format!(
                        "cannot apply it ({}: {}); undone as far as possible",
                        failed.path.display(),
                        failed.source
                    );
                    for op in ops.iter().rev().filter(|op| op.undoable && !skip(op)) {
                        let inverse = op.inverse();
                        let fits = inverse.path.split('/').all(|p| fs::check_name_length(p).is_ok());
                        if fits && let Err(f) = self.apply(&inverse) {
                            tracing::error!(path = %f.path.display(), error = %f.source, "cannot undo part of a journal entry");
                        }
                    }
                    load::set_aside(&*self.fs, &path, &why);
                }
            }
        }
        Ok(())
    }
}
