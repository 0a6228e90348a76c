//! Loading: finish interrupted changes, sweep temporary files, read every domain back, and work
//! out where the counters continue. Loading never stops on a bad file.

use super::format::{self, Counters, Moment, MomentName, Root, Status};
use super::fs::{self, Fs};
use super::{COUNTERS_FILES, Store};
use crate::counters::{GENERATION_BLOCK, ID_BLOCK};
use crate::domain::Domain;
use crate::xml::ParseDefaults;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use uuid::Uuid;

/// What loading found.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every domain.
    pub domains: Vec<Domain>,
    /// The generation to continue from.
    pub generation: u64,
    /// The domain id to continue from.
    pub next_id: i32,
    /// The runtime folder was empty: the host rebooted (or this is the first start).
    pub rebooted: bool,
}

/// The highest reservation header seen in any file.
#[derive(Debug, Default)]
pub(super) struct Found {
    reserved: Option<Counters>,
}

impl Found {
    pub(super) fn reserved(&mut self, reserved: Option<Counters>) {
        if let Some(r) = reserved {
            self.reserved = Some(self.reserved.map_or(r, |f| f.max(r)));
        }
    }
}

impl Store {
    /// Finishes interrupted changes, then loads every domain.
    pub fn load(&self, defaults: &ParseDefaults) -> anyhow::Result<Loaded> {
        let rebooted = self.fs.identity(&self.runtime.join("booted")).is_err();
        self.sweep_temporary_files();
        let mut found = Found::default();
        self.replay_journal(rebooted, &mut found)?;
        let mut domains = BTreeMap::new();
        for (uuid, path, _) in self.entries(Root::State, "config", ".xml") {
            match self.read_text(&path, &mut found).and_then(|text| format::parse_def(&text, uuid, defaults))
            {
                Ok(def) => {
                    domains.insert(uuid, Domain::new(Arc::new(def), true));
                }
                Err(why) => set_aside(&*self.fs, &path, &why),
            }
        }
        for (uuid, path, _) in self.entries(Root::Runtime, "status", ".xml") {
            let text = match self.read_text(&path, &mut found) {
                Ok(text) => text,
                Err(why) => {
                    set_aside(&*self.fs, &path, &why);
                    continue;
                }
            };
            match format::parse_status(&text, uuid, defaults) {
                Ok(Status { def: None, reason, .. }) => match domains.get_mut(&uuid) {
                    Some(domain) => domain.reason = reason,
                    None => set_aside(&*self.fs, &path, "status of an inactive domain that has no config"),
                },
                Ok(status) => {
                    let persistent_def = domains.remove(&uuid).map(|d| d.def);
                    if status.persistent != persistent_def.is_some() {
                        set_aside(
                            &*self.fs,
                            &path,
                            "status and config disagree on whether the domain is persistent",
                        );
                        if let Some(def) = persistent_def {
                            domains.insert(uuid, Domain::new(def, true));
                        }
                        continue;
                    }
                    let def = status.def.expect("active status has a definition");
                    let mut domain = Domain::new(Arc::new(def), status.persistent);
                    domain.id = status.id;
                    domain.state = status.state;
                    domain.reason = status.reason;
                    domain.runtime = status.runtime;
                    domain.next_def = persistent_def.filter(|def| **def != *domain.def);
                    domains.insert(uuid, domain);
                }
                Err(why) => set_aside(&*self.fs, &path, &why),
            }
        }
        for (uuid, path, is_dir) in self.entries(Root::State, "autostart", "") {
            let _ = self.read_text(&path, &mut found);
            match domains.get_mut(&uuid) {
                Some(domain) => domain.autostart = true,
                None => remove_orphan(&*self.fs, &path, is_dir),
            }
        }
        for (uuid, path, is_dir) in self.entries(Root::State, "save", ".save") {
            let _ = self.read_text(&path, &mut found);
            match domains.get_mut(&uuid) {
                Some(domain) if !domain.is_active() => domain.has_managed_save = true,
                _ => remove_orphan(&*self.fs, &path, is_dir),
            }
        }
        for (uuid, dir, is_dir) in self.entries(Root::State, "snapshot", "") {
            match domains.get_mut(&uuid) {
                Some(domain) => {
                    let (snapshots, current) = self.load_moments(&dir, format::parse_snapshot, &mut found);
                    domain.moments.snapshots = snapshots;
                    domain.moments.current_snapshot = current;
                }
                None => remove_orphan(&*self.fs, &dir, is_dir),
            }
        }
        for (uuid, dir, is_dir) in self.entries(Root::State, "checkpoint", "") {
            match domains.get_mut(&uuid) {
                Some(domain) => {
                    domain.moments.checkpoints =
                        self.load_moments(&dir, format::parse_checkpoint, &mut found).0
                }
                None => remove_orphan(&*self.fs, &dir, is_dir),
            }
        }
        let counters = self.continue_counters(&found);
        let max_id = domains.values().map(|d| d.id).max().unwrap_or(0);
        let next_id = counters.next_id.max(max_id.saturating_add(1)).max(1);
        self.reserved_generation.store(counters.generation, Ordering::Release);
        self.reserved_id.store(next_id, Ordering::Release);
        if rebooted {
            fs::write_atomic(&*self.fs, &self.runtime, "booted", b"").map_err(|f| {
                anyhow::anyhow!("cannot write {}: {}", f.path.display(), crate::error::describe_io(&f.source))
            })?;
        }
        Ok(Loaded {
            domains: domains.into_values().collect(),
            generation: counters.generation,
            next_id,
            rebooted,
        })
    }

