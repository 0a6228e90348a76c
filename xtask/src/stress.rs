//! `cargo xtask stress [--quick] [--domains N] [--seconds S] [--json FILE] [--rss-budget-mib M]
//! [--silent C] [--xml-mib M]`: hostile loads against one release rvirtd, each checked against its bounds.
//!
//! One rvirtd (state on tmpfs, the `[limits]` defaults written out in its config file) holds N
//! domains. After an idle baseline, each load runs for S seconds while a sampler reads the
//! daemon's /proc/PID/status every 50 ms (VmRSS, VmHWM, Threads) and one well-behaved client, on a
//! thread and a connection of its own, measures a small read (LookupDomainByName) and a mutation
//! (autostart on/off) every 20 ms, and once per load opens a fresh connection:
//!   (a) listings: many concurrent full ListAllDomains over many connections, counted by code;
//!   (b) silent connections: thousands of unix connections that never send a byte, and some that
//!       send half an HTTP/2 preface; how many the daemon closed by itself, and when;
//!   (c) answers never read: raw HTTP/2 connections (frames written by hand) asking for every
//!       domain and never taking the answers: half advertise a zero stream window and read only
//!       frame headers (to count held answers, trailers-only refusals and resets), half never read
//!       a byte;
//!   (d) a flood of ~1 MiB hostile DefineXML documents (100,000 attributes, deep nesting, 260,000
//!       elements), which must all be refused.
//! Verdict per load: peak RSS under the budget, threads under 64, the well-behaved client's p99
//! under 50 ms with no failure, and the load's own checks. Exits non-zero when one fails.

use crate::bench::{Stats, machine, stats};
use anyhow::{Context, bail};
use rvirt::Connection;
use rvirt_proto::v1;
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;

/// The daemon runs with the documented default limits; the loads are sized by them.
fn limits() -> rvirtd::config::Limits {
    rvirtd::config::Limits::default()
}
/// Verdict bounds.
const MAX_THREADS: u64 = 64;
const MAX_P99_MS: f64 = 50.0;
/// The domain the well-behaved client reads and changes.
const PROBE_DOMAIN: &str = "stress-000000";
/// The well-behaved client's longest wait for one call before it counts it as failed.
const PROBE_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What to run.
#[derive(Debug, Clone, Serialize)]
struct Plan {
    quick: bool,
    domains: u32,
    seconds: u64,
    rss_budget_mib: u64,
    silent: usize,
    half_preface: usize,
    list_connections: usize,
    list_calls_per_connection: usize,
    unread_connections: usize,
    unread_streams: u32,
    xml_connections: usize,
    xml_calls_per_connection: usize,
    xml_mib: usize,
}

/// One row of the table.
#[derive(Debug, Default, Serialize)]
struct Row {
    load: String,
    seconds: f64,
    rss_at_start_mib: f64,
    peak_rss_mib: f64,
    peak_threads: u64,
    read: Stats,
    mutation: Stats,
    probe_failures: Vec<String>,
    fresh_connection: String,
    calls: String,
    notes: Vec<String>,
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    plan: Plan,
    nofile_limit: u64,
    populate_seconds: f64,
    rows: Vec<Row>,
    peak_hwm_mib: f64,
    daemon_log_samples: Vec<String>,
}

/// Runs the task with its command-line arguments.
pub(crate) fn run_task(args: &[String]) -> anyhow::Result<()> {
    if let Some(result) = crate::rerun_in_release("stress", args) {
        return result;
    }
    let mut quick = false;
    let (mut domains, mut seconds, mut silent, mut json) = (None, None, None, None);
    let mut rss_budget_mib = 1024;
    let mut xml_mib = 1;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--quick" => quick = true,
            "--domains" => domains = Some(value()?.parse()?),
            "--seconds" => seconds = Some(value()?.parse()?),
            "--silent" => silent = Some(value()?.parse()?),
            "--rss-budget-mib" => rss_budget_mib = value()?.parse()?,
            "--xml-mib" => xml_mib = value()?.parse()?,
            "--json" => json = Some(value()?.clone()),
            other => bail!("unknown option {other}; see `cargo xtask stress --help`"),
        }
    }
    let nofile = raise_nofile_limit();
    let mut silent: usize = silent.unwrap_or(if quick { 1_000 } else { 3_000 });
    // Room for the daemon's other connections, the loads' and the process's own files.
    let room = (nofile as usize).saturating_sub(512);
    if silent > room {
        println!("silent connections capped at {room} by RLIMIT_NOFILE {nofile} (asked for {silent})");
        silent = room;
    }
    let plan = Plan {
        quick,
        domains: domains.unwrap_or(if quick { 2_000 } else { 20_000 }),
        seconds: seconds.unwrap_or(if quick { 3 } else { 10 }),
        rss_budget_mib,
        silent,
        half_preface: silent / 10,
        list_connections: if quick { 10 } else { 40 },
        list_calls_per_connection: if quick { 20 } else { 50 },
        unread_connections: if quick { 40 } else { 400 },
        unread_streams: limits().max_client_requests,
        xml_connections: if quick { 4 } else { 16 },
        xml_calls_per_connection: if quick { 8 } else { 16 },
        xml_mib,
    };
    if plan.domains == 0 {
        bail!("--domains must be at least 1");
    }
    crate::build_rvirtd()?;
    // The loads' worker threads run at nice 10: on a small machine they share the cores with the
    // daemon, and the figures should be the daemon's, not this process's decoding. The main thread
    // (which starts rvirtd) and the well-behaved client's thread keep the normal priority.
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().on_thread_start(lower_priority).build()?;
    let report = runtime.block_on(stress(plan, nofile))?;
    print_report(&report);
    if let Some(path) = &json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {path}"))?;
        println!("\nJSON written to {path}");
    }
    let failed: Vec<String> = report
        .rows
        .iter()
        .flat_map(|row| row.problems.iter().map(move |problem| format!("{}: {problem}", row.load)))
        .collect();
    if !failed.is_empty() {
        bail!("the stress test failed:\n  {}", failed.join("\n  "));
    }
    Ok(())
}

