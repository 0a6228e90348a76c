//! One QEMU process: spawned with its monitor socket pre-bound (libvirt's way: the daemon binds
//! and listens, QEMU inherits the socket, so the daemon connects before QEMU runs and never polls
//! for a path), identified by pid and start time, watched for its end through a pidfd (readable
//! the moment it exits, reaped or not: a zombie that `kill(pid, 0)` still finds is not alive),
//! and stopped with SIGTERM then SIGKILL of that one pid.

use anyhow::{Context, bail};
use rustix::process::{Pid, PidfdFlags, Signal};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// The fd number the monitor socket has in QEMU.
pub(super) const MONITOR_FD: i32 = 3;

/// A QEMU process: its pid and the start time that tells it from a later process with the same
/// pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct Identity {
    /// The process id.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat (clock ticks since boot).
    pub start_time: u64,
}

/// Spawns `binary` with `args`, its monitor socket `monitor` (bound here) as fd 3, stdout and
/// stderr appended to `log`, in a process group of its own (a signal to the daemon's group
/// leaves guests running). Returns its identity once it runs; the caller connects to `monitor`.
pub(super) fn spawn(binary: &Path, args: &[String], monitor: &Path, log: &Path) -> anyhow::Result<Identity> {
    let _ = std::fs::remove_file(monitor);
    let listener = std::os::unix::net::UnixListener::bind(monitor)
        .with_context(|| format!("cannot bind the monitor socket {}", monitor.display()))?;
    use std::os::unix::process::CommandExt;
    let log_file = open_log(log)?;
    let mut command = std::process::Command::new(binary);
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(log_file.try_clone().context("duplicating the log file")?)
        .stderr(log_file)
        .process_group(0)
        .env_clear()
        .env("LC_ALL", "C");
    inherit_as(&mut command, listener.as_raw_fd(), MONITOR_FD);
    let child = command.spawn().map_err(|error| {
        let hint = match error.kind() {
            std::io::ErrorKind::NotFound => {
                " (install it: apt-get install qemu-system-x86, or set qemu.binary in rvirtd.toml)"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot run {}: {error}{hint}", binary.display())
    })?;
    // QEMU holds the listening socket now; the daemon's copy closes here, so if QEMU dies the
    // connection the daemon makes ends instead of waiting for a greeting that never comes.
    drop(listener);
    let pid = child.id() as i32;
    match start_time(pid) {
        // The child is not waited for here: a std Child that is dropped is left for the exit
        // watcher, which reaps it through its pidfd.
        Ok(start_time) => Ok(Identity { pid, start_time }),
        Err(error) => {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            Err(error.context("reading the new QEMU's start time"))
        }
    }
}

/// Lets the child inherit `fd` as `target` (the one unsafe step: a `pre_exec` hook).
#[allow(unsafe_code)]
fn inherit_as(command: &mut std::process::Command, fd: i32, target: i32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the hook runs in the forked child before exec and calls only dup2/fcntl, which
    // are async-signal-safe; it touches no memory shared with the parent.
    unsafe {
        command.pre_exec(move || {
            if fd == target {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, target) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn open_log(log: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log)
        .with_context(|| format!("cannot open the QEMU log {}", log.display()))
}

/// The last `lines` lines of the log, for an error message.
pub(super) fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&text[text.len().saturating_sub(16 << 10)..]).into_owned();
    let tail: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    tail[tail.len().saturating_sub(lines)..].join("\n")
}

/// Field 22 of /proc/PID/stat.
pub(super) fn start_time(pid: i32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces and parentheses: fields count from the last ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("malformed stat")?;
    after.split_whitespace().nth(19).and_then(|f| f.parse().ok()).context("malformed stat")
}

/// CPU time (user + system) the process has used, in nanoseconds.
pub(super) fn cpu_time_ns(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = rustix::param::clock_ticks_per_second();
    Some(ticks * (1_000_000_000 / per_second))
}

impl Identity {
    /// Whether this very process still runs (same pid, same start time, not a zombie) and is the
    /// QEMU of `uuid` (its command line names it).
    pub(super) fn is_alive(&self, uuid: &uuid::Uuid) -> bool {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else { return false };
        let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']));
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        let names_uuid = cmdline.split(|b| *b == 0).any(|arg| arg == uuid.to_string().as_bytes());
        !zombie && start_time(self.pid).ok() == Some(self.start_time) && names_uuid
    }

    /// Sends `signal` to the process, if it is still this one.
    pub(super) fn signal(&self, signal: Signal, uuid: &uuid::Uuid) {
        if self.is_alive(uuid)
            && let Some(pid) = Pid::from_raw(self.pid)
        {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// A handle that resolves when the process ends. Opened while it is known alive, so it refers
    /// to this process and no later one with the same pid.
    pub(super) fn watch(&self) -> anyhow::Result<ExitWatch> {
        let pid = Pid::from_raw(self.pid).context("invalid pid")?;
        let fd = rustix::process::pidfd_open(pid, PidfdFlags::NONBLOCK).context("pidfd_open")?;
        Ok(ExitWatch { fd: register(fd)? })
    }
}

/// Registers a pidfd with the reactor.
#[allow(unsafe_code)]
fn register(fd: OwnedFd) -> anyhow::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the fd, so it stays open exactly as long as it is registered.
    unsafe { AsyncFd::register(fd) }.map_err(|error| anyhow::anyhow!("watching the pidfd: {error}"))
}

/// Resolves when a process ends (see `Identity::watch`).
#[derive(Debug)]
pub(super) struct ExitWatch {
    fd: AsyncFd<OwnedFd>,
}

impl ExitWatch {
    /// Waits for the process to end, then reaps it if it is the daemon's child (a QEMU this
    /// daemon started; one re-attached after a restart is PID 1's to reap).
    pub(super) async fn ended(&self) {
        if let Ok(mut guard) = self.fd.readable().await {
            guard.retain_ready();
        }
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(self.fd.get_ref())),
            rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG,
        );
    }

    /// Waits at most `timeout`; true if the process ended.
    pub(super) async fn ended_within(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.ended()).await.is_ok()
    }
}

/// Every live process whose command line has the argument `arg` (a path only the driver's own
/// QEMUs name): how a start interrupted before its pid was written is found.
pub(super) fn find_by_arg(arg: &str) -> Vec<Identity> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes())
        })
        .filter_map(|pid| Some(Identity { pid, start_time: start_time(pid).ok()? }))
        .collect()
}

/// Removes a folder the driver made for one guest, and everything in it.
pub(super) fn remove_dir(dir: &PathBuf) {
    if let Err(error) = std::fs::remove_dir_all(dir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), %error, "cannot remove a guest's runtime folder");
    }
}

/// Refuses a path QEMU would read as options: its `-blockdev`/`-chardev` syntax splits on ','.
pub(super) fn check_path(what: &str, path: &str) -> anyhow::Result<()> {
    if !path.starts_with('/') {
        bail!("{what} '{path}' must be an absolute path");
    }
    if path.contains(',') || path.contains('\n') {
        bail!("{what} '{path}' holds a ',' or a newline, which QEMU's option syntax cannot carry");
    }
    Ok(())
}
