//! `cargo xtask bench --qemu [--quick] [--runs N] [--json FILE] [--no-libvirt]`: the qemu driver
//! measured on real guests, with libvirtd 9.0's own QEMU driver on the same guest side by side.
//!
//! rvirtd's side: the release rvirtd with `--driver qemu` (state and guest files on tmpfs),
//! driven by this (separate, release) process over its unix socket. libvirtd's side: libvirt's
//! QEMU driver embedded in a python3 process (`qemu:///embed?root=DIR`,
//! `xtask/libvirt_qemu_bench.py`), which runs the same operations in the same order. The guest
//! is the 512-byte boot sector (q35, 32 MiB, 1 vcpu, TCG); each side's QEMUs end with it, and any
//! still running under its folders afterwards is killed by pid.
//!
//! Every lifecycle operation runs `runs` times (20; `--quick` 3), each run on a fresh domain:
//! define; start until the call returns and until the guest prints BOOT on its serial file;
//! suspend; resume; ACPI shutdown until the listing says shut off (the guest booted first: a
//! button pressed before the boot sector armed it is lost); destroy; a `kill -9` of QEMU until
//! the listing says shut off; managed save; start from the image. Then snapshots on one running
//! guest: `runs` creates, `runs` reverts to the first (running, so in place). Then 30 guests
//! started one by one, the listing timed (`listings` calls: 200; `--quick` 20) at 1, 10 and 30
//! running, and the daemon's RSS with none, with 30 and with them gone again. Medians and p90s,
//! and the ratio libvirtd / rvirtd (above 1: rvirtd is faster).

use crate::bench::machine;
use anyhow::{Context, bail};
use rvirt::{Connection, DomainState, ListFlags, SnapshotRevertFlags, UndefineFlags};
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use rvirt_tests::qemu::{TestGuest, qemu_pids, qemu_pids_under};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) runs: Option<usize>,
    pub(crate) json: Option<String>,
    pub(crate) libvirt: bool,
}

/// The largest count of running guests, for the listing rows and the memory figure.
const MANY: usize = 30;

/// Each row: the key both sides use for it, and what it measures.
const OPERATIONS: &[(&str, &str)] = &[
    ("define", "define"),
    ("start", "start, until the call returns"),
    ("start_boot", "start, until the guest prints BOOT"),
    ("suspend", "suspend"),
    ("resume", "resume"),
    ("shutdown", "ACPI shutdown, until shut off"),
    ("destroy", "destroy"),
    ("kill", "kill -9 of QEMU, until shut off"),
    ("managed_save", "managed save"),
    ("restore", "start from the managed-save image"),
    ("snapshot_create", "snapshot create (running)"),
    ("snapshot_revert", "snapshot revert (running)"),
    ("list_1", "ListAllDomains, 1 guest running"),
    ("list_10", "ListAllDomains, 10 guests running"),
    ("list_30", "ListAllDomains, 30 guests running"),
];

/// One side's measurements.
#[derive(Debug, Default, Serialize)]
struct Side {
    /// Operation -> nanoseconds, in the order taken.
    samples: BTreeMap<String, Vec<u64>>,
    /// Operation -> why (some of) its runs could not be measured.
    errors: BTreeMap<String, String>,
    /// The daemon's RSS with no guest.
    rss_empty_bytes: Option<u64>,
    /// The daemon's RSS with `MANY` guests running.
    rss_full_bytes: Option<u64>,
    /// The daemon's RSS once those guests are destroyed and undefined again.
    rss_after_bytes: Option<u64>,
    /// The mean RSS of those guests' QEMUs.
    qemu_rss_bytes: Option<u64>,
    /// libvirtd's side only: the RSS of the bare python3 interpreter that embeds the driver.
    python_rss_bytes: Option<u64>,
    /// Warnings and errors the daemon logged while measured.
    logged: Vec<String>,
    /// Whether a revert of the running guest started a new QEMU (libvirtd's side only).
    revert_restarts_qemu: Option<bool>,
}

impl Side {
    fn sample(&mut self, op: &str, started: Instant) {
        self.samples.entry(op.to_owned()).or_default().push(started.elapsed().as_nanos() as u64);
    }

    fn failed(&mut self, op: &str, error: &anyhow::Error) {
        let text: String = format!("{error:#}").chars().take(200).collect();
        eprintln!("  rvirtd: {op} failed: {text}");
        self.errors.entry(op.to_owned()).or_insert(text);
    }
}

