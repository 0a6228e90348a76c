//! The daemon's own folders and its socket: created with explicit modes, and refused at start when
//! someone else could have put something in them, as ssh refuses a key file others can write and
//! tmux a `/tmp/tmux-UID` someone else made.

use anyhow::{Context, bail};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// Makes sure `path` is a folder only this daemon's user controls: creates it (and missing
/// parents) 0700 whatever the umask, or checks the one that exists: ours, and writable by nobody
/// else. In a world-writable parent such as `/tmp` (the non-root fallback `/tmp/rvirt-UID`),
/// where anyone could have made it first, it must also be a real folder (no symlink) closed to
/// group and others entirely. `what` names it in errors.
pub fn ensure_private_dir(path: &Path, what: &str) -> anyhow::Result<()> {
    let shared_parent = path
        .parent()
        .and_then(|parent| fs::metadata(parent).ok())
        .is_some_and(|parent| parent.mode() & 0o002 != 0);
    let inspect = |path: &Path| if shared_parent { fs::symlink_metadata(path) } else { fs::metadata(path) };
    let mut created = false;
    let meta = match inspect(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
                fs::DirBuilder::new().recursive(true).mode(0o700).create(parent).with_context(|| {
                    format!("cannot create the folders above the {what} {}", path.display())
                })?;
            }
            // The folder itself is created, not found: should someone else have just made it (or a
            // symlink there), this fails instead of taking theirs.
            fs::DirBuilder::new()
                .mode(0o700)
                .create(path)
                .with_context(|| format!("cannot create the {what} {}", path.display()))?;
            created = true;
            fs::symlink_metadata(path)?
        }
        Err(e) => return Err(e).with_context(|| format!("cannot inspect the {what} {}", path.display())),
    };
    let shown = path.display();
    if !meta.is_dir() {
        bail!(
            "refusing the {what} {shown}: it is not a folder (a symlink or a file); remove it or pick another"
        );
    }
    let uid = rvirt_proto::effective_uid();
    if meta.uid() != uid {
        bail!(
            "refusing the {what} {shown}: it is owned by uid {}, not by rvirtd's uid {uid}, so that user \
             could read or plant state there; remove it or pick another",
            meta.uid()
        );
    }
    if created {
        // DirBuilder's mode passes through the umask; set it outright, now that it is known to
        // be the folder just made.
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set the mode of the {what} {}", path.display()))?;
        return Ok(());
    }
    let mode = meta.mode() & 0o7777;
    let open = if shared_parent { mode & 0o077 } else { mode & 0o022 };
    if open != 0 {
        let fix = if shared_parent { "chmod 700" } else { "chmod go-w" };
        bail!(
            "refusing the {what} {shown}: its mode {mode:04o} lets group or others {}; `{fix} {shown}` \
             if it is yours",
            if open & 0o022 != 0 { "write to it" } else { "read it" }
        );
    }
    Ok(())
}

/// What may be at a socket path before binding to it.
#[derive(Debug, PartialEq, Eq)]
pub enum SocketPath {
    /// Nothing: bind.
    Free,
    /// A socket nobody answers on, left by a daemon that died: remove it, then bind.
    Stale,
}

/// Checks a socket path before binding: a live socket or anything that is not a socket (a file,
/// a folder, a symlink) is refused, never deleted.
pub fn check_socket_path(path: &Path) -> anyhow::Result<SocketPath> {
    let shown = path.display();
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SocketPath::Free),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect the socket path {shown}")),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "refusing to listen on {shown}: something that is not a socket is there; rvirtd replaces \
             only a stale socket of its own. Remove it or pick another --socket"
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!("another daemon is already serving on {shown}; stop it or pick another --socket");
    }
    Ok(SocketPath::Stale)
}

/// Gives a bound socket its configured mode and group (libvirtd's `unix_sock_rw_perms` and
/// `unix_sock_group`).
pub fn set_socket_access(path: &Path, mode: u32, group: Option<u32>) -> anyhow::Result<()> {
    if let Some(gid) = group {
        std::os::unix::fs::chown(path, None, Some(gid))
            .with_context(|| format!("cannot give the socket {} to group {gid}", path.display()))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of the socket {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_folders_are_created_0700_and_open_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("a/b");
        ensure_private_dir(&new, "state folder").unwrap();
        assert_eq!(fs::metadata(&new).unwrap().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(dir.path().join("a")).unwrap().mode() & 0o777, 0o700);

        fs::set_permissions(&new, fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&new, "state folder").unwrap();
        fs::set_permissions(&new, fs::Permissions::from_mode(0o775)).unwrap();
        let error = ensure_private_dir(&new, "state folder").unwrap_err().to_string();
        assert!(error.contains("write to it") && error.contains("chmod go-w"), "{error}");

        // In a world-writable, sticky parent (a stand-in for /tmp): only a real 0700 folder.
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
        let fallback = tmp.join("rvirt-1000");
        ensure_private_dir(&fallback, "runtime folder").unwrap();
        fs::set_permissions(&fallback, fs::Permissions::from_mode(0o755)).unwrap();
        let error = ensure_private_dir(&fallback, "runtime folder").unwrap_err().to_string();
        assert!(error.contains("mode 0755") && error.contains("read it"), "{error}");
        fs::remove_dir(&fallback).unwrap();
        std::os::unix::fs::symlink(&new, &fallback).unwrap();
        let error = ensure_private_dir(&fallback, "runtime folder").unwrap_err().to_string();
        assert!(error.contains("not a folder"), "{error}");
    }

    #[test]
    fn a_folder_owned_by_someone_else_is_refused() {
        // `/` is root's; as root, a folder given to nobody (65534) stands in for another user's.
        let dir = tempfile::tempdir().unwrap();
        let theirs = if rvirt_proto::effective_uid() == 0 {
            let theirs = dir.path().join("theirs");
            fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), None).unwrap();
            theirs
        } else {
            std::path::PathBuf::from("/")
        };
        let error = ensure_private_dir(&theirs, "state folder").unwrap_err().to_string();
        assert!(error.contains("owned by uid"), "{error}");
    }

    #[test]
    fn only_a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        assert_eq!(check_socket_path(&path).unwrap(), SocketPath::Free);
        fs::write(&path, "precious").unwrap();
        let error = check_socket_path(&path).unwrap_err().to_string();
        assert!(error.contains("not a socket"), "{error}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
        fs::remove_file(&path).unwrap();
        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(check_socket_path(&path).unwrap_err().to_string().contains("already serving"));
        drop(live);
        assert_eq!(check_socket_path(&path).unwrap(), SocketPath::Stale);
    }
}
