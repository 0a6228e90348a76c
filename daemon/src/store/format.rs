//! The file formats: what each file holds (domain XML, `<domstatus>`, snapshot and checkpoint
//! metadata, journal entries, the counters), how a domain maps to files (`diff`), and the
//! reservation header every file written by a change carries.

use crate::domain::{Checkpoint, Domain, DomainState, Snapshot, reason};
use crate::xml::{self, DomainDef, ParseDefaults};
use roxmltree::Document;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use uuid::Uuid;

/// One file of a change, relative to a root: its content before and after (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileOp {
    pub root: Root,
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// False for journal entries of earlier versions, which hold no before-image.
    pub undoable: bool,
}

impl FileOp {
    /// The same file going the other way.
    pub(crate) fn inverse(&self) -> FileOp {
        FileOp { after: self.before.clone(), before: self.after.clone(), ..self.clone() }
    }
}

/// Which folder a path is relative to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    State,
    Runtime,
}

impl Root {
    fn name(self) -> &'static str {
        match self {
            Root::State => "state",
            Root::Runtime => "runtime",
        }
    }
}

/// Generation and id reservations, as stored in `counters`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// No generation above this has been produced.
    pub generation: u64,
    /// No domain id at or above this has been handed out.
    pub next_id: i32,
}

impl Counters {
    /// The larger of each.
    pub fn max(self, other: Counters) -> Counters {
        Counters {
            generation: self.generation.max(other.generation),
            next_id: self.next_id.max(other.next_id),
        }
    }
}

/// The counters file: both values and a checksum over them, so a garbled or truncated copy is
/// recognised and never read as smaller numbers.
pub(crate) fn counters_text(counters: Counters) -> String {
    let body = format!("generation {}\nnext_id {}\n", counters.generation, counters.next_id);
    let sum = blake3::hash(body.as_bytes()).to_hex();
    format!("{body}checksum {}\n", &sum[..32])
}

/// Parses a counters file; `None` when it is garbled. A file of an earlier version (no checksum
/// line) is accepted when both values are there.
pub(crate) fn parse_counters(text: &str) -> Option<Counters> {
    let (body, sum) = match text.find("checksum ") {
        Some(at) => (&text[..at], Some(text[at + "checksum ".len()..].trim_end())),
        None => (text, None),
    };
    if let Some(sum) = sum
        && blake3::hash(body.as_bytes()).to_hex()[..32] != *sum
    {
        return None;
    }
    let field = |key: &str| body.lines().find_map(|line| line.strip_prefix(key)?.trim().parse::<u64>().ok());
    Some(Counters {
        generation: field("generation ")?,
        next_id: i32::try_from(field("next_id ")?).ok()?.max(1),
    })
}

/// The first line of every file a change writes: the reservations in force when it was
/// written. When both counters files are unreadable, loading continues above the highest of these.
pub(crate) fn header(reserved: Counters) -> String {
    format!("<!-- rvirt reserved generation={} next_id={} -->\n", reserved.generation, reserved.next_id)
}

/// Splits the reservation header off a file's text.
pub(crate) fn split_header(text: &str) -> (Option<Counters>, &str) {
    let Some(rest) = text.strip_prefix("<!-- rvirt reserved generation=") else { return (None, text) };
    let Some((line, body)) = rest.split_once('\n') else { return (None, text) };
    let parsed = line.strip_suffix(" -->").and_then(|line| {
        let (generation, next_id) = line.split_once(" next_id=")?;
        Some(Counters { generation: generation.parse().ok()?, next_id: next_id.parse().ok()? })
    });
    (parsed, body)
}

