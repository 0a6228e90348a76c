//! `Store`: the daemon's state on disk, one file per object, every write atomic.
//!
//! Layout (like libvirt's `/etc/libvirt/qemu` + `/var/lib/libvirt/qemu` + `/run/libvirt/qemu`):
//!
//! ```text
//! STATE_DIR/lock                       advisory lock: one daemon per state folder
//! STATE_DIR/counters                   generation and domain-id reservations
//! STATE_DIR/config/UUID.xml            persistent definition (domain XML)
//! STATE_DIR/autostart/UUID             autostart mark (holds the name, for people)
//! STATE_DIR/save/UUID.save             managed-save image
//! STATE_DIR/snapshot/UUID/NAME.xml     snapshot metadata (<domainsnapshot>)
//! STATE_DIR/checkpoint/UUID/NAME.xml   checkpoint metadata (<domaincheckpoint>)
//! STATE_DIR/journal/SEQ.xml            a multi-file change being applied (redo log)
//! RUNTIME_DIR/status/UUID.xml          an active domain's runtime status (<domstatus>)
//! RUNTIME_DIR/booted                   written once per host boot: its absence means a reboot
//! ```
//!
//! Every file is written to a temporary name, fsynced, renamed over the old one, and the folder
//! fsynced. A change that touches one file is that one rename. A change that touches several is
//! first written whole to the journal, then applied file by file, then the journal entry is
//! removed; a crash in between is finished from the journal at the next start. So a change is on
//! disk entirely or not at all, and it is on disk before its RPC answers.
//!
//! Loading never stops on a bad file: a damaged or foreign file is renamed to `*.damaged`,
//! logged with its path and why, and the rest loads.

use crate::domain::{Checkpoint, Domain, DomainState, Snapshot, reason};
use crate::error::{Error, Result};
use crate::xml::{self, DomainDef, ParseDefaults};
use roxmltree::Document;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

/// The state folder and the runtime folder of one daemon.
#[derive(Debug)]
pub struct Store {
    state: PathBuf,
    runtime: PathBuf,
    /// The next journal sequence number.
    journal_seq: AtomicU64,
    /// Held for the daemon's life: the advisory lock on `STATE_DIR/lock`.
    _lock: File,
}

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

/// One file operation, relative to a root.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FileOp {
    Write(Root, String, String),
    Remove(Root, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    State,
    Runtime,
}

/// Generation and id reservations, as stored in `counters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// No generation above this has been produced.
    pub generation: u64,
    /// No domain id at or above this has been handed out.
    pub next_id: i32,
}

impl Store {
    /// Opens (creating) the folders and takes the state folder's advisory lock; a second daemon
    /// on the same folder fails here.
    pub fn open(state: &Path, runtime: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        for dir in ["config", "autostart", "save", "snapshot", "checkpoint", "journal"] {
            fs::create_dir_all(state.join(dir))
                .with_context(|| format!("cannot create {}", state.join(dir).display()))?;
        }
        fs::create_dir_all(runtime.join("status"))
            .with_context(|| format!("cannot create {}", runtime.join("status").display()))?;
        let lock_path = state.join("lock");
        let mut lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        if !try_lock_exclusive(&lock) {
            let holder = fs::read_to_string(&lock_path).unwrap_or_default();
            anyhow::bail!(
                "another rvirtd (pid {}) is using the state folder {}; stop it or pick another --state-dir",
                holder.trim(),
                state.display()
            );
        }
        lock.set_len(0)?;
        writeln!(lock, "{}", std::process::id())?;
        Ok(Store {
            state: state.to_owned(),
            runtime: runtime.to_owned(),
            journal_seq: AtomicU64::new(0),
            _lock: lock,
        })
    }