/// A median and a p90, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
struct Spread {
    samples: usize,
    median_ms: f64,
    p90_ms: f64,
}

fn spread(samples: &[u64]) -> Option<Spread> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1];
    let ms = |ns: u64| ns as f64 / 1e6;
    Some(Spread { samples: sorted.len(), median_ms: ms(at(0.5)), p90_ms: ms(at(0.9)) })
}

/// One row of the table.
#[derive(Debug, Serialize)]
struct Row {
    operation: String,
    key: String,
    rvirtd: Option<Spread>,
    libvirtd: Option<Spread>,
    /// libvirtd's median over rvirtd's.
    ratio: Option<f64>,
    rvirtd_error: Option<String>,
    libvirtd_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    runs: usize,
    listings: usize,
    rows: Vec<Row>,
    rvirtd: Side,
    /// libvirtd's side, when it ran.
    libvirtd: Option<Side>,
    /// Why libvirtd's side did not run.
    libvirtd_not_measured: Option<String>,
}

/// Runs the benchmark (rvirtd is built already, in release).
pub(crate) fn run_task(root: &Path, options: &Options) -> anyhow::Result<()> {
    rvirt_tests::qemu::require_qemu();
    let runs = options.runs.unwrap_or(if options.quick { 3 } else { 20 });
    let listings = if options.quick { 20 } else { 200 };
    anyhow::ensure!(runs > 0, "--runs must be at least 1");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(async {
        eprintln!(
            "bench --qemu: {runs} runs of each operation, {listings} listings at 1, 10 and {MANY} guests"
        );
        let rvirtd = rvirtd_side(runs, listings).await?;
        let libvirtd = match options.libvirt {
            true => libvirtd_side(root, runs, listings).await,
            false => Err("skipped (--no-libvirt)".to_owned()),
        };
        if let Err(why) = &libvirtd {
            eprintln!("  libvirtd: not measured: {why}");
        }
        anyhow::Ok(report(rvirtd, libvirtd, runs, listings))
    })?;
    print_report(&report);
    crate::bench::write_json(options.json.as_deref(), &report)
}

fn report(rvirtd: Side, libvirtd: Result<Side, String>, runs: usize, listings: usize) -> Report {
    let rows = OPERATIONS
        .iter()
        .map(|(key, operation)| {
            let ours = rvirtd.samples.get(*key).and_then(|s| spread(s));
            let theirs =
                libvirtd.as_ref().ok().and_then(|side| side.samples.get(*key)).and_then(|s| spread(s));
            Row {
                operation: (*operation).to_owned(),
                key: (*key).to_owned(),
                rvirtd: ours,
                libvirtd: theirs,
                ratio: ours.zip(theirs).map(|(ours, theirs)| theirs.median_ms / ours.median_ms),
                rvirtd_error: rvirtd.errors.get(*key).cloned(),
                libvirtd_error: libvirtd.as_ref().ok().and_then(|side| side.errors.get(*key).cloned()),
            }
        })
        .collect();
    let (libvirtd, libvirtd_not_measured) = match libvirtd {
        Ok(side) => (Some(side), None),
        Err(why) => (None, Some(why)),
    };
    Report { machine: machine(), runs, listings, rows, rvirtd, libvirtd, libvirtd_not_measured }
}

// --- rvirtd's side -------------------------------------------------------------------------

/// Folders on tmpfs when there is one.
fn scratch(prefix: &str) -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix(prefix).tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?)
}

