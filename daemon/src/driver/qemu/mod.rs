//! The `qemu` driver: one QEMU process per running domain, started paused with `-no-shutdown`
//! and driven over its monitor (QMP), the way libvirt's QEMU driver does it.
//!
//! What lives where: `command` turns a definition into QEMU's command line (and refuses what it
//! cannot honour); `process` spawns, identifies, watches and signals one QEMU; `qmp` is the
//! monitor client; `guest` holds a running guest and its watcher, which reports what QEMU does
//! on its own; `save` is the managed-save image format; `snapshot` the internal snapshots.
//!
//! On disk: per running guest a folder `RUNTIME/qemu/UUID/` (monitor socket, QEMU's log, and
//! `identity`, written before and right after the spawn so a daemon that dies mid-start can find
//! and end a QEMU nobody recorded); per domain `STATE/qemu/UUID.save` (the managed-save image)
//! and `STATE/qemu/UUID.qcow2` (where internal snapshots live). The runtime record in the
//! domain's status file (`Runtime`) holds the pid, its start time and the monitor's path.

pub mod guest_image;
pub mod qmp;

mod command;
mod guest;
mod process;
mod save;
mod snapshot;

use crate::config::Config;
use crate::domain::{Domain, DomainState, reason};
use crate::driver::{Driver, EventSink, Gone, Outcome, Reattached, Usage};
use crate::error::{Error, Result};
use crate::lifecycle::{Change, Op, Settles};
use crate::xml::{DomainDef, ParseDefaults};
use anyhow::Context;
use guest::{Guest, Guests};
use process::Identity;
use qmp::{Qmp, QmpError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// `sun_path` holds 108 bytes with its NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Real guests, one QEMU process each.
#[derive(Debug)]
pub struct QemuDriver {
    binary: PathBuf,
    kvm: bool,
    start_timeout: Duration,
    monitor_timeout: Duration,
    /// `RUNTIME/qemu`: one folder per running guest.
    run_root: PathBuf,
    /// `STATE/qemu`: managed-save images and snapshot state.
    state_root: PathBuf,
    events: EventSink,
    guests: Guests,
}

/// What the status file keeps of a running guest, to find it again after a restart.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Record {
    /// The run (domain id).
    id: i32,
    /// The process, once spawned.
    #[serde(flatten)]
    process: Option<Identity>,
    /// The monitor socket.
    monitor: PathBuf,
}

impl Record {
    fn parse(runtime: &str) -> Option<Record> {
        serde_json::from_str(runtime).ok()
    }

    fn text(&self) -> String {
        serde_json::to_string(self).expect("a record serializes")
    }
}

impl QemuDriver {
    /// The driver, with its folders under `config`'s state and runtime folders.
    pub fn open(config: &Config, events: EventSink) -> anyhow::Result<QemuDriver> {
        let run_root = config.runtime_dir.join("qemu");
        let state_root = config.state_dir.join("qemu");
        crate::folders::ensure_private_dir(&config.runtime_dir, "runtime folder")?;
        crate::folders::ensure_private_dir(&config.state_dir, "state folder")?;
        crate::folders::ensure_private_dir(&run_root, "QEMU runtime folder")?;
        crate::folders::ensure_private_dir(&state_root, "QEMU state folder")?;
        let longest = run_root.join(Uuid::nil().to_string()).join("monitor.sock");
        if longest.as_os_str().len() > MAX_SOCKET_PATH {
            anyhow::bail!(
                "the runtime folder {} is too deep: a monitor socket path under it would exceed {MAX_SOCKET_PATH} bytes; choose a shorter --runtime-dir",
                config.runtime_dir.display()
            );
        }
        Ok(QemuDriver {
            binary: config.qemu.binary.clone(),
            kvm: config.qemu.kvm,
            start_timeout: Duration::from_secs(config.qemu.start_timeout_secs),
            monitor_timeout: Duration::from_secs(config.qemu.monitor_timeout_secs),
            run_root,
            state_root,
            events,
            guests: Guests::default(),
        })
    }

