//! Managed save: the guest's state migrated into a file behind a 4 KiB header (libvirt's
//! layout: the daemon's header, then QEMU's migration stream), and restored from it by an
//! incoming migration from the same file descriptor, already at offset 4096. QEMU 7.2 has no
//! `file:` migration URI; an fd passed with `getfd` works both ways.

use super::qmp::Qmp;
use anyhow::{Context, bail};
use serde_json::json;
use std::io::{Read, Seek, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

const MAGIC: &str = "rvirt-managed-save";
const HEADER_LEN: usize = 4096;

#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    magic: String,
    version: u32,
    /// The guest ran (rather than was paused) when saved: it runs again when restored.
    was_running: bool,
}

/// Saves the guest behind `qmp` to `image`, whole or not at all; the guest is left paused (the
/// caller ends it). A failure resumes a guest that was running.
pub(super) async fn save(qmp: &Qmp, image: &Path, running: bool, timeout: Duration) -> anyhow::Result<()> {
    qmp.execute_timeout("stop", None, timeout).await?;
    let saved = write_image(qmp, image, running, timeout).await;
    if saved.is_err() && running {
        let _ = qmp.execute_timeout("cont", None, timeout).await;
    }
    saved
}

async fn write_image(qmp: &Qmp, image: &Path, running: bool, timeout: Duration) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = image.with_extension("save.partial");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    let written = async {
        let header = serde_json::to_vec(&Header { magic: MAGIC.into(), version: 1, was_running: running })?;
        let mut block = vec![0u8; HEADER_LEN];
        block[..header.len()].copy_from_slice(&header);
        file.write_all(&block)?;
        let capabilities = json!({"capabilities": [{"capability": "events", "state": true}]});
        qmp.execute_timeout("migrate-set-capabilities", Some(capabilities), timeout).await?;
        // QEMU's default throttle is 128 MiB/s; a local file takes what the disk gives.
        let parameters = json!({"max-bandwidth": 8u64 << 30});
        qmp.execute_timeout("migrate-set-parameters", Some(parameters), timeout).await?;
        qmp.send_fd("rvirt-save", file.as_fd()).await?;
        qmp.execute_timeout("migrate", Some(json!({"uri": "fd:rvirt-save"})), timeout).await?;
        wait_migration(qmp, Duration::from_secs(600)).await?;
        file.sync_all().context("flushing the image")?;
        std::fs::rename(&temp, image).context("placing the image")?;
        std::fs::File::open(image.parent().context("the image has a folder")?)?.sync_all()?;
        anyhow::Ok(())
    };
    let result = written.await;
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Polls `query-migrate` until the migration completed; its error if it failed.
async fn wait_migration(qmp: &Qmp, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = qmp.execute("query-migrate", None).await?;
        match status["status"].as_str().unwrap_or("") {
            "completed" => return Ok(()),
            "failed" | "cancelled" => {
                bail!("migration failed: {}", status["error-desc"].as_str().unwrap_or("no reason given"))
            }
            _ if Instant::now() > deadline => {
                bail!("migration did not complete within {} s", timeout.as_secs())
            }
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

/// Loads `image` into the QEMU behind `qmp`, started with `-incoming defer` and the same devices.
/// Returns whether the guest ran when it was saved.
pub(super) async fn restore(qmp: &Qmp, image: &Path, timeout: Duration) -> anyhow::Result<bool> {
    let mut file = std::fs::File::open(image).with_context(|| format!("cannot open {}", image.display()))?;
    let mut block = vec![0u8; HEADER_LEN];
    file.read_exact(&mut block).context("the image is shorter than its header")?;
    let end = block.iter().position(|b| *b == 0).unwrap_or(HEADER_LEN);
    let header: Header =
        serde_json::from_slice(&block[..end]).context("the image's header is not rvirt's")?;
    if header.magic != MAGIC || header.version != 1 {
        bail!("the image's header is not an rvirt managed-save header of version 1");
    }
    debug_assert_eq!(file.stream_position()?, HEADER_LEN as u64);
    qmp.send_fd("rvirt-restore", file.as_fd()).await?;
    qmp.execute_timeout("migrate-incoming", Some(json!({"uri": "fd:rvirt-restore"})), timeout).await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = qmp.execute("query-status", None).await.context("QEMU ended while restoring")?;
        match status["status"].as_str().unwrap_or("") {
            "inmigrate" if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(2)).await,
            "inmigrate" => bail!("the restore did not complete within 600 s"),
            _ => break,
        }
    }
    let migration = qmp.execute("query-migrate", None).await?;
    if migration["status"] == "failed" {
        bail!("migration failed: {}", migration["error-desc"].as_str().unwrap_or("no reason given"));
    }
    Ok(header.was_running)
}
