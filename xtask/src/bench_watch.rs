//! `cargo xtask bench --watch [--quick]` (and the last section of `cargo xtask bench`):
//! WatchDomainEvents measured on a release rvirtd (state on tmpfs), beside libvirtd's lifecycle
//! events (python3-libvirt's domainEventRegisterAny on a private libvirtd's test driver, measured
//! by `xtask/libvirt_watch_bench.py`) measured the same way, scenario for scenario:
//!
//! - latency: one mutator alternates suspend and resume on one running domain and, after each
//!   answer, waits until every watcher has the change (2 s at most: lost). Sample = the time the
//!   watcher received it - the time the mutator had its answer, clamped at 0; also from the
//!   call's start. 1, 10 and 100 watchers, each on its own connection. rvirtd's watchers are
//!   tokio tasks in this process (2 runtime threads); libvirt's are in 4 Python processes.
//! - throughput: 2 mutators (threads of their own, each on its own connection and domain)
//!   toggle suspend/resume as fast as they can for S seconds: with no watcher, with W watchers
//!   counting every event, and with none again. events/s per watcher, mutations/s, and their
//!   ratio to the mean of the two watcher-less runs.
//! - memory: the daemon's RSS (settled) before and 1 s after 100 idle watchers, each on its own
//!   connection, on a daemon started for it (allocators reuse what earlier work freed); rvirtd
//!   also with the 100 streams on one connection.
//! - stalled: on a fresh daemon, after a second of the same churn (the daemon's first changes
//!   start threads and allocator heaps once), one watcher in a child process (this binary re-run
//!   as `bench --stalled-watcher-child URI`) opens its watch and is SIGSTOPped, so nothing reads
//!   its socket; a mutator makes 200 changes/s for S seconds while the daemon's RSS is sampled
//!   every 0.5 s. The daemon cut it off when the socket that appeared in /proc/PID/fd as it
//!   connected goes (checked every 0.1 s, and up to a grace period after the changes end); its
//!   `connections` debug line says when it decided to. Then the watcher is resumed and says what
//!   it received and how its stream ended. rvirtd also runs the same churn with no watcher on
//!   another fresh daemon (the control), and libvirtd's run goes on meanwhile: the three side by
//!   side, each on its own daemon, for 8 s (`--quick`) or 40 s (libvirtd's keepalive needs 31 s
//!   or more to drop a stalled client).
//! - missed / silent: a churner defines and undefines domains of a pool at 200 changes/s (each
//!   change's generation from its answer) while a client starts again and again on 4
//!   connections: an informer (`watch_all`, one call for the state and what follows), then 25 ms
//!   of events, then more until it has every change acknowledged by then (1 s at most). Checked
//!   afterwards against the churn log: the initial state must equal the pool at its generation,
//!   and every change after it up to then must arrive (missed otherwise); a start-up that got no
//!   event although changes followed is silent. libvirt's figures are its list-then-register gap
//!   and its blackout cycles.
//! - lost: under the same churn, one watcher that every 50-150 ms drops its connection, stays
//!   away 10-60 ms and resumes on a new one from the last generation it received; every change
//!   after its start must arrive, once and in order (libvirt has no resume: nothing to measure).

use crate::bench::{Libvirtd, stats};
use anyhow::{Context, bail};
use rvirt::proto::domain_event::Kind;
use rvirt::proto::{DomainEvent, WatchDomainEventsRequest};
use rvirt::{Connection, DomainId, ListFlags, UndefineFlags, Update};
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use serde::Serialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) libvirt: bool,
}

/// The sizes of each scenario.
#[derive(Debug, Clone, Copy, Serialize)]
struct Plan {
    latency_mutations: usize,
    throughput_seconds: u64,
    memory_watchers: usize,
    stalled_rate: u64,
    stalled_seconds: u64,
    /// How long after the changes stop rvirtd's run still waits for the stalled connection to go.
    stalled_grace_seconds: u64,
    /// libvirtd closes a stalled client by keepalive only after ~30 s.
    libvirt_stalled_seconds: u64,
    churn_rate: u64,
    gap_seconds: u64,
    reconnect_seconds: u64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        Plan {
            latency_mutations: if quick { 50 } else { 200 },
            throughput_seconds: if quick { 3 } else { 5 },
            memory_watchers: 100,
            stalled_rate: 200,
            // As long as libvirtd's run (side by side, so it costs no time): the same figures.
            stalled_seconds: if quick { 8 } else { 40 },
            stalled_grace_seconds: if quick { 5 } else { 10 },
            libvirt_stalled_seconds: if quick { 8 } else { 40 },
            churn_rate: 200,
            gap_seconds: if quick { 5 } else { 10 },
            reconnect_seconds: if quick { 3 } else { 10 },
        }
    }
}

/// Everything the watch section measured.
#[derive(Debug, Serialize)]
pub(crate) struct WatchReport {
    plan: Plan,
    latency: Vec<LatencyReport>,
    throughput: Vec<ThroughputReport>,
    memory: MemoryReport,
    stalled: StalledReport,
    stalled_control: StalledReport,
    gap: GapReport,
    reconnect: ReconnectReport,
    /// libvirtd's figures, as the script printed them; `None` with the reason in `libvirtd_absent`.
    libvirtd: Option<LibvirtReport>,
    libvirtd_absent: Option<String>,
    targets: Vec<Target>,
}

#[derive(Debug, Serialize)]
struct LatencyReport {
    watchers: usize,
    mutations: usize,
    samples: usize,
    lost: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    from_call_p50_ms: f64,
    from_call_p99_ms: f64,
    call_p50_ms: f64,
    /// The mutation itself: where a tail of `from_call` comes from.
    call_p99_ms: f64,
    /// Samples clamped to 0: the watcher had the change before the mutator had its answer.
    before_return: usize,
}

#[derive(Debug, Serialize)]
struct ThroughputReport {
    watchers: usize,
    seconds: u64,
    events_per_s: f64,
    mutations_per_s: f64,
    baseline_mutations_per_s: f64,
    mutations_ratio: f64,
    baseline_before_after: [f64; 2],
    delivered_ratio: f64,
}

#[derive(Debug, Serialize)]
struct MemoryReport {
    watchers: usize,
    bytes_per_watcher: f64,
    rss_before_bytes: u64,
    rss_after_bytes: u64,
    /// RSS as the watchers opened (at each quarter), and the rise from the first quarter to the
    /// last per watcher: the cost of one more, without what the first ones set up once.
    rss_steps: Vec<(usize, u64)>,
    marginal_bytes_per_watcher: f64,
    /// The same watchers as streams of one connection (on another fresh daemon).
    one_connection_bytes_per_watcher: Result<f64, String>,
}

#[derive(Debug, Default, Serialize)]
struct StalledReport {
    rate: u64,
    seconds: u64,
    events: u64,
    rate_achieved_per_s: f64,
    /// The largest rise of RSS over the lowest before it.
    rss_growth_bytes: i64,
    rss_end_growth_bytes: i64,
    rss_base_bytes: u64,
    /// When the daemon closed the watcher's connection, from the first change; `None` if not
    /// within `seconds` + the plan's grace (the changes stop at `seconds`), or for the control.
    dropped_after_s: Option<f64>,
    /// When the daemon logged (at debug) that it closes a connection whose client reads nothing.
    daemon_logged_close_at_s: Option<f64>,
    /// Whether the daemon had closed it by the time the resumed watcher had reported.
    closed_after_resume: Option<bool>,
    /// ...and whether the drop was before the changes stopped.
    dropped_while_churning: Option<bool>,
    /// The daemon's RSS 1 s after the drop - just before it: what closing the connection freed.
    rss_change_at_drop_bytes: Option<i64>,
    /// When the last change the watcher received was made, from the first change.
    last_delivered_change_at_s: Option<f64>,
    watcher_received: Option<u64>,
    /// How the watcher's stream ended, as it saw it once resumed.
    watcher_end: Option<String>,
    rss_samples: Vec<(f64, i64)>,
}

#[derive(Debug, Default, Serialize)]
struct GapReport {
    rate: u64,
    seconds: u64,
    cycles: usize,
    changes: usize,
    /// Changes each start-up had to see (in its initial state or as events), all start-ups.
    expected: usize,
    /// Pool domains whose presence in the initial state differed from the pool at its generation.
    missed_in_state: usize,
    /// Changes after the initial state's generation, acknowledged before the start-up's window
    /// ended, that never arrived.
    missed_events: usize,
    missed: usize,
    missed_per_1000: f64,
    /// Start-ups that received no event in 1 s although changes followed their initial state.
    silent: usize,
    /// Events that do not match the churn log's change of that generation, or came twice.
    wrong_or_duplicate: usize,
    start_to_synced_p50_ms: f64,
}

