//! A model disk for tests, implementing the seam: an in-memory tree that can fail its k-th
//! operation with any errno, and that knows what a power cut would leave: only file data that
//! was fsynced, and only the folder entries (creates, renames, unlinks) whose folder was fsynced
//! after them. Everything else is lost: a file never fsynced comes back empty, a rename or
//! unlink whose folder was not fsynced is undone, a folder whose parent was not fsynced vanishes.

use super::fs::{Entry, Fs, LockGuard};
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
enum Node {
    File { data: Vec<u8>, synced: Option<Vec<u8>> },
    Dir { entries: BTreeMap<String, usize>, synced: BTreeMap<String, usize> },
}

#[derive(Debug, Clone)]
struct Model {
    /// Every node ever made (index = inode number); node 0 is the root folder.
    nodes: Vec<Node>,
    /// Operations done so far.
    ops: u64,
    /// Fail operation number `.0` with errno `.1`.
    faults: Vec<(u64, i32)>,
    /// Keep a durable image after every operation that changes durable state.
    record: bool,
    images: Vec<(u64, Arc<ModelFs>)>,
}

/// The model disk.
#[derive(Debug)]
pub(crate) struct ModelFs {
    inner: Mutex<Model>,
}

impl Default for ModelFs {
    fn default() -> Self {
        let root = Node::Dir { entries: BTreeMap::new(), synced: BTreeMap::new() };
        ModelFs {
            inner: Mutex::new(Model {
                nodes: vec![root],
                ops: 0,
                faults: Vec::new(),
                record: false,
                images: Vec::new(),
            }),
        }
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

impl Model {
    fn lookup(&self, path: &Path) -> io::Result<usize> {
        let mut at = 0;
        for part in path.components() {
            match part {
                Component::RootDir => at = 0,
                Component::Normal(name) => match &self.nodes[at] {
                    Node::Dir { entries, .. } => {
                        at = *entries.get(&*name.to_string_lossy()).ok_or(errno(libc::ENOENT))?
                    }
                    Node::File { .. } => return Err(errno(libc::ENOTDIR)),
                },
                _ => return Err(errno(libc::EINVAL)),
            }
        }
        Ok(at)
    }

    /// The folder holding `path`, and its name there.
    fn parent(&self, path: &Path) -> io::Result<(usize, String)> {
        let name = path.file_name().ok_or(errno(libc::EINVAL))?.to_string_lossy().into_owned();
        let dir = self.lookup(path.parent().ok_or(errno(libc::EINVAL))?)?;
        match self.nodes[dir] {
            Node::Dir { .. } => Ok((dir, name)),
            Node::File { .. } => Err(errno(libc::ENOTDIR)),
        }
    }

    fn entries(&mut self, dir: usize) -> &mut BTreeMap<String, usize> {
        match &mut self.nodes[dir] {
            Node::Dir { entries, .. } => entries,
            Node::File { .. } => unreachable!("checked to be a folder"),
        }
    }

    fn write(&mut self, path: &Path, data: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(path)?;
        match self.entries(dir).get(&name).copied() {
            Some(node) => match &mut self.nodes[node] {
                Node::File { data: old, .. } => *old = data.to_vec(),
                Node::Dir { .. } => return Err(errno(libc::EISDIR)),
            },
            None => {
                self.nodes.push(Node::File { data: data.to_vec(), synced: None });
                let node = self.nodes.len() - 1;
                self.entries(dir).insert(name, node);
            }
        }
        Ok(())
    }

    /// What a power cut now would leave.
    fn durable(&self) -> Model {
        fn copy(from: &Model, node: usize, out: &mut Vec<Node>) -> usize {
            match &from.nodes[node] {
                Node::File { synced, .. } => {
                    let data = synced.clone().unwrap_or_default();
                    out.push(Node::File { data: data.clone(), synced: Some(data) });
                    out.len() - 1
                }
                Node::Dir { synced, .. } => {
                    let at = out.len();
                    out.push(Node::Dir { entries: BTreeMap::new(), synced: BTreeMap::new() });
                    let entries: BTreeMap<String, usize> =
                        synced.iter().map(|(name, child)| (name.clone(), copy(from, *child, out))).collect();
                    out[at] = Node::Dir { entries: entries.clone(), synced: entries };
                    at
                }
            }
        }
        let mut nodes = Vec::new();
        copy(self, 0, &mut nodes);
        Model { nodes, ops: 0, faults: Vec::new(), record: false, images: Vec::new() }
    }

    fn walk(&self, node: usize, path: String, out: &mut Vec<String>) {
        match &self.nodes[node] {
            Node::File { .. } => out.push(path),
            Node::Dir { entries, .. } => {
                for (name, child) in entries {
                    self.walk(*child, format!("{path}/{name}"), out);
                }
            }
        }
    }
}

impl ModelFs {
    /// Fails the `k`-th operation from now (1: the next one) with `code` (as well as any
    /// failure already planned).
    pub(crate) fn fail_in(&self, k: u64, code: i32) {
        let mut model = self.lock();
        let at = model.ops + k;
        model.faults.push((at, code));
    }

    /// Operations done so far.
    pub(crate) fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// Starts keeping a durable image after every operation that changes durable state.
    pub(crate) fn record_images(&self) {
        let mut model = self.lock();
        model.record = true;
        let image = Arc::new(ModelFs { inner: Mutex::new(model.durable()) });
        let at = model.ops;
        model.images.push((at, image));
    }

    /// The images kept, each with the number of operations done when it was taken: a power cut
    /// anywhere from that operation to the next image's leaves that image.
    pub(crate) fn take_images(&self) -> Vec<(u64, Arc<ModelFs>)> {
        std::mem::take(&mut self.lock().images)
    }

    /// Every file (not folder) path now.
    pub(crate) fn files(&self) -> Vec<String> {
        let model = self.lock();
        let mut out = Vec::new();
        model.walk(0, String::new(), &mut out);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Model> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one operation: counted, failed when it is the chosen one (`on_fault` says what a
    /// failing call still did), imaged when it changes durable state.
    fn op<T>(
        &self,
        durable_change: bool,
        on_fault: impl FnOnce(&mut Model),
        run: impl FnOnce(&mut Model) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut model = self.lock();
        model.ops += 1;
        let now = model.ops;
        if let Some(planned) = model.faults.iter().position(|(at, _)| *at == now) {
            let (_, code) = model.faults.swap_remove(planned);
            on_fault(&mut model);
            return Err(errno(code));
        }
        let result = run(&mut model);
        if durable_change && model.record && result.is_ok() {
            let image = Arc::new(ModelFs { inner: Mutex::new(model.durable()) });
            let at = model.ops;
            model.images.push((at, image));
        }
        result
    }
}

impl Fs for ModelFs {
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        // A write that fails (ENOSPC, EIO) has still created the file, with part of the data.
        self.op(false, |m| drop(m.write(path, &data[..data.len() / 2])), |m| m.write(path, data))
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        self.op(
            true,
            |_| {},
            |m| {
                let node = m.lookup(path)?;
                match &mut m.nodes[node] {
                    Node::File { data, synced } => *synced = Some(data.clone()),
                    Node::Dir { .. } => return Err(errno(libc::EISDIR)),
                }
                Ok(())
            },
        )
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.op(
            false,
            |_| {},
            |m| {
                let (from_dir, from_name) = m.parent(from)?;
                let (to_dir, to_name) = m.parent(to)?;
                let node = *m.entries(from_dir).get(&from_name).ok_or(errno(libc::ENOENT))?;
                if let Some(&target) = m.entries(to_dir).get(&to_name)
                    && matches!(&m.nodes[target], Node::Dir { entries, .. } if !entries.is_empty())
                {
                    return Err(errno(libc::ENOTEMPTY));
                }
                m.entries(from_dir).remove(&from_name);
                m.entries(to_dir).insert(to_name, node);
                Ok(())
            },
        )
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.op(
            true,
            |_| {},
            |m| {
                let node = m.lookup(dir)?;
                match &mut m.nodes[node] {
                    Node::Dir { entries, synced } => *synced = entries.clone(),
                    Node::File { .. } => return Err(errno(libc::ENOTDIR)),
                }
                Ok(())
            },
        )
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.op(
            false,
            |_| {},
            |m| {
                let (dir, name) = m.parent(path)?;
                let node = *m.entries(dir).get(&name).ok_or(errno(libc::ENOENT))?;
                if matches!(m.nodes[node], Node::Dir { .. }) {
                    return Err(errno(libc::EISDIR));
                }
                m.entries(dir).remove(&name);
                Ok(())
            },
        )
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.op(
            false,
            |_| {},
            |m| {
                let (dir, name) = m.parent(path)?;
                let node = *m.entries(dir).get(&name).ok_or(errno(libc::ENOENT))?;
                match &m.nodes[node] {
                    Node::Dir { entries, .. } if entries.is_empty() => {}
                    Node::Dir { .. } => return Err(errno(libc::ENOTEMPTY)),
                    Node::File { .. } => return Err(errno(libc::ENOTDIR)),
                }
                m.entries(dir).remove(&name);
                Ok(())
            },
        )
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        self.op(
            false,
            |_| {},
            |m| {
                let (dir, name) = m.parent(path)?;
                if m.entries(dir).contains_key(&name) {
                    return Err(errno(libc::EEXIST));
                }
                m.nodes.push(Node::Dir { entries: BTreeMap::new(), synced: BTreeMap::new() });
                let node = m.nodes.len() - 1;
                m.entries(dir).insert(name, node);
                Ok(())
            },
        )
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.op(
            false,
            |_| {},
            |m| match &m.nodes[m.lookup(path)?] {
                Node::File { data, .. } => Ok(data.clone()),
                Node::Dir { .. } => Err(errno(libc::EISDIR)),
            },
        )
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        self.op(
            false,
            |_| {},
            |m| match &m.nodes[m.lookup(dir)?] {
                Node::Dir { entries, .. } => Ok(entries
                    .iter()
                    .map(|(name, node)| Entry {
                        name: name.clone(),
                        is_dir: matches!(m.nodes[*node], Node::Dir { .. }),
                    })
                    .collect()),
                Node::File { .. } => Err(errno(libc::ENOTDIR)),
            },
        )
    }

    fn set_permissions(&self, path: &Path, _mode: u32) -> io::Result<()> {
        self.op(false, |_| {}, |m| m.lookup(path).map(drop))
    }

    fn identity(&self, path: &Path) -> io::Result<(u64, u64)> {
        self.op(false, |_| {}, |m| m.lookup(path).map(|node| (0, node as u64)))
    }

    fn lock(&self, path: &Path, pid: u32) -> io::Result<(LockGuard, (u64, u64))> {
        self.op(
            false,
            |_| {},
            |m| {
                if m.lookup(path).is_err() {
                    m.write(path, format!("{pid}\n").as_bytes())?;
                }
                Ok((Box::new(()) as LockGuard, (0, m.lookup(path)? as u64)))
            },
        )
    }
}
