//! `cargo xtask bench [--quick] [--watch] [--sizes 100,1000,...] [--json FILE] [--no-libvirt]`: end-to-end
//! benchmarks of a release rvirtd, measured by this (separate, release) process over its unix
//! socket and over TCP, with libvirtd's test driver side by side when it is installed.
//! `--qemu [--runs N]` measures the qemu driver on real guests instead (`bench_qemu`); without
//! it, `--quick` (N = 100, 1,000 and 10,000, fewer rounds) is the listing benchmark CI runs,
//! followed by the watch section
//! (`bench_watch`: WatchDomainEvents beside libvirt's lifecycle events); `--watch` runs only that.
//!
//! Measured, for each N: ListAllDomains latency (no filter and a selective one) over unix and TCP,
//! the legacy enumeration and its ratio, libvirtd's listAllDomains and its ratio, daemon memory
//! per domain; at N = 10,000: listing throughput with 1, 4 and 16 clients, and mutation latency
//! while 4 clients list in a loop; define throughput on tmpfs and on disk.
//!
//! And, for each N up to 16,384 (libvirt's protocol refuses longer lists), libvirt's own clients
//! against rvirtd's native socket (libvirt's RPC protocol) and against libvirtd, both holding the
//! same N domains: python3-libvirt's `conn.listAllDomains(0)` as a Python user sees it, virDomain
//! objects built (`xtask/libvirt_client_bench.py`), and the wall time of a `virsh -c URI list
//! --all` process (start-up, handshake, CONNECT_LIST_ALL_DOMAINS, one DOMAIN_GET_STATE per domain).
//! Each missing piece (libvirt-daemon, python3-libvirt, libvirt-clients) is said and its columns
//! skipped. The target: at least 5x libvirtd's figure at N = 10,000, through the same client; the
//! Python client's own CPU per call is measured too, which bounds what any daemon could reach.
//!
//! State lives on tmpfs (/dev/shm) unless said otherwise, so the figures are the daemon's, not
//! the disk's.

use anyhow::{Context, bail};
use rvirt::{Connection, ListFlags};
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// What to run.
#[derive(Debug, Clone)]
struct Options {
    sizes: Vec<u32>,
    quick: bool,
    json: Option<String>,
    libvirt: bool,
}

/// Latency figures, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Stats {
    pub(crate) samples: usize,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
}

/// Everything measured at one N.
#[derive(Debug, Default, Serialize)]
struct SizeReport {
    domains: u32,
    unix_all: Stats,
    unix_selective: Stats,
    tcp_all: Stats,
    tcp_selective: Stats,
    selective_matches: usize,
    legacy: Option<Stats>,
    libvirtd: Option<Result<Stats, String>>,
    /// libvirt's own clients against rvirtd's native socket and against libvirtd.
    clients: Option<ClientReport>,
    rss_per_domain_bytes: f64,
    populate_seconds: f64,
}

/// libvirt's own clients at one N; each figure `None` when not measured (a package missing,
/// `--no-libvirt`), `Err` with the reason when the measurement failed.
#[derive(Debug, Default, Serialize)]
struct ClientReport {
    /// python3-libvirt `conn.listAllDomains(0)` against rvirtd's native socket.
    rvirtd_python: Option<Result<Stats, String>>,
    /// The same against libvirtd.
    libvirtd_python: Option<Result<Stats, String>>,
    /// libvirtd p50 / rvirtd p50 of the python listing.
    python_ratio: Option<f64>,
    /// The Python client's own CPU per listing against rvirtd (its process's CPU time across the
    /// call): what the user waits for even if a daemon took no time at all.
    rvirtd_python_client_cpu: Option<Stats>,
    /// libvirtd p50 / that CPU's p50: the highest ratio any daemon could reach through this client.
    python_ceiling: Option<f64>,
    /// Wall time of a `virsh -c URI list --all` process against rvirtd's native socket.
    rvirtd_virsh: Option<Result<Stats, String>>,
    /// The same against libvirtd.
    libvirtd_virsh: Option<Result<Stats, String>>,
    /// libvirtd p50 / rvirtd p50 of the virsh run.
    virsh_ratio: Option<f64>,
}

/// Figures at N = 10,000 (or the largest quick size).
#[derive(Debug, Default, Serialize)]
struct LoadReport {
    domains: u32,
    throughput_per_second: Vec<(u32, f64)>,
    mutation_idle: Stats,
    mutation_while_listing: Stats,
    listings_during_mutations: u64,
}

/// Define throughput.
#[derive(Debug, Default, Serialize)]
struct DefineReport {
    tmpfs_sequential_per_second: f64,
    tmpfs_concurrent8_per_second: f64,
    disk_sequential_per_second: f64,
    disk_concurrent8_per_second: f64,
}

