//! The crash test: a real rvirtd under a churn of mutating RPCs from several clients, killed with
//! SIGKILL at random moments and restarted, checked after every restart.
//!
//! Each client owns a few domain names and keeps a model of them: the summary the daemon
//! acknowledged last (or "absent"). It only issues operations that are legal in that model, so an
//! operation fails only because the daemon died. After each restart, for every domain:
//! - no operation was in flight: the daemon must show exactly the last acknowledged summary;
//! - one was in flight (sent, not answered): the daemon must show either the last acknowledged
//!   summary or exactly what that operation produces; anything else is half a change.
//!
//! The generation must not go back, the state folder must hold no file set aside as damaged, and
//! the daemon must load without complaint.

use crate::process::{DaemonDirs, DaemonProcess};
use rand::Rng;
use rand::seq::IndexedRandom;
use rvirt::{Change, Connection, DomainState, DomainSummary, ListFlags, MomentDeleteFlags, UndefineFlags};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How to run it.
#[derive(Debug, Clone)]
pub struct CrashConfig {
    /// How many times to kill the daemon.
    pub kills: u32,
    /// Concurrent clients.
    pub clients: u32,
    /// Domains each client owns.
    pub domains_per_client: u32,
    /// Longest churn between a start and its kill.
    pub max_churn: Duration,
}

/// What it found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CrashReport {
    /// Kills survived with every check passing.
    pub kills: u32,
    /// Changes acknowledged in all.
    pub acknowledged: u64,
    /// Operations that were in flight at a kill.
    pub in_flight_at_kill: u64,
    /// Of those, how many the restarted daemon showed as done.
    pub in_flight_landed: u64,
    /// Domain checks made after restarts.
    pub checks: u64,
    /// Every violation, in words (must be empty).
    pub losses: Vec<String>,
}

/// An operation a client may issue.
#[derive(Debug, Clone)]
enum Op {
    Define,
    CreateTransient,
    Start,
    Destroy,
    Shutdown,
    Suspend,
    Resume,
    ManagedSave,
    Autostart(bool),
    Snapshot(String),
    SnapshotDelete(String),
    Undefine,
}

/// One client's view of its domains.
#[derive(Debug, Default)]
struct Model {
    /// name -> last acknowledged summary (None: absent).
    domains: BTreeMap<String, Option<DomainSummary>>,
    /// name -> snapshot names it created and has not deleted.
    snapshots: BTreeMap<String, Vec<String>>,
    /// The operation sent and not answered when the daemon died.
    in_flight: Option<(String, Op)>,
    acknowledged: u64,
    /// Legal operations the daemon refused (each one is a bug).
    refused: Vec<String>,
    /// Numbers snapshot names, so they stay unique across rounds.
    counter: u32,
}