#[derive(Debug, Default, Serialize)]
struct ReconnectReport {
    seconds: u64,
    reconnects: usize,
    changes: usize,
    /// Changes made while the watcher had no stream.
    changes_while_disconnected: u64,
    delivered: usize,
    lost: usize,
    duplicates: usize,
    out_of_order: usize,
}

/// libvirtd's side: each entry the script's JSON, or why there is none.
#[derive(Debug, Default, Serialize)]
struct LibvirtReport {
    latency: Vec<(usize, Result<Value, String>)>,
    throughput: Vec<(usize, Result<Value, String>)>,
    memory: Option<Result<Value, String>>,
    stalled: Option<Result<Value, String>>,
    gap: Option<Result<Value, String>>,
}

/// One of the targets and whether this run met it.
#[derive(Debug, Serialize)]
struct Target {
    target: String,
    measured: String,
    met: Option<bool>,
}

/// The watcher counts of the latency rows.
const LATENCY_WATCHERS: [usize; 3] = [1, 10, 100];
/// ...and of the throughput rows.
const THROUGHPUT_WATCHERS: [usize; 2] = [1, 10];
/// What rvirtd logs (at debug, `connections`) when it closes a client that reads nothing.
const STALL_LOG: &str = "closing a connection whose client reads nothing";
/// The script's prefix for its domains; rvirtd's side uses the same names and definitions.
const PREFIX: &str = "watch-bench-";
/// The churn pool's first domain number (the script's `base`).
const POOL_BASE: u32 = 100;

/// Progress lines, each with the seconds since the section began.
struct Progress(Instant);

impl Progress {
    fn step(&self, what: &str) {
        eprintln!("[{:>5.1} s] watch: {what}", self.0.elapsed().as_secs_f64());
    }
}

/// Runs the watch section.
pub(crate) async fn run(root: &Path, options: &Options) -> anyhow::Result<WatchReport> {
    let plan = Plan::new(options.quick);
    let progress = Progress(Instant::now());
    progress.step(&format!(
        "WatchDomainEvents on a release rvirtd{}",
        if options.libvirt { ", beside libvirtd's lifecycle events" } else { "" }
    ));
    let libvirtd = if options.libvirt { Libvirtd::start(root).await? } else { None };
    let libvirtd_absent = match (&libvirtd, options.libvirt) {
        (_, false) => Some("--no-libvirt".to_owned()),
        (None, true) => {
            Some("libvirtd (Debian libvirt-daemon) or python3-libvirt is not installed".to_owned())
        }
        (Some(_), true) => None,
    };
    if let Some(reason) = &libvirtd_absent {
        println!("watch: rvirtd's figures only: {reason}");
    }
    let script = root.join("xtask/libvirt_watch_bench.py");
    let mut lv = libvirtd.as_ref().map(|_| LibvirtReport::default());

    let daemon = Rvirtd::start().await?;
    {
        let conn = daemon.connect().await?;
        for i in 0..2 {
            running_domain(&conn, i).await?;
        }
    }

    let mut latency_rows = Vec::new();
    for watchers in LATENCY_WATCHERS {
        progress.step(&format!("latency, {watchers} watchers, {} mutations", plan.latency_mutations));
        let row = latency(&daemon, watchers, plan.latency_mutations).await?;
        eprintln!(
            "  rvirtd: p50 {:.3} ms, p99 {:.3} ms, {} lost (from call start p50 {:.3}, p99 {:.3}; the call itself p50 {:.3}, p99 {:.3})",
            row.p50_ms,
            row.p99_ms,
            row.lost,
            row.from_call_p50_ms,
            row.from_call_p99_ms,
            row.call_p50_ms,
            row.call_p99_ms
        );
        latency_rows.push(row);
        if let (Some(libvirtd), Some(lv)) = (&libvirtd, &mut lv) {
            let args = [watchers.to_string(), plan.latency_mutations.to_string()];
            lv.latency.push((watchers, script_run(libvirtd, &script, "latency", &args, 300).await));
        }
    }

    let mut throughput_rows = Vec::new();
    for watchers in THROUGHPUT_WATCHERS {
        progress.step(&format!("throughput, {watchers} watchers, 3 runs of {} s", plan.throughput_seconds));
        let row = throughput(&daemon, watchers, plan.throughput_seconds).await?;
        eprintln!(
            "  rvirtd: {:.0} events/s per watcher, {:.0} mutations/s, baseline {:.0}: ratio {:.2}",
            row.events_per_s, row.mutations_per_s, row.baseline_mutations_per_s, row.mutations_ratio
        );
        throughput_rows.push(row);
        if let (Some(libvirtd), Some(lv)) = (&libvirtd, &mut lv) {
            let args = [watchers.to_string(), plan.throughput_seconds.to_string()];
            lv.throughput.push((watchers, script_run(libvirtd, &script, "throughput", &args, 300).await));
        }
    }

    progress.step(&format!(
        "missed changes and silent start-ups under {} changes/s, {} s",
        plan.churn_rate, plan.gap_seconds
    ));
    let gap_report = gap(&daemon, plan.churn_rate, plan.gap_seconds).await?;
    eprintln!(
        "  rvirtd: {} start-ups, {} changes, {} missed, {} silent",
        gap_report.cycles, gap_report.changes, gap_report.missed, gap_report.silent
    );
    if let (Some(libvirtd), Some(lv)) = (&libvirtd, &mut lv) {
        let args = [plan.churn_rate.to_string(), plan.gap_seconds.to_string()];
        lv.gap = Some(script_run(libvirtd, &script, "gap", &args, 300).await);
    }

    progress.step(&format!(
        "lost on reconnect: a watcher reconnecting every 50-150 ms (away 10-60 ms) under {} changes/s, {} s",
        plan.churn_rate, plan.reconnect_seconds
    ));
    let reconnect_report = reconnect(&daemon, plan.churn_rate, plan.reconnect_seconds).await?;
    eprintln!(
        "  rvirtd: {} reconnects, {} changes ({} while disconnected), {} lost, {} duplicates",
        reconnect_report.reconnects,
        reconnect_report.changes,
        reconnect_report.changes_while_disconnected,
        reconnect_report.lost,
        reconnect_report.duplicates
    );
    daemon.stop().await;
    if let Some(libvirtd) = libvirtd {
        libvirtd.stop();
    }

    progress.step(&format!("memory of {} idle watchers, each daemon started for it", plan.memory_watchers));
    let memory_report = memory(plan.memory_watchers).await?;
    eprintln!(
        "  rvirtd: {:.0} B per watcher ({} connections), {} on one connection",
        memory_report.bytes_per_watcher,
        plan.memory_watchers,
        memory_report
            .one_connection_bytes_per_watcher
            .as_ref()
            .map_or_else(Clone::clone, |b| format!("{b:.0} B"))
    );
    if let Some(lv) = &mut lv {
        lv.memory =
            Some(fresh_libvirtd_run(root, &script, "memory", &[plan.memory_watchers.to_string()], 300).await);
    }

    // The three stalled runs side by side, each on a daemon of its own (200 changes/s is light
    // work), so that libvirtd's 31 s and more overlap rvirtd's runs.
    progress.step(&format!(
        "a stalled watcher under {} changes/s for {} s, the same churn with no watcher, and libvirtd's {} s, each on a fresh daemon, side by side",
        plan.stalled_rate, plan.stalled_seconds, plan.libvirt_stalled_seconds
    ));
    let with_libvirt = lv.is_some();
    let lv_stalled = async {
        if !with_libvirt {
            return None;
        }
        let args = [plan.stalled_rate.to_string(), plan.libvirt_stalled_seconds.to_string()];
        Some(fresh_libvirtd_run(root, &script, "stalled", &args, 300).await)
    };
    let (stalled_report, stalled_control, lv_stalled) = tokio::join!(
        stalled(plan.stalled_rate, plan.stalled_seconds, plan.stalled_grace_seconds, true),
        stalled(plan.stalled_rate, plan.stalled_seconds, 0, false),
        lv_stalled
    );
    let (stalled_report, stalled_control) = (stalled_report?, stalled_control?);
    eprintln!(
        "  rvirtd: RSS +{} KiB at most (no watcher: +{} KiB), cut off {}",
        stalled_report.rss_growth_bytes / 1024,
        stalled_control.rss_growth_bytes / 1024,
        stalled_report.dropped_after_s.map_or("not within the run".into(), |s| format!("after {s:.1} s"))
    );
    if let Some(lv) = &mut lv {
        lv.stalled = lv_stalled;
    }
    progress.step("done");

    let mut report = WatchReport {
        plan,
        latency: latency_rows,
        throughput: throughput_rows,
        memory: memory_report,
        stalled: stalled_report,
        stalled_control,
        gap: gap_report,
        reconnect: reconnect_report,
        libvirtd: lv,
        libvirtd_absent,
        targets: Vec::new(),
    };
    report.targets = targets(&report);
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// The daemon and helpers
// ---------------------------------------------------------------------------------------------

/// A release rvirtd on tmpfs, with the default limits.
struct Rvirtd {
    process: DaemonProcess,
    _dir: tempfile::TempDir,
}

impl Rvirtd {
    async fn start() -> anyhow::Result<Self> {
        Self::start_logging("warn").await
    }

    async fn start_logging(filter: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let dirs = DaemonDirs::under(dir.path());
        let process = DaemonProcess::start_with(&dirs, &["--log-filter", filter])
            .await
            .map_err(|(status, logs)| anyhow::anyhow!("rvirtd failed ({status}): {}", logs.join("\n")))?;
        Ok(Rvirtd { process, _dir: dir })
    }

    fn uri(&self) -> &str {
        &self.process.uri
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    async fn connect(&self) -> anyhow::Result<Connection> {
        Ok(Connection::open(self.uri()).await?)
    }

    fn rss(&self) -> anyhow::Result<u64> {
        crate::bench_qemu::rss_bytes(self.pid() as i32)
    }

    async fn stop(self) {
        self.process.terminate().await;
    }
}

fn domain_name(i: u32) -> String {
    format!("{PREFIX}{i:03}")
}

/// The script's domain: the same name, UUID and definition on both sides.
fn domain_xml(i: u32) -> String {
    format!(
        "<domain type='test'><name>{}</name><uuid>52540000-0000-4000-9000-{i:012x}</uuid>\
         <memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>",
        domain_name(i)
    )
}

fn pool_index(name: &str) -> Option<u32> {
    name.strip_prefix(PREFIX)?.parse().ok().filter(|i| *i >= POOL_BASE)
}

async fn running_domain(conn: &Connection, i: u32) -> anyhow::Result<DomainId> {
    let change = conn.define_xml(&domain_xml(i), 0).await?;
    let id = change.domain.context("a define answers with its domain")?.domain;
    conn.domain(id.clone()).create().await?;
    Ok(id)
}

/// A domain change (not a bookmark or a marker).
fn is_change(event: &DomainEvent) -> bool {
    [Kind::Added, Kind::Modified, Kind::Removed].into_iter().any(|kind| event.kind == kind as i32)
}

/// A watch from `generation` of `incarnation`, as every watcher here opens it.
fn watch_from(incarnation: u64, generation: u64) -> WatchDomainEventsRequest {
    WatchDomainEventsRequest { incarnation, after_generation: generation, ..Default::default() }
}

/// RSS once it has stopped moving (3 equal samples 0.25 s apart, 3 s at most), as the script's
/// `settled_rss`.
async fn settled_rss(daemon: &Rvirtd) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut values = vec![daemon.rss()?];
    while Instant::now() < deadline
        && !(values.len() >= 3 && values[values.len() - 3..].iter().all(|v| *v == values[values.len() - 1]))
    {
        tokio::time::sleep(Duration::from_millis(250)).await;
        values.push(daemon.rss()?);
    }
    Ok(*values.last().expect("one value"))
}

/// The sockets open in process `pid`, as /proc/PID/fd names them ("socket:[inode]").
fn socket_inodes(pid: u32) -> HashSet<String> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return HashSet::new() };
    entries
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|target| target.starts_with("socket:["))
        .collect()
}