#[derive(Debug, Default, Serialize)]
struct Report {
    machine: String,
    sizes: Vec<SizeReport>,
    load: Option<LoadReport>,
    define: Option<DefineReport>,
    watch: Option<crate::bench_watch::WatchReport>,
}

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(root: &Path, args: &[String]) -> anyhow::Result<()> {
    // The watch section's stalled watcher: this binary re-run as a child process it can SIGSTOP.
    if let [flag, uri] = args
        && flag == "--stalled-watcher-child"
    {
        return crate::bench_watch::stalled_child(uri);
    }
    if let Some(result) = crate::rerun_in_release("bench", args) {
        return result;
    }
    let mut options =
        Options { sizes: vec![100, 1_000, 10_000, 100_000], quick: false, json: None, libvirt: true };
    let mut sizes = None;
    let (mut qemu, mut runs, mut watch_only) = (false, None, false);
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--quick" => options.quick = true,
            "--qemu" => qemu = true,
            "--watch" => watch_only = true,
            "--runs" => runs = Some(args.next().context("--runs needs a number")?.parse()?),
            "--sizes" => {
                let list = args.next().context("--sizes needs a list, e.g. 100,1000")?;
                sizes = Some(list.split(',').map(str::parse).collect::<Result<_, _>>()?);
            }
            "--json" => options.json = Some(args.next().context("--json needs a file")?.clone()),
            "--no-libvirt" => options.libvirt = false,
            other => bail!("unknown option {other}; see the module comment of xtask/src/bench.rs"),
        }
    }
    if qemu && watch_only {
        bail!("--watch and --qemu are separate benchmarks; run one at a time");
    }
    if qemu {
        if sizes.is_some() {
            bail!("--sizes is the listing benchmark's; --qemu measures 1, 10 and 30 guests");
        }
        crate::build_rvirtd()?;
        let Options { quick, json, libvirt, .. } = options;
        return crate::bench_qemu::run_task(root, &crate::bench_qemu::Options { quick, runs, json, libvirt });
    }
    if runs.is_some() {
        bail!("--runs applies to --qemu");
    }
    let watch_options = crate::bench_watch::Options { quick: options.quick, libvirt: options.libvirt };
    if watch_only {
        if sizes.is_some() {
            bail!("--sizes is the listing benchmark's; --watch runs only the watch section");
        }
        crate::build_rvirtd()?;
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let watch = runtime.block_on(crate::bench_watch::run(root, &watch_options))?;
        crate::bench_watch::print_report(&watch);
        let report = Report { machine: machine(), watch: Some(watch), ..Report::default() };
        return write_json(options.json.as_deref(), &report);
    }
    // Quick: 10,000 too (about 25 s more), the size the client comparison's target is set at.
    options.sizes = sizes.unwrap_or(if options.quick { vec![100, 1_000, 10_000] } else { options.sizes });
    crate::build_rvirtd()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut report = runtime.block_on(bench(root, &options))?;
    report.watch = Some(runtime.block_on(crate::bench_watch::run(root, &watch_options))?);
    print_report(&report);
    if let Some(watch) = &report.watch {
        crate::bench_watch::print_report(watch);
    }
    write_json(options.json.as_deref(), &report)
}

/// Writes `report` as JSON to `path`, when one was asked for.
pub(crate) fn write_json(path: Option<&str>, report: &impl serde::Serialize) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("writing {path}"))?;
        println!("\nJSON written to {path}");
    }
    Ok(())
}