/// The file operations that take the files of `uuid` from `old` to `new`.
pub(crate) fn diff(uuid: Uuid, old: Option<&Domain>, new: Option<&Domain>) -> Vec<FileOp> {
    let mut ops = Vec::new();
    let mut file = |root: Root, path: String, before: Option<String>, after: Option<String>| {
        if before != after {
            ops.push(FileOp { root, path, before, after, undoable: true });
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

pub(crate) fn status_text(domain: &Domain) -> String {
    let head = format!(
        "<domstatus state='{}' reason='{}' id='{}' persistent='{}'",
        domain.state as i32,
        domain.reason,
        domain.id,
        if domain.persistent { "yes" } else { "no" },
    );
    let runtime = match &domain.runtime {
        Some(runtime) => format!("<runtime>{}</runtime>\n", xml::escape(runtime)),
        None => String::new(),
    };
    match domain.is_active() {
        true => format!("{head}>\n{runtime}{}</domstatus>\n", domain.def.to_xml(Some(domain.id))),
        // An inactive domain's definition is its config file.
        false => format!("{head}/>\n"),
    }
}

/// `position` is the snapshot's place in creation order (creation times tie within a second).
pub(crate) fn snapshot_text(snapshot: &Snapshot, position: usize, current: bool) -> String {
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

pub(crate) fn checkpoint_text(checkpoint: &Checkpoint, position: usize) -> String {
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

/// A journal entry: every file of the change with its content before and after (an absent
/// element: no file), so the change can be finished after a crash or undone after a failure.
pub(crate) fn journal_text(ops: &[FileOp]) -> String {
    let mut out = String::from("<change>\n");
    for op in ops {
        let _ = write!(out, "<file root='{}' path='{}'>", op.root.name(), xml::escape(&op.path));
        if let Some(before) = &op.before {
            let _ = write!(out, "<before>{}</before>", xml::escape(before));
        }
        if let Some(after) = &op.after {
            let _ = write!(out, "<after>{}</after>", xml::escape(after));
        }
        out.push_str("</file>\n");
    }
    out.push_str("</change>\n");
    out
}

/// Parses a journal entry; also reads the entries of earlier versions (`<write>` and `<remove>`,
/// without before-images: those can be finished but not undone).
pub(crate) fn parse_journal(text: &str) -> Result<Vec<FileOp>, String> {
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
            let path = path.to_owned();
            let text = |n: roxmltree::Node<'_, '_>| n.text().unwrap_or("").to_owned();
            match node.tag_name().name() {
                "file" => {
                    let part = |name: &str| node.children().find(|n| n.has_tag_name(name)).map(text);
                    Ok(FileOp { root, path, before: part("before"), after: part("after"), undoable: true })
                }
                "write" => Ok(FileOp { root, path, before: None, after: Some(text(node)), undoable: false }),
                "remove" => Ok(FileOp { root, path, before: None, after: None, undoable: false }),
                other => Err(format!("unknown operation <{other}>")),
            }
        })
        .collect()
}

pub(crate) fn parse_def(text: &str, uuid: Uuid, defaults: &ParseDefaults) -> Result<DomainDef, String> {
    let def = DomainDef::parse(text, defaults).map_err(|e| e.to_string())?;
    if def.uuid != uuid {
        return Err(format!("holds domain {} instead of {uuid}", def.uuid));
    }
    Ok(def)
}

pub(crate) struct Status {
    /// `None` for an inactive domain (its definition is the config file).
    pub def: Option<DomainDef>,
    pub id: i32,
    pub state: DomainState,
    pub reason: i32,
    pub persistent: bool,
    /// The driver's record of the running guest.
    pub runtime: Option<crate::driver::Runtime>,
}

pub(crate) fn parse_status(text: &str, uuid: Uuid, defaults: &ParseDefaults) -> Result<Status, String> {
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
        runtime: root.children().find(|n| n.has_tag_name("runtime")).map(|n| n.text().unwrap_or("").into()),
    })
}

/// The fields snapshot and checkpoint files share.
pub(crate) struct MomentFields {
    name: String,
    description: String,
    creation_time: i64,
    state: Option<String>,
    parent: Option<String>,
    current: bool,
    position: usize,
}

pub(crate) fn parse_moment(text: &str, root_name: &str) -> Result<MomentFields, String> {
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

pub(crate) fn parse_snapshot(text: &str) -> Result<Moment<Snapshot>, String> {
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

pub(crate) fn parse_checkpoint(text: &str) -> Result<Moment<Checkpoint>, String> {
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
pub(crate) struct Moment<T> {
    pub moment: T,
    pub current: bool,
    pub position: usize,
}

/// What `load_moments` needs of a snapshot or checkpoint.
pub(crate) trait MomentName {
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
pub(crate) fn file_name(name: &str) -> String {
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