/// Runs `work` on a thread of its own with a current-thread runtime (a mutator or churner that
/// the watchers' decoding in this process must not delay), and awaits its result.
async fn on_own_thread<T, F>(work: impl FnOnce() -> F + Send + 'static) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = anyhow::Result<T>>,
{
    let thread = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(work())
    });
    tokio::task::spawn_blocking(move || {
        thread.join().map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?
    })
    .await?
}

// ---------------------------------------------------------------------------------------------
// Latency
// ---------------------------------------------------------------------------------------------

async fn latency(daemon: &Rvirtd, watchers: usize, mutations: usize) -> anyhow::Result<LatencyReport> {
    let conn = daemon.connect().await?;
    let domain = conn.lookup_by_name(&domain_name(0)).await?;
    let start = conn.list_all_domains(ListFlags::empty()).await?;
    let (sender, mut receipts) = tokio::sync::mpsc::unbounded_channel::<(usize, u64, Instant)>();
    let mut tasks = Vec::new();
    for watcher in 0..watchers {
        // One connection (one HTTP/2 channel) per watcher, as separate programs would have.
        let watcher_conn = daemon.connect().await?;
        let mut stream =
            watcher_conn.watch_domain_events(watch_from(start.incarnation, start.generation)).await?;
        let sender = sender.clone();
        tasks.push(tokio::spawn(async move {
            let _conn = watcher_conn;
            while let Ok(Some(message)) = stream.message().await {
                let received = Instant::now();
                for event in message.events.iter().filter(|e| is_change(e)) {
                    if sender.send((watcher, event.generation, received)).is_err() {
                        return;
                    }
                }
            }
        }));
    }
    drop(sender);
    let (mut samples, mut from_call, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    let (mut lost, mut before_return) = (0, 0);
    for i in 0..mutations {
        let called = Instant::now();
        let change = if i % 2 == 0 { domain.suspend().await? } else { domain.resume().await? };
        let answered = Instant::now();
        calls.push(answered - called);
        let mut seen = vec![false; watchers];
        let mut count = 0;
        let deadline = tokio::time::Instant::from_std(answered + Duration::from_secs(2));
        while count < watchers {
            match tokio::time::timeout_at(deadline, receipts.recv()).await {
                Ok(Some((watcher, generation, received)))
                    if generation == change.generation && !seen[watcher] =>
                {
                    seen[watcher] = true;
                    count += 1;
                    before_return += usize::from(received < answered);
                    samples.push(received.saturating_duration_since(answered));
                    from_call.push(received - called);
                }
                Ok(Some(_)) => {} // a late receipt of an earlier change (already counted lost)
                Ok(None) | Err(_) => break,
            }
        }
        lost += watchers - count;
    }
    for task in tasks {
        task.abort();
    }
    if samples.is_empty() {
        bail!("latency: no watcher received anything");
    }
    let (received, from_call, calls) = (stats(samples), stats(from_call), stats(calls));
    Ok(LatencyReport {
        watchers,
        mutations,
        samples: received.samples,
        lost,
        p50_ms: received.p50_ms,
        p99_ms: received.p99_ms,
        max_ms: received.max_ms,
        from_call_p50_ms: from_call.p50_ms,
        from_call_p99_ms: from_call.p99_ms,
        call_p50_ms: calls.p50_ms,
        call_p99_ms: calls.p99_ms,
        before_return,
    })
}

// ---------------------------------------------------------------------------------------------
// Throughput
// ---------------------------------------------------------------------------------------------

/// 2 mutators, each on a thread and a connection of its own, toggling suspend/resume on its own
/// running domain as fast as it can for `seconds`: (mutations, seconds, start).
async fn mutate_flat_out(uri: &str, seconds: u64) -> anyhow::Result<(u64, f64, Instant)> {
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let mut mutators = Vec::new();
    for k in 0..2 {
        let (uri, barrier) = (uri.to_owned(), barrier.clone());
        mutators.push(tokio::spawn(on_own_thread(move || async move {
            let conn = Connection::open(&uri).await;
            let domain = match &conn {
                Ok(conn) => conn.lookup_by_name(&domain_name(k)).await.map_err(anyhow::Error::from),
                Err(error) => Err(anyhow::anyhow!("{error}")),
            };
            barrier.wait(); // even after a failure, so nobody waits for ever
            let domain = domain?;
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0u64;
            while Instant::now() < end {
                domain.suspend().await?;
                domain.resume().await?;
                n += 2;
            }
            anyhow::Ok(n)
        })));
    }
    let barrier_main = barrier.clone();
    tokio::task::spawn_blocking(move || barrier_main.wait()).await?;
    let start = Instant::now();
    let mut total = 0;
    for mutator in mutators {
        total += mutator.await??;
    }
    Ok((total, start.elapsed().as_secs_f64(), start))
}

async fn throughput(daemon: &Rvirtd, watchers: usize, seconds: u64) -> anyhow::Result<ThroughputReport> {
    let (base_n, base_s, _) = mutate_flat_out(daemon.uri(), seconds).await?;
    let conn = daemon.connect().await?;
    let start = conn.list_all_domains(ListFlags::empty()).await?;
    let epoch = Instant::now();
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..watchers).map(|_| AtomicU64::new(0)).collect());
    // Nanoseconds after `epoch` of each watcher's last event.
    let last: Arc<Vec<AtomicU64>> = Arc::new((0..watchers).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for watcher in 0..watchers {
        let watcher_conn = daemon.connect().await?;
        let mut stream =
            watcher_conn.watch_domain_events(watch_from(start.incarnation, start.generation)).await?;
        let (counts, last) = (counts.clone(), last.clone());
        tasks.push(tokio::spawn(async move {
            let _conn = watcher_conn;
            while let Ok(Some(message)) = stream.message().await {
                let n = message.events.iter().filter(|e| is_change(e)).count() as u64;
                counts[watcher].fetch_add(n, Ordering::Relaxed);
                last[watcher].store(epoch.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
        }));
    }
    let (n, elapsed, mutations_start) = mutate_flat_out(daemon.uri(), seconds).await?;
    // Drain: until every watcher has all n events, or the counts stop moving for 0.5 s (3 s max).
    let snapshot = || counts.iter().map(|c| c.load(Ordering::Relaxed)).collect::<Vec<_>>();
    let deadline = Instant::now() + Duration::from_secs(3);
    let (mut previous, mut stable_since) = (None, Instant::now());
    let final_counts = loop {
        let now = snapshot();
        if now.iter().min().copied().unwrap_or(0) >= n || Instant::now() > deadline {
            break now;
        }
        if previous.as_ref() != Some(&now) {
            (previous, stable_since) = (Some(now), Instant::now());
        } else if stable_since.elapsed() > Duration::from_millis(500) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for task in tasks {
        task.abort();
    }
    drop(conn);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (base2_n, base2_s, _) = mutate_flat_out(daemon.uri(), seconds).await?;
    let baseline = (base_n + base2_n) as f64 / (base_s + base2_s);
    let last_event = last.iter().map(|l| l.load(Ordering::Relaxed)).max().unwrap_or(0);
    let last_after_start = Duration::from_nanos(last_event).saturating_sub(mutations_start - epoch);
    let span = elapsed.max(last_after_start.as_secs_f64());
    let mean_count = final_counts.iter().sum::<u64>() as f64 / watchers as f64;
    Ok(ThroughputReport {
        watchers,
        seconds,
        events_per_s: mean_count / span,
        mutations_per_s: n as f64 / elapsed,
        baseline_mutations_per_s: baseline,
        mutations_ratio: (n as f64 / elapsed) / baseline,
        baseline_before_after: [base_n as f64 / base_s, base2_n as f64 / base2_s],
        delivered_ratio: if n > 0 { mean_count / n as f64 } else { 0.0 },
    })
}

// ---------------------------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------------------------

async fn memory(watchers: usize) -> anyhow::Result<MemoryReport> {
    let (before, after, steps) = idle_watchers_rss(watchers, false).await?;
    let one_connection = match idle_watchers_rss(watchers, true).await {
        Ok((b, a, _)) => Ok((a as f64 - b as f64) / watchers as f64),
        Err(error) => Err(format!("{error:#}")),
    };
    Ok(MemoryReport {
        watchers,
        bytes_per_watcher: (after as f64 - before as f64) / watchers as f64,
        rss_before_bytes: before,
        rss_after_bytes: after,
        marginal_bytes_per_watcher: match (steps.first(), steps.last()) {
            (Some(&(n0, r0)), Some(&(n1, r1))) if n1 > n0 => (r1 as f64 - r0 as f64) / (n1 - n0) as f64,
            _ => f64::NAN,
        },
        rss_steps: steps,
        one_connection_bytes_per_watcher: one_connection,
    })
}

/// A fresh daemon's RSS before and 1 s after `watchers` idle watch streams: each on its own
/// connection, or all on one.
async fn idle_watchers_rss(
    watchers: usize,
    one_connection: bool,
) -> anyhow::Result<(u64, u64, Vec<(usize, u64)>)> {
    let daemon = Rvirtd::start().await?;
    let conn = daemon.connect().await?;
    let start = conn.list_all_domains(ListFlags::empty()).await?;
    let before = settled_rss(&daemon).await?;
    let mut held = Vec::new();
    let mut steps = Vec::new();
    for opened in 1..=watchers {
        let watcher_conn = if one_connection { conn.clone() } else { daemon.connect().await? };
        // The stream is open (the daemon has registered it) once its response headers are in.
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            watcher_conn.watch_domain_events(watch_from(start.incarnation, start.generation)),
        )
        .await
        .context("a watch stream did not open within 10 s")??;
        held.push((watcher_conn, stream));
        if opened % (watchers / 4).max(1) == 0 {
            steps.push((opened, daemon.rss()?));
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = daemon.rss()?;
    drop(held);
    drop(conn);
    daemon.stop().await;
    Ok((before, after, steps))
}

// ---------------------------------------------------------------------------------------------
// A stalled watcher
// ---------------------------------------------------------------------------------------------

/// `bench --stalled-watcher-child URI`: opens a watch from the current generation, prints
/// "ready", then reads it; each "count" line on stdin answers one JSON line (events received,
/// the last generation, how the stream ended). Ends at EOF on stdin.
pub(crate) fn stalled_child(uri: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let conn = Connection::open(uri).await?;
        let start = conn.list_all_domains(ListFlags::empty()).await?;
        let mut stream = conn.watch_domain_events(watch_from(start.incarnation, start.generation)).await?;
        println!("ready");
        std::io::stdout().flush()?;
        let (lines_in, mut lines) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if lines_in.send(line).is_err() {
                    break;
                }
            }
        });
        let (mut received, mut last_generation, mut end) = (0u64, 0u64, None::<String>);
        loop {
            tokio::select! {
                message = stream.message(), if end.is_none() => match message {
                    Ok(Some(message)) => {
                        for event in message.events.iter().filter(|e| is_change(e)) {
                            received += 1;
                            last_generation = event.generation;
                        }
                    }
                    Ok(None) => end = Some("the stream ended".into()),
                    Err(status) => {
                        let error = rvirt::Error::from(status);
                        end = Some(format!("{:?}: {}", error.code, error.message));
                    }
                },
                line = lines.recv() => match line.as_deref() {
                    Some("count") => {
                        let report = serde_json::json!({
                            "received": received, "last_generation": last_generation, "end": end,
                        });
                        println!("{report}");
                        std::io::stdout().flush()?;
                    }
                    Some(_) => {}
                    None => return anyhow::Ok(()),
                },
            }
        }
    })
}