async fn bench(root: &Path, options: &Options) -> anyhow::Result<Report> {
    let mut report = Report { machine: machine(), ..Report::default() };
    let tools = ClientTools::find();
    let libvirtd = if options.libvirt { Libvirtd::start(root).await? } else { None };
    if options.libvirt && libvirtd.is_none() {
        if !Path::new("/usr/sbin/libvirtd").exists() {
            println!("libvirtd is not installed (Debian libvirt-daemon): no side-by-side figures");
        } else if !tools.python {
            println!("libvirtd cannot be populated without python3-libvirt: no side-by-side figures");
        }
    }
    let load_size = if options.quick { 1_000 } else { 10_000 };
    for &n in &options.sizes {
        let daemon = Daemon::start().await?;
        let rss_empty = daemon.rss_bytes()?;
        let started = Instant::now();
        populate(&daemon.unix, n).await?;
        let populate_seconds = started.elapsed().as_secs_f64();
        let rss_full = daemon.rss_bytes()?;
        let iterations = iterations_for(n, options.quick);
        let selective = ListFlags::PAUSED;
        let selective_matches = daemon.unix.list_all_domains(selective).await?.domains.len();
        let mut size = SizeReport {
            domains: n,
            unix_all: listing_latency(&daemon.unix, ListFlags::empty(), iterations).await?,
            unix_selective: listing_latency(&daemon.unix, selective, iterations).await?,
            tcp_all: listing_latency(&daemon.tcp, ListFlags::empty(), iterations).await?,
            tcp_selective: listing_latency(&daemon.tcp, selective, iterations).await?,
            selective_matches,
            rss_per_domain_bytes: (rss_full.saturating_sub(rss_empty)) as f64 / f64::from(n),
            populate_seconds,
            ..SizeReport::default()
        };
        let legacy_runs = match n {
            0..=1_000 => 20,
            1_001..=10_000 => 5,
            _ => 2,
        };
        size.legacy = Some(legacy_latency(&daemon.unix, if options.quick { 3 } else { legacy_runs }).await?);
        // Keeps libvirtd's test driver state (populated by list_latency) for the clients below.
        let mut holder = None;
        if let Some(libvirtd) = &libvirtd {
            if tools.python && n <= LIBVIRT_LIST_MAX {
                holder = Some(libvirtd.hold(root).await?);
            }
            size.libvirtd = Some(libvirtd.list_latency(n, iterations).await);
        }
        if n <= LIBVIRT_LIST_MAX {
            // libvirtd holds the same N domains now, unless its populating failed.
            let libvirtd = libvirtd.as_ref().map(|l| match &size.libvirtd {
                Some(Err(e)) => Err(format!("libvirtd not populated: {e}")),
                _ => Ok(l),
            });
            size.clients = Some(clients(root, &tools, &daemon, libvirtd, n, options.quick).await);
        }
        if let Some(mut holder) = holder {
            drop(holder.stdin.take());
            let _ = holder.wait().await;
        }
        if n == load_size {
            report.load = Some(load(&daemon, n, options.quick).await?);
        }
        print_size(&size);
        report.sizes.push(size);
        daemon.process.terminate().await;
    }
    report.define = Some(define_throughput(options.quick).await?);
    if let Some(libvirtd) = libvirtd {
        libvirtd.stop();
    }
    Ok(report)
}

/// A release rvirtd on tmpfs, with a unix and a TCP connection to it.
struct Daemon {
    process: DaemonProcess,
    unix: Connection,
    tcp: Connection,
    /// The URI libvirt's clients open: rvirtd's native socket (its default path, `libvirt-sock`
    /// beside the gRPC socket).
    native_uri: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start() -> anyhow::Result<Self> {
        Self::start_in(Path::new("/dev/shm")).await
    }

    async fn start_in(parent: &Path) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir_in(parent).or_else(|_| tempfile::tempdir())?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let listen = format!("127.0.0.1:{port}");
        let dirs = DaemonDirs::under(dir.path());
        let process = DaemonProcess::start_with(&dirs, &["--listen", &listen, "--log-filter", "warn"])
            .await
            .map_err(|(status, logs)| anyhow::anyhow!("rvirtd failed ({status}): {}", logs.join("\n")))?;
        let unix = process.connect().await;
        let tcp = Connection::open(&format!("tcp://{listen}")).await?;
        let native = dirs.socket.with_file_name("libvirt-sock");
        let native_uri = format!("test+unix:///default?socket={}", native.display());
        Ok(Daemon { process, unix, tcp, native_uri, _dir: dir })
    }

    fn rss_bytes(&self) -> anyhow::Result<u64> {
        crate::bench_qemu::rss_bytes(self.process.pid() as i32)
    }
}

/// N domains in mixed states: half defined and shut off, 30% running, 10% paused, 10% transient.
async fn populate(conn: &Connection, n: u32) -> anyhow::Result<()> {
    let workers = 8;
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (conn, done) = (conn.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            for i in (worker..n).step_by(workers as usize) {
                let xml = rvirt_tests::domain_xml(&format!("bench-{i:06}"), i);
                match i % 10 {
                    9 => drop(conn.create_xml(&xml, 0).await?),
                    kind => {
                        let change = conn.define_xml(&xml, 0).await?;
                        if kind >= 5 {
                            let dom = conn.domain(change.domain.expect("defined").domain);
                            dom.create().await?;
                            if kind == 8 {
                                dom.suspend().await?;
                            }
                        }
                    }
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let count = done.load(std::sync::atomic::Ordering::Relaxed);
            eprintln!("  populating: {count}/{n} domains, {:.0} s", started.elapsed().as_secs_f64());
        }
    };
    let all = async {
        for task in tasks {
            task.await??;
        }
        anyhow::Ok(())
    };
    tokio::select! {
        result = all => result,
        () = progress => unreachable!("progress never ends"),
    }
}

fn iterations_for(n: u32, quick: bool) -> usize {
    let base = match n {
        0..=1_000 => 500,
        1_001..=10_000 => 200,
        _ => 40,
    };
    if quick { base / 5 } else { base }
}

async fn listing_latency(conn: &Connection, flags: ListFlags, iterations: usize) -> anyhow::Result<Stats> {
    // Warm up the connection and the allocator.
    conn.list_all_domains(flags).await?;
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let listing = conn.list_all_domains(flags).await?;
        samples.push(started.elapsed());
        std::hint::black_box(listing);
    }
    Ok(stats(samples))
}