    /// Finishes interrupted changes, then loads every domain.
    pub fn load(&self, defaults: &ParseDefaults) -> anyhow::Result<Loaded> {
        let rebooted = !self.runtime.join("booted").exists();
        self.replay_journal(rebooted)?;
        let counters = self.read_counters();
        let mut domains = BTreeMap::new();
        for (uuid, path) in self.entries(Root::State, "config", ".xml") {
            match fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse_def(&text, uuid, defaults))
            {
                Ok(def) => {
                    domains.insert(uuid, Domain::new(Arc::new(def), true));
                }
                Err(why) => set_aside(&path, &why),
            }
        }
        for (uuid, path) in self.entries(Root::Runtime, "status", ".xml") {
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    set_aside(&path, &e.to_string());
                    continue;
                }
            };
            match parse_status(&text, uuid, defaults) {
                Ok(Status { def: None, reason, .. }) => match domains.get_mut(&uuid) {
                    Some(domain) => domain.reason = reason,
                    None => set_aside(&path, "status of an inactive domain that has no config"),
                },
                Ok(status) => {
                    let persistent_def = domains.remove(&uuid).map(|d| d.def);
                    if status.persistent != persistent_def.is_some() {
                        set_aside(&path, "status and config disagree on whether the domain is persistent");
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
                    domain.next_def = persistent_def.filter(|def| **def != *domain.def);
                    domains.insert(uuid, domain);
                }
                Err(why) => set_aside(&path, &why),
            }
        }
        for (uuid, path) in self.entries(Root::State, "autostart", "") {
            match domains.get_mut(&uuid) {
                Some(domain) => domain.autostart = true,
                None => remove_orphan(&path),
            }
        }
        for (uuid, path) in self.entries(Root::State, "save", ".save") {
            match domains.get_mut(&uuid) {
                Some(domain) if !domain.is_active() => domain.has_managed_save = true,
                _ => remove_orphan(&path),
            }
        }
        for (uuid, dir) in self.entries(Root::State, "snapshot", "") {
            match domains.get_mut(&uuid) {
                Some(domain) => {
                    let (snapshots, current) = load_moments(&dir, parse_snapshot);
                    domain.moments.snapshots = snapshots;
                    domain.moments.current_snapshot = current;
                }
                None => remove_orphan(&dir),
            }
        }
        for (uuid, dir) in self.entries(Root::State, "checkpoint", "") {
            match domains.get_mut(&uuid) {
                Some(domain) => domain.moments.checkpoints = load_moments(&dir, parse_checkpoint).0,
                None => remove_orphan(&dir),
            }
        }
        let max_id = domains.values().map(|d| d.id).max().unwrap_or(0);
        if rebooted {
            write_atomic(&self.runtime, "booted", "")?;
        }
        Ok(Loaded {
            domains: domains.into_values().collect(),
            generation: counters.generation,
            next_id: counters.next_id.max(max_id.saturating_add(1)).max(1),
            rebooted,
        })
    }

    /// The reservations on disk (zero when there are none yet).
    pub fn read_counters(&self) -> Counters {
        let text = fs::read_to_string(self.state.join("counters")).unwrap_or_default();
        let field = |key: &str| {
            text.lines().find_map(|line| line.strip_prefix(key)?.trim().parse::<u64>().ok()).unwrap_or(0)
        };
        Counters {
            generation: field("generation "),
            next_id: i32::try_from(field("next_id ")).unwrap_or(i32::MAX).max(1),
        }
    }

    /// Makes `counters` durable.
    pub fn write_counters(&self, counters: Counters) -> Result<()> {
        let text = format!("generation {}\nnext_id {}\n", counters.generation, counters.next_id);
        write_atomic(&self.state, "counters", &text)
            .map_err(|source| Error::Persist { what: "counters".into(), source })
    }

    /// Records the change from `old` to `new` (None: absent) durably.
    pub fn record(&self, uuid: Uuid, old: Option<&Domain>, new: Option<&Domain>) -> Result<()> {
        let ops = diff(uuid, old, new);
        let persist = |source| Error::Persist { what: format!("domain {uuid}"), source };
        match ops.len() {
            0 => Ok(()),
            1 => self.apply(&ops[0]).map_err(persist),
            _ => {
                let seq = self.journal_seq.fetch_add(1, Ordering::Relaxed);
                let name = format!("{}-{seq:08}.xml", std::process::id());
                write_atomic(&self.state.join("journal"), &name, &journal_text(&ops)).map_err(persist)?;
                for op in &ops {
                    self.apply(op).map_err(persist)?;
                }
                remove_durably(&self.state.join("journal").join(&name)).map_err(persist)
            }
        }
    }

    fn root(&self, root: Root) -> &Path {
        match root {
            Root::State => &self.state,
            Root::Runtime => &self.runtime,
        }
    }

    fn apply(&self, op: &FileOp) -> std::io::Result<()> {
        match op {
            FileOp::Write(root, path, text) => {
                let path = self.root(*root).join(path);
                let (dir, name) =
                    (path.parent().expect("file in a folder"), path.file_name().expect("file name"));
                fs::create_dir_all(dir)?;
                write_atomic(dir, &name.to_string_lossy(), text)
            }
            FileOp::Remove(root, path) => remove_durably(&self.root(*root).join(path)),
        }
    }

    /// Applies journal entries left by a crash, oldest first. After a host reboot, writes to the
    /// runtime folder are skipped: those guests are gone.
    fn replay_journal(&self, rebooted: bool) -> anyhow::Result<()> {
        let dir = self.state.join("journal");
        let mut entries: Vec<PathBuf> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "xml"))
            .collect();
        entries.sort();
        for path in entries {
            let ops =
                fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|text| parse_journal(&text));
            match ops {
                Ok(ops) => {
                    for op in
                        ops.iter().filter(|op| !rebooted || !matches!(op, FileOp::Write(Root::Runtime, ..)))
                    {
                        self.apply(op)?;
                    }
                    tracing::warn!(path = %path.display(), files = ops.len(), "finished a change interrupted by a crash");
                    remove_durably(&path)?;
                }
                Err(why) => set_aside(&path, &why),
            }
        }
        Ok(())
    }

    /// `(uuid, path)` of every entry of a folder named `UUID{suffix}`; anything else there is
    /// foreign and set aside; leftover temporary files are removed.
    fn entries(&self, root: Root, dir: &str, suffix: &str) -> Vec<(Uuid, PathBuf)> {
        let dir = self.root(root).join(dir);
        let mut found = Vec::new();
        let Ok(read) = fs::read_dir(&dir) else { return found };
        for entry in read.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".damaged") {
                continue;
            }
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            match name.strip_suffix(suffix).and_then(|stem| Uuid::parse_str(stem).ok()) {
                Some(uuid) if name == format!("{uuid}{suffix}") => found.push((uuid, path)),
                _ => set_aside(&path, "not a file rvirtd writes here"),
            }
        }
        found.sort();
        found
    }
}

