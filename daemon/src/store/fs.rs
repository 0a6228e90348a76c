//! The seam: every file operation the store does goes through `Fs`, so a test can put a model
//! disk (that fails on demand, or loses what was not made durable) under the real store. On top
//! of it, the atomic-write primitives: `write_atomic`, `remove_durably`, `ensure_dir`.
//!
//! Files are created 0600 and folders 0700, then chmod-ed to exactly that, so the umask never
//! matters.

use std::any::Any;
use std::fmt::Debug;
use std::io;
use std::path::{Path, PathBuf};

/// The longest file name (in bytes) Linux file systems accept.
pub const NAME_MAX: usize = 255;

/// Mode of every file the store creates.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder the store creates.
pub const DIR_MODE: u32 = 0o700;

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name.
    pub name: String,
    /// Whether it is a folder.
    pub is_dir: bool,
}

/// A held advisory lock; dropping it releases the lock.
pub type LockGuard = Box<dyn Any + Send + Sync>;

/// Every file operation the store does. `RealFs` is the one the daemon uses.
pub trait Fs: Send + Sync + Debug {
    /// Creates (or truncates) `path` with mode 0600 and writes `data`; not durable yet.
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()>;
    /// Makes the data of `path` durable (fsync).
    fn sync(&self, path: &Path) -> io::Result<()>;
    /// Renames `from` over `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the entries of the folder `dir` durable (fsync of the folder).
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty folder.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Creates a folder with mode 0700 (`AlreadyExists` when it exists).
    fn create_dir(&self, path: &Path) -> io::Result<()>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Lists a folder.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>>;
    /// Sets the permission bits of `path`.
    fn set_permissions(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// `(device, inode)` of `path`.
    fn identity(&self, path: &Path) -> io::Result<(u64, u64)>;
    /// Takes the exclusive advisory lock on `path` (created 0600 when absent) and writes `pid`
    /// into it; `WouldBlock` when another process holds it. Returns the guard and the
    /// `(device, inode)` of the locked file.
    fn lock(&self, path: &Path, pid: u32) -> io::Result<(LockGuard, (u64, u64))>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Fs for RealFs {
    fn write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mut file =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        file.write_all(data)
    }

    fn sync(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::File::open(dir)?.sync_all()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn create_dir(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new().mode(DIR_MODE).create(path)
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<Entry>> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            entries.push(Entry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir: entry.file_type()?.is_dir(),
            });
        }
        Ok(entries)
    }

    fn set_permissions(&self, path: &Path, mode: u32) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    fn identity(&self, path: &Path) -> io::Result<(u64, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path)?;
        Ok((meta.dev(), meta.ino()))
    }

    fn lock(&self, path: &Path, pid: u32) -> io::Result<(LockGuard, (u64, u64))> {
        use std::io::Write as _;
        use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(FILE_MODE)
            .open(path)?;
        if !try_lock_exclusive(&file) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        file.set_len(0)?;
        writeln!(file, "{pid}")?;
        let meta = file.metadata()?;
        Ok((Box::new(file), (meta.dev(), meta.ino())))
    }
}

#[allow(unsafe_code)]
fn try_lock_exclusive(file: &std::fs::File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the kernel.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// A failed file operation and the file it was on.
#[derive(Debug)]
pub struct Failed {
    /// The file or folder.
    pub path: PathBuf,
    /// What the OS said.
    pub source: io::Error,
}

/// The result of a store-level file operation.
pub type FsResult<T = ()> = Result<T, Failed>;

/// Tags an I/O error with its path.
pub fn at(path: &Path) -> impl FnOnce(io::Error) -> Failed + '_ {
    move |source| Failed { path: path.to_owned(), source }
}

/// The temporary name `name` is written under before it is renamed into place.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Whether a file name is one of our temporary files.
pub fn is_temp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// Checks that `name`, and the temporary name it is first written under, fit NAME_MAX.
pub fn check_name_length(name: &str) -> Result<(), usize> {
    let longest = temp_name(name).len();
    if longest > NAME_MAX { Err(longest) } else { Ok(()) }
}

/// Writes `dir/name` atomically: temporary file, fsync, rename, fsync the folder. On failure no
/// temporary file is left behind (unless removing it fails too; the next start sweeps it), and
/// when the failure came before the rename the old `dir/name` is untouched.
pub fn write_atomic(fs: &dyn Fs, dir: &Path, name: &str, data: &[u8]) -> FsResult {
    let temp = dir.join(temp_name(name));
    let target = dir.join(name);
    let placed = fs
        .write(&temp, data)
        .and_then(|()| fs.sync(&temp))
        .map_err(at(&temp))
        .and_then(|()| fs.rename(&temp, &target).map_err(at(&target)));
    if placed.is_err() {
        let _ = fs.remove_file(&temp);
    }
    placed?;
    fs.sync_dir(dir).map_err(at(dir))
}

/// Removes the file `path` (absent is fine) and fsyncs its folder, even when it was absent: an
/// earlier removal may have been undone by a failed folder fsync.
pub fn remove_durably(fs: &dyn Fs, path: &Path) -> FsResult {
    match fs.remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(path)(e)),
    }
    let parent = path.parent().expect("a file in a folder");
    match fs.sync_dir(parent) {
        // No folder, so no file (a snapshot folder never created).
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        synced => synced.map_err(at(parent)),
    }
}

/// Removes a folder and everything in it, then fsyncs its parent.
pub fn remove_tree(fs: &dyn Fs, path: &Path) -> FsResult {
    fn empty(fs: &dyn Fs, dir: &Path) -> FsResult {
        for entry in fs.read_dir(dir).map_err(at(dir))? {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                empty(fs, &path)?;
                fs.remove_dir(&path).map_err(at(&path))?;
            } else {
                fs.remove_file(&path).map_err(at(&path))?;
            }
        }
        Ok(())
    }
    empty(fs, path)?;
    match fs.remove_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(at(path)(e)),
    }
    let parent = path.parent().expect("a folder in a folder");
    fs.sync_dir(parent).map_err(at(parent))
}

/// Creates the folder `dir` (0700) if it is absent and makes its entry in the parent durable, so
/// a file fsynced into it cannot vanish with it. A folder created but not made durable is
/// removed again.
pub fn ensure_dir(fs: &dyn Fs, dir: &Path) -> FsResult {
    match fs.create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(at(dir)(e)),
    }
    let parent = dir.parent().expect("a folder in a folder");
    let done = fs
        .set_permissions(dir, DIR_MODE)
        .map_err(at(dir))
        .and_then(|()| fs.sync_dir(parent).map_err(at(parent)));
    if done.is_err() {
        let _ = fs.remove_dir(dir);
    }
    done
}

/// `ensure_dir` for `dir` and every missing ancestor.
pub fn ensure_dir_all(fs: &dyn Fs, dir: &Path) -> FsResult {
    if fs.identity(dir).is_ok() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir_all(fs, parent)?;
    }
    ensure_dir(fs, dir)
}