async fn rvirtd_side(runs: usize, listings: usize) -> anyhow::Result<Side> {
    let dir = scratch("rq")?;
    let guests = dir.path().join("guests");
    std::fs::create_dir(&guests)?;
    let dirs = DaemonDirs::under(dir.path());
    let process = DaemonProcess::start_with(&dirs, &["--driver", "qemu", "--log-filter", "warn"])
        .await
        .map_err(|(status, logs)| anyhow::anyhow!("rvirtd failed ({status}): {}", logs.join("\n")))?;
    let conn = process.connect().await;
    let mut side = Side::default();
    conn.list_all_domains(ListFlags::empty()).await?;
    side.rss_empty_bytes = Some(rss_bytes(process.pid() as i32)?);
    let measured = async {
        for i in 0..runs {
            lifecycle(&mut side, &conn, &guests, i).await?;
            eprintln!("  rvirtd: lifecycle run {}/{runs}", i + 1);
        }
        let result = snapshots(&mut side, &conn, &guests, runs).await;
        if let Err(error) = result {
            side.failed("snapshot_create", &error);
        }
        eprintln!("  rvirtd: snapshots done");
        let result = many(&mut side, &conn, &guests, listings, process.pid() as i32).await;
        if let Err(error) = result {
            side.failed("list_1", &error);
        }
        anyhow::Ok(())
    }
    .await;
    side.logged =
        process.logs().into_iter().filter(|line| line.contains("WARN") || line.contains("ERROR")).collect();
    process.terminate().await;
    for pid in qemu_pids_under(dir.path()) {
        eprintln!("  rvirtd: killing QEMU pid {pid}, still running after the benchmark");
        kill(pid);
    }
    measured?;
    Ok(side)
}

/// A process's resident set, in bytes.
pub(crate) fn rss_bytes(pid: i32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS")?;
    Ok(kib * 1024)
}

/// SIGKILL, through kill(1) (xtask links no libc): only pids this benchmark found its own.
fn kill(pid: i32) {
    let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.to_string()).status();
}

/// A domain being measured: its guest's files, its name and uuid, its handle.
struct Measured {
    guest: TestGuest,
    id: rvirt::DomainId,
    domain: rvirt::Domain,
}

/// A number for `rvirt_tests::uuid_for` that no other run on this machine uses: `qemu_pids`
/// finds QEMUs by the uuid on their command line, and other QEMUs may be running.
fn fresh_number() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let salt =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let base = (std::process::id() ^ salt) << 12;
    base.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed))
}

async fn define(side: &mut Side, conn: &Connection, guests: &Path, name: &str) -> anyhow::Result<Measured> {
    let guest = TestGuest::new(guests, name);
    let uuid = rvirt_tests::uuid_for(fresh_number());
    let started = Instant::now();
    let change = conn.define_xml(&guest.xml_with_uuid(&uuid), 0).await?;
    side.sample("define", started);
    let id = change.domain.context("a define returns the domain")?.domain;
    let domain = conn.domain(id.clone());
    Ok(Measured { guest, id, domain })
}