    fn guest_dir(&self, uuid: Uuid) -> PathBuf {
        self.run_root.join(uuid.to_string())
    }

    fn save_image(&self, uuid: Uuid) -> PathBuf {
        self.state_root.join(format!("{uuid}.save"))
    }

    fn snapshot_image(&self, uuid: Uuid) -> PathBuf {
        self.state_root.join(format!("{uuid}.qcow2"))
    }

    fn guest(&self, domain: &Domain) -> Result<Arc<Guest>> {
        let table = self.guests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        table.get(&domain.uuid()).filter(|g| g.id() == domain.id).cloned().ok_or_else(|| {
            Error::OperationFailed(anyhow::anyhow!(
                "domain '{}' has no QEMU process (it ended; its state is being recorded)",
                domain.name()
            ))
        })
    }

    /// One monitor command on `guest`, within the monitor timeout.
    async fn qmp(
        &self,
        guest: &Guest,
        command: &str,
        arguments: Option<serde_json::Value>,
    ) -> Result<serde_json::Value> {
        guest
            .qmp
            .execute_timeout(command, arguments, self.monitor_timeout)
            .await
            .map_err(|error| monitor_error(&guest.name, command, error, self.monitor_timeout))
    }

    /// Spawns and connects a QEMU for `def` (run `id`), paused; `extra` are further arguments
    /// (an incoming migration). Everything the start leaves behind goes if it fails.
    async fn launch(
        &self,
        def: &DomainDef,
        id: i32,
        extra: &[String],
    ) -> Result<(Arc<Guest>, qmp::Events, process::ExitWatch)> {
        let uuid = def.uuid;
        let dir = self.guest_dir(uuid);
        let monitor = dir.join("monitor.sock");
        let log = dir.join("qemu.log");
        let snapshot_image = self.snapshot_image(uuid);
        let mut args = command::args(def, self.kvm, snapshot_image.exists().then_some(&snapshot_image))
            .map_err(Error::OperationFailed)?;
        args.extend_from_slice(extra);
        // Names the guest's own folder on its command line: a QEMU whose pid was never written
        // (the daemon died right after the spawn) is still found by `sweep`.
        args.extend(["-pidfile".to_owned(), dir.join("qemu.pid").display().to_string()]);
        command::check_sources(def).map_err(Error::OperationFailed)?;
        let failed = |error: anyhow::Error| {
            let tail = process::log_tail(&log, 5);
            process::remove_dir(&dir);
            match tail.is_empty() {
                true => Error::OperationFailed(error),
                false => Error::OperationFailed(error.context(format!("QEMU said: {tail}"))),
            }
        };
        // The intent first: a daemon that dies from here on finds this folder at its next start
        // and ends whatever QEMU it names (see `sweep`).
        let identity = (|| {
            process::remove_dir(&dir);
            crate::folders::ensure_private_dir(&dir, "guest runtime folder")?;
            write_durably(
                &dir.join("identity"),
                &Record { id, process: None, monitor: monitor.clone() }.text(),
            )?;
            let identity = process::spawn(&self.binary, &args, &monitor, &log)?;
            let recorded = write_durably(
                &dir.join("identity"),
                &Record { id, process: Some(identity), monitor: monitor.clone() }.text(),
            );
            match identity.watch().and_then(|exit| recorded.map(|()| exit)) {
                Ok(exit) => anyhow::Ok((identity, exit)),
                Err(error) => {
                    // Never leave a QEMU running that the folder no longer names.
                    kill_now(&identity, &uuid);
                    Err(error)
                }
            }
        })()
        .map_err(|error| failed(error.context(format!("cannot start QEMU for domain '{}'", def.name))))?;
        let (identity, exit) = identity;
        let connected = tokio::select! {
            connected = Qmp::connect(&monitor, self.start_timeout) => connected.map_err(anyhow::Error::from),
            () = exit.ended() => Err(anyhow::anyhow!("QEMU exited during its start")),
        };
        let (qmp, events) = match connected {
            Ok(connected) => connected,
            Err(error) => {
                identity.signal(rustix::process::Signal::KILL, &uuid);
                exit.ended_within(Duration::from_secs(5)).await;
                return Err(failed(error.context(format!("QEMU for domain '{}' did not start", def.name))));
            }
        };
        let guest = Arc::new(Guest {
            uuid,
            id: id.into(),
            name: def.name.to_string(),
            identity,
            qmp,
            dir,
            stopping: Default::default(),
            fake_reboot: Default::default(),
            on_poweroff: def.extras().on_poweroff,
            ended: CancellationToken::new(),
        });
        Ok((guest, events, exit))
    }