/// The file operations that take the files of `uuid` from `old` to `new`.
fn diff(uuid: Uuid, old: Option<&Domain>, new: Option<&Domain>) -> Vec<FileOp> {
    let mut ops = Vec::new();
    let mut file = |root: Root, path: String, before: Option<String>, after: Option<String>| {
        if before != after {
            ops.push(match after {
                Some(text) => FileOp::Write(root, path, text),
                None => FileOp::Remove(root, path),
            });
        }
    };
    let config = |d: &Domain| d.persistent.then(|| d.next_def.as_ref().unwrap_or(&d.def).to_xml(None));
    file(Root::State, format!("config/{uuid}.xml"), old.and_then(config), new.and_then(config));
    // Inactive domains keep a status file too when their reason says something (saved,
    // destroyed, ...), so a restart brings the reason back; a reboot forgets it, as it should.
    let status = |d: &Domain| (d.is_active() || d.reason != reason::UNKNOWN).then(|| status_text(d));
    file(Root::Runtime, format!("status/{uuid}.xml"), old.and_then(status), new.and_then(status));
    let mark = |d: &Domain| d.autostart.then(|| format!("{}\n", d.name()));
    file(Root::State, format!("autostart/{uuid}"), old.and_then(mark), new.and_then(mark));
    let save = |d: &Domain| {
        d.has_managed_save.then(|| format!("<managedsave domain='{}'/>\n", xml::escape(d.name())))
    };
    file(Root::State, format!("save/{uuid}.save"), old.and_then(save), new.and_then(save));
    let snapshots = |d: &Domain| -> BTreeMap<String, String> {
        let current = d.moments.current_snapshot.as_deref();
        let text = |(i, s): (usize, &Snapshot)| snapshot_text(s, i, current == Some(s.name.as_str()));
        d.moments.snapshots.iter().enumerate().map(|(i, s)| (file_name(&s.name), text((i, s)))).collect()
    };
    let checkpoints = |d: &Domain| -> BTreeMap<String, String> {
        d.moments
            .checkpoints
            .iter()
            .enumerate()
            .map(|(i, c)| (file_name(&c.name), checkpoint_text(c, i)))
            .collect()
    };
    for (kind, texts) in [
        ("snapshot", &snapshots as &dyn Fn(&Domain) -> BTreeMap<String, String>),
        ("checkpoint", &checkpoints),
    ] {
        let before = old.map(texts).unwrap_or_default();
        let after = new.map(texts).unwrap_or_default();
        for name in before.keys().chain(after.keys().filter(|k| !before.contains_key(*k))) {
            file(
                Root::State,
                format!("{kind}/{uuid}/{name}"),
                before.get(name).cloned(),
                after.get(name).cloned(),
            );
        }
    }
    ops
}

