//! `notify`: systemd's sd_notify protocol (READY=1, STOPPING=1, STATUS=...), spoken directly on
//! `$NOTIFY_SOCKET`; a no-op when the daemon was not started by systemd with `Type=notify`.
//! `passed_sockets`: socket activation (`$LISTEN_FDS`), as libvirtd.socket does.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Sends `state` (e.g. "READY=1") to the service manager, if there is one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let path = path.to_string_lossy().into_owned();
    let address = match path.strip_prefix('@') {
        // An abstract socket: '@' stands for the leading NUL byte.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(&path),
    };
    let sent = address.and_then(|address| UnixDatagram::unbound()?.send_to_addr(state.as_bytes(), &address));
    if let Err(error) = sent {
        tracing::warn!(%error, socket = %path, state, "cannot notify systemd");
    }
}

/// Lowers the calling thread's priority (nice 10), so the kernel runs short calls first when the
/// cores are busy.
#[allow(unsafe_code)]
pub fn lower_thread_priority() {
    // SAFETY: plain syscalls on the calling thread's own id; no memory is shared with the kernel.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// A listening socket the service manager passed (socket activation), with its
/// `FileDescriptorName=`.
#[derive(Debug)]
pub struct Passed {
    /// The name its socket unit gave it ("rvirt-sock", "rvirt-sock-ro", "rvirt-tls", ...).
    pub name: String,
    /// The socket.
    pub fd: std::os::fd::OwnedFd,
}

/// The first descriptor systemd passes (SD_LISTEN_FDS_START).
const LISTEN_FDS_START: i32 = 3;

/// The sockets systemd passed this process (`$LISTEN_PID`, `$LISTEN_FDS`, `$LISTEN_FDNAMES`, as
/// sd_listen_fds_with_names reads them); none when they are meant for another process. The
/// variables are removed, so no child inherits them, and each descriptor is made close-on-exec.
#[allow(unsafe_code)]
pub fn passed_sockets() -> Vec<Passed> {
    use std::os::fd::FromRawFd;
    let var = |name: &str| std::env::var(name).ok();
    let (pid, count, names) = (var("LISTEN_PID"), var("LISTEN_FDS"), var("LISTEN_FDNAMES"));
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        // SAFETY: called from main before the runtime starts any other thread, so nothing
        // reads the environment concurrently.
        unsafe { std::env::remove_var(name) };
    }
    if pid.and_then(|pid| pid.parse::<u32>().ok()) != Some(std::process::id()) {
        return Vec::new();
    }
    let count = count.and_then(|count| count.parse::<i32>().ok()).unwrap_or(0).clamp(0, 64);
    let names: Vec<String> =
        names.map(|names| names.split(':').map(str::to_owned).collect()).unwrap_or_default();
    (0..count)
        .map(|index| {
            let raw = LISTEN_FDS_START + index;
            // SAFETY: systemd hands descriptors 3..3+LISTEN_FDS to this process (LISTEN_PID
            // is ours) and nothing else in the process owns them; each is taken once.
            let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
            // SAFETY: fcntl on a descriptor this process owns.
            unsafe { libc::fcntl(raw, libc::F_SETFD, libc::FD_CLOEXEC) };
            let name = names.get(index as usize).cloned().unwrap_or_else(|| "unknown".to_owned());
            Passed { name, fd }
        })
        .collect()
}