async fn legacy_latency(conn: &Connection, runs: usize) -> anyhow::Result<Stats> {
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(rvirt::legacy_list_all(conn).await?);
        samples.push(started.elapsed());
    }
    Ok(stats(samples))
}

/// Throughput with 1, 4 and 16 listing clients, and mutation latency with and without 4 of them.
async fn load(daemon: &Daemon, n: u32, quick: bool) -> anyhow::Result<LoadReport> {
    let window = if quick { Duration::from_secs(1) } else { Duration::from_secs(3) };
    let mut report = LoadReport { domains: n, ..LoadReport::default() };
    for clients in [1u32, 4, 16] {
        let mut tasks = Vec::new();
        for _ in 0..clients {
            // One connection (one HTTP/2 channel) per client, as separate programs would have.
            let conn = daemon.process.connect().await;
            tasks.push(tokio::spawn(async move {
                let deadline = Instant::now() + window;
                let mut listings = 0u64;
                while Instant::now() < deadline {
                    std::hint::black_box(conn.list_all_domains(ListFlags::empty()).await?);
                    listings += 1;
                }
                anyhow::Ok(listings)
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await??;
        }
        report.throughput_per_second.push((clients, total as f64 / window.as_secs_f64()));
    }
    let mutations = if quick { 300 } else { 2_000 };
    let uri = daemon.process.uri.clone();
    report.mutation_idle = mutation_latency(uri.clone(), mutations).await?;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut listers = Vec::new();
    for _ in 0..4 {
        let conn = daemon.process.connect().await;
        let stop = stop.clone();
        listers.push(tokio::spawn(async move {
            let mut listings = 0u64;
            while !stop.is_cancelled() {
                std::hint::black_box(conn.list_all_domains(ListFlags::empty()).await?);
                listings += 1;
            }
            anyhow::Ok(listings)
        }));
    }
    report.mutation_while_listing = mutation_latency(uri, mutations).await?;
    stop.cancel();
    for lister in listers {
        report.listings_during_mutations += lister.await??;
    }
    Ok(report)
}

/// Latency of `count` autostart toggles (each one a committed change, recorded on disk), from a
/// thread and a connection of their own, so the listers' decoding in this process cannot delay
/// them.
async fn mutation_latency(uri: String, count: usize) -> anyhow::Result<Stats> {
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let conn = Connection::open(&uri).await?;
            let domain = conn.lookup_by_name("bench-000000").await?;
            let mut samples = Vec::with_capacity(count);
            for i in 0..count {
                let started = Instant::now();
                domain.set_autostart(i % 2 == 0).await?;
                samples.push(started.elapsed());
            }
            anyhow::Ok(stats(samples))
        })
    });
    tokio::task::spawn_blocking(move || thread.join().expect("mutation thread")).await?
}

async fn define_throughput(quick: bool) -> anyhow::Result<DefineReport> {
    let count = if quick { 300 } else { 2_000 };
    let disk_count = if quick { 100 } else { 500 };
    let tmpfs = Daemon::start().await?;
    let disk_parent = std::env::current_dir()?.join("target");
    let disk = Daemon::start_in(&disk_parent).await?;
    let report = DefineReport {
        tmpfs_sequential_per_second: defines(&tmpfs.unix, 0, count, 1).await?,
        tmpfs_concurrent8_per_second: defines(&tmpfs.unix, count, count, 8).await?,
        disk_sequential_per_second: defines(&disk.unix, 0, disk_count, 1).await?,
        disk_concurrent8_per_second: defines(&disk.unix, disk_count, disk_count, 8).await?,
    };
    tmpfs.process.terminate().await;
    disk.process.terminate().await;
    Ok(report)
}

async fn defines(conn: &Connection, first: u32, count: u32, workers: u32) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            for i in (first + worker..first + count).step_by(workers as usize) {
                conn.define_xml(&rvirt_tests::domain_xml(&format!("def-{i:06}"), 500_000 + i), 0).await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(f64::from(count) / started.elapsed().as_secs_f64())
}

/// The most domains one libvirt list reply may carry (REMOTE_DOMAIN_LIST_MAX); libvirt's
/// clients refuse longer lists, whatever the daemon.
const LIBVIRT_LIST_MAX: u32 = 16_384;