    /// Starts watching a launched guest: from now on its end is noticed and reported.
    fn adopt(&self, guest: &Arc<Guest>, events: qmp::Events, exit: process::ExitWatch) {
        self.guests.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(guest.uuid, guest.clone());
        tokio::spawn(guest::watch(guest.clone(), events, exit, self.events.clone(), self.guests.clone()));
    }

    /// Ends a launched guest the daemon could not finish starting.
    async fn abandon(&self, guest: &Arc<Guest>, events: qmp::Events, exit: process::ExitWatch) {
        guest.stopping.store(true, Ordering::SeqCst);
        self.adopt(guest, events, exit);
        self.end(guest, false).await;
    }

    /// virDomainCreate: boots the domain (or restores its managed-save image, or reverts it to
    /// snapshot `revert`), running unless `paused`.
    async fn start(
        &self,
        before: &Domain,
        after: &Domain,
        revert: Option<&str>,
        paused: bool,
    ) -> Result<Outcome> {
        let def = &after.def;
        let image = self.save_image(def.uuid);
        let restore = before.has_managed_save && image.exists() && revert.is_none();
        if !before.has_managed_save {
            // An image restored from before: kept until now, so a restore whose record failed
            // would not have lost it.
            let _ = std::fs::remove_file(&image);
        }
        let extra: Vec<String> = if restore { vec!["-incoming".into(), "defer".into()] } else { vec![] };
        let (guest, events, exit) = self.launch(def, after.id, &extra).await?;
        let ready = async {
            let mut run = !paused;
            if restore {
                run &= save::restore(&guest.qmp, &image, self.monitor_timeout).await.with_context(|| {
                    format!(
                        "cannot restore domain '{}' from its managed-save image {} (the image is kept)",
                        def.name,
                        image.display()
                    )
                })?;
            }
            if let Some(tag) = revert {
                snapshot::load(&guest.qmp, tag, &command::snapshot_devices(def)?, self.monitor_timeout)
                    .await?;
            }
            if run {
                guest
                    .qmp
                    .execute_timeout("cont", None, self.monitor_timeout)
                    .await
                    .context("cannot run the guest")?;
            }
            anyhow::Ok(run)
        };
        let running = match ready.await {
            Ok(running) => running,
            Err(error) => {
                let tail = process::log_tail(&guest.dir.join("qemu.log"), 5);
                self.abandon(&guest, events, exit).await;
                let error = if tail.is_empty() { error } else { error.context(format!("QEMU said: {tail}")) };
                return Err(Error::OperationFailed(error));
            }
        };
        let runtime =
            Record { id: after.id, process: Some(guest.identity), monitor: guest.qmp.path().to_owned() };
        self.adopt(&guest, events, exit);
        let mut outcome = Outcome { runtime: Some(runtime.text().into()), state: None };
        if restore {
            // Restored: the image has served (libvirt removes it once the domain runs); the file
            // itself goes at the next start or undefine, once this start is surely recorded.
            outcome.state = Some(match running {
                true => (DomainState::Running, reason::RUNNING_RESTORED),
                // Saved paused, restored paused, as libvirt's QEMU driver does.
                false => (DomainState::Paused, reason::PAUSED_USER),
            });
        }
        Ok(outcome)
    }

