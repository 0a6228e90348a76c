//! Internal snapshots: the guest's state and its writable qcow2 disks saved inside qcow2 images
//! by QEMU's `snapshot-save`/`-load`/`-delete` jobs. The vmstate goes to a per-domain qcow2
//! (`STATE/qemu/UUID.qcow2`, node `state`, attached to no device), created through QEMU itself
//! the first time a snapshot is taken (no `qemu-img` needed). A shut-off domain's snapshots are
//! handled by a helper QEMU with no machine that opens the same images.

use super::QemuDriver;
use super::command::{self, STATE_NODE};
use super::process;
use super::qmp::Qmp;
use crate::domain::Domain;
use crate::driver::Outcome;
use crate::error::{Error, Result};
use crate::lifecycle::{Change, Op, flags};
use anyhow::Context;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static JOB: AtomicU64 = AtomicU64::new(1);

fn job_id(kind: &str) -> String {
    format!("rvirt-{kind}-{}", JOB.fetch_add(1, Ordering::Relaxed))
}

/// Creates the vmstate image at `image` through `qmp` and opens it as node `state`, unless that
/// node exists.
async fn ensure_state(qmp: &Qmp, image: &Path, timeout: Duration) -> anyhow::Result<()> {
    let nodes = qmp.execute_timeout("query-named-block-nodes", Some(json!({"flat": true})), timeout).await?;
    if nodes.as_array().is_some_and(|nodes| nodes.iter().any(|n| n["node-name"] == STATE_NODE)) {
        return Ok(());
    }
    // Made under a temporary name and renamed once formatted: a half-made image would make every
    // later start fail on it.
    let partial = image.with_extension("qcow2.partial");
    let made = create_state(qmp, &partial, timeout).await.and_then(|()| {
        std::fs::rename(&partial, image).context("placing the snapshot image")?;
        std::fs::File::open(image.parent().context("a folder")?)?.sync_all()?;
        anyhow::Ok(())
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    made
}

async fn create_state(qmp: &Qmp, image: &Path, timeout: Duration) -> anyhow::Result<()> {
    let filename = image.to_str().context("the state image path is not UTF-8")?;
    let id = job_id("create");
    let create_file = json!({"job-id": id, "options": {"driver": "file", "filename": filename, "size": 0}});
    qmp.execute_timeout("blockdev-create", Some(create_file), timeout).await?;
    qmp.wait_job(&id, timeout).await?;
    let file_node = format!("{STATE_NODE}-file");
    let add_file = json!({"driver": "file", "filename": filename, "node-name": file_node});
    qmp.execute_timeout("blockdev-add", Some(add_file), timeout).await?;
    let id = job_id("create");
    let format =
        json!({"job-id": id, "options": {"driver": "qcow2", "file": file_node, "size": 16u64 << 20}});
    qmp.execute_timeout("blockdev-create", Some(format), timeout).await?;
    qmp.wait_job(&id, timeout).await?;
    let add = json!({"driver": "qcow2", "node-name": STATE_NODE, "file": file_node});
    qmp.execute_timeout("blockdev-add", Some(add), timeout).await?;
    Ok(())
}

async fn run_job(
    qmp: &Qmp,
    command: &str,
    tag: &str,
    devices: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let id = job_id(command);
    let mut arguments = json!({"job-id": id, "tag": tag, "devices": devices});
    if command != "snapshot-delete" {
        arguments["vmstate"] = json!(STATE_NODE);
    }
    qmp.execute_timeout(command, Some(arguments), timeout).await?;
    qmp.wait_job(&id, Duration::from_secs(600)).await?;
    Ok(())
}

/// Reverts the guest behind `qmp` (started with its state image) to snapshot `tag`.
pub(super) async fn load(qmp: &Qmp, tag: &str, devices: &[String], timeout: Duration) -> anyhow::Result<()> {
    run_job(qmp, "snapshot-load", tag, devices, timeout)
        .await
        .with_context(|| format!("cannot revert to snapshot '{tag}'"))
}

impl QemuDriver {
    /// Snapshot creation and deletion, on the running guest's QEMU or a helper's.
    pub(super) async fn snapshot_op(&self, domain: &Domain, op: &Op, change: &Change) -> Result<Outcome> {
        let devices = command::snapshot_devices(&domain.def)
            .map_err(|e| Error::OperationUnsupported(format!("{e:#}")))?;
        let image = self.snapshot_image(domain.uuid());
        let after = change.domain.as_ref().expect("a snapshot change keeps the domain");
        let failed = |error: anyhow::Error| {
            Error::OperationFailed(error.context(format!("domain '{}'", domain.name())))
        };
        match op {
            Op::SnapshotCreate(_, create_flags, _) => {
                let tag = after.moments.current_snapshot.clone().expect("a new snapshot is current");
                let take = |qmp: Qmp| {
                    let (image, devices, tag) = (image.clone(), devices.clone(), tag.clone());
                    async move {
                        ensure_state(&qmp, &image, self.monitor_timeout).await?;
                        run_job(&qmp, "snapshot-save", &tag, &devices, self.monitor_timeout).await
                    }
                };
                if domain.is_active() {
                    let guest = self.guest(domain)?;
                    take(guest.qmp.clone()).await.map_err(failed)?;
                    if create_flags & flags::SNAPSHOT_CREATE_HALT != 0 {
                        self.end_checked(&guest, false).await?;
                    }
                } else {
                    // No guest, no vmstate: each image gets an internal snapshot of its own.
                    let offline = |qmp: Qmp| {
                        let (image, devices, tag) = (image.clone(), devices.clone(), tag.clone());
                        async move {
                            ensure_state(&qmp, &image, self.monitor_timeout).await?;
                            for device in &devices {
                                let arguments = json!({"device": device, "name": tag});
                                qmp.execute_timeout(
                                    "blockdev-snapshot-internal-sync",
                                    Some(arguments),
                                    self.monitor_timeout,
                                )
                                .await?;
                            }
                            anyhow::Ok(())
                        }
                    };
                    self.with_helper(domain, offline).await.map_err(failed)?;
                }
            }
            Op::SnapshotDelete(..) => {
                let kept: Vec<&str> = after.moments.snapshots.iter().map(|s| s.name.as_str()).collect();
                let gone: Vec<String> = domain
                    .moments
                    .snapshots
                    .iter()
                    .map(|s| s.name.clone())
                    .filter(|name| !kept.contains(&name.as_str()))
                    .collect();
                if gone.is_empty() || !image.exists() {
                    return Ok(Outcome::default());
                }
                let delete = |qmp: Qmp| {
                    let (gone, devices) = (gone.clone(), devices.clone());
                    async move {
                        for tag in &gone {
                            run_job(&qmp, "snapshot-delete", tag, &devices, self.monitor_timeout).await?;
                        }
                        anyhow::Ok(())
                    }
                };
                match domain.is_active() {
                    true => delete(self.guest(domain)?.qmp.clone()).await.map_err(failed)?,
                    false => self.with_helper(domain, delete).await.map_err(failed)?,
                }
            }
            Op::SnapshotRevert(name, _) => return self.revert(domain, name, after, &devices).await,
            _ => {}
        }
        Ok(Outcome::default())
    }

    /// Reverts to snapshot `name`, leaving the domain as `after` says (running, paused or shut
    /// off). A running guest reverted to a running snapshot keeps its QEMU: `snapshot-load`.
    async fn revert(
        &self,
        domain: &Domain,
        name: &str,
        after: &Domain,
        devices: &[String],
    ) -> Result<Outcome> {
        let failed = |error: anyhow::Error| {
            Error::OperationFailed(error.context(format!("domain '{}'", domain.name())))
        };
        let writable_disks = devices.len() > 1;
        if !after.is_active() && writable_disks {
            // Differs from libvirt: it reverts a shut-off domain's disks with qemu-img, which
            // rvirt does not use.
            return Err(Error::OperationUnsupported(format!(
                "reverting domain '{}' to a shut-off snapshot would need its qcow2 disks reverted offline, which the qemu driver cannot do",
                domain.name()
            )));
        }
        match (domain.is_active(), after.is_active()) {
            (true, true) => {
                let guest = self.guest(domain)?;
                run_job(&guest.qmp, "snapshot-load", name, devices, self.monitor_timeout)
                    .await
                    .map_err(failed)?;
                // snapshot-load leaves the guest running as it was before the load.
                let command = if after.state == crate::domain::DomainState::Paused { "stop" } else { "cont" };
                self.qmp(&guest, command, None).await?;
                // Differs from libvirt: its QEMU driver keeps the id of a guest reverted in
                // place; rvirt follows its test driver (a revert is a new run, with a new id) so
                // both drivers agree. The same QEMU carries on under the new id.
                guest.id.store(after.id, Ordering::SeqCst);
                let record = super::Record {
                    id: after.id,
                    process: Some(guest.identity),
                    monitor: guest.qmp.path().to_owned(),
                };
                Ok(Outcome { runtime: Some(record.text().into()), state: None })
            }
            (false, true) => {
                let paused = after.state == crate::domain::DomainState::Paused;
                self.start(domain, after, Some(name), paused).await
            }
            (true, false) => {
                let guest = self.guest(domain)?;
                self.end_checked(&guest, false).await?;
                Ok(Outcome::default())
            }
            (false, false) => Ok(Outcome::default()),
        }
    }

    /// Runs `work` on a helper QEMU (no machine, paused) that opens the domain's snapshot images,
    /// then ends it.
    async fn with_helper<F, Fut>(&self, domain: &Domain, work: F) -> anyhow::Result<()>
    where
        F: FnOnce(Qmp) -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<()>>,
    {
        let uuid = domain.uuid();
        let dir = self.guest_dir(uuid);
        let image = self.snapshot_image(uuid);
        let mut args = command::helper_args(&domain.def, image.exists().then_some(&image))?;
        // As a guest's: its own folder on its command line, so `sweep` finds it after a crash.
        args.extend(["-pidfile".to_owned(), dir.join("qemu.pid").display().to_string()]);
        process::remove_dir(&dir);
        crate::folders::ensure_private_dir(&dir, "guest runtime folder")?;
        let monitor = dir.join("monitor.sock");
        let log = dir.join("qemu.log");
        let result = async {
            let identity = process::spawn(&self.binary, &args, &monitor, &log)?;
            let recorded = super::write_durably(
                &dir.join("identity"),
                &super::Record { id: -1, process: Some(identity), monitor: monitor.clone() }.text(),
            );
            let exit = match identity.watch().and_then(|exit| recorded.map(|()| exit)) {
                Ok(exit) => exit,
                Err(error) => {
                    super::kill_now(&identity, &uuid);
                    return Err(error);
                }
            };
            let worked = async {
                let (qmp, events) = Qmp::connect(&monitor, self.start_timeout).await?;
                // Nobody reads a helper's events: dropped, so the reader discards them instead of
                // filling a queue and stalling the replies behind it.
                drop(events);
                work(qmp.clone()).await?;
                let _ = qmp.execute_timeout("quit", None, self.monitor_timeout).await;
                anyhow::Ok(())
            }
            .await;
            if !exit.ended_within(Duration::from_secs(2)).await {
                identity.signal(rustix::process::Signal::KILL, &uuid);
                exit.ended_within(Duration::from_secs(5)).await;
            }
            worked.map_err(|error| {
                let tail = process::log_tail(&log, 5);
                if tail.is_empty() { error } else { error.context(format!("QEMU said: {tail}")) }
            })
        }
        .await;
        process::remove_dir(&dir);
        result
    }
}