/// libvirt's clients this machine has; each one missing said once, with its Debian package.
struct ClientTools {
    /// /usr/bin/python3 imports libvirt (python3-libvirt).
    python: bool,
    /// `virsh` runs (libvirt-clients).
    virsh: bool,
}

impl ClientTools {
    fn find() -> Self {
        let runs = |program: &str, args: &[&str]| {
            std::process::Command::new(program)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        let tools = ClientTools {
            python: runs("/usr/bin/python3", &["-c", "import libvirt"]),
            virsh: runs("virsh", &["--version"]),
        };
        if !tools.python {
            println!("python3-libvirt is not installed (Debian python3-libvirt): no python client figures");
        }
        if !tools.virsh {
            println!("virsh is not installed (Debian libvirt-clients): no virsh figures");
        }
        tools
    }
}

/// libvirt's own clients at N against rvirtd's native socket and (when it runs, `Err` when it
/// could not be populated) libvirtd, which hold the same N domains.
async fn clients(
    root: &Path,
    tools: &ClientTools,
    daemon: &Daemon,
    libvirtd: Option<Result<&Libvirtd, String>>,
    n: u32,
    quick: bool,
) -> ClientReport {
    let mut report = ClientReport::default();
    let libvirtd_uri = libvirtd.map(|l| l.map(Libvirtd::uri));
    let script = root.join("xtask/libvirt_client_bench.py");
    if tools.python {
        let mut uris = vec![daemon.native_uri.clone()];
        if let Some(Ok(uri)) = &libvirtd_uri {
            uris.push(uri.clone());
        }
        let mut results = python_listings(&script, &uris, n, iterations_for(n, quick)).await.into_iter();
        let rvirtd = results.next().expect("one result per URI");
        report.rvirtd_python_client_cpu = rvirtd.as_ref().ok().map(|(_, cpu)| *cpu);
        report.rvirtd_python = Some(rvirtd.map(|(wall, _)| wall));
        report.libvirtd_python = match &libvirtd_uri {
            Some(Ok(_)) => results.next().map(|result| result.map(|(wall, _)| wall)),
            Some(Err(e)) => Some(Err(e.clone())),
            None => None,
        };
        report.python_ratio = ratio(&report.libvirtd_python, &report.rvirtd_python);
        report.python_ceiling =
            report.rvirtd_python_client_cpu.and_then(|cpu| ratio(&report.libvirtd_python, &Some(Ok(cpu))));
    }
    if tools.virsh {
        let runs = match (n, quick) {
            (0..=1_000, true) => 5,
            (_, true) => 3,
            (0..=1_000, false) => 11,
            (_, false) => 5,
        };
        let mut uris = vec![daemon.native_uri.clone()];
        if let Some(Ok(uri)) = &libvirtd_uri {
            uris.push(uri.clone());
        }
        let mut results = virsh_wall(&uris, n, runs).await.into_iter();
        report.rvirtd_virsh = results.next();
        report.libvirtd_virsh = match libvirtd_uri {
            Some(Ok(_)) => results.next(),
            Some(Err(e)) => Some(Err(e)),
            None => None,
        };
        report.virsh_ratio = ratio(&report.libvirtd_virsh, &report.rvirtd_virsh);
    }
    report
}

/// `slow` p50 / `fast` p50, when both were measured.
fn ratio(slow: &Option<Result<Stats, String>>, fast: &Option<Result<Stats, String>>) -> Option<f64> {
    match (slow, fast) {
        (Some(Ok(slow)), Some(Ok(fast))) => Some(slow.p50_ms / fast.p50_ms),
        _ => None,
    }
}

/// Wall time of `virsh -c URI list --all` (a process of its own, its output to /dev/null), `runs`
/// times for each URI, the URIs taking turns so the machine's noise hits them alike. One untimed
/// run each first, whose output must list the N domains.
async fn virsh_wall(uris: &[String], n: u32, runs: usize) -> Vec<Result<Stats, String>> {
    let virsh = |uri: &str| {
        let mut command = tokio::process::Command::new("virsh");
        command.args(["-c", uri, "list", "--all"]).stdin(std::process::Stdio::null());
        command
    };
    let mut outcomes: Vec<Result<Vec<Duration>, String>> = Vec::new();
    for uri in uris {
        let checked = match virsh(uri).output().await {
            Err(e) => Err(format!("cannot run virsh: {e}")),
            Ok(output) if !output.status.success() => Err(format!(
                "virsh failed: {}",
                String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or("")
            )),
            Ok(output) => {
                let listed =
                    String::from_utf8_lossy(&output.stdout).lines().filter(|l| l.contains("bench-")).count();
                if listed == n as usize {
                    Ok(Vec::new())
                } else {
                    Err(format!("virsh listed {listed} domains, expected {n}"))
                }
            }
        };
        outcomes.push(checked);
    }
    for _ in 0..runs {
        for (uri, outcome) in uris.iter().zip(&mut outcomes) {
            let Ok(samples) = outcome else { continue };
            let started = Instant::now();
            let status = virsh(uri)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
            let elapsed = started.elapsed();
            match status {
                Ok(status) if status.success() => samples.push(elapsed),
                Ok(status) => *outcome = Err(format!("virsh failed ({status})")),
                Err(e) => *outcome = Err(format!("cannot run virsh: {e}")),
            }
        }
    }
    outcomes.into_iter().map(|outcome| outcome.map(stats)).collect()
}

/// python3-libvirt's listing (`xtask/libvirt_client_bench.py`) against each URI, `iterations`
/// calls in all, in `PYTHON_TURNS` turns, the URIs taking turns so the machine's noise hits them
/// alike. Per URI: the wall latencies and the client's own CPU per call.
async fn python_listings(
    script: &Path,
    uris: &[String],
    n: u32,
    iterations: usize,
) -> Vec<Result<(Stats, Stats), String>> {
    const PYTHON_TURNS: usize = 4;
    let per_turn = iterations.div_ceil(PYTHON_TURNS).max(1);
    /// Wall latencies and CPU times gathered so far, or why the URI failed.
    type Gathered = Result<(Vec<Duration>, Vec<Duration>), String>;
    let mut outcomes: Vec<Gathered> = uris.iter().map(|_| Ok(Default::default())).collect();
    for _ in 0..PYTHON_TURNS {
        for (uri, outcome) in uris.iter().zip(&mut outcomes) {
            let Ok((wall, cpu)) = outcome else { continue };
            match python_lines(script, &[uri], n, per_turn).await.as_deref() {
                Ok([walls, cpus]) => {
                    wall.extend(walls);
                    cpu.extend(cpus);
                }
                Ok(lines) => *outcome = Err(format!("expected 2 lines of samples, got {}", lines.len())),
                Err(e) => *outcome = Err(e.clone()),
            }
        }
    }
    outcomes.into_iter().map(|outcome| outcome.map(|(wall, cpu)| (stats(wall), stats(cpu)))).collect()
}

/// Runs `script` (a Python script printing one line of nanosecond latencies) with `args`, N and
/// the iteration count; `Err` with its last line of stderr if it fails.
async fn python_samples(script: &Path, args: &[&str], n: u32, iterations: usize) -> Result<Stats, String> {
    let lines = python_lines(script, args, n, iterations).await?;
    Ok(stats(lines.into_iter().last().expect("at least one line")))
}

/// Runs `script` with `args`, N and the iteration count: each line of its output, a series of
/// nanosecond figures; `Err` with its last line of stderr if it fails or prints none.
async fn python_lines(
    script: &Path,
    args: &[&str],
    n: u32,
    iterations: usize,
) -> Result<Vec<Vec<Duration>>, String> {
    let output = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .arg(n.to_string())
        .arg(iterations.to_string())
        .output()
        .await
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or("failed").to_owned());
    }
    let mut lines = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let mut samples = Vec::new();
        for value in line.split_whitespace() {
            let ns: u64 = value.parse().map_err(|_| format!("unexpected output {line:?}"))?;
            samples.push(Duration::from_nanos(ns));
        }
        if samples.is_empty() {
            return Err(format!("an empty line of samples from {}", script.display()));
        }
        lines.push(samples);
    }
    if lines.is_empty() {
        return Err(format!("no samples from {}", script.display()));
    }
    Ok(lines)
}