    /// Ends `guest` and waits until its process has gone: `quit` over the monitor, then SIGTERM,
    /// then SIGKILL of that pid. `graceful` waits longer after SIGTERM and never sends SIGKILL,
    /// as libvirt's VIR_DOMAIN_DESTROY_GRACEFUL.
    async fn end(&self, guest: &Arc<Guest>, graceful: bool) {
        guest.stopping.store(true, Ordering::SeqCst);
        let ended = guest.ended.clone();
        let waited = |timeout: Duration| {
            let ended = ended.clone();
            async move { tokio::time::timeout(timeout, ended.cancelled()).await.is_ok() }
        };
        let quit = guest.qmp.execute_timeout("quit", None, Duration::from_secs(1));
        if tokio::time::timeout(Duration::from_secs(1), quit).await.is_ok()
            && waited(Duration::from_secs(2)).await
        {
            return;
        }
        guest.identity.signal(rustix::process::Signal::TERM, &guest.uuid);
        if waited(Duration::from_secs(if graceful { 10 } else { 2 })).await || graceful {
            return;
        }
        tracing::warn!(domain.name = guest.name, pid = guest.identity.pid, "QEMU ignored SIGTERM: SIGKILL");
        guest.identity.signal(rustix::process::Signal::KILL, &guest.uuid);
        waited(Duration::from_secs(5)).await;
    }

    async fn destroy(&self, domain: &Domain, graceful: bool) -> Result<()> {
        let guest = self.guest(domain)?;
        self.end_checked(&guest, graceful).await
    }

    /// `end`, failing when the process is still there afterwards (its end, when it comes, is
    /// reported as an event).
    async fn end_checked(&self, guest: &Arc<Guest>, graceful: bool) -> Result<()> {
        self.end(guest, graceful).await;
        if !guest.ended.is_cancelled() {
            return Err(Error::Timeout(format!(
                "QEMU of domain '{}' (pid {}) did not end",
                guest.name, guest.identity.pid
            )));
        }
        Ok(())
    }
}