/// A fresh daemon, a mutator at `rate` changes/s for `seconds`, RSS sampled every 0.5 s; with
/// `watcher`, one watcher in a child process that is SIGSTOPped before the first change.
async fn stalled(rate: u64, seconds: u64, grace: u64, watcher: bool) -> anyhow::Result<StalledReport> {
    // The connection module's debug lines say when the daemon decides to cut a client off.
    let daemon = Rvirtd::start_logging("warn,rvirtd::connections=debug").await?;
    let conn = daemon.connect().await?;
    let domain = conn.domain(running_domain(&conn, 0).await?);
    // A second of the same churn first: the daemon's first changes start threads and allocator
    // heaps once (2-4 MiB here), which would otherwise count as the stalled watcher's.
    let warm_up = Instant::now();
    for n in 0..rate as u32 {
        tokio::time::sleep_until((warm_up + Duration::from_secs(1) * n / rate as u32).into()).await;
        if n % 2 == 0 {
            domain.suspend().await?
        } else {
            domain.resume().await?
        };
    }
    if rate % 2 == 1 {
        domain.resume().await?;
    }
    let pid = daemon.pid();
    let mut child = None;
    let mut watcher_sockets = HashSet::new();
    if watcher {
        let before = socket_inodes(pid);
        let mut process = tokio::process::Command::new(std::env::current_exe()?)
            .args(["bench", "--stalled-watcher-child", daemon.uri()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdout = tokio::io::BufReader::new(process.stdout.take().context("child stdout")?).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), stdout.next_line()).await;
        if !matches!(ready, Ok(Ok(Some(ref line))) if line == "ready") {
            bail!("the stalled watcher did not get ready: {ready:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        watcher_sockets = &socket_inodes(pid) - &before;
        if watcher_sockets.len() != 1 {
            eprintln!("  stalled: expected 1 new rvirtd socket, saw {}", watcher_sockets.len());
        }
        signal(process.id().context("child pid")?, "STOP")?;
        child = Some((process, stdout));
    }
    let base = settled_rss(&daemon).await?;
    let made = AtomicU64::new(0);
    // When the watcher's socket went from the daemon's descriptors, and the RSS just before.
    let dropped = Mutex::new(None::<(f64, u64)>);
    // When the daemon logged that it closes a connection whose client reads nothing.
    let decided = Mutex::new(None::<f64>);
    let samples = Mutex::new(Vec::<(f64, u64, u64)>::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let start = Instant::now();
    let sampler = async {
        // The socket every 100 ms, the RSS every 500 ms (the script samples both every 500 ms).
        for tick in 0u32.. {
            let t = start.elapsed().as_secs_f64();
            if tick % 5 == 0 {
                samples.lock().unwrap().push((t, daemon.rss().unwrap_or(0), made.load(Ordering::Relaxed)));
            }
            if watcher
                && decided.lock().unwrap().is_none()
                && daemon.process.logs().iter().any(|l| l.contains(STALL_LOG))
            {
                *decided.lock().unwrap() = Some(t);
            }
            if !watcher_sockets.is_empty()
                && dropped.lock().unwrap().is_none()
                && watcher_sockets.is_disjoint(&socket_inodes(pid))
            {
                let before = samples.lock().unwrap().last().map_or(0, |s| s.1);
                *dropped.lock().unwrap() = Some((t, before));
                eprintln!("  stalled: rvirtd closed the watcher's connection at {t:.1} s");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep_until((start + Duration::from_millis(100) * (tick + 1)).into()) => {}
            }
        }
    };
    let churn = async {
        // The changes' generations and when they were made, to date what the watcher received.
        let mut made_at = Vec::new();
        let interval = Duration::from_secs_f64(1.0 / rate as f64);
        let end = start + Duration::from_secs(seconds);
        let mut events = 0u64;
        let result = async {
            loop {
                let due = start + interval * events as u32;
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let change =
                    if events.is_multiple_of(2) { domain.suspend().await? } else { domain.resume().await? };
                made_at.push((change.generation, due.duration_since(start).as_secs_f64()));
                events += 1;
                made.store(events, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }
        .await;
        let mutate_s = start.elapsed().as_secs_f64();
        // Not cut off yet: the daemon still has bytes for it, so wait (`grace`, no more changes).
        let wait_until = Instant::now() + Duration::from_secs(grace);
        while result.is_ok()
            && !watcher_sockets.is_empty()
            && dropped.lock().unwrap().is_none()
            && Instant::now() < wait_until
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // After a drop, give the daemon a second to free what it held before the last sample.
        let dropped_at = *dropped.lock().unwrap();
        if let Some((t, _)) = dropped_at {
            tokio::time::sleep_until((start + Duration::from_secs_f64(t + 1.0)).into()).await;
        }
        stop.cancel();
        result.map(|()| (made_at, events, mutate_s))
    };
    let ((), churned) = tokio::join!(sampler, churn);
    let (made_at, events, mutate_s) = churned?;
    let dropped_at = *dropped.lock().unwrap();
    samples.lock().unwrap().push((start.elapsed().as_secs_f64(), daemon.rss()?, events));
    let mut report = StalledReport {
        rate,
        seconds,
        events,
        rate_achieved_per_s: events as f64 / mutate_s,
        rss_base_bytes: base,
        ..Default::default()
    };
    if let Some((mut process, mut stdout)) = child {
        signal(process.id().context("child pid")?, "CONT")?;
        tokio::time::sleep(Duration::from_secs(1)).await; // let it read what is in its socket
        let mut stdin = process.stdin.take().context("child stdin")?;
        stdin.write_all(b"count\n").await?;
        stdin.flush().await?;
        let line = tokio::time::timeout(Duration::from_secs(10), stdout.next_line()).await;
        let answer: Value = match line {
            Ok(Ok(Some(line))) => serde_json::from_str(&line)?,
            other => bail!("the stalled watcher did not report: {other:?}"),
        };
        drop(stdin);
        if tokio::time::timeout(Duration::from_secs(5), process.wait()).await.is_err() {
            let _ = process.kill().await;
        }
        report.closed_after_resume =
            Some(!watcher_sockets.is_empty() && watcher_sockets.is_disjoint(&socket_inodes(pid)));
        report.watcher_received = answer["received"].as_u64();
        report.watcher_end = answer["end"].as_str().map(str::to_owned);
        let last_generation = answer["last_generation"].as_u64().unwrap_or(0);
        report.last_delivered_change_at_s =
            made_at.iter().find(|(generation, _)| *generation == last_generation).map(|(_, t)| *t);
        report.dropped_after_s = dropped_at.map(|(t, _)| t);
        report.daemon_logged_close_at_s = *decided.lock().unwrap();
        report.dropped_while_churning = dropped_at.map(|(t, _)| t <= mutate_s);
        report.rss_change_at_drop_bytes =
            dropped_at.map(|(_, before)| daemon.rss().unwrap_or(0) as i64 - before as i64);
    }
    // Growth = the largest rise over the lowest RSS before it, as the script computes it.
    let samples = samples.lock().unwrap().clone();
    let (mut low, mut growth, mut floor) = (base, 0i64, base);
    for &(_, rss, _) in &samples {
        low = low.min(rss);
        if rss as i64 - low as i64 > growth {
            (growth, floor) = (rss as i64 - low as i64, low);
        }
    }
    report.rss_growth_bytes = growth;
    report.rss_end_growth_bytes = samples.last().map_or(0, |s| s.1 as i64 - floor as i64);
    report.rss_samples =
        samples.iter().map(|&(t, rss, _)| ((t * 10.0).round() / 10.0, rss as i64 - base as i64)).collect();
    drop(conn);
    daemon.stop().await;
    Ok(report)
}

/// kill(1) with a signal name: xtask links no libc. Only for processes this benchmark started.
fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = std::process::Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status()?;
    if !status.success() {
        bail!("kill -{name} {pid} failed");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Churn: missed, silent and lost
// ---------------------------------------------------------------------------------------------

/// One acknowledged change of the churn.
#[derive(Debug, Clone, Copy)]
struct Churned {
    generation: u64,
    domain: u32,
    defined_after: bool,
}

/// A churner on a thread of its own: the pool's even domains defined first (logged too), then
/// define/undefine round robin at `rate` changes/s until `stop`.
struct Churn {
    log: Arc<Mutex<Vec<Churned>>>,
    /// The latest acknowledged generation.
    acknowledged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// The first change that is not part of the pool's set-up.
    started: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Churn {
    fn pool(rate: u64) -> u32 {
        (rate as u32 / 2).max(10)
    }

    async fn start(uri: &str, rate: u64) -> anyhow::Result<Self> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let acknowledged = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(usize::MAX));
        let (ready_in, ready) = tokio::sync::oneshot::channel();
        let task = {
            let (uri, log, acknowledged, stop, started) =
                (uri.to_owned(), log.clone(), acknowledged.clone(), stop.clone(), started.clone());
            tokio::spawn(on_own_thread(move || async move {
                let conn = Connection::open(&uri).await?;
                let pool = Churn::pool(rate);
                let mut defined = vec![false; pool as usize];
                let record = |generation, domain, defined_after| {
                    log.lock().unwrap().push(Churned { generation, domain, defined_after });
                    acknowledged.fetch_max(generation, Ordering::AcqRel);
                };
                for k in (0..pool).step_by(2) {
                    let change = conn.define_xml(&domain_xml(POOL_BASE + k), 0).await?;
                    record(change.generation, POOL_BASE + k, true);
                    defined[k as usize] = true;
                }
                started.store(log.lock().unwrap().len(), Ordering::Release);
                let _ = ready_in.send(());
                let (interval, start) = (Duration::from_secs_f64(1.0 / rate as f64), Instant::now());
                let mut n = 0u32;
                while !stop.load(Ordering::Acquire) {
                    tokio::time::sleep_until((start + interval * n).into()).await;
                    let k = n % pool;
                    let i = POOL_BASE + k;
                    let change = if defined[k as usize] {
                        conn.domain(handle(i)).undefine(UndefineFlags::empty()).await?
                    } else {
                        conn.define_xml(&domain_xml(i), 0).await?
                    };
                    defined[k as usize] = !defined[k as usize];
                    record(change.generation, i, defined[k as usize]);
                    n += 1;
                }
                // Leave the pool undefined.
                for k in 0..pool {
                    if defined[k as usize] {
                        let i = POOL_BASE + k;
                        conn.domain(handle(i)).undefine(UndefineFlags::empty()).await?;
                    }
                }
                anyhow::Ok(())
            }))
        };
        let task = tokio::spawn(async move { task.await? });
        if ready.await.is_err() {
            return Err(task.await?.err().unwrap_or_else(|| anyhow::anyhow!("the churner stopped")));
        }
        Ok(Churn { log, acknowledged, stop, started, task })
    }

    /// Stops the churn; the log of every change after the set-up, and the set-up's.
    async fn stop(self) -> anyhow::Result<(Vec<Churned>, Vec<Churned>)> {
        self.stop.store(true, Ordering::Release);
        self.task.await??;
        let mut log = self.log.lock().unwrap().clone();
        let churn = log.split_off(self.started.load(Ordering::Acquire).min(log.len()));
        Ok((log, churn))
    }
}

/// Domain `i`'s handle, from its name and UUID (parsed: xtask does not link the uuid crate).
fn handle(i: u32) -> DomainId {
    let uuid = format!("52540000-0000-4000-9000-{i:012x}").parse().expect("a valid UUID");
    DomainId { name: domain_name(i), uuid, id: -1 }
}

/// One client start-up of the gap scenario, as it saw it.
struct Cycle {
    /// The initial state's generation.
    generation: u64,
    /// The pool domains in the initial state.
    listed: HashSet<u32>,
    /// Changes received after it: generation, domain, defined after.
    received: Vec<(u64, Option<u32>, bool)>,
    /// The latest acknowledged generation when the 25 ms window ended.
    acknowledged: u64,
    synced_after: Duration,
}

async fn gap(daemon: &Rvirtd, rate: u64, seconds: u64) -> anyhow::Result<GapReport> {
    let churn = Churn::start(daemon.uri(), rate).await?;
    let mut conns = Vec::new();
    for _ in 0..4 {
        conns.push(daemon.connect().await?);
    }
    let mut cycles = Vec::new();
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        let conn = &conns[cycles.len() % conns.len()];
        let started = Instant::now();
        let mut informer = conn.watch_all(ListFlags::empty());
        let generation = loop {
            if let Update::Synced { generation, .. } = informer.next().await? {
                break generation;
            }
        };
        let synced_after = started.elapsed();
        let listed = informer.domains().values().filter_map(|d| pool_index(&d.domain.name)).collect();
        let mut received = Vec::new();
        let mut take = |update: Update| {
            if let Update::Changed(event) = update {
                let domain = event.domain.as_ref().and_then(|d| pool_index(&d.domain.name));
                received.push((event.generation, domain, event.kind != rvirt::EventKind::Removed));
            }
        };
        let window = tokio::time::Instant::now() + Duration::from_millis(25);
        while let Ok(update) = tokio::time::timeout_at(window, informer.next()).await {
            take(update?);
        }
        let acknowledged = churn.acknowledged.load(Ordering::Acquire);
        let catch_up = tokio::time::Instant::now() + Duration::from_secs(1);
        while informer.generation() < acknowledged {
            match tokio::time::timeout_at(catch_up, informer.next()).await {
                Ok(update) => take(update?),
                Err(_) => break,
            }
        }
        cycles.push(Cycle { generation, listed, received, acknowledged, synced_after });
    }
    let (setup, log) = churn.stop().await?;
    let mut report =
        GapReport { rate, seconds, cycles: cycles.len(), changes: log.len(), ..Default::default() };
    let all: Vec<Churned> = setup.iter().chain(&log).copied().collect();
    let by_generation: HashMap<u64, Churned> = all.iter().map(|c| (c.generation, *c)).collect();
    let pool = Churn::pool(rate);
    for cycle in &cycles {
        // The pool at the initial state's generation, from the log.
        let mut present = HashSet::new();
        for change in all.iter().take_while(|c| c.generation <= cycle.generation) {
            if change.defined_after {
                present.insert(change.domain);
            } else {
                present.remove(&change.domain);
            }
        }
        report.expected += pool as usize;
        report.missed_in_state += present.symmetric_difference(&cycle.listed).count();
        let mut seen = HashSet::new();
        for &(generation, domain, defined) in &cycle.received {
            let matches = by_generation
                .get(&generation)
                .is_some_and(|c| Some(c.domain) == domain && c.defined_after == defined);
            if !matches || !seen.insert(generation) {
                report.wrong_or_duplicate += 1;
            }
        }
        let due: Vec<_> = all
            .iter()
            .filter(|c| c.generation > cycle.generation && c.generation <= cycle.acknowledged)
            .collect();
        report.expected += due.len();
        report.missed_events += due.iter().filter(|c| !seen.contains(&c.generation)).count();
        if !due.is_empty() && cycle.received.is_empty() {
            report.silent += 1;
        }
    }
    report.missed = report.missed_in_state + report.missed_events;
    report.missed_per_1000 = 1000.0 * report.missed as f64 / cycles.len().max(1) as f64;
    report.start_to_synced_p50_ms = stats(cycles.iter().map(|c| c.synced_after).collect()).p50_ms;
    Ok(report)
}

async fn reconnect(daemon: &Rvirtd, rate: u64, seconds: u64) -> anyhow::Result<ReconnectReport> {
    let churn = Churn::start(daemon.uri(), rate).await?;
    let start = daemon.connect().await?.list_all_domains(ListFlags::empty()).await?;
    let (mut last, mut received, mut reconnects, mut while_disconnected) =
        (start.generation, Vec::new(), 0, 0);
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut dropped_at_generation = None;
    loop {
        let churning = Instant::now() < end;
        if !churning {
            churn.stop.store(true, Ordering::Release);
        }
        // A new connection each time, resuming after the last generation received.
        let conn = daemon.connect().await?;
        let mut stream = conn.watch_domain_events(watch_from(start.incarnation, last)).await?;
        if let Some(dropped) = dropped_at_generation.take() {
            while_disconnected += churn.acknowledged.load(Ordering::Acquire).saturating_sub(dropped);
        }
        // Deterministic spread of stream lifetimes over 50-150 ms.
        let life = Duration::from_millis(if churning { 50 + (reconnects as u64 * 37) % 101 } else { 2_000 });
        let until = tokio::time::Instant::now() + life;
        loop {
            if !churning && churn.task.is_finished() && last >= churn.acknowledged.load(Ordering::Acquire) {
                break;
            }
            match tokio::time::timeout_at(until, stream.message()).await {
                Ok(Ok(Some(message))) => {
                    for event in message.events.iter().filter(|e| is_change(e)) {
                        received.push(event.generation);
                        last = event.generation;
                    }
                }
                Ok(Ok(None)) | Ok(Err(_)) | Err(_) => break,
            }
        }
        drop(stream);
        drop(conn);
        if !churning {
            break;
        }
        reconnects += 1;
        dropped_at_generation = Some(churn.acknowledged.load(Ordering::Acquire));
        // Away for 10-60 ms, so that changes happen while no stream is open.
        tokio::time::sleep(Duration::from_millis(10 + (reconnects as u64 * 23) % 51)).await;
    }
    let (_, log) = churn.stop().await?;
    // Changes after the start: the churn, and the pool's clean-up after it stopped, which the
    // last stream may or may not have reached (left out).
    let expected: HashSet<u64> = log.iter().map(|c| c.generation).filter(|g| *g > start.generation).collect();
    let unique: HashSet<u64> = received.iter().copied().collect();
    Ok(ReconnectReport {
        seconds,
        reconnects,
        changes: expected.len(),
        changes_while_disconnected: while_disconnected,
        delivered: expected.intersection(&unique).count(),
        lost: expected.difference(&unique).count(),
        duplicates: received.len() - unique.len(),
        out_of_order: received.windows(2).filter(|w| w[1] <= w[0]).count(),
    })
}

// ---------------------------------------------------------------------------------------------
// libvirtd's side
// ---------------------------------------------------------------------------------------------

/// One scenario of `xtask/libvirt_watch_bench.py` against `libvirtd`: its JSON line, or why not.
/// Its progress lines are shown as they come.
async fn script_run(
    libvirtd: &Libvirtd,
    script: &Path,
    scenario: &str,
    args: &[String],
    timeout_s: u64,
) -> Result<Value, String> {
    eprintln!("  libvirtd: {scenario} {}", args.join(" "));
    let mut child = tokio::process::Command::new("/usr/bin/python3")
        .arg(script)
        .arg(libvirtd.uri())
        .arg(libvirtd.pid().to_string())
        .arg(scenario)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut stdout = child.stdout.take().expect("piped");
    let last_error = Arc::new(Mutex::new(String::new()));
    let progress = {
        let last_error = last_error.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                eprintln!("    {line}");
                *last_error.lock().unwrap() = line;
            }
        })
    };
    let run = async {
        let mut output = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut output).await.map_err(|e| e.to_string())?;
        let status = child.wait().await.map_err(|e| e.to_string())?;
        let _ = progress.await;
        let line = output.lines().last().filter(|_| status.success()).map(str::to_owned);
        line.ok_or_else(|| format!("{status}: {}", last_error.lock().unwrap()))
    };
    let line = match tokio::time::timeout(Duration::from_secs(timeout_s), run).await {
        Ok(line) => line?,
        Err(_) => return Err(format!("no answer within {timeout_s} s")),
    };
    let value: Value = serde_json::from_str(&line).map_err(|e| format!("unexpected output {line:?}: {e}"))?;
    eprintln!("    -> {}", summary(&value));
    Ok(value)
}

