//! `notify`: systemd's sd_notify protocol (READY=1, STOPPING=1, STATUS=...), spoken directly on
//! `$NOTIFY_SOCKET`; a no-op when the daemon was not started by systemd with `Type=notify`.

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