/// RLIMIT_NOFILE's soft limit raised to the hard one (with util-linux's prlimit, so no unsafe
/// code); the daemon, started later, inherits it. Returns the soft limit in effect.
fn raise_nofile_limit() -> u64 {
    let read = || -> Option<(u64, u64)> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|line| line.starts_with("Max open files"))?;
        let mut words = line.split_whitespace().skip(3);
        let parse = |word: Option<&str>| word.and_then(|w| w.parse().ok()).unwrap_or(u64::MAX);
        Some((parse(words.next()), parse(words.next())))
    };
    let Some((soft, hard)) = read() else { return 1024 };
    if soft < hard {
        let limit = format!("--nofile={hard}:{hard}");
        let raised = std::process::Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), &limit])
            .status()
            .is_ok_and(|status| status.success());
        if !raised {
            println!("could not raise RLIMIT_NOFILE from {soft} to {hard} (no prlimit?): loads are capped");
        }
    }
    read().map_or(soft, |(soft, _)| soft)
}

/// Lowers the calling thread's priority to nice 10 (with renice, so no unsafe code).
fn lower_priority() {
    if let Some(tid) = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|link| link.file_name().map(|tid| tid.to_string_lossy().into_owned()))
    {
        let _ = std::process::Command::new("renice")
            .args(["-n", "10", "-p", &tid])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The daemon under test and everything measuring it.
struct Ctx {
    process: DaemonProcess,
    socket: PathBuf,
    uri: String,
    sampler: Sampler,
    probe: Probe,
    plan: Plan,
    _dir: tempfile::TempDir,
}

async fn stress(plan: Plan, nofile: u64) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
    let config = dir.path().join("rvirtd.toml");
    std::fs::write(&config, config_text(plan.rss_budget_mib))?;
    let dirs = DaemonDirs::under(dir.path());
    let config_arg = config.display().to_string();
    let process = DaemonProcess::start_with(&dirs, &["--config", &config_arg, "--log-filter", "warn"])
        .await
        .map_err(|(status, logs)| anyhow::anyhow!("rvirtd failed ({status}): {}", logs.join("\n")))?;
    println!(
        "stress: rvirtd pid {} on {} (tmpfs: {}), RLIMIT_NOFILE {nofile}, RSS budget {} MiB",
        process.pid(),
        dir.path().display(),
        dir.path().starts_with("/dev/shm"),
        plan.rss_budget_mib
    );
    let started = std::time::Instant::now();
    populate(&process.uri, plan.domains).await?;
    let populate_seconds = started.elapsed().as_secs_f64();
    println!("  {} domains defined in {populate_seconds:.1} s", plan.domains);
    let sampler = Sampler::start(process.pid());
    let probe = Probe::start(process.uri.clone())?;
    let ctx = Ctx {
        socket: dirs.socket.clone(),
        uri: process.uri.clone(),
        process,
        sampler,
        probe,
        plan: plan.clone(),
        _dir: dir,
    };
    let seconds = Duration::from_secs(plan.seconds);
    let mut rows = Vec::new();
    rows.push(phase(&ctx, "idle", seconds, |_, _| async { Ok(Outcome::default()) }).await?);
    rows.push(phase(&ctx, "(a) listings", seconds, |counts, end| listings(&ctx, counts, end)).await?);
    // Long enough for the handshake timeout to close what it should.
    let silent_time = seconds.max(Duration::from_secs(limits().handshake_timeout_secs + 3));
    rows.push(phase(&ctx, "(b) silent conns", silent_time, |counts, end| silent(&ctx, counts, end)).await?);
    rows.push(phase(&ctx, "(c) unread answers", seconds, |counts, end| unread(&ctx, counts, end)).await?);
    rows.push(phase(&ctx, "(d) large XML", seconds, |counts, end| large_xml(&ctx, counts, end)).await?);
    rows.push(
        phase(&ctx, "idle after", seconds.min(Duration::from_secs(3)), |_, _| async {
            Ok(Outcome::default())
        })
        .await?,
    );
    ctx.probe.stop()?;
    let peak_hwm_mib = read_status(ctx.process.pid()).map_or(f64::NAN, |s| mib(s.hwm_kib));
    ctx.sampler.stop();
    let mut daemon_log_samples: Vec<String> = Vec::new();
    for line in ctx.process.logs() {
        // One line per kind of message: strip the timestamp-like prefix by keeping the tail.
        let key: String = line.split_whitespace().skip(2).take(6).collect::<Vec<_>>().join(" ");
        if !daemon_log_samples.iter().any(|seen| seen.contains(&key)) && daemon_log_samples.len() < 12 {
            daemon_log_samples.push(line.chars().take(300).collect());
        }
    }
    let log_lines = ctx.process.logs().len();
    if log_lines > 0 {
        println!("\nrvirtd logged {log_lines} lines at warn or above");
    }
    ctx.process.terminate().await;
    Ok(Report {
        machine: machine(),
        plan,
        nofile_limit: nofile,
        populate_seconds,
        rows,
        peak_hwm_mib,
        daemon_log_samples,
    })
}