fn status_text(domain: &Domain) -> String {
    let head = format!(
        "<domstatus state='{}' reason='{}' id='{}' persistent='{}'",
        domain.state as i32,
        domain.reason,
        domain.id,
        if domain.persistent { "yes" } else { "no" },
    );
    match domain.is_active() {
        true => format!("{head}>\n{}</domstatus>\n", domain.def.to_xml(Some(domain.id))),
        // An inactive domain's definition is its config file.
        false => format!("{head}/>\n"),
    }
}

/// `position` is the snapshot's place in creation order (creation times tie within a second).
fn snapshot_text(snapshot: &Snapshot, position: usize, current: bool) -> String {
    let mut out = String::from("<domainsnapshot>\n");
    let _ = writeln!(out, "  <name>{}</name>", xml::escape(&snapshot.name));
    let _ = writeln!(out, "  <description>{}</description>", xml::escape(&snapshot.description));
    let _ = writeln!(out, "  <state>{}</state>", xml::escape(&snapshot.state));
    if let Some(parent) = &snapshot.parent {
        let _ = writeln!(out, "  <parent>\n    <name>{}</name>\n  </parent>", xml::escape(parent));
    }
    let _ = writeln!(out, "  <creationTime>{}</creationTime>", snapshot.creation_time);
    let _ = writeln!(out, "  <active>{}</active>", u8::from(current));
    let _ = writeln!(out, "  <position>{position}</position>");
    out.push_str("</domainsnapshot>\n");
    out
}

fn checkpoint_text(checkpoint: &Checkpoint, position: usize) -> String {
    let mut out = String::from("<domaincheckpoint>\n");
    let _ = writeln!(out, "  <name>{}</name>", xml::escape(&checkpoint.name));
    let _ = writeln!(out, "  <description>{}</description>", xml::escape(&checkpoint.description));
    if let Some(parent) = &checkpoint.parent {
        let _ = writeln!(out, "  <parent>\n    <name>{}</name>\n  </parent>", xml::escape(parent));
    }
    let _ = writeln!(out, "  <creationTime>{}</creationTime>", checkpoint.creation_time);
    let _ = writeln!(out, "  <position>{position}</position>");
    out.push_str("</domaincheckpoint>\n");
    out
}

fn journal_text(ops: &[FileOp]) -> String {
    let root_name = |root: &Root| match root {
        Root::State => "state",
        Root::Runtime => "runtime",
    };
    let mut out = String::from("<change>\n");
    for op in ops {
        match op {
            FileOp::Write(root, path, text) => {
                let _ = writeln!(
                    out,
                    "<write root='{}' path='{}'>{}</write>",
                    root_name(root),
                    xml::escape(path),
                    xml::escape(text)
                );
            }
            FileOp::Remove(root, path) => {
                let _ = writeln!(out, "<remove root='{}' path='{}'/>", root_name(root), xml::escape(path));
            }
        }
    }
    out.push_str("</change>\n");
    out
}

fn parse_journal(text: &str) -> Result<Vec<FileOp>, String> {
    let doc = Document::parse(text).map_err(|e| e.to_string())?;
    doc.root_element()
        .children()
        .filter(|n| n.is_element())
        .map(|node| {
            let root = match node.attribute("root") {
                Some("state") => Root::State,
                Some("runtime") => Root::Runtime,
                other => return Err(format!("unknown root {other:?}")),
            };
            let path = node.attribute("path").ok_or("missing path")?;
            if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
                return Err(format!("unsafe path {path:?}"));
            }
            match node.tag_name().name() {
                "write" => Ok(FileOp::Write(root, path.to_owned(), node.text().unwrap_or("").to_owned())),
                "remove" => Ok(FileOp::Remove(root, path.to_owned())),
                other => Err(format!("unknown operation <{other}>")),
            }
        })
        .collect()
}