/// A private libvirtd (its own config and socket) serving libvirt's test driver.
pub(crate) struct Libvirtd {
    child: std::process::Child,
    dir: tempfile::TempDir,
    script: std::path::PathBuf,
}

impl Libvirtd {
    pub(crate) async fn start(root: &Path) -> anyhow::Result<Option<Self>> {
        let binary = Path::new("/usr/sbin/libvirtd");
        if !binary.exists() || !Path::new("/usr/lib/python3/dist-packages/libvirt.py").exists() {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("no-drivers"))?;
        // max_clients 256: the watch section's 100 watchers are 100 clients (libvirtd stops
        // accepting past the limit, and a connect then hangs).
        let config = format!(
            "unix_sock_dir = \"{}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\nmax_clients = 256\n",
            dir.path().display()
        );
        std::fs::write(dir.path().join("libvirtd.conf"), config)?;
        // No hypervisor driver modules: the test driver is built into libvirt.so.
        let child = std::process::Command::new(binary)
            .arg("--config")
            .arg(dir.path().join("libvirtd.conf"))
            .arg("--pid-file")
            .arg(dir.path().join("pid"))
            .env("LIBVIRT_DRIVER_DIR", dir.path().join("no-drivers"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let socket = dir.path().join("libvirt-sock");
        let started = Instant::now();
        while !socket.exists() {
            if started.elapsed() > Duration::from_secs(20) {
                println!("libvirtd did not create {} within 20 s: no side-by-side figures", socket.display());
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(Libvirtd { child, dir, script: root.join("xtask/libvirt_bench.py") }))
    }

    /// listAllDomains latency at N, measured by `xtask/libvirt_bench.py` (ctypes around the C
    /// call, so Python adds nothing to the timed part); `Err` with libvirt's message if it refuses.
    async fn list_latency(&self, n: u32, iterations: usize) -> Result<Stats, String> {
        python_samples(&self.script, &[&self.uri()], n, iterations).await
    }

    /// A python3-libvirt process holding a connection open until its stdin is closed: libvirtd's
    /// test:///default state is discarded when its last connection closes, so without one the
    /// domains `list_latency` defined would be gone when it exits.
    async fn hold(&self, root: &Path) -> anyhow::Result<tokio::process::Child> {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new("/usr/bin/python3")
            .arg(root.join("xtask/libvirt_client_bench.py"))
            .arg("--hold")
            .arg(self.uri())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the libvirtd connection holder")?;
        let stdout = child.stdout.take().context("holder's stdout")?;
        let line = tokio::io::BufReader::new(stdout).lines().next_line().await?;
        if line.as_deref() != Some("open") {
            bail!("the libvirtd connection holder did not open {}", self.uri());
        }
        Ok(child)
    }

    /// The URI python3-libvirt opens.
    pub(crate) fn uri(&self) -> String {
        format!("test+unix:///default?socket={}", self.dir.path().join("libvirt-sock").display())
    }

    /// libvirtd's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// p50, p99 and max of `samples`.
pub(crate) fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Stats {
        samples: samples.len(),
        p50_ms: ms(at(0.50)),
        p99_ms: ms(at(0.99)),
        max_ms: ms(*samples.last().unwrap()),
    }
}

/// "N cores (model)", for reports.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    format!("{cpus} cores ({model})")
}

fn print_size(size: &SizeReport) {
    eprintln!(
        "  N={}: unix p50 {:.3} ms, legacy p50 {:.1} ms, {:.0} B/domain",
        size.domains,
        size.unix_all.p50_ms,
        size.legacy.map_or(f64::NAN, |s| s.p50_ms),
        size.rss_per_domain_bytes
    );
    if let Some(c) = &size.clients {
        let p50 = |figure: &Option<Result<Stats, String>>| match figure {
            Some(Ok(st)) => format!("{:.2} ms", st.p50_ms),
            Some(Err(e)) => format!("failed ({e})"),
            None => "-".into(),
        };
        eprintln!(
            "  N={}: python listAllDomains p50 rvirtd {}, libvirtd {}; virsh list --all p50 rvirtd {}, libvirtd {}",
            size.domains,
            p50(&c.rvirtd_python),
            p50(&c.libvirtd_python),
            p50(&c.rvirtd_virsh),
            p50(&c.libvirtd_virsh)
        );
    }
}

/// The client comparison: python3-libvirt and virsh against rvirtd's native socket and libvirtd.
fn print_clients(report: &Report) {
    let rows: Vec<_> =
        report.sizes.iter().filter_map(|s| s.clients.as_ref().map(|c| (s.domains, c))).collect();
    if rows.is_empty() {
        return;
    }
    println!(
        "\nlibvirt's own clients, the same N domains: rvirtd's native socket against libvirtd, ms; ratio = libvirtd / rvirtd"
    );
    println!("  python3-libvirt conn.listAllDomains(0), virDomain objects built (p50 / p99);");
    println!(
        "  virsh list --all, a process from spawn to exit, output to /dev/null (p50; one DOMAIN_GET_STATE per domain)"
    );
    println!(
        "{:>7}  {:>19}  {:>19}  {:>7}  {:>12}  {:>14}  {:>7}",
        "N", "rvirtd python", "libvirtd python", "ratio", "rvirtd virsh", "libvirtd virsh", "ratio"
    );
    let pair = |figure: &Option<Result<Stats, String>>| match figure {
        Some(Ok(st)) => format!("{:.3} / {:.3}", st.p50_ms, st.p99_ms),
        Some(Err(_)) => "failed".into(),
        None => "-".into(),
    };
    let p50 = |figure: &Option<Result<Stats, String>>| match figure {
        Some(Ok(st)) => format!("{:.1}", st.p50_ms),
        Some(Err(_)) => "failed".into(),
        None => "-".into(),
    };
    let times = |ratio: Option<f64>| ratio.map_or("-".into(), |r| format!("{r:.1}x"));
    for (n, c) in &rows {
        println!(
            "{:>7}  {:>19}  {:>19}  {:>7}  {:>12}  {:>14}  {:>7}",
            n,
            pair(&c.rvirtd_python),
            pair(&c.libvirtd_python),
            times(c.python_ratio),
            p50(&c.rvirtd_virsh),
            p50(&c.libvirtd_virsh),
            times(c.virsh_ratio)
        );
    }
    for (n, c) in &rows {
        for (what, figure) in [
            ("rvirtd python", &c.rvirtd_python),
            ("libvirtd python", &c.libvirtd_python),
            ("rvirtd virsh", &c.rvirtd_virsh),
            ("libvirtd virsh", &c.libvirtd_virsh),
        ] {
            if let Some(Err(e)) = figure {
                println!("  N={n}, {what} failed: {e}");
            }
        }
    }
    if let Some((_, c)) = rows.iter().find(|(n, _)| *n == 10_000) {
        let verdict = |ratio: Option<f64>| match ratio {
            Some(r) if r >= 5.0 => format!("{r:.1}x, met"),
            Some(r) => format!("{r:.1}x, MISSED"),
            None => "not measured".into(),
        };
        println!(
            "  target at N = 10,000: at least 5x faster than libvirtd through the same client: python {}; virsh {}",
            verdict(c.python_ratio),
            verdict(c.virsh_ratio)
        );
        if let (Some(cpu), Some(ceiling)) = (c.rvirtd_python_client_cpu, c.python_ceiling) {
            println!(
                "  python's own CPU per listing against rvirtd: p50 {:.3} ms; a daemon that took no time at all would be {ceiling:.1}x",
                cpu.p50_ms
            );
        }
    }
}

fn print_report(report: &Report) {
    println!(
        "\nrvirt benchmarks on {}; release build, state on tmpfs, client in a separate process",
        report.machine
    );
    println!("\nListAllDomains latency, ms (p50 / p99); selective = PAUSED (10% of domains)");
    println!(
        "{:>7}  {:>17}  {:>17}  {:>17}  {:>17}  {:>13}  {:>8}  {:>17}  {:>9}  {:>7}",
        "N",
        "unix all",
        "unix selective",
        "tcp all",
        "tcp selective",
        "legacy p50",
        "legacy/x",
        "libvirtd",
        "libvirt/x",
        "B/dom"
    );
    for s in &report.sizes {
        let pair = |st: Stats| format!("{:.3} / {:.3}", st.p50_ms, st.p99_ms);
        let legacy = s.legacy.map_or("-".into(), |l| format!("{:.2}", l.p50_ms));
        let legacy_ratio = s.legacy.map_or("-".into(), |l| format!("{:.0}x", l.p50_ms / s.unix_all.p50_ms));
        let (libvirt, libvirt_ratio) = match &s.libvirtd {
            Some(Ok(l)) => (pair(*l), format!("{:.1}x", l.p50_ms / s.unix_all.p50_ms)),
            Some(Err(e)) => (format!("refused: {}", e.chars().take(40).collect::<String>()), "-".into()),
            None => ("-".into(), "-".into()),
        };
        // Below 100,000 domains the allocator's fixed reservations swamp the per-domain figure.
        let per_domain =
            if s.domains >= 100_000 { format!("{:.0}", s.rss_per_domain_bytes) } else { "-".into() };
        println!(
            "{:>7}  {:>17}  {:>17}  {:>17}  {:>17}  {:>13}  {:>8}  {:>17}  {:>9}  {:>7}",
            s.domains,
            pair(s.unix_all),
            pair(s.unix_selective),
            pair(s.tcp_all),
            pair(s.tcp_selective),
            legacy,
            legacy_ratio,
            libvirt,
            libvirt_ratio,
            per_domain
        );
    }
    print_clients(report);
    if let Some(load) = &report.load {
        println!("\nAt N = {}:", load.domains);
        for (clients, rate) in &load.throughput_per_second {
            println!("  throughput with {clients:>2} listing clients: {rate:>8.0} listings/s");
        }
        let show = |label: &str, s: Stats| {
            println!(
                "  {label}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
                s.p50_ms, s.p99_ms, s.max_ms, s.samples
            )
        };
        show("mutation latency, idle            ", load.mutation_idle);
        show("mutation latency, 4 clients listing", load.mutation_while_listing);
        println!("  (the 4 clients completed {} listings meanwhile)", load.listings_during_mutations);
    }
    if let Some(define) = &report.define {
        println!(
            "\nDefine throughput: tmpfs {:.0}/s sequential, {:.0}/s with 8 clients; disk {:.0}/s sequential, {:.0}/s with 8 clients (each define fsynced before it answers)",
            define.tmpfs_sequential_per_second,
            define.tmpfs_concurrent8_per_second,
            define.disk_sequential_per_second,
            define.disk_concurrent8_per_second
        );
    }
}