/// A scenario on a libvirtd started for it (glibc reuses what earlier work freed).
async fn fresh_libvirtd_run(
    root: &Path,
    script: &Path,
    scenario: &str,
    args: &[String],
    timeout_s: u64,
) -> Result<Value, String> {
    let libvirtd = match Libvirtd::start(root).await {
        Ok(Some(libvirtd)) => libvirtd,
        Ok(None) => return Err("libvirtd did not start".into()),
        Err(error) => return Err(format!("libvirtd did not start: {error:#}")),
    };
    let result = script_run(&libvirtd, script, scenario, args, timeout_s).await;
    libvirtd.stop();
    result
}

/// The script's headline fields, for the progress line.
fn summary(value: &Value) -> String {
    let Some(object) = value.as_object() else { return value.to_string() };
    object
        .iter()
        .filter(|(key, v)| !v.is_array() && !v.is_object() && key.as_str() != "scenario")
        .take(5)
        .map(|(key, v)| format!("{key} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------------------------------
// Targets and the table
// ---------------------------------------------------------------------------------------------

fn lv_field(entry: Option<&Result<Value, String>>, key: &str) -> Option<f64> {
    entry?.as_ref().ok()?.get(key)?.as_f64()
}

fn targets(report: &WatchReport) -> Vec<Target> {
    let mut targets = Vec::new();
    let mut target = |target: &str, measured: String, met: Option<bool>| {
        targets.push(Target { target: target.to_owned(), measured, met });
    };
    if let Some(row) = report.latency.iter().find(|r| r.watchers == 100) {
        target("p99 under 1 ms with 100 watchers", format!("{:.3} ms", row.p99_ms), Some(row.p99_ms < 1.0));
    }
    if let Some(row) = report.throughput.iter().find(|r| r.watchers == 10) {
        target(
            "10 watchers cost the mutators at most a third of their rate (ratio >= 0.67)",
            format!("ratio {:.2}", row.mutations_ratio),
            Some(row.mutations_ratio >= 2.0 / 3.0),
        );
    }
    let lv_memory = report.libvirtd.as_ref().and_then(|lv| lv_field(lv.memory.as_ref(), "bytes_per_watcher"));
    target(
        "memory per watcher no more than libvirtd's",
        format!(
            "{:.0} B vs {}",
            report.memory.bytes_per_watcher,
            lv_memory.map_or("no libvirtd figure".into(), |b| format!("{b:.0} B"))
        ),
        lv_memory.map(|lv| report.memory.bytes_per_watcher <= lv),
    );
    // RSS moves in steps of about 2 MiB here (the allocator's), and the daemon grows by as much
    // with no watcher at all: judged on the growth beyond the no-watcher control, both shown, and
    // not judged when the control itself grew by more than the target (RSS cannot resolve it).
    let (growth, control) = (report.stalled.rss_growth_bytes, report.stalled_control.rss_growth_bytes);
    let at_close = report.stalled.rss_change_at_drop_bytes;
    target(
        "a stalled watcher holds at most 1 MiB (RSS growth beyond the no-watcher run)",
        format!(
            "{} ({} with it, {} without){}{}",
            signed_kib((growth - control) as f64),
            kib(growth as f64),
            kib(control as f64),
            at_close.map_or(String::new(), |b| format!("; {} at its close", signed_kib(b as f64))),
            if control > 1 << 20 { "; RSS steps exceed 1 MiB here" } else { "" }
        ),
        (control <= 1 << 20).then_some(growth - control <= 1 << 20),
    );
    let stalled = &report.stalled;
    target(
        "a stalled watcher is cut off within 5 s (its connection closed)",
        match (stalled.dropped_after_s, stalled.daemon_logged_close_at_s) {
            (Some(closed), _) => format!("closed after {closed:.1} s"),
            (None, Some(decided)) => format!(
                "decided after {decided:.1} s, still open after {} s",
                stalled.seconds + report.plan.stalled_grace_seconds
            ),
            (None, None) => format!("not within {} s", stalled.seconds + report.plan.stalled_grace_seconds),
        },
        Some(stalled.dropped_after_s.is_some_and(|s| s <= 5.0)),
    );
    target("0 missed", format!("{} missed", report.gap.missed), Some(report.gap.missed == 0));
    target(
        "0 lost on reconnect",
        format!("{} lost", report.reconnect.lost),
        Some(report.reconnect.lost == 0),
    );
    target("0 silent registrations", format!("{} silent", report.gap.silent), Some(report.gap.silent == 0));
    targets
}

/// "N.Nx better" / "N.Nx worse" for rvirtd against libvirtd.
fn advantage(rvirtd: f64, libvirtd: Option<f64>, lower_is_better: bool) -> String {
    let Some(libvirtd) = libvirtd else { return "-".into() };
    let ratio = if lower_is_better { libvirtd / rvirtd } else { rvirtd / libvirtd };
    if !ratio.is_finite() || ratio <= 0.0 {
        "-".into()
    } else if ratio >= 1.0 {
        format!("{ratio:.1}x better")
    } else {
        format!("{:.1}x worse", 1.0 / ratio)
    }
}

/// RSS growth per second from half the churn to its end (or the drop, when earlier), from
/// (seconds, bytes over the base) samples: a queue that grows, or a bound that holds.
fn second_half_rate(samples: &[(f64, i64)], seconds: f64, dropped: Option<f64>) -> Option<f64> {
    let end = dropped.map_or(seconds, |d| d.min(seconds));
    let at = |t: f64| samples.iter().rev().find(|s| s.0 <= t + 1e-6).copied();
    let ((t0, r0), (t1, r1)) = (at(end / 2.0)?, at(end)?);
    (t1 > t0).then(|| (r1 - r0) as f64 / (t1 - t0))
}

/// `kib` with its sign: a change.
fn signed_kib(bytes: f64) -> String {
    format!("{}{}", if bytes >= 0.0 { "+" } else { "-" }, kib(bytes.abs()))
}

fn watchers_text(n: usize) -> String {
    if n == 1 { "1 watcher".into() } else { format!("{n} watchers") }
}

fn kib(bytes: f64) -> String {
    if bytes.abs() >= 10.0 * 1024.0 { format!("{:.0} KiB", bytes / 1024.0) } else { format!("{bytes:.0} B") }
}

pub(crate) fn print_report(report: &WatchReport) {
    let plan = &report.plan;
    println!(
        "\nWatch: rvirtd WatchDomainEvents vs libvirtd domainEventRegisterAny (python3-libvirt, test driver)"
    );
    println!(
        "rvirtd's watchers are tokio tasks in the bench process, libvirt's in up to 4 Python processes; each watcher on its own connection"
    );
    let lv = report.libvirtd.as_ref();
    if let Some(reason) = &report.libvirtd_absent {
        println!("(no libvirtd figures: {reason})");
    }
    let widths = [50, 26, 26, 12];
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
    line(["", "rvirtd", "libvirtd", "rvirtd is"]);
    println!("{}", widths.map(|w| "-".repeat(w)).join("-|-"));
    let lv_cell = |entry: Option<&Result<Value, String>>, show: &dyn Fn(&Value) -> String| match entry {
        Some(Ok(value)) => show(value),
        Some(Err(error)) => format!("failed: {}", error.chars().take(18).collect::<String>()),
        None => "-".into(),
    };
    let pair = |value: &Value, a: &str, b: &str, digits: usize| {
        let get =
            |k: &str| value.get(k).and_then(Value::as_f64).map_or("?".into(), |v| format!("{v:.digits$}"));
        format!("{} / {}", get(a), get(b))
    };
    for row in &report.latency {
        let entry = lv.and_then(|lv| lv.latency.iter().find(|(w, _)| *w == row.watchers)).map(|(_, r)| r);
        line([
            &format!("latency, {}: p50 / p99 ms", watchers_text(row.watchers)),
            &format!("{:.3} / {:.3}", row.p50_ms, row.p99_ms),
            &lv_cell(entry, &|v| pair(v, "p50_ms", "p99_ms", 3)),
            &advantage(row.p99_ms, lv_field(entry, "p99_ms"), true),
        ]);
        line([
            "  from call start: p50 / p99 ms",
            &format!("{:.3} / {:.3}", row.from_call_p50_ms, row.from_call_p99_ms),
            &lv_cell(entry, &|v| pair(v, "from_call_p50_ms", "from_call_p99_ms", 3)),
            &advantage(row.from_call_p99_ms, lv_field(entry, "from_call_p99_ms"), true),
        ]);
        line([
            "  lost (of samples)",
            &format!("{} of {}", row.lost, row.samples + row.lost),
            &lv_cell(entry, &|v| {
                format!(
                    "{} of {}",
                    v["lost"],
                    v["samples"].as_u64().unwrap_or(0) + v["lost"].as_u64().unwrap_or(0)
                )
            }),
            "",
        ]);
    }
    for row in &report.throughput {
        let entry = lv.and_then(|lv| lv.throughput.iter().find(|(w, _)| *w == row.watchers)).map(|(_, r)| r);
        line([
            &format!("events/s per watcher, {}", watchers_text(row.watchers)),
            &format!("{:.0}", row.events_per_s),
            &lv_cell(entry, &|v| format!("{:.0}", v["events_per_s"].as_f64().unwrap_or(f64::NAN))),
            &advantage(row.events_per_s, lv_field(entry, "events_per_s"), false),
        ]);
        line([
            &format!("  mutations/s, {} (/ 0 watchers)", watchers_text(row.watchers)),
            &format!("{:.0} ({:.2})", row.mutations_per_s, row.mutations_ratio),
            &lv_cell(entry, &|v| {
                format!(
                    "{:.0} ({:.2})",
                    v["mutations_per_s"].as_f64().unwrap_or(f64::NAN),
                    v["mutations_ratio"].as_f64().unwrap_or(f64::NAN)
                )
            }),
            &advantage(row.mutations_per_s, lv_field(entry, "mutations_per_s"), false),
        ]);
    }
    let memory = &report.memory;
    let lv_memory = lv.and_then(|lv| lv.memory.as_ref());
    line([
        &format!("memory per idle watcher ({} connections)", memory.watchers),
        &kib(memory.bytes_per_watcher),
        &lv_cell(lv_memory, &|v| kib(v["bytes_per_watcher"].as_f64().unwrap_or(f64::NAN))),
        &advantage(memory.bytes_per_watcher, lv_field(lv_memory, "bytes_per_watcher"), true),
    ]);
    line([
        &format!(
            "  marginal ({} to {} connections)",
            memory.rss_steps.first().map_or(0, |s| s.0),
            memory.watchers
        ),
        &kib(memory.marginal_bytes_per_watcher),
        "-",
        "",
    ]);
    line([
        &format!("  {} watchers on one connection", memory.watchers),
        &memory
            .one_connection_bytes_per_watcher
            .as_ref()
            .map_or_else(|e| format!("failed: {e}"), |b| kib(*b)),
        "-",
        "",
    ]);
    let stalled = &report.stalled;
    let lv_stalled = lv.and_then(|lv| lv.stalled.as_ref());
    line([
        &format!("stalled watcher, {}/s: daemon RSS growth", stalled.rate),
        &kib(stalled.rss_growth_bytes as f64),
        &lv_cell(lv_stalled, &|v| kib(v["rss_growth_bytes"].as_f64().unwrap_or(f64::NAN))),
        &advantage(stalled.rss_growth_bytes.max(1) as f64, lv_field(lv_stalled, "rss_growth_bytes"), true),
    ]);
    let lv_rate = |v: &Value| {
        let samples: Vec<(f64, i64)> = v["rss_samples"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_i64()?))).collect())
            .unwrap_or_default();
        second_half_rate(&samples, plan.libvirt_stalled_seconds as f64, v["dropped_after_s"].as_f64())
            .map_or("-".into(), |rate| format!("{}/s", kib(rate)))
    };
    line([
        "  RSS growth/s, 2nd half of the stall (to cut-off)",
        &second_half_rate(&stalled.rss_samples, stalled.seconds as f64, stalled.dropped_after_s)
            .map_or("-".into(), |rate| format!("{}/s", kib(rate))),
        &lv_cell(lv_stalled, &lv_rate),
        "",
    ]);
    line([
        "  the same churn, no watcher (rvirtd's control)",
        &kib(report.stalled_control.rss_growth_bytes as f64),
        "-",
        "",
    ]);
    line([
        "  last change that reached its socket, at",
        &stalled.last_delivered_change_at_s.map_or("-".into(), |s| format!("{s:.1} s")),
        "-",
        "",
    ]);
    line([
        "  the daemon decides to cut it off, at",
        &stalled.daemon_logged_close_at_s.map_or("not logged".into(), |s| format!("{s:.1} s")),
        "-",
        "",
    ]);
    let watched = stalled.seconds + report.plan.stalled_grace_seconds;
    let rvirtd_closed = match (stalled.dropped_after_s, stalled.dropped_while_churning) {
        (Some(s), Some(false)) => format!("{s:.1} s (changes ended {} s)", stalled.seconds),
        (Some(s), _) => format!("{s:.1} s"),
        (None, _) => format!("not within {watched} s"),
    };
    let lv_closed = |v: &Value| {
        v["dropped_after_s"]
            .as_f64()
            .map_or(format!("not within {} s", plan.libvirt_stalled_seconds), |s| format!("{s:.1} s"))
    };
    line([
        "  its connection closed, at",
        &rvirtd_closed,
        &lv_cell(lv_stalled, &lv_closed),
        &stalled
            .dropped_after_s
            .zip(lv_field(lv_stalled, "dropped_after_s"))
            .map_or("-".into(), |(r, l)| advantage(r, Some(l), true)),
    ]);
    if stalled.dropped_after_s.is_none() {
        line([
            "  closed once the watcher read again",
            match stalled.closed_after_resume {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            },
            &lv_cell(lv_stalled, &|v| {
                if v["watcher_saw_close"].as_bool() == Some(true) { "yes".into() } else { "no".into() }
            }),
            "",
        ]);
    } else {
        line([
            "  daemon RSS change when closed",
            &stalled.rss_change_at_drop_bytes.map_or("-".into(), |b| signed_kib(b as f64)),
            &lv_cell(lv_stalled, &|v| {
                v["rss_after_drop_bytes"].as_f64().map_or("-".into(), |after| {
                    signed_kib(after - v["rss_growth_bytes"].as_f64().unwrap_or(f64::NAN))
                })
            }),
            "",
        ]);
    }
    let gap = &report.gap;
    let lv_gap = lv.and_then(|lv| lv.gap.as_ref());
    line([
        &format!("missed at start-up, {}/s churn (per 1000)", gap.rate),
        &format!("{} in {} ({:.0})", gap.missed, gap.cycles, gap.missed_per_1000),
        &lv_cell(lv_gap, &|v| {
            format!(
                "{} in {} ({:.0})",
                v["missed"],
                v["cycles"],
                v["missed_per_1000"].as_f64().unwrap_or(f64::NAN)
            )
        }),
        "",
    ]);
    line([
        "silent registrations",
        &format!("{} in {}", gap.silent, gap.cycles),
        &lv_cell(lv_gap, &|v| {
            let (blackouts, cycles) =
                (v["blackout_cycles"].as_u64().unwrap_or(0), v["cycles"].as_u64().unwrap_or(0));
            format!("{blackouts} in {}", cycles + blackouts)
        }),
        "",
    ]);
    let reconnect = &report.reconnect;
    line([
        &format!("lost on reconnect ({} reconnects, {}/s churn)", reconnect.reconnects, gap.rate),
        &format!("{} of {}", reconnect.lost, reconnect.changes),
        "no resume in libvirt",
        "",
    ]);
    println!(
        "\nrvirtd: {} changes made while the reconnecting watcher had no stream, all {} delivered once and in order ({} duplicates, {} out of order);",
        reconnect.changes_while_disconnected,
        reconnect.delivered,
        reconnect.duplicates,
        reconnect.out_of_order
    );
    println!(
        "  start-ups checked against {} expected domains and changes; {} events wrong or duplicated; start-up to initial state p50 {:.2} ms",
        gap.expected, gap.wrong_or_duplicate, gap.start_to_synced_p50_ms
    );
    println!("\nTargets:");
    for target in &report.targets {
        let verdict = match target.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not judged",
        };
        println!("  {:<76} {:<64} {verdict}", target.target, target.measured);
    }
}