fn parse_def(text: &str, uuid: Uuid, defaults: &ParseDefaults) -> Result<DomainDef, String> {
    let def = DomainDef::parse(text, defaults).map_err(|e| e.to_string())?;
    if def.uuid != uuid {
        return Err(format!("holds domain {} instead of {uuid}", def.uuid));
    }
    Ok(def)
}

struct Status {
    /// `None` for an inactive domain (its definition is the config file).
    def: Option<DomainDef>,
    id: i32,
    state: DomainState,
    reason: i32,
    persistent: bool,
}

fn parse_status(text: &str, uuid: Uuid, defaults: &ParseDefaults) -> Result<Status, String> {
    let doc = Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    let number = |name: &str| -> Result<i32, String> {
        root.attribute(name).and_then(|v| v.parse().ok()).ok_or(format!("missing or bad {name}"))
    };
    let state = DomainState::from_i32(number("state")?).ok_or("unknown state")?;
    let id = number("id")?;
    let def = match root.children().find(|n| n.has_tag_name("domain")) {
        Some(domain) if id >= 1 && state != DomainState::Shutoff => {
            Some(parse_def(&text[domain.range()], uuid, defaults)?)
        }
        None if id == -1 && state == DomainState::Shutoff => None,
        _ => return Err("an active domain needs an id, a running state and a definition".into()),
    };
    Ok(Status {
        def,
        id,
        state,
        reason: number("reason")?,
        persistent: root.attribute("persistent") == Some("yes"),
    })
}

/// The fields snapshot and checkpoint files share.
struct MomentFields {
    name: String,
    description: String,
    creation_time: i64,
    state: Option<String>,
    parent: Option<String>,
    current: bool,
    position: usize,
}

fn parse_moment(text: &str, root_name: &str) -> Result<MomentFields, String> {
    let doc = Document::parse(text).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if !root.has_tag_name(root_name) {
        return Err(format!("expected <{root_name}>"));
    }
    let child = |name: &str| {
        root.children().find(|n| n.has_tag_name(name)).map(|n| n.text().unwrap_or("").to_owned())
    };
    let parent = root.children().find(|n| n.has_tag_name("parent")).and_then(|p| {
        p.children().find(|n| n.has_tag_name("name")).map(|n| n.text().unwrap_or("").to_owned())
    });
    Ok(MomentFields {
        name: child("name").filter(|n| !n.is_empty()).ok_or("missing name")?,
        description: child("description").unwrap_or_default(),
        creation_time: child("creationTime").and_then(|t| t.parse().ok()).ok_or("bad creationTime")?,
        state: child("state"),
        parent,
        current: child("active").as_deref() == Some("1"),
        position: child("position").and_then(|p| p.parse().ok()).ok_or("bad position")?,
    })
}

fn parse_snapshot(text: &str) -> Result<Moment<Snapshot>, String> {
    let m = parse_moment(text, "domainsnapshot")?;
    let state = m.state.ok_or("missing state")?;
    let snapshot = Snapshot {
        name: m.name,
        description: m.description,
        creation_time: m.creation_time,
        state,
        parent: m.parent,
    };
    Ok(Moment { moment: snapshot, current: m.current, position: m.position })
}

fn parse_checkpoint(text: &str) -> Result<Moment<Checkpoint>, String> {
    let m = parse_moment(text, "domaincheckpoint")?;
    let checkpoint = Checkpoint {
        name: m.name,
        description: m.description,
        creation_time: m.creation_time,
        parent: m.parent,
    };
    Ok(Moment { moment: checkpoint, current: false, position: m.position })
}

/// A snapshot or checkpoint as loaded.
struct Moment<T> {
    moment: T,
    current: bool,
    position: usize,
}