/// Start until the call returns, and until the guest printed BOOT (its serial file emptied first).
async fn start_and_boot(side: &mut Side, measured: &Measured) -> anyhow::Result<()> {
    let _ = std::fs::remove_file(measured.guest.serial());
    let started = Instant::now();
    measured.domain.create().await?;
    side.sample("start", started);
    wait_boot(&measured.guest).await?;
    side.sample("start_boot", started);
    // The power button is armed a few instructions after BOOT; leave the guest that long.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}

async fn wait_boot(guest: &TestGuest) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !guest.booted() {
        if Instant::now() > deadline {
            bail!("guest {} never printed BOOT", guest.name);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Polls the listing until `domain` is shut off.
async fn wait_shutoff(conn: &Connection, domain: &rvirt::DomainId) -> anyhow::Result<()> {
    let uuid = domain.uuid;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listing = conn.list_all_domains(ListFlags::empty()).await?;
        if listing.domains.iter().any(|d| d.domain.uuid == uuid && d.state == DomainState::Shutoff) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("domain {uuid} not shut off within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn is_active(measured: &Measured) -> anyhow::Result<bool> {
    Ok(measured.domain.is_active().await?)
}

/// One run of every lifecycle operation on a fresh domain (xtask/libvirt_qemu_bench.py's
/// `lifecycle` does the same on libvirt's side).
async fn lifecycle(side: &mut Side, conn: &Connection, guests: &Path, i: usize) -> anyhow::Result<()> {
    let measured = define(side, conn, guests, &format!("life-{i:03}")).await?;
    let domain = &measured.domain;
    let result = async {
        start_and_boot(side, &measured).await?;
        let started = Instant::now();
        domain.suspend().await?;
        side.sample("suspend", started);
        let started = Instant::now();
        domain.resume().await?;
        side.sample("resume", started);
        anyhow::Ok(())
    }
    .await;
    after(side, "suspend", &measured, result).await?;

    let result = async {
        if !is_active(&measured).await? {
            start_and_boot(side, &measured).await?;
        }
        let started = Instant::now();
        domain.shutdown().await?;
        wait_shutoff(conn, &measured.id).await?;
        side.sample("shutdown", started);
        anyhow::Ok(())
    }
    .await;
    after(side, "shutdown", &measured, result).await?;

    let result = async {
        start_and_boot(side, &measured).await?;
        let started = Instant::now();
        domain.destroy().await?;
        side.sample("destroy", started);
        anyhow::Ok(())
    }
    .await;
    after(side, "destroy", &measured, result).await?;

    let result = async {
        start_and_boot(side, &measured).await?;
        let pids = qemu_pids(&measured.id.uuid);
        let [pid] = pids[..] else { bail!("expected one QEMU for the domain, found {pids:?}") };
        kill(pid);
        // From kill(1)'s exit: the signal has been sent.
        let started = Instant::now();
        wait_shutoff(conn, &measured.id).await?;
        side.sample("kill", started);
        anyhow::Ok(())
    }
    .await;
    after(side, "kill", &measured, result).await?;

    let result = async {
        start_and_boot(side, &measured).await?;
        let started = Instant::now();
        domain.managed_save().await?;
        side.sample("managed_save", started);
        let started = Instant::now();
        let change = domain.create().await?;
        side.sample("restore", started);
        let state = change.domain.map(|d| d.state);
        anyhow::ensure!(state == Some(DomainState::Running), "restored, the domain is {state:?}");
        domain.destroy().await?;
        anyhow::Ok(())
    }
    .await;
    after(side, "managed_save", &measured, result).await?;

    if domain.has_managed_save_image().await? {
        domain.managed_save_remove().await?;
    }
    domain.undefine(UndefineFlags::empty()).await?;
    Ok(())
}

/// Notes a failed operation and leaves the domain shut off for the next one.
async fn after(
    side: &mut Side,
    op: &str,
    measured: &Measured,
    result: anyhow::Result<()>,
) -> anyhow::Result<()> {
    if let Err(error) = result {
        side.failed(op, &error);
    }
    if is_active(measured).await? {
        measured.domain.destroy().await?;
    }
    Ok(())
}

async fn snapshots(side: &mut Side, conn: &Connection, guests: &Path, runs: usize) -> anyhow::Result<()> {
    let mut scratch = Side::default();
    let measured = define(&mut scratch, conn, guests, "snap").await?;
    let domain = &measured.domain;
    let result = async {
        start_and_boot(&mut scratch, &measured).await?;
        for i in 0..runs {
            let xml = format!("<domainsnapshot><name>s{i}</name></domainsnapshot>");
            let started = Instant::now();
            domain.snapshot_create_xml(&xml, 0).await?;
            side.sample("snapshot_create", started);
        }
        let pids = qemu_pids(&measured.id.uuid);
        for _ in 0..runs {
            let started = Instant::now();
            let change = domain.revert_to_snapshot("s0", SnapshotRevertFlags::empty()).await?;
            side.sample("snapshot_revert", started);
            let state = change.domain.map(|d| d.state);
            anyhow::ensure!(state == Some(DomainState::Running), "reverted, the domain is {state:?}");
        }
        anyhow::ensure!(qemu_pids(&measured.id.uuid) == pids, "a revert in place restarted QEMU");
        anyhow::Ok(())
    }
    .await;
    if is_active(&measured).await? {
        domain.destroy().await?;
    }
    domain.undefine(UndefineFlags::SNAPSHOTS_METADATA).await?;
    result
}

/// `MANY` guests started one by one; the listing timed at 1, 10 and `MANY`; memory at `MANY`.
async fn many(
    side: &mut Side,
    conn: &Connection,
    guests: &Path,
    listings: usize,
    daemon: i32,
) -> anyhow::Result<()> {
    let mut started_guests = Vec::new();
    let mut scratch = Side::default();
    let result = async {
        for i in 0..MANY {
            let measured = define(&mut scratch, conn, guests, &format!("many-{i:03}")).await?;
            measured.domain.create().await?;
            started_guests.push(measured);
            if [1, 10, MANY].contains(&(i + 1)) {
                for measured in &started_guests {
                    wait_boot(&measured.guest).await?;
                }
                let op = format!("list_{}", i + 1);
                conn.list_all_domains(ListFlags::empty()).await?;
                for _ in 0..listings {
                    let started = Instant::now();
                    let listing = conn.list_all_domains(ListFlags::empty()).await?;
                    side.sample(&op, started);
                    anyhow::ensure!(listing.domains.len() == i + 1, "listed {}", listing.domains.len());
                }
                eprintln!("  rvirtd: {} guests running", i + 1);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        side.rss_full_bytes = Some(rss_bytes(daemon)?);
        let mut total = 0;
        for measured in &started_guests {
            let pids = qemu_pids(&measured.id.uuid);
            let [pid] = pids[..] else {
                bail!("expected one QEMU for {}, found {pids:?}", measured.guest.name)
            };
            total += rss_bytes(pid)?;
        }
        side.qemu_rss_bytes = Some(total / MANY as u64);
        anyhow::Ok(())
    }
    .await;
    for measured in &started_guests {
        if is_active(measured).await? {
            measured.domain.destroy().await?;
        }
        measured.domain.undefine(UndefineFlags::empty()).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    side.rss_after_bytes = Some(rss_bytes(daemon)?);
    result
}

// --- libvirtd's side -----------------------------------------------------------------------

/// Runs `xtask/libvirt_qemu_bench.py`; `Err` says why libvirtd could not be measured.
async fn libvirtd_side(root: &Path, runs: usize, listings: usize) -> Result<Side, String> {
    let python = Path::new("/usr/bin/python3");
    if !python.exists() || !Path::new("/usr/lib/python3/dist-packages/libvirt.py").exists() {
        return Err("python3-libvirt is not installed (Debian python3-libvirt)".into());
    }
    let driver = ["/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so"];
    if !driver.iter().any(|path| Path::new(path).exists()) {
        return Err("libvirt's QEMU driver is not installed (Debian libvirt-daemon-driver-qemu)".into());
    }
    let text = |error: std::io::Error| error.to_string();
    let embed = scratch("lq").map_err(|e| e.to_string())?;
    let work = scratch("lw").map_err(|e| e.to_string())?;
    rvirtd::driver::qemu::guest_image::write_boot_image(&work.path().join("boot.img")).map_err(text)?;
    let script = root.join("xtask/libvirt_qemu_bench.py");
    let mut args: Vec<String> = vec![
        script.display().to_string(),
        embed.path().join("root").display().to_string(),
        work.path().display().to_string(),
        runs.to_string(),
        listings.to_string(),
        MANY.to_string(),
    ];
    let mut command = tokio::process::Command::new(python);
    if let Some((passwd, group)) = qemu_user(embed.path())? {
        // The driver refuses to start unless Debian's QEMU user exists, before it reads
        // qemu.conf (which says root): show it one in a private mount namespace, never in the
        // machine's own /etc.
        command = tokio::process::Command::new("unshare");
        let mount =
            r#"mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && shift 2 && exec "$@""#;
        let mut wrapped = vec!["--mount".to_owned(), "--propagation".into(), "private".into(), "sh".into()];
        wrapped.extend(["-c".into(), mount.into(), "sh".into()]);
        wrapped.extend([
            passwd.display().to_string(),
            group.display().to_string(),
            python.display().to_string(),
        ]);
        wrapped.append(&mut args);
        args = wrapped;
    }
    command.args(&args).stdin(std::process::Stdio::null());
    command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let stderr = child.stderr.take().expect("piped");
    let shown = tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("  libvirtd:") {
                eprintln!("{line}");
            } else if !line.contains(" info : ") {
                kept.push(line);
            }
        }
        kept
    });
    let finished = tokio::time::timeout(Duration::from_secs(1800), child.wait_with_output()).await;
    let others = shown.await.unwrap_or_default();
    // Whatever happened, no QEMU of libvirt's side outlives it.
    for dir in [embed.path(), work.path()] {
        for pid in qemu_pids_under(dir) {
            eprintln!("  libvirtd: killing QEMU pid {pid}, still running after the benchmark");
            kill(pid);
        }
    }
    let output = match finished {
        Ok(output) => output.map_err(text)?,
        Err(_) => return Err("libvirt_qemu_bench.py did not finish within 30 minutes".into()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(line) = stdout.lines().last().filter(|_| output.status.success()) else {
        let why = others.iter().rev().find(|l| !l.trim().is_empty()).cloned().unwrap_or_default();
        return Err(format!("libvirt_qemu_bench.py failed ({}): {why}", output.status));
    };
    let found: Found = serde_json::from_str(line).map_err(|e| format!("unexpected output ({e}): {line}"))?;
    Ok(Side {
        samples: found.samples,
        errors: found.errors,
        rss_empty_bytes: found.rss_bytes.get("0").copied().flatten(),
        rss_full_bytes: found.rss_bytes.get(&MANY.to_string()).copied().flatten(),
        rss_after_bytes: found.rss_bytes.get("after").copied().flatten(),
        qemu_rss_bytes: found.qemu_rss_bytes,
        python_rss_bytes: found.rss_bytes.get("python").copied().flatten(),
        // Its own notices (a security driver of "none", a guest run as root) are what this
        // set-up asks for; anything else is kept.
        logged: others
            .into_iter()
            .filter(|l| l.contains(" error : ") || l.contains(" warning : "))
            .filter(|l| !l.contains("is tainted: high-privileges") && !l.contains("virSecurityManagerNew"))
            .collect(),
        revert_restarts_qemu: found.facts.get("revert_restarts_qemu").copied(),
    })
}

/// What libvirt_qemu_bench.py prints.
#[derive(Debug, serde::Deserialize)]
struct Found {
    samples: BTreeMap<String, Vec<u64>>,
    errors: BTreeMap<String, String>,
    rss_bytes: BTreeMap<String, Option<u64>>,
    qemu_rss_bytes: Option<u64>,
    facts: BTreeMap<String, bool>,
}

/// When Debian's QEMU user `libvirt-qemu` is missing: copies of /etc/passwd and /etc/group
/// with it (and its group) added, to bind-mount in a private mount namespace. `Err` when that
/// is needed and impossible (not root, no unshare).
fn qemu_user(dir: &Path) -> Result<Option<(PathBuf, PathBuf)>, String> {
    let passwd = std::fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let group = std::fs::read_to_string("/etc/group").map_err(|e| e.to_string())?;
    let has = |table: &str| table.lines().any(|line| line.starts_with("libvirt-qemu:"));
    if has(&passwd) && has(&group) {
        return Ok(None);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1))
        == Some("0");
    let unshare =
        std::process::Command::new("unshare").arg("--version").output().is_ok_and(|o| o.status.success());
    if !root || !unshare {
        return Err("the user libvirt-qemu does not exist, and showing the embedded driver one in a private mount namespace needs root and unshare(1)".into());
    }
    let add = |table: &str, entry: &str| match has(table) {
        true => table.to_owned(),
        false => format!("{}\n{entry}\n", table.trim_end()),
    };
    let (passwd_copy, group_copy) = (dir.join("passwd"), dir.join("group"));
    std::fs::write(
        &passwd_copy,
        add(&passwd, "libvirt-qemu:x:64055:64055:Libvirt Qemu:/nonexistent:/usr/sbin/nologin"),
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(&group_copy, add(&group, "libvirt-qemu:x:64055:")).map_err(|e| e.to_string())?;
    Ok(Some((passwd_copy, group_copy)))
}

// --- the table -----------------------------------------------------------------------------

/// Milliseconds with three significant digits or so.
fn ms(value: f64) -> String {
    match value {
        v if v < 1.0 => format!("{v:.3}"),
        v if v < 10.0 => format!("{v:.2}"),
        v if v < 100.0 => format!("{v:.1}"),
        v => format!("{v:.0}"),
    }
}

fn cell(spread: Option<Spread>, error: Option<&String>) -> String {
    match (spread, error) {
        (Some(s), None) => format!("{} ms ({})", ms(s.median_ms), ms(s.p90_ms)),
        (Some(s), Some(_)) => format!("{} ms ({}) [some failed]", ms(s.median_ms), ms(s.p90_ms)),
        (None, Some(e)) => format!("failed: {}", e.chars().take(48).collect::<String>()),
        (None, None) => "-".to_owned(),
    }
}

fn ratio(value: f64) -> String {
    match value {
        v if v < 0.1 => format!("{v:.3}x"),
        v if v < 10.0 => format!("{v:.1}x"),
        v => format!("{v:.0}x"),
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("-".to_owned(), |b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)))
}

fn print_report(report: &Report) {
    println!(
        "\nrvirt qemu driver benchmarks on {}; release rvirtd --driver qemu, state and guests on tmpfs, client in a separate process",
        report.machine
    );
    println!(
        "boot-sector guest (q35, 32 MiB, 1 vcpu, TCG); {} runs of each operation, {} listings at each count; median (p90)",
        report.runs, report.listings
    );
    let widths = [38, 24, 26, 8];
    let line = |cells: [&str; 4]| {
        println!(
            "{:<w0$} | {:>w1$} | {:>w2$} | {:>w3$}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    println!();
    line(["operation", "rvirtd median (p90)", "libvirtd median (p90)", "ratio"]);
    println!("{}", widths.map(|w| "-".repeat(w)).join("-|-"));
    for row in &report.rows {
        let ratio = row.ratio.map_or("-".to_owned(), ratio);
        line([
            &row.operation,
            &cell(row.rvirtd, row.rvirtd_error.as_ref()),
            &cell(row.libvirtd, row.libvirtd_error.as_ref()),
            &ratio,
        ]);
    }
    let theirs = report.libvirtd.as_ref();
    let memory = |label: &str, ours: Option<u64>, theirs: Option<u64>| {
        let ratio = ours.zip(theirs).map_or("-".to_owned(), |(o, t)| ratio(t as f64 / o as f64));
        line([label, &mib(ours), &mib(theirs), &ratio]);
    };
    memory("daemon RSS, no guest", report.rvirtd.rss_empty_bytes, theirs.and_then(|s| s.rss_empty_bytes));
    memory(
        &format!("daemon RSS, {MANY} guests running"),
        report.rvirtd.rss_full_bytes,
        theirs.and_then(|s| s.rss_full_bytes),
    );
    memory(
        &format!("daemon RSS, the {MANY} destroyed again"),
        report.rvirtd.rss_after_bytes,
        theirs.and_then(|s| s.rss_after_bytes),
    );
    memory(
        &format!("QEMU RSS, mean of {MANY}"),
        report.rvirtd.qemu_rss_bytes,
        theirs.and_then(|s| s.qemu_rss_bytes),
    );
    println!();
    match (&report.libvirtd, &report.libvirtd_not_measured) {
        (Some(side), _) => println!(
            "libvirtd: libvirt {}'s QEMU driver embedded in python3 (qemu:///embed), so its listing crosses no socket \
             (rvirtd's crosses a unix socket) and its RSS is python3's ({} before libvirt was loaded). \
             Its snapshot runs use a qcow2 overlay of the boot image{}. rvirtd reverts in place (same QEMU, checked).",
            libvirt_version(),
            mib(side.python_rss_bytes),
            match side.revert_restarts_qemu {
                Some(true) => "; each revert of the running guest started a new QEMU",
                Some(false) => "; its reverts kept the guest's QEMU",
                None => "",
            }
        ),
        (None, why) => println!("libvirtd: not measured: {}", why.as_deref().unwrap_or("?")),
    }
    println!(
        "ratio: libvirtd's median / rvirtd's (above 1: rvirtd is faster). kill -9: from the signal until the listing \
         (libvirtd: virDomainGetState) says shut off; shutdown: from the call, the same way."
    );
    for (who, logged) in [
        ("rvirtd", &report.rvirtd.logged),
        ("libvirtd", &theirs.map(|s| s.logged.clone()).unwrap_or_default()),
    ] {
        if !logged.is_empty() {
            let mut distinct: BTreeMap<String, usize> = BTreeMap::new();
            for line in logged {
                *distinct.entry(strip_time(line)).or_default() += 1;
            }
            println!("{who} logged {} warnings or errors, {} distinct:", logged.len(), distinct.len());
            for (text, count) in distinct.iter().take(5) {
                println!("  {count} x {}", text.chars().take(160).collect::<String>());
            }
        }
    }
}

/// A log line without its timestamp (and libvirt's thread id), so repeats of one message fold
/// together: rvirtd's `2026-...Z  WARN target: text`, libvirt's `2026-... 01:02:03.456+0000:
/// 1234: warning : function:line : text`.
fn strip_time(line: &str) -> String {
    let text = line.trim();
    if let Some((_, rest)) = text.split_once(": warning : ").or_else(|| text.split_once(": error : ")) {
        return rest.trim().to_owned();
    }
    match text.split_once(' ') {
        Some((first, rest)) if first.starts_with("20") => rest.trim().to_owned(),
        _ => text.to_owned(),
    }
}

fn libvirt_version() -> String {
    std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import libvirt; v = libvirt.getVersion(); print(f'{v // 1000000}.{v // 1000 % 1000}')"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("9.0".to_owned(), |o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}
