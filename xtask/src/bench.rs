//! `cargo xtask bench [--quick] [--watch] [--sizes 100,1000,...] [--json FILE] [--no-libvirt]`: end-to-end
//! benchmarks of a release rvirtd, measured by this (separate, release) process over its unix
//! socket and over TCP, with libvirtd's test driver side by side when it is installed.
//! `--qemu [--runs N]` measures the qemu driver on real guests instead (`bench_qemu`); without
//! it, `--quick` is the listing benchmark CI runs, as ever, followed by the watch section
//! (`bench_watch`: WatchDomainEvents beside libvirt's lifecycle events); `--watch` runs only that.
//!
//! Measured, for each N: ListAllDomains latency (no filter and a selective one) over unix and TCP,
//! the legacy enumeration and its ratio, libvirtd's listAllDomains and its ratio, daemon memory
//! per domain; at N = 10,000: listing throughput with 1, 4 and 16 clients, and mutation latency
//! while 4 clients list in a loop; define throughput on tmpfs and on disk. State lives on tmpfs
//! (/dev/shm) unless said otherwise, so the figures are the daemon's, not the disk's.

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
    rss_per_domain_bytes: f64,
    populate_seconds: f64,
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
    options.sizes = sizes.unwrap_or(if options.quick { vec![100, 1_000] } else { options.sizes });
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
    let libvirtd = if options.libvirt { Libvirtd::start(root).await? } else { None };
    if options.libvirt && libvirtd.is_none() {
        println!("libvirtd is not installed (Debian libvirt-daemon): no side-by-side figures");
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
        if let Some(libvirtd) = &libvirtd {
            size.libvirtd = Some(libvirtd.list_latency(n, iterations).await);
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
        Ok(Daemon { process, unix, tcp, _dir: dir })
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
        let uri = format!("test+unix:///default?socket={}", self.dir.path().join("libvirt-sock").display());
        let output = tokio::process::Command::new("/usr/bin/python3")
            .arg(&self.script)
            .arg(&uri)
            .arg(n.to_string())
            .arg(iterations.to_string())
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.script.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let Some(line) = stdout.lines().last().filter(|_| output.status.success()) else {
            return Err(String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("failed")
                .to_owned());
        };
        let mut samples = Vec::new();
        for value in line.split_whitespace() {
            let ns: u64 = value.parse().map_err(|_| format!("unexpected output {line:?}"))?;
            samples.push(Duration::from_nanos(ns));
        }
        Ok(stats(samples))
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