/// Loads a folder of snapshot or checkpoint files, in creation order; returns the one marked
/// current too.
fn load_moments<T>(dir: &Path, parse: fn(&str) -> Result<Moment<T>, String>) -> (Vec<T>, Option<String>)
where
    T: MomentName,
{
    let mut moments = Vec::new();
    let mut current = None;
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".damaged") {
            continue;
        }
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(&path);
            continue;
        }
        match fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|text| parse(&text)) {
            Ok(m) if file_name(m.moment.name()) != name => {
                set_aside(&path, "file name does not match its <name>")
            }
            Ok(m) => {
                if m.current {
                    current = Some(m.moment.name().to_owned());
                }
                moments.push(m);
            }
            Err(why) => set_aside(&path, &why),
        }
    }
    moments.sort_by_key(|m| m.position);
    (moments.into_iter().map(|m| m.moment).collect(), current)
}

/// What `load_moments` needs of a snapshot or checkpoint.
trait MomentName {
    fn name(&self) -> &str;
}

impl MomentName for Snapshot {
    fn name(&self) -> &str {
        &self.name
    }
}

impl MomentName for Checkpoint {
    fn name(&self) -> &str {
        &self.name
    }
}

/// A snapshot or checkpoint name as a file name: bytes other than letters, digits, `-` and `_`
/// (and `.` after the first byte) are percent-encoded, so no name can escape its folder.
fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, byte) in name.bytes().enumerate() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || (byte == b'.' && i > 0) {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out.push_str(".xml");
    out
}