    /// Where the counters continue: the larger readable copy. When a copy is unreadable (garbled,
    /// truncated) or both are gone while files remain, they are rebuilt from above the highest
    /// reservation any file records, one block further (a reservation made after the last file
    /// was written is at most a block above it), never from 0.
    fn continue_counters(&self, found: &Found) -> Counters {
        let (on_disk, garbled) = self.counters_on_disk();
        let fresh = Counters { generation: 0, next_id: 1 };
        match (on_disk, garbled, found.reserved) {
            (Some(counters), false, _) => counters,
            (None, false, None) => fresh,
            (on_disk, _, from_files) => {
                let base = on_disk.unwrap_or(fresh).max(from_files.unwrap_or(fresh));
                let rebuilt = Counters {
                    generation: base.generation.saturating_add(GENERATION_BLOCK),
                    next_id: base.next_id.saturating_add(ID_BLOCK),
                };
                tracing::warn!(
                    files = ?COUNTERS_FILES, generation = rebuilt.generation, next_id = rebuilt.next_id,
                    "the counters were unreadable or missing; continuing above every reservation found"
                );
                rebuilt
            }
        }
    }

    /// Reads a file as text, noting its reservation header; returns the text after it.
    fn read_text(&self, path: &Path, found: &mut Found) -> Result<String, String> {
        let bytes = self.fs.read(path).map_err(|e| e.to_string())?;
        let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
        let (reserved, body) = format::split_header(&text);
        found.reserved(reserved);
        Ok(body.to_owned())
    }

    /// Removes temporary files left by a crash (or by a failed removal) in every folder the
    /// store writes: both roots, their folders, and every snapshot and checkpoint folder.
    fn sweep_temporary_files(&self) {
        fn sweep(fs: &dyn Fs, dir: &Path, depth: u32) {
            let Ok(entries) = fs.read_dir(dir) else { return };
            for entry in entries {
                let path = dir.join(&entry.name);
                if entry.is_dir && depth > 0 {
                    sweep(fs, &path, depth - 1);
                } else if !entry.is_dir && fs::is_temp(&entry.name) {
                    tracing::info!(path = %path.display(), "removing a temporary file left by a crash");
                    if let Err(e) = fs.remove_file(&path) {
                        tracing::error!(path = %path.display(), error = %e, "cannot remove a temporary file");
                    }
                }
            }
        }
        // STATE/snapshot/UUID/ is the deepest folder: two levels below the root.
        sweep(&*self.fs, &self.state, 2);
        sweep(&*self.fs, &self.runtime, 2);
    }

    /// `(uuid, path, is_dir)` of every entry of a folder named `UUID{suffix}`; anything else
    /// there is foreign and set aside.
    fn entries(&self, root: Root, dir: &str, suffix: &str) -> Vec<(Uuid, PathBuf, bool)> {
        let dir = self.root(root).join(dir);
        let mut found = Vec::new();
        let Ok(read) = self.fs.read_dir(&dir) else { return found };
        for entry in read {
            let name = entry.name;
            let path = dir.join(&name);
            if name.ends_with(".damaged") || fs::is_temp(&name) {
                continue;
            }
            match name.strip_suffix(suffix).and_then(|stem| Uuid::parse_str(stem).ok()) {
                Some(uuid) if name == format!("{uuid}{suffix}") => found.push((uuid, path, entry.is_dir)),
                _ => set_aside(&*self.fs, &path, "not a file rvirtd writes here"),
            }
        }
        found.sort();
        found
    }

    /// Loads a folder of snapshot or checkpoint files, in creation order; returns the one
    /// marked current too.
    fn load_moments<T: MomentName>(
        &self,
        dir: &Path,
        parse: fn(&str) -> Result<Moment<T>, String>,
        found: &mut Found,
    ) -> (Vec<T>, Option<String>) {
        let mut moments = Vec::new();
        let mut current = None;
        for entry in self.fs.read_dir(dir).into_iter().flatten() {
            let name = entry.name;
            let path = dir.join(&name);
            if name.ends_with(".damaged") || fs::is_temp(&name) {
                continue;
            }
            match self.read_text(&path, found).and_then(|text| parse(&text)) {
                Ok(m) if format::file_name(m.moment.name()) != name => {
                    set_aside(&*self.fs, &path, "file name does not match its <name>")
                }
                Ok(m) => {
                    if m.current {
                        current = Some(m.moment.name().to_owned());
                    }
                    moments.push(m);
                }
                Err(why) => set_aside(&*self.fs, &path, &why),
            }
        }
        moments.sort_by_key(|m| m.position);
        (moments.into_iter().map(|m| m.moment).collect(), current)
    }
}

/// Renames a bad file to `*.damaged` so it is kept for a human but never loaded again; durably,
/// so a set-aside journal entry never comes back to be replayed over later changes.
pub(super) fn set_aside(fs: &dyn Fs, path: &Path, why: &str) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".damaged");
    let aside = PathBuf::from(aside);
    let parent = path.parent().expect("a file in a folder");
    match fs.rename(path, &aside).and_then(|()| fs.sync_dir(parent)) {
        Ok(()) => {
            tracing::warn!(path = %path.display(), why, set_aside_as = %aside.display(), "ignoring a damaged or foreign file")
        }
        Err(e) => tracing::error!(path = %path.display(), why, error = %e, "cannot set aside a damaged file"),
    }
}

/// Removes metadata of a domain that no longer exists (a transient domain lost to a reboot).
fn remove_orphan(fs: &dyn Fs, path: &Path, is_dir: bool) {
    tracing::info!(path = %path.display(), "removing metadata of a domain that no longer exists");
    let removed = if is_dir { fs::remove_tree(fs, path) } else { fs::remove_durably(fs, path) };
    if let Err(f) = removed {
        tracing::error!(path = %f.path.display(), error = %f.source, "cannot remove orphaned metadata");
    }
}