/// The daemon's config: no `[limits]` table, so the documented defaults apply.
fn config_text(rss_budget_mib: u64) -> String {
    format!(
        "# Written by `cargo xtask stress`: the default limits. The memory budget is not a daemon\n\
         # setting: the stress test checks that the daemon's peak VmRSS stays under {rss_budget_mib} MiB.\n"
    )
}

/// N domains defined by 4 clients at once, each on its own connection.
async fn populate(uri: &str, n: u32) -> anyhow::Result<()> {
    let workers = 4;
    let started = Instant::now();
    let done = Arc::new(AtomicU32::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..workers {
        let conn = Connection::open(uri).await?;
        let done = done.clone();
        tasks.spawn(async move {
            for i in (worker..n).step_by(workers as usize) {
                conn.define_xml(&rvirt_tests::domain_xml(&format!("stress-{i:06}"), i), 0).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    let all = async {
        while let Some(result) = tasks.join_next().await {
            result??;
        }
        anyhow::Ok(())
    };
    let progress = async {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let count = done.load(Ordering::Relaxed);
            println!("  defining: {count}/{n} domains, {:.0} s", started.elapsed().as_secs_f64());
        }
    };
    let bounded = async {
        tokio::select! {
            result = all => result,
            () = progress => unreachable!("progress never ends"),
        }
    };
    tokio::time::timeout(Duration::from_secs(900), bounded).await.context("defining took over 15 minutes")?
}

/// Calls counted by outcome, with the first message seen for each.
#[derive(Debug, Default)]
struct Counts(Mutex<BTreeMap<String, (u64, String)>>);

impl Counts {
    fn add(&self, key: &str, n: u64) {
        self.add_with(key, n, String::new);
    }

    fn add_with(&self, key: &str, n: u64, message: impl FnOnce() -> String) {
        let mut map = self.0.lock().unwrap();
        match map.get_mut(key) {
            Some(entry) => entry.0 += n,
            None => {
                map.insert(key.to_owned(), (n, message()));
            }
        }
    }

    fn get(&self, key: &str) -> u64 {
        self.0.lock().unwrap().get(key).map_or(0, |entry| entry.0)
    }

    fn summary(&self) -> String {
        let map = self.0.lock().unwrap();
        map.iter()
            .filter(|(_, (n, _))| *n > 0)
            .map(|(key, (n, _))| format!("{key} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn messages(&self) -> Vec<String> {
        let map = self.0.lock().unwrap();
        map.iter()
            .filter(|(_, (_, message))| !message.is_empty())
            .map(|(key, (_, message))| format!("{key}: {}", message.chars().take(240).collect::<String>()))
            .collect()
    }
}

/// A gRPC status code's name.
fn code_name(code: i32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code).ok().and_then(|code| NAMES.get(code)).copied().unwrap_or("code?")
}

/// What a load found besides its counts.
#[derive(Debug, Default)]
struct Outcome {
    /// Replaces the counts in the table.
    calls: Option<String>,
    notes: Vec<String>,
    problems: Vec<String>,
}

/// Runs one load until `duration` is over, measuring the daemon and the well-behaved client.
async fn phase<'a, F, Fut>(ctx: &'a Ctx, name: &str, duration: Duration, load: F) -> anyhow::Result<Row>
where
    F: FnOnce(Arc<Counts>, Instant) -> Fut,
    Fut: Future<Output = anyhow::Result<Outcome>> + 'a,
{
    let pid = ctx.process.pid();
    let rss_at_start = read_status(pid).map_or(0, |s| s.rss_kib);
    println!("{name}: {:.0} s (daemon RSS {:.0} MiB)", duration.as_secs_f64(), mib(rss_at_start));
    ctx.sampler.take();
    ctx.probe.take();
    let started = Instant::now();
    let end = started + duration;
    let counts = Arc::new(Counts::default());
    let work = load(counts.clone(), end);
    let progress = async {
        let mut fresh_asked = false;
        loop {
            tokio::time::sleep(Duration::from_secs(2).min(duration / 2)).await;
            if !fresh_asked && Instant::now() >= started + duration / 2 {
                ctx.probe.fresh.store(true, Ordering::Relaxed);
                fresh_asked = true;
            }
            let peaks = ctx.sampler.peek();
            println!(
                "  {name} {:>4.1} s: peak RSS {:.0} MiB, threads {}; {}",
                started.elapsed().as_secs_f64(),
                mib(peaks.rss_kib),
                peaks.threads,
                counts.summary()
            );
        }
    };
    let bounded = async {
        tokio::select! {
            outcome = work => outcome,
            () = progress => unreachable!("progress never ends"),
        }
    };
    let mut outcome = match tokio::time::timeout(duration + Duration::from_secs(60), bounded).await {
        Ok(outcome) => outcome?,
        Err(_) => Outcome {
            problems: vec!["the load did not end within 60 s of its time".into()],
            ..Outcome::default()
        },
    };
    let seconds = started.elapsed().as_secs_f64();
    // The last samples; then let the daemon drop what the load left.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let peaks = ctx.sampler.take();
    let probe = ctx.probe.take();
    if !alive(pid) {
        outcome.problems.push("rvirtd is gone".into());
    }
    let read = stats(probe.reads);
    let mutation = stats(probe.mutations);
    let budget = ctx.plan.rss_budget_mib as f64;
    if mib(peaks.rss_kib) >= budget {
        outcome
            .problems
            .push(format!("peak RSS {:.0} MiB is over the budget of {budget:.0} MiB", mib(peaks.rss_kib)));
    }
    if peaks.threads >= MAX_THREADS {
        outcome.problems.push(format!("{} threads (bound {MAX_THREADS})", peaks.threads));
    }
    if read.samples == 0 || mutation.samples == 0 {
        outcome.problems.push("the well-behaved client measured nothing".into());
    }
    for (what, stats) in [("read", read), ("mutation", mutation)] {
        if stats.p99_ms >= MAX_P99_MS {
            outcome
                .problems
                .push(format!("well-behaved {what} p99 {:.1} ms (bound {MAX_P99_MS} ms)", stats.p99_ms));
        }
    }
    if !probe.failures.is_empty() {
        outcome.problems.push(format!(
            "the well-behaved client failed {} call(s), first: {}",
            probe.failures.len(),
            probe.failures[0]
        ));
    }
    let fresh_connection = match probe.fresh.first() {
        None => "-".to_owned(),
        Some(Ok(took)) => format!("ok {:.0} ms", took.as_secs_f64() * 1000.0),
        Some(Err(error)) => {
            outcome.notes.push(format!("a fresh connection from the well-behaved client failed: {error}"));
            "FAILED".to_owned()
        }
    };
    outcome.notes.extend(counts.messages().into_iter().map(|m| format!("first message of {m}")));
    let row = Row {
        load: name.to_owned(),
        seconds,
        rss_at_start_mib: mib(rss_at_start),
        peak_rss_mib: mib(peaks.rss_kib),
        peak_threads: peaks.threads,
        read,
        mutation,
        probe_failures: probe.failures,
        fresh_connection,
        calls: outcome.calls.take().unwrap_or_else(|| counts.summary()),
        notes: outcome.notes,
        problems: outcome.problems,
    };
    println!(
        "  {name}: peak RSS {:.0} MiB, threads {}, read p99 {:.1} ms, mutation p99 {:.1} ms, {}",
        row.peak_rss_mib, row.peak_threads, row.read.p99_ms, row.mutation.p99_ms, row.calls
    );
    // Let the daemon notice closed connections and give back what they held.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(row)
}

/// (a) Full ListAllDomains calls, `list_calls_per_connection` at once on each of
/// `list_connections` connections, until `end`. A refused call is retried after 5 ms.
async fn listings(ctx: &Ctx, counts: Arc<Counts>, end: Instant) -> anyhow::Result<Outcome> {
    let mut tasks = tokio::task::JoinSet::new();
    let expected = ctx.plan.domains as usize;
    for _ in 0..ctx.plan.list_connections {
        let conn = Connection::open(&ctx.uri).await?;
        for _ in 0..ctx.plan.list_calls_per_connection {
            let mut rpc = conn.rpc();
            let counts = counts.clone();
            tasks.spawn(async move {
                while Instant::now() < end {
                    let call = rpc.list_all_domains(v1::ListAllDomainsRequest::default());
                    match tokio::time::timeout_at(end, call).await {
                        Err(_) => counts.add("cut at the end", 1),
                        Ok(Ok(answer)) => {
                            let listed = answer.into_inner().domains.len();
                            if listed == expected {
                                counts.add("OK", 1);
                            } else {
                                counts.add_with("OK but short", 1, || {
                                    format!("{listed} of {expected} domains")
                                });
                            }
                        }
                        Ok(Err(status)) => {
                            counts
                                .add_with(code_name(status.code() as i32), 1, || status.message().to_owned());
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                    }
                }
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result?;
    }
    let mut outcome = Outcome::default();
    if counts.get("OK") == 0 {
        outcome.problems.push("no listing succeeded".into());
    }
    Ok(outcome)
}

/// Connects to the unix socket, retrying for 2 s while the listen backlog is full.
async fn connect(socket: &Path) -> std::io::Result<UnixStream> {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match UnixStream::connect(socket).await {
            Ok(stream) => return Ok(stream),
            Err(error) if Instant::now() >= until => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// How one silent connection ended.
#[derive(Debug)]
struct SilentEnd {
    half_preface: bool,
    /// When the daemon closed it, after it was opened; `None`: still open at the end.
    closed_after: Option<Duration>,
    bytes_received: usize,
}

/// (b) `silent` connections that never send a byte, the first `half_preface` of them sending the
/// first 16 of the 24 bytes of the HTTP/2 preface; each watched until the daemon closes it or the
/// load ends.
async fn silent(ctx: &Ctx, counts: Arc<Counts>, end: Instant) -> anyhow::Result<Outcome> {
    let mut watchers = tokio::task::JoinSet::new();
    let mut failed = 0usize;
    let mut first_error = String::new();
    let total = ctx.plan.silent;
    let mut opened = 0;
    while opened < total && Instant::now() < end {
        let batch = (total - opened).min(100);
        let mut connects = tokio::task::JoinSet::new();
        for i in opened..opened + batch {
            let socket = ctx.socket.clone();
            let half_preface = i < ctx.plan.half_preface;
            connects.spawn(async move {
                let mut stream = connect(&socket).await?;
                if half_preface {
                    stream.write_all(&PREFACE[..16]).await?;
                }
                std::io::Result::Ok((stream, half_preface))
            });
        }
        while let Some(connected) = connects.join_next().await {
            match connected? {
                Ok((mut stream, half_preface)) => {
                    counts.add(if half_preface { "half-preface opened" } else { "silent opened" }, 1);
                    watchers.spawn(async move {
                        let opened = Instant::now();
                        let mut buffer = [0u8; 4096];
                        let mut bytes_received = 0;
                        loop {
                            match tokio::time::timeout_at(end, stream.read(&mut buffer)).await {
                                Err(_) => {
                                    return SilentEnd { half_preface, closed_after: None, bytes_received };
                                }
                                Ok(Ok(0) | Err(_)) => {
                                    let closed_after = Some(opened.elapsed());
                                    return SilentEnd { half_preface, closed_after, bytes_received };
                                }
                                Ok(Ok(n)) => bytes_received += n,
                            }
                        }
                    });
                }
                Err(error) => {
                    failed += 1;
                    if first_error.is_empty() {
                        first_error = error.to_string();
                    }
                }
            }
        }
        opened += batch;
    }
    println!("  {} connections open, {failed} failed to connect", opened - failed);
    // Per kind: closed at once (refused when accepted), closed later (times), still open.
    let mut at_once = [0usize; 2];
    let mut later: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut open = [0usize; 2];
    let mut talked = [0usize; 2];
    while let Some(watched) = watchers.join_next().await {
        let watched = watched?;
        let kind = usize::from(watched.half_preface);
        if watched.bytes_received > 0 {
            talked[kind] += 1;
        }
        match watched.closed_after {
            Some(after) if after < Duration::from_secs(1) => at_once[kind] += 1,
            Some(after) => later[kind].push(after),
            None => open[kind] += 1,
        }
    }
    let mut outcome = Outcome::default();
    let mut summary = Vec::new();
    for (kind, label) in [(0, "silent"), (1, "half-preface")] {
        let closed_later = later[kind].len();
        let when = if closed_later > 0 {
            later[kind].sort();
            format!(
                " (after {:.1}..{:.1} s)",
                later[kind][0].as_secs_f64(),
                later[kind][closed_later - 1].as_secs_f64()
            )
        } else {
            String::new()
        };
        summary.push(format!(
            "{label} {}: {} closed at once, {closed_later} closed later, {} open at the end",
            at_once[kind] + closed_later + open[kind],
            at_once[kind],
            open[kind]
        ));
        outcome.notes.push(format!(
            "{label}: {} closed by the daemon within 1 s (refused at accept), {closed_later} closed later{when}, \
             {} still open when the load ended; {} received bytes from the daemon",
            at_once[kind], open[kind], talked[kind]
        ));
    }
    outcome.calls = Some(summary.join("; "));
    if failed > 0 {
        counts.add("connect failed", failed as u64);
        outcome.notes.push(format!("{failed} connections could not be made: {first_error}"));
    }
    if open[0] > 0 {
        outcome.problems.push(format!(
            "{} connections that sent nothing were still open after {:.0} s (handshake_timeout_secs {})",
            open[0],
            ctx.plan.seconds.max(limits().handshake_timeout_secs + 3),
            limits().handshake_timeout_secs
        ));
    }
    if open[1] > 0 {
        outcome.notes.push(format!(
            "FINDING: {} connections that sent half an HTTP/2 preface were still open when the load ended: \
             the handshake timeout only closes connections that sent nothing; they hold their slot (and \
             count against max_clients_per_peer) until idle_timeout_secs",
            open[1]
        ));
    }
    Ok(outcome)
}

/// The HTTP/2 client connection preface.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// Appends one HTTP/2 frame.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Appends a ListAllDomains request of every domain on `stream`: HEADERS (HPACK literals without
/// indexing, no Huffman coding) and one DATA frame with the empty request message.
fn list_request(out: &mut Vec<u8>, stream: u32) {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/rvirt.v1.DomainService/ListAllDomains"),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.push(0);
        block.push(name.len() as u8);
        block.extend_from_slice(name.as_bytes());
        block.push(value.len() as u8);
        block.extend_from_slice(value.as_bytes());
    }
    frame(out, HEADERS, END_HEADERS, stream, &block);
    // gRPC framing: not compressed, 0 bytes (ListAllDomainsRequest with every field at its default).
    frame(out, DATA, END_STREAM, stream, &[0, 0, 0, 0, 0]);
}

/// (c) `unread_connections` raw HTTP/2 connections, each with `unread_streams` ListAllDomains
/// calls of every domain that it never takes. Even ones advertise a zero stream window (the daemon
/// can send answer headers but no byte of any answer), read frame headers only, and replace every
/// call that ends (refused or reset) by a new one; odd ones keep the default 64 KiB window and
/// never read a byte.
async fn unread(ctx: &Ctx, counts: Arc<Counts>, end: Instant) -> anyhow::Result<Outcome> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..ctx.plan.unread_connections {
        let socket = ctx.socket.clone();
        let counts = counts.clone();
        let streams = ctx.plan.unread_streams;
        tasks.spawn(async move {
            let result = unread_connection(&socket, i % 2 == 0, streams, end, &counts).await;
            if let Err(error) = result {
                counts.add_with("connection error", 1, || error.to_string());
            }
        });
    }
    // What a refusal is: one full listing a second from an ordinary client, counted by code.
    let mut rpc = Connection::open(&ctx.uri).await?.rpc();
    while Instant::now() + Duration::from_secs(1) < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let call = rpc.list_all_domains(v1::ListAllDomainsRequest::default());
        match tokio::time::timeout(Duration::from_secs(5), call).await {
            Err(_) => counts.add("check call timed out", 1),
            Ok(Ok(_)) => counts.add("check call OK", 1),
            Ok(Err(status)) => {
                let name = format!("check call {}", code_name(status.code() as i32));
                counts.add_with(&name, 1, || status.message().to_owned());
            }
        }
    }
    while let Some(result) = tasks.join_next().await {
        result?;
    }
    let mut outcome = Outcome::default();
    outcome.notes.push(
        "held = answers the daemon started (response headers sent, body waiting for a window that never \
         opens); refused = trailers-only answers (their code: see the check calls, one ordinary full \
         listing a second); counted on the reading half of the connections only"
            .into(),
    );
    Ok(outcome)
}

async fn unread_connection(
    socket: &Path,
    reading: bool,
    streams: u32,
    end: Instant,
    counts: &Counts,
) -> anyhow::Result<()> {
    let mut stream = connect(socket).await?;
    let mut out = PREFACE.to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE (4) = 0 on the reading connections, the default otherwise.
    let settings: &[u8] = if reading { &[0, 4, 0, 0, 0, 0] } else { &[] };
    frame(&mut out, SETTINGS, 0, 0, settings);
    let mut next_stream = 1u32;
    for _ in 0..streams {
        list_request(&mut out, next_stream);
        next_stream += 2;
    }
    stream.write_all(&out).await?;
    counts.add("calls sent", u64::from(streams));
    if !reading {
        tokio::time::sleep_until(end).await;
        return Ok(());
    }
    let mut buffer: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match tokio::time::timeout_at(end, stream.read(&mut chunk)).await {
            Err(_) => return Ok(()),
            Ok(read) => read?,
        };
        if n == 0 {
            counts.add("connection closed by the daemon", 1);
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut ended = 0u32;
        let mut reply = Vec::new();
        let mut at = 0;
        while buffer.len() >= at + 9 {
            let len = u32::from_be_bytes([0, buffer[at], buffer[at + 1], buffer[at + 2]]) as usize;
            if buffer.len() < at + 9 + len {
                break;
            }
            let (kind, flags) = (buffer[at + 3], buffer[at + 4]);
            let payload = &buffer[at + 9..at + 9 + len];
            match kind {
                HEADERS if flags & END_STREAM != 0 => {
                    counts.add("refused (trailers-only)", 1);
                    ended += 1;
                }
                HEADERS => counts.add("held", 1),
                DATA => counts.add("data frames", 1),
                RST_STREAM => {
                    let code = payload.get(..4).map_or(0, |c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                    counts.add(&format!("reset (h2 error {code})"), 1);
                    ended += 1;
                }
                SETTINGS if flags & ACK == 0 => frame(&mut reply, SETTINGS, ACK, 0, &[]),
                PING if flags & ACK == 0 => frame(&mut reply, PING, ACK, 0, payload),
                GOAWAY => counts.add("GOAWAY", 1),
                _ => {}
            }
            at += 9 + len;
        }
        buffer.drain(..at);
        if ended > 0 && Instant::now() < end {
            // Replace the calls that ended, as a client retrying after a refusal would.
            tokio::time::sleep(Duration::from_millis(250)).await;
            for _ in 0..ended {
                list_request(&mut reply, next_stream);
                next_stream += 2;
            }
            counts.add("calls sent", u64::from(ended));
        }
        if !reply.is_empty() {
            stream.write_all(&reply).await?;
        }
    }
}

/// Three hostile documents of about 1 MiB: 100,000 attributes on one element, 150,000 nested
/// elements, 260,000 sibling elements.
fn hostile_documents(mib: usize) -> Vec<(&'static str, Arc<String>)> {
    let head = |name: &str| {
        format!(
            "<domain type='test'><name>{name}</name><memory unit='MiB'>64</memory><os><type>hvm</type></os>"
        )
    };
    let mut attributes = head("stress-attributes");
    attributes.push_str("<devices><disk type='file' device='disk'");
    for i in 0..100_000 {
        attributes.push_str(&format!(" a{i:06}='x'"));
    }
    attributes.push_str("/></devices></domain>");
    let mut deep = head("stress-deep");
    deep.push_str(&"<a>".repeat(150_000));
    deep.push_str(&"</a>".repeat(150_000));
    deep.push_str("</domain>");
    let mut wide = head("stress-wide");
    wide.push_str("<metadata>");
    wide.push_str(&"<e/>".repeat(260_000));
    wide.push_str("</metadata></domain>");
    let mut documents = [attributes, deep, wide];
    for document in &mut documents {
        // --xml-mib: padded with a comment to that size.
        let padding = (mib << 20).saturating_sub(document.len() + 7);
        if mib > 1 && padding > 0 {
            document.push_str(&format!("<!--{}-->", "x".repeat(padding)));
        }
    }
    let [attributes, deep, wide] = documents;
    vec![("attributes", Arc::new(attributes)), ("deep", Arc::new(deep)), ("wide", Arc::new(wide))]
}

/// (d) DefineXML of the hostile documents, `xml_calls_per_connection` at once on each of
/// `xml_connections` connections, until `end`. With `--xml-mib M` above 1 each document is padded
/// to M MiB.
async fn large_xml(ctx: &Ctx, counts: Arc<Counts>, end: Instant) -> anyhow::Result<Outcome> {
    let documents = hostile_documents(ctx.plan.xml_mib);
    let sizes: Vec<String> = documents
        .iter()
        .map(|(kind, xml)| format!("{kind} {:.2} MiB", xml.len() as f64 / f64::from(1 << 20)))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0;
    for _ in 0..ctx.plan.xml_connections {
        let conn = Connection::open(&ctx.uri).await?;
        for _ in 0..ctx.plan.xml_calls_per_connection {
            let (kind, xml) = documents[n % documents.len()].clone();
            n += 1;
            let mut rpc = conn.rpc();
            let counts = counts.clone();
            tasks.spawn(async move {
                while Instant::now() < end {
                    let request = v1::DomainDefineXmlRequest { xml: xml.as_str().to_owned(), flags: 0 };
                    match tokio::time::timeout_at(end, rpc.domain_define_xml(request)).await {
                        Err(_) => counts.add("cut at the end", 1),
                        Ok(Ok(_)) => counts.add_with("OK", 1, || format!("the {kind} document was accepted")),
                        Ok(Err(status)) => {
                            let name = code_name(status.code() as i32);
                            counts.add(name, 1);
                            counts.add_with(&format!("{name} ({kind})"), 0, || status.message().to_owned());
                        }
                    }
                }
            });
        }
    }
    while let Some(result) = tasks.join_next().await {
        result?;
    }
    let mut outcome = Outcome::default();
    outcome.notes.push(format!("documents: {}", sizes.join(", ")));
    let accepted = counts.get("OK");
    if accepted > 0 {
        outcome.problems.push(format!("{accepted} hostile documents were accepted"));
    }
    Ok(outcome)
}

/// One reading of /proc/PID/status.
#[derive(Debug, Clone, Copy, Default)]
struct Status {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

fn read_status(pid: u32) -> Option<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
    };
    Some(Status { rss_kib: field("VmRSS:")?, hwm_kib: field("VmHWM:")?, threads: field("Threads:")? })
}

/// Whether the process still runs (a zombie has no VmRSS).
fn alive(pid: u32) -> bool {
    read_status(pid).is_some()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Reads the daemon's status every 50 ms on a thread of its own, keeping the peaks since the last
/// `take`.
struct Sampler {
    peaks: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let peaks = Arc::new(Mutex::new(Status::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (peaks.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                if let Some(status) = read_status(pid) {
                    let mut peaks = shared.lock().unwrap();
                    peaks.rss_kib = peaks.rss_kib.max(status.rss_kib);
                    peaks.hwm_kib = peaks.hwm_kib.max(status.hwm_kib);
                    peaks.threads = peaks.threads.max(status.threads);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Sampler { peaks, stop }
    }

    fn peek(&self) -> Status {
        *self.peaks.lock().unwrap()
    }

    fn take(&self) -> Status {
        std::mem::take(&mut *self.peaks.lock().unwrap())
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What the well-behaved client measured since the last `take`.
#[derive(Debug, Default)]
struct ProbeData {
    reads: Vec<Duration>,
    mutations: Vec<Duration>,
    failures: Vec<String>,
    fresh: Vec<Result<Duration, String>>,
}

/// The well-behaved client: on a thread, a runtime and a connection of its own, every 20 ms a
/// LookupDomainByName and an autostart toggle, each timed; a fresh connection when asked.
struct Probe {
    data: Arc<Mutex<ProbeData>>,
    stop: Arc<AtomicBool>,
    fresh: Arc<AtomicBool>,
    thread: Mutex<Option<std::thread::JoinHandle<anyhow::Result<()>>>>,
}

impl Probe {
    fn start(uri: String) -> anyhow::Result<Self> {
        let data = Arc::new(Mutex::new(ProbeData::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let fresh = Arc::new(AtomicBool::new(false));
        let (shared, stopped, fresh_asked) = (data.clone(), stop.clone(), fresh.clone());
        let thread = std::thread::Builder::new().name("stress-probe".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async move {
                let conn = Connection::open(&uri).await?;
                let domain = conn.lookup_by_name(PROBE_DOMAIN).await?;
                let mut tick = tokio::time::interval(Duration::from_millis(20));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut autostart = false;
                while !stopped.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let started = Instant::now();
                    let read =
                        tokio::time::timeout(PROBE_CALL_TIMEOUT, conn.lookup_by_name(PROBE_DOMAIN)).await;
                    let read_time = started.elapsed();
                    autostart = !autostart;
                    let started = Instant::now();
                    let mutation =
                        tokio::time::timeout(PROBE_CALL_TIMEOUT, domain.set_autostart(autostart)).await;
                    let mutation_time = started.elapsed();
                    {
                        let mut data = shared.lock().unwrap();
                        data.reads.push(read_time);
                        data.mutations.push(mutation_time);
                        for (what, failure) in [("read", failure(read)), ("mutation", failure(mutation))] {
                            if let Some(failure) = failure {
                                data.failures.push(format!("{what}: {failure}"));
                            }
                        }
                    }
                    if fresh_asked.swap(false, Ordering::Relaxed) {
                        let started = Instant::now();
                        let attempt = async {
                            let conn = Connection::open(&uri).await?;
                            conn.lookup_by_name(PROBE_DOMAIN).await?;
                            anyhow::Ok(())
                        };
                        let result = match tokio::time::timeout(Duration::from_secs(3), attempt).await {
                            Ok(Ok(())) => Ok(started.elapsed()),
                            Ok(Err(error)) => Err(error.to_string()),
                            Err(_) => Err("no answer within 3 s".to_owned()),
                        };
                        shared.lock().unwrap().fresh.push(result);
                    }
                }
                anyhow::Ok(())
            })
        })?;
        Ok(Probe { data, stop, fresh, thread: Mutex::new(Some(thread)) })
    }

    fn take(&self) -> ProbeData {
        std::mem::take(&mut *self.data.lock().unwrap())
    }

    fn stop(&self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.lock().unwrap().take() {
            Some(thread) => thread.join().map_err(|_| anyhow::anyhow!("the probe thread panicked"))?,
            None => Ok(()),
        }
    }
}

/// Why a timed call failed, if it did.
fn failure<T, E: std::fmt::Display>(
    result: Result<Result<T, E>, tokio::time::error::Elapsed>,
) -> Option<String> {
    match result {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!("no answer within {PROBE_CALL_TIMEOUT:?}")),
    }
}

fn print_report(report: &Report) {
    let plan = &report.plan;
    println!(
        "\nrvirt stress on {}: {} domains (defined in {:.1} s), {} s per load, RSS budget {} MiB, \
         RLIMIT_NOFILE {}",
        report.machine,
        plan.domains,
        report.populate_seconds,
        plan.seconds,
        plan.rss_budget_mib,
        report.nofile_limit
    );
    println!(
        "loads: (a) {}x{} concurrent full listings; (b) {} silent connections, {} of them half a preface; \
         (c) {}x{} unread listings on raw HTTP/2; (d) {}x{} concurrent ~1 MiB DefineXML",
        plan.list_connections,
        plan.list_calls_per_connection,
        plan.silent,
        plan.half_preface,
        plan.unread_connections,
        plan.unread_streams,
        plan.xml_connections,
        plan.xml_calls_per_connection
    );
    println!(
        "\n{:<20} {:>8} {:>8} {:>7} {:>15} {:>15} {:>9}  {:<8} load calls by outcome",
        "load", "RSS MiB", "peak MiB", "threads", "read p50/p99", "mut p50/p99", "new conn", "verdict"
    );
    for row in &report.rows {
        let pair = |s: Stats| format!("{:.2}/{:.2}", s.p50_ms, s.p99_ms);
        println!(
            "{:<20} {:>8.0} {:>8.0} {:>7} {:>15} {:>15} {:>9}  {:<8} {}",
            row.load,
            row.rss_at_start_mib,
            row.peak_rss_mib,
            row.peak_threads,
            pair(row.read),
            pair(row.mutation),
            row.fresh_connection,
            if row.problems.is_empty() { "ok" } else { "FAIL" },
            if row.calls.is_empty() { "-" } else { &row.calls }
        );
    }
    println!(
        "(RSS MiB: at the load's start; peak MiB: highest VmRSS sampled every 50 ms; VmHWM at the end {:.0} MiB)",
        report.peak_hwm_mib
    );
    for row in &report.rows {
        for problem in &row.problems {
            println!("  {} FAIL: {problem}", row.load);
        }
        for note in &row.notes {
            println!("  {}: {note}", row.load);
        }
    }
    if !report.daemon_log_samples.is_empty() {
        println!("\nrvirtd log lines (one of each kind):");
        for line in &report.daemon_log_samples {
            println!("  {line}");
        }
    }
}