/// Writes `dir/name` atomically: temporary file, fsync, rename, fsync the folder.
fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let temp = dir.join(format!(".{name}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, dir.join(name))?;
    File::open(dir)?.sync_all()
}

/// Removes a file or folder (if present) and fsyncs its parent.
fn remove_durably(path: &Path) -> std::io::Result<()> {
    let result = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    match path.parent() {
        Some(parent) => File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// Renames a bad file to `*.damaged` so it is kept for a human but never loaded again.
fn set_aside(path: &Path, why: &str) {
    let mut aside = path.as_os_str().to_owned();
    aside.push(".damaged");
    match fs::rename(path, &aside) {
        Ok(()) => {
            tracing::warn!(path = %path.display(), why, set_aside_as = ?aside, "ignoring a damaged or foreign file")
        }
        Err(e) => tracing::error!(path = %path.display(), why, error = %e, "cannot set aside a damaged file"),
    }
}

/// Removes metadata of a domain that no longer exists (a transient domain lost to a reboot).
fn remove_orphan(path: &Path) {
    tracing::info!(path = %path.display(), "removing metadata of a domain that no longer exists");
    if let Err(e) = remove_durably(path) {
        tracing::error!(path = %path.display(), error = %e, "cannot remove orphaned metadata");
    }
}

#[allow(unsafe_code)]
fn try_lock_exclusive(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{self, Op};
    use crate::xml::MomentDef;

    const DEFAULTS: ParseDefaults = ParseDefaults { arch: "i686" };

    fn def(name: &str) -> DomainDef {
        let xml = format!(
            "<domain type='test'><name>{name}</name><memory>1</memory><os><type>hvm</type></os>\
             <devices><disk type='file'><source file='/x'/><target dev='vda'/></disk></devices></domain>"
        );
        DomainDef::parse(&xml, &DEFAULTS).unwrap()
    }

    /// Applies `op` and records it, returning the new domain.
    fn step(store: &Store, domain: &Domain, op: Op, id: i32) -> Domain {
        let mut next = lifecycle::apply(domain, &op).unwrap().domain.unwrap();
        if next.is_active() || next.state == DomainState::Running {
            next.id = if domain.is_active() { domain.id } else { id };
        }
        store.record(domain.uuid(), Some(domain), Some(&next)).unwrap();
        next
    }

    #[test]
    fn every_field_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
        let store = Store::open(&state, &runtime).unwrap();
        let mut a = Domain::new(Arc::new(def("a&amp;'b")), true);
        store.record(a.uuid(), None, Some(&a)).unwrap();
        a = step(&store, &a, Op::Start, 4);
        a = step(&store, &a, Op::SetAutostart(true), 0);
        for name in ["s1", "../x", ".hidden"] {
            let moment = MomentDef { name: Some(name.into()), description: "d<".into() };
            a = step(&store, &a, Op::SnapshotCreate(moment, 0, 7), 0);
        }
        a = step(&store, &a, Op::Suspend, 0);
        let mut b = Domain::new(Arc::new(def("b")), true);
        store.record(b.uuid(), None, Some(&b)).unwrap();
        b = step(&store, &b, Op::Start, 5);
        let cp = MomentDef { name: Some("c".into()), description: String::new() };
        b = step(&store, &b, Op::CheckpointCreate(cp, 9), 0);
        b = step(&store, &b, Op::ManagedSave, 0);
        store.write_counters(Counters { generation: 40, next_id: 6 }).unwrap();
        drop(store);

        let store = Store::open(&state, &runtime).unwrap();
        let loaded = store.load(&DEFAULTS).unwrap();
        let mut expected = vec![a, b];
        expected.sort_by_key(|d| d.uuid());
        let mut got = loaded.domains;
        got.sort_by_key(|d| d.uuid());
        assert_eq!(got, expected);
        assert_eq!((loaded.generation, loaded.next_id, loaded.rebooted), (40, 6, true));
        // A second daemon on the same folder is refused.
        assert!(Store::open(&state, &runtime).is_err());
    }

    #[test]
    fn a_reboot_keeps_persistent_domains_shut_off_and_drops_transient_ones() {
        let dir = tempfile::tempdir().unwrap();
        let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
        let store = Store::open(&state, &runtime).unwrap();
        store.load(&DEFAULTS).unwrap();
        let p = Domain::new(Arc::new(def("p")), true);
        store.record(p.uuid(), None, Some(&p)).unwrap();
        step(&store, &p, Op::Start, 1);
        let mut t = Domain::new(Arc::new(def("t")), false);
        t.id = 2;
        t.state = DomainState::Running;
        store.record(t.uuid(), None, Some(&t)).unwrap();
        step(&store, &t, Op::SnapshotCreate(MomentDef::default(), 0, 3), 0);
        drop(store);
        fs::remove_dir_all(&runtime).unwrap();
        let loaded = Store::open(&state, &runtime).unwrap().load(&DEFAULTS).unwrap();
        assert!(loaded.rebooted);
        assert_eq!(loaded.domains.len(), 1);
        assert_eq!((loaded.domains[0].name(), loaded.domains[0].state), ("p", DomainState::Shutoff));
        assert!(!state.join("snapshot").join(t.uuid().to_string()).exists());
    }

    #[test]
    fn damaged_and_foreign_files_are_set_aside_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
        let store = Store::open(&state, &runtime).unwrap();
        let good = Domain::new(Arc::new(def("good")), true);
        store.record(good.uuid(), None, Some(&good)).unwrap();
        let bad_uuid = Uuid::new_v4();
        fs::write(state.join(format!("config/{bad_uuid}.xml")), "<domain type='test'><name>trunc").unwrap();
        fs::write(state.join("config/notes.txt"), "hello").unwrap();
        fs::write(state.join(format!("config/{}.xml", Uuid::new_v4())), good.def.to_xml(None)).unwrap();
        drop(store);
        let loaded = Store::open(&state, &runtime).unwrap().load(&DEFAULTS).unwrap();
        assert_eq!(loaded.domains.iter().map(Domain::name).collect::<Vec<_>>(), ["good"]);
        let aside = fs::read_dir(state.join("config"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".damaged"))
            .count();
        assert_eq!(aside, 3);
    }

    #[test]
    fn an_interrupted_multi_file_change_is_finished_from_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
        let store = Store::open(&state, &runtime).unwrap();
        store.load(&DEFAULTS).unwrap();
        let mut a = Domain::new(Arc::new(def("a")), true);
        store.record(a.uuid(), None, Some(&a)).unwrap();
        a = step(&store, &a, Op::Start, 1);
        // Managed save touches the status file and the save image: write only the journal, as
        // if the daemon died right after it.
        let saved = lifecycle::apply(&a, &Op::ManagedSave).unwrap().domain.unwrap();
        let ops = diff(a.uuid(), Some(&a), Some(&saved));
        assert_eq!(ops.len(), 2);
        write_atomic(&state.join("journal"), "1-00000000.xml", &journal_text(&ops)).unwrap();
        drop(store);
        let loaded = Store::open(&state, &runtime).unwrap().load(&DEFAULTS).unwrap();
        assert_eq!(loaded.domains, vec![saved]);
        assert_eq!(fs::read_dir(state.join("journal")).unwrap().count(), 0);
    }
}