/// SIGKILLs `identity` and waits (at most 5 s, blocking) until it is gone.
fn kill_now(identity: &Identity, uuid: &Uuid) {
    identity.signal(rustix::process::Signal::KILL, uuid);
    for _ in 0..500 {
        if !identity.is_alive(uuid) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A monitor failure as the caller sees it: a hung QEMU is a timeout, the rest keeps QMP's words.
fn monitor_error(name: &str, command: &str, error: QmpError, timeout: Duration) -> Error {
    match error {
        QmpError::Timeout { .. } => Error::Timeout(format!(
            "QEMU of domain '{name}' did not answer '{command}' within {} s (is the process stopped or hung?)",
            timeout.as_secs()
        )),
        error => {
            Error::Driver(anyhow::Error::from(error).context(format!("domain '{name}': {command} failed")))
        }
    }
}

/// Writes `text` to `path` through a temporary name, fsynced: the file is whole or absent.
fn write_durably(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path.parent().context("a file has a folder")?;
    let name = path.file_name().context("a file has a name")?.to_string_lossy().into_owned();
    crate::store::fs::write_atomic(&crate::store::fs::RealFs, dir, &name, text.as_bytes())
        .map_err(|failed| anyhow::anyhow!("{}: {}", failed.path.display(), failed.source))
        .with_context(|| format!("cannot write {}", path.display()))
}

#[async_trait::async_trait]
impl Driver for QemuDriver {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn parse_defaults(&self) -> ParseDefaults {
        ParseDefaults { arch: "x86_64" }
    }

    fn check_def(&self, def: &DomainDef) -> Result<()> {
        command::check(def, self.kvm)
    }

    fn settles(&self, op: &Op) -> Settles {
        match op {
            // An ACPI power button only asks: the domain runs until the guest powers off (and,
            // for a reboot, comes back or, with <on_reboot> destroy, stops: an event either way).
            Op::Shutdown | Op::Reboot(_) => Settles::Later,
            _ => Settles::AtOnce,
        }
    }

    fn os_type(&self, _def: &DomainDef) -> String {
        "hvm".to_owned()
    }

    fn usage(&self, domain: &Domain) -> Usage {
        let pid = domain.runtime.as_deref().and_then(Record::parse).and_then(|r| r.process).map(|p| p.pid);
        Usage { cpu_time_ns: pid.and_then(process::cpu_time_ns).unwrap_or(0), memory_kib: None }
    }

    async fn execute(&self, domain: &Domain, op: &Op, change: &Change) -> Result<Outcome> {
        let after = change.domain.as_ref();
        match op {
            Op::Start => {
                let after = after.expect("a start leaves the domain");
                return self.start(domain, after, None, false).await;
            }
            Op::Shutdown => {
                let guest = self.guest(domain)?;
                // A reboot asked before the guest armed its button must not turn this into one
                // (libvirt's qemuDomainShutdownFlags clears its fake reboot too).
                guest.fake_reboot.store(false, Ordering::SeqCst);
                self.qmp(&guest, "system_powerdown", None).await?;
            }
            Op::Destroy(destroy_flags) => {
                self.destroy(domain, destroy_flags & crate::lifecycle::flags::DESTROY_GRACEFUL != 0).await?;
                if after.is_none() {
                    // A transient domain goes with its guest: so do its snapshots.
                    remove_file(&self.snapshot_image(domain.uuid()))?;
                }
            }
            Op::Suspend => {
                let guest = self.guest(domain)?;
                self.qmp(&guest, "stop", None).await?;
            }
            Op::Resume => {
                let guest = self.guest(domain)?;
                self.qmp(&guest, "cont", None).await?;
            }
            Op::ManagedSave => {
                let guest = self.guest(domain)?;
                let image = self.save_image(domain.uuid());
                save::save(&guest.qmp, &image, domain.state == DomainState::Running, self.monitor_timeout)
                    .await
                    .map_err(|error| {
                        Error::OperationFailed(
                            error.context(format!("cannot save domain '{}'", domain.name())),
                        )
                    })?;
                self.end_checked(&guest, false).await?;
            }
            Op::ManagedSaveRemove => remove_file(&self.save_image(domain.uuid()))?,
            Op::Undefine(_) if after.is_none() => {
                remove_file(&self.save_image(domain.uuid()))?;
                remove_file(&self.snapshot_image(domain.uuid()))?;
            }
            Op::PmSuspend => {
                return Err(Error::OperationUnsupported(
                    "PM suspend needs the QEMU guest agent, which rvirt's qemu driver does not provide"
                        .into(),
                ));
            }
            Op::PmWakeup => {
                let guest = self.guest(domain)?;
                self.qmp(&guest, "system_wakeup", None).await?;
            }
            Op::Reboot(_) => {
                // libvirt's ACPI method: the guest's power-off that follows becomes a reset.
                let guest = self.guest(domain)?;
                let restart = matches!(domain.def.extras().on_reboot, "restart" | "rename-restart");
                guest.fake_reboot.store(restart, Ordering::SeqCst);
                if let Err(error) = self.qmp(&guest, "system_powerdown", None).await {
                    guest.fake_reboot.store(false, Ordering::SeqCst);
                    return Err(error);
                }
            }
            Op::Reset => {
                let guest = self.guest(domain)?;
                self.qmp(&guest, "system_reset", None).await?;
            }
            Op::SnapshotCreate(..) | Op::SnapshotDelete(..) | Op::SnapshotRevert(..) => {
                return self.snapshot_op(domain, op, change).await;
            }
            Op::CheckpointCreate(..) => {
                // Differs from libvirt: its QEMU driver keeps checkpoints as qcow2 dirty bitmaps;
                // rvirt's does not implement them yet.
                return Err(Error::OperationUnsupported(
                    "checkpoints are not supported by the qemu driver".into(),
                ));
            }
            _ => {}
        }
        Ok(Outcome::default())
    }

    async fn reattach(&self, domain: &Domain) -> std::result::Result<Reattached, Gone> {
        let crashed = Gone { state: DomainState::Shutoff, reason: reason::SHUTOFF_CRASHED };
        let uuid = domain.uuid();
        let Some(record) = domain.runtime.as_deref().and_then(Record::parse) else { return Err(crashed) };
        let Some(identity) = record.process.filter(|p| p.is_alive(&uuid)) else {
            process::remove_dir(&self.guest_dir(uuid));
            return Err(crashed);
        };
        let found = async {
            let exit = identity.watch()?;
            let (qmp, events) = Qmp::connect(&record.monitor, self.start_timeout).await?;
            let status = qmp.execute_timeout("query-status", None, self.monitor_timeout).await?;
            anyhow::Ok((exit, qmp, events, status["status"].as_str().unwrap_or("").to_owned()))
        };
        let (exit, qmp, events, status) = match found.await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(domain.name = domain.name(), %error, "cannot re-attach: ending that QEMU");
                identity.signal(rustix::process::Signal::KILL, &uuid);
                process::remove_dir(&self.guest_dir(uuid));
                return Err(crashed);
            }
        };
        let guest = Arc::new(Guest {
            uuid,
            id: domain.id.into(),
            name: domain.name().to_owned(),
            identity,
            qmp,
            dir: self.guest_dir(uuid),
            stopping: Default::default(),
            fake_reboot: Default::default(),
            on_poweroff: domain.def.extras().on_poweroff,
            ended: CancellationToken::new(),
        });
        let (state, why) = match status.as_str() {
            "running" => (
                DomainState::Running,
                if domain.state == DomainState::Running { domain.reason } else { reason::RUNNING_UNPAUSED },
            ),
            // -no-shutdown: the guest powered off while the daemon was down.
            "shutdown" | "guest-panicked" => {
                let why =
                    if status == "shutdown" { reason::SHUTOFF_SHUTDOWN } else { reason::SHUTOFF_CRASHED };
                self.abandon(&guest, events, exit).await;
                return Err(Gone { state: DomainState::Shutoff, reason: why });
            }
            "suspended" => (DomainState::PmSuspended, reason::UNKNOWN),
            _ => (
                DomainState::Paused,
                if domain.state == DomainState::Paused { domain.reason } else { reason::UNKNOWN },
            ),
        };
        self.adopt(&guest, events, exit);
        Ok(Reattached { state, reason: why, runtime: domain.runtime.clone() })
    }

    async fn sweep(&self, active: &[Uuid]) {
        let Ok(entries) = std::fs::read_dir(&self.run_root) else { return };
        for entry in entries.flatten() {
            let Some(uuid) = entry.file_name().to_str().and_then(|n| Uuid::parse_str(n).ok()) else {
                continue;
            };
            if active.contains(&uuid) {
                continue;
            }
            let dir = entry.path();
            let record = std::fs::read_to_string(dir.join("identity")).ok().and_then(|t| Record::parse(&t));
            let mut found: Vec<Identity> = record.and_then(|r| r.process).into_iter().collect();
            found.extend(process::find_by_arg(&dir.join("qemu.pid").display().to_string()));
            for identity in found.into_iter().filter(|identity| identity.is_alive(&uuid)) {
                tracing::warn!(domain.uuid = %uuid, pid = identity.pid, "ending a QEMU whose start was never recorded");
                let exit = identity.watch();
                identity.signal(rustix::process::Signal::KILL, &uuid);
                if let Ok(exit) = exit {
                    exit.ended_within(Duration::from_secs(5)).await;
                }
            }
            process::remove_dir(&dir);
        }
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::Persist { what: "a QEMU image".into(), path: path.to_owned(), source: error })
        }
        _ => Ok(()),
    }
}