/// Runs the whole test in `root` (a fresh folder).
pub async fn run(
    root: &std::path::Path,
    config: &CrashConfig,
    mut progress: impl FnMut(&CrashReport),
) -> CrashReport {
    let dirs = DaemonDirs::under(root);
    let mut report = CrashReport::default();
    let max_generation = Arc::new(AtomicU64::new(0));
    let mut models: Vec<Model> = (0..config.clients)
        .map(|c| Model {
            domains: (0..config.domains_per_client).map(|d| (format!("c{c}d{d}"), None)).collect(),
            ..Model::default()
        })
        .collect();
    let mut daemon = DaemonProcess::start(&dirs).await;
    for _ in 0..config.kills {
        // Churn, then kill at a random moment.
        let mut tasks = Vec::new();
        for (c, model) in models.drain(..).enumerate() {
            let conn = daemon.connect().await;
            let max_generation = max_generation.clone();
            tasks.push(tokio::spawn(churn(conn, c as u32, model, max_generation)));
        }
        let churn_for = rand::rng().random_range(Duration::from_millis(5)..config.max_churn);
        tokio::time::sleep(churn_for).await;
        daemon.kill9().await;
        for task in tasks {
            models.push(task.await.expect("client task"));
        }
        // Restart and check.
        daemon = DaemonProcess::start(&dirs).await;
        let conn = daemon.connect().await;
        let listing = conn.list_all_domains(ListFlags::empty()).await.expect("list after restart");
        let seen: BTreeMap<String, DomainSummary> =
            listing.domains.iter().map(|d| (d.domain.name.clone(), d.clone())).collect();
        let acked_generation = max_generation.load(Ordering::SeqCst);
        if listing.generation < acked_generation {
            report.losses.push(format!(
                "generation went back: {} after restart, {acked_generation} acknowledged before",
                listing.generation
            ));
        }
        for model in &mut models {
            report.acknowledged += std::mem::take(&mut model.acknowledged);
            report.losses.append(&mut model.refused);
            let in_flight = model.in_flight.take();
            for (name, last) in model.domains.iter_mut() {
                report.checks += 1;
                let now = seen.get(name).cloned();
                let op = in_flight.as_ref().filter(|(n, _)| n == name).map(|(_, op)| op);
                if let Some(op) = op {
                    report.in_flight_at_kill += 1;
                    let expected = outcome(op, last.as_ref(), name);
                    if now.as_ref() != last.as_ref() {
                        if matches_outcome(&expected, now.as_ref()) {
                            report.in_flight_landed += 1;
                            let snapshots = model.snapshots.entry(name.clone()).or_default();
                            match op {
                                Op::Snapshot(snapshot) => snapshots.push(snapshot.clone()),
                                Op::SnapshotDelete(snapshot) => snapshots.retain(|s| s != snapshot),
                                _ => {}
                            }
                        } else {
                            report.losses.push(format!(
                                "{name}: half an operation: {op:?} from {last:?} left {now:?}, expected {expected:?}"
                            ));
                        }
                    }
                } else if now.as_ref() != last.as_ref() {
                    report.losses.push(format!("{name}: acknowledged {last:?}, after restart {now:?}"));
                }
                *last = now;
            }
            // Resynchronise snapshot names with what survived.
            for (name, snapshots) in model.snapshots.iter_mut() {
                let count =
                    model.domains.get(name).cloned().flatten().map_or(0, |d| d.snapshot_count as usize);
                snapshots.truncate(count);
                if snapshots.len() < count {
                    report.losses.push(format!("{name}: more snapshots than the client made"));
                }
            }
        }
        for line in daemon.logs() {
            if line.contains("ERROR") {
                report.losses.push(format!("restart complained: {line}"));
            }
        }
        let damaged = damaged_files(&dirs.state);
        if !damaged.is_empty() {
            report.losses.push(format!("files set aside as damaged: {damaged:?}"));
        }
        report.kills += 1;
        progress(&report);
        if !report.losses.is_empty() {
            break;
        }
    }
    let _ = daemon.terminate().await;
    report
}

/// One client's churn until the daemon dies under it.
async fn churn(conn: Connection, client: u32, mut model: Model, max_generation: Arc<AtomicU64>) -> Model {
    let names: Vec<String> = model.domains.keys().cloned().collect();
    loop {
        let name = names.choose(&mut rand::rng()).expect("a client owns domains").clone();
        let current = model.domains[&name].clone();
        let op = pick(current.as_ref(), model.snapshots.get(&name).map_or(0, Vec::len), &mut model.counter);
        let op = match op {
            Op::SnapshotDelete(_) => Op::SnapshotDelete(model.snapshots[&name][0].clone()),
            other => other,
        };
        model.in_flight = Some((name.clone(), op.clone()));
        match issue(&conn, client, &name, current.as_ref(), &op).await {
            Ok(change) => {
                max_generation.fetch_max(change.generation, Ordering::SeqCst);
                model.acknowledged += 1;
                model.in_flight = None;
                match &op {
                    Op::Snapshot(snapshot) => {
                        model.snapshots.entry(name.clone()).or_default().push(snapshot.clone())
                    }
                    Op::SnapshotDelete(snapshot) => {
                        model.snapshots.entry(name.clone()).or_default().retain(|s| s != snapshot)
                    }
                    _ => {}
                }
                if change.domain.is_none() {
                    model.snapshots.remove(&name);
                }
                model.domains.insert(name, change.domain);
            }
            // A refusal changes nothing, but refusing a legal operation is a bug.
            Err(error) if error.libvirt_name.starts_with("VIR_ERR") => {
                model.in_flight = None;
                model
                    .refused
                    .push(format!("client {client}: {op:?} on {name} ({current:?}) refused: {error}"));
            }
            // Anything else: the daemon died under the call, whose outcome is now unknown.
            Err(_) => return model,
        }
    }
}

/// A legal operation for a domain in this state.
fn pick(current: Option<&DomainSummary>, snapshots: usize, counter: &mut u32) -> Op {
    let mut rng = rand::rng();
    let Some(d) = current else {
        return if rng.random_bool(0.7) { Op::Define } else { Op::CreateTransient };
    };
    *counter += 1;
    let mut ops = vec![Op::Autostart(!d.autostart), Op::Snapshot(format!("s{counter}"))];
    if snapshots > 0 {
        ops.push(Op::SnapshotDelete(String::new()));
    }
    match (d.domain.id != -1, d.state) {
        (false, _) => ops.extend([Op::Start, Op::Undefine]),
        (true, DomainState::Paused) => ops.extend([Op::Resume, Op::Destroy, Op::Shutdown]),
        (true, _) => ops.extend([Op::Suspend, Op::Destroy, Op::Shutdown]),
    }
    if d.domain.id != -1 && d.persistent {
        ops.extend([Op::ManagedSave, Op::Undefine]);
    }
    ops.choose(&mut rng).expect("there is always an operation").clone()
}

async fn issue(
    conn: &Connection,
    client: u32,
    name: &str,
    current: Option<&DomainSummary>,
    op: &Op,
) -> rvirt::Result<Change> {
    let xml = || crate::domain_xml(name, client * 1000 + name_number(name));
    let domain = || conn.domain(current.expect("op on an existing domain").domain.clone());
    match op {
        Op::Define => conn.define_xml(&xml(), 0).await,
        Op::CreateTransient => conn.create_xml(&xml(), 0).await,
        Op::Start => domain().create().await,
        Op::Destroy => domain().destroy().await,
        Op::Shutdown => domain().shutdown().await,
        Op::Suspend => domain().suspend().await,
        Op::Resume => domain().resume().await,
        Op::ManagedSave => domain().managed_save().await,
        Op::Autostart(on) => domain().set_autostart(*on).await,
        Op::Snapshot(snapshot) => {
            domain()
                .snapshot_create_xml(&format!("<domainsnapshot><name>{snapshot}</name></domainsnapshot>"), 0)
                .await
        }
        Op::SnapshotDelete(snapshot) => domain().snapshot_delete(snapshot, MomentDeleteFlags::empty()).await,
        Op::Undefine => {
            domain().undefine(UndefineFlags::MANAGED_SAVE | UndefineFlags::SNAPSHOTS_METADATA).await
        }
    }
}

fn name_number(name: &str) -> u32 {
    name.rsplit('d').next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// What `op` makes of `before`, as far as the client can know it: `None` for "removed", and a
/// summary whose id is `i32::MAX` when the operation starts the domain (any new id will do).
fn outcome(op: &Op, before: Option<&DomainSummary>, name: &str) -> Option<DomainSummary> {
    let fresh = |persistent: bool, running: bool| DomainSummary {
        domain: rvirt::DomainId {
            name: name.to_owned(),
            uuid: before.map_or_else(uuid::Uuid::nil, |b| b.domain.uuid),
            id: if running { i32::MAX } else { -1 },
        },
        state: if running { DomainState::Running } else { DomainState::Shutoff },
        reason: i32::from(running),
        persistent,
        autostart: false,
        has_managed_save: false,
        snapshot_count: 0,
        checkpoint_count: 0,
        title: String::new(),
    };
    let Some(before) = before else {
        return Some(match op {
            Op::Define => fresh(true, false),
            _ => fresh(false, true),
        });
    };
    let mut after = before.clone();
    let stop = |mut after: DomainSummary, reason: i32| {
        if !after.persistent {
            return None;
        }
        after.domain.id = -1;
        after.state = DomainState::Shutoff;
        after.reason = reason;
        Some(after)
    };
    match op {
        Op::Define | Op::CreateTransient => unreachable!("only absent domains are defined"),
        Op::Start => {
            after.domain.id = i32::MAX;
            after.state = DomainState::Running;
            after.reason = 1;
            after.has_managed_save = false;
        }
        Op::Destroy => return stop(after, 2),
        Op::Shutdown => return stop(after, 1),
        Op::ManagedSave => {
            after.has_managed_save = true;
            return stop(after, 5);
        }
        Op::Suspend => (after.state, after.reason) = (DomainState::Paused, 1),
        Op::Resume => (after.state, after.reason) = (DomainState::Running, 5),
        Op::Autostart(on) => after.autostart = *on,
        Op::Snapshot(_) => after.snapshot_count += 1,
        Op::SnapshotDelete(_) => after.snapshot_count -= 1,
        Op::Undefine if after.domain.id == -1 => return None,
        Op::Undefine => {
            after.persistent = false;
            after.has_managed_save = false;
        }
    }
    Some(after)
}

/// Whether what the daemon shows is `expected` (a new id and, for new domains, the UUID, are
/// whatever the daemon chose).
fn matches_outcome(expected: &Option<DomainSummary>, now: Option<&DomainSummary>) -> bool {
    match (expected, now) {
        (None, None) => true,
        (Some(expected), Some(now)) => {
            let mut expected = expected.clone();
            if expected.domain.id == i32::MAX && now.domain.id > 0 {
                expected.domain.id = now.domain.id;
            }
            if expected.domain.uuid.is_nil() {
                expected.domain.uuid = now.domain.uuid;
            }
            expected == *now
        }
        _ => false,
    }
}

fn damaged_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().ends_with(".damaged") {
                found.push(path);
            }
        }
    }
    found
}
