//! The transition table: which operation is allowed in which state, and what it leaves behind.
//!
//! Pure functions from the domain as it is (and the operation) to the domain as it will be, or an
//! `Error`. They follow libvirt 9.0's test driver (`test:///default`), so a client written against
//! it sees the same successes, failures, states and reasons; where the test driver says
//! INTERNAL_ERROR for a wrong state, rvirt says OPERATION_INVALID. No I/O, no locks.

use crate::domain::{Checkpoint, Domain, DomainState, Snapshot, reason};
use crate::error::{Error, Result};
use crate::xml::{DomainDef, MomentDef};
use std::sync::Arc;

/// Flag values of the calls below, as libvirt's.
pub mod flags {
    /// VIR_DOMAIN_DEFINE_VALIDATE.
    pub const DEFINE_VALIDATE: u32 = 1;
    /// VIR_DOMAIN_START_VALIDATE (CreateXML).
    pub const CREATE_VALIDATE: u32 = 1 << 4;
    /// VIR_DOMAIN_DESTROY_GRACEFUL.
    pub const DESTROY_GRACEFUL: u32 = 1;
    /// VIR_DOMAIN_UNDEFINE_MANAGED_SAVE.
    pub const UNDEFINE_MANAGED_SAVE: u32 = 1;
    /// VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA.
    pub const UNDEFINE_SNAPSHOTS_METADATA: u32 = 2;
    /// VIR_DOMAIN_SAVE_BYPASS_CACHE | VIR_DOMAIN_SAVE_RUNNING | VIR_DOMAIN_SAVE_PAUSED.
    pub const MANAGED_SAVE_ALL: u32 = 1 | 2 | 4;
    /// VIR_DOMAIN_SNAPSHOT_CREATE_HALT.
    pub const SNAPSHOT_CREATE_HALT: u32 = 8;
    /// What libvirt's test driver accepts and rvirt implements or can ignore: HALT, ATOMIC (128),
    /// QUIESCE (64), LIVE (256) and VALIDATE (512); the others (REDEFINE, DISK_ONLY, ...) are
    /// refused as unsupported flags.
    pub const SNAPSHOT_CREATE_ALL: u32 = SNAPSHOT_CREATE_HALT | 128 | 64 | 256 | 512;
    /// VIR_DOMAIN_CHECKPOINT_CREATE_QUIESCE, accepted as libvirt's test driver does; REDEFINE is not.
    pub const CHECKPOINT_CREATE_QUIESCE: u32 = 2;
    /// VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN (same value for checkpoints).
    pub const MOMENT_DELETE_CHILDREN: u32 = 1;
    /// VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY (same value for checkpoints).
    pub const MOMENT_DELETE_METADATA_ONLY: u32 = 2;
    /// VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY (same value for checkpoints).
    pub const MOMENT_DELETE_CHILDREN_ONLY: u32 = 4;
    /// Snapshot deletion flags libvirt's test driver accepts (METADATA_ONLY is refused there).
    pub const SNAPSHOT_DELETE_ALL: u32 = MOMENT_DELETE_CHILDREN | MOMENT_DELETE_CHILDREN_ONLY;
    /// Checkpoint deletion flags.
    pub const CHECKPOINT_DELETE_ALL: u32 =
        MOMENT_DELETE_CHILDREN | MOMENT_DELETE_METADATA_ONLY | MOMENT_DELETE_CHILDREN_ONLY;
    /// VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_MIGRATABLE, as libvirt's
    /// test driver (UPDATE_CPU is refused there).
    pub const XML_ALL: u32 = 1 | 2 | 8;
    /// VIR_DOMAIN_XML_INACTIVE.
    pub const XML_INACTIVE: u32 = 2;
}

/// An operation on an existing domain.
#[derive(Debug, Clone)]
pub enum Op {
    /// virDomainCreateWithFlags.
    Start,
    /// virDomainShutdownFlags.
    Shutdown,
    /// virDomainDestroyFlags.
    Destroy,
    /// virDomainSuspend.
    Suspend,
    /// virDomainResume.
    Resume,
    /// virDomainManagedSave.
    ManagedSave,
    /// virDomainManagedSaveRemove.
    ManagedSaveRemove,
    /// virDomainSetAutostart.
    SetAutostart(bool),
    /// virDomainPMSuspendForDuration.
    PmSuspend,
    /// virDomainPMWakeup.
    PmWakeup,
    /// virDomainUndefineFlags, with its flags.
    Undefine(u32),
    /// virDomainSnapshotCreateXML: the document, the flags and the time to stamp it with.
    SnapshotCreate(MomentDef, u32, i64),
    /// virDomainSnapshotDelete: name and flags.
    SnapshotDelete(String, u32),
    /// virDomainCheckpointCreateXML: the document and the time to stamp it with.
    CheckpointCreate(MomentDef, i64),
    /// virDomainCheckpointDelete: name and flags.
    CheckpointDelete(String, u32),
}

impl Op {
    /// The libvirt call this operation mirrors, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Shutdown => "shutdown",
            Op::Destroy => "destroy",
            Op::Suspend => "suspend",
            Op::Resume => "resume",
            Op::ManagedSave => "managed save",
            Op::ManagedSaveRemove => "managed save remove",
            Op::SetAutostart(_) => "set autostart",
            Op::PmSuspend => "pm suspend",
            Op::PmWakeup => "pm wakeup",
            Op::Undefine(_) => "undefine",
            Op::SnapshotCreate(..) => "snapshot create",
            Op::SnapshotDelete(..) => "snapshot delete",
            Op::CheckpointCreate(..) => "checkpoint create",
            Op::CheckpointDelete(..) => "checkpoint delete",
        }
    }
}

/// When an operation's outcome is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settles {
    /// When the driver's call returns (everything on the test driver).
    AtOnce,
    /// Only when the hypervisor reports it: the call asks (an ACPI shutdown asks the guest), the
    /// domain stays as it is, and the outcome arrives later as a `DriverEvent`.
    Later,
}

/// What an allowed operation leaves behind now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The domain after the change; `None` removes it.
    pub domain: Option<Domain>,
    /// The domain (re)started: the job gives it a fresh id (from `Counters`) before recording it.
    pub started: bool,
    /// Nothing changes now: the hypervisor was asked, and what it does comes back as an event.
    pub pending: bool,
}

impl Change {
    /// The domain becomes `domain`.
    pub fn update(domain: Domain) -> Self {
        Change { domain: Some(domain), started: false, pending: false }
    }

    fn start(mut domain: Domain) -> Self {
        domain.state = DomainState::Running;
        domain.reason = reason::RUNNING_BOOTED;
        Change { domain: Some(domain), started: true, pending: false }
    }

    fn pending(domain: Domain) -> Self {
        Change { domain: Some(domain), started: false, pending: true }
    }

    /// Nothing changes: the domain stays as it is.
    pub fn unchanged(domain: &Domain) -> Self {
        Change::pending(domain.clone())
    }

    /// The domain goes.
    pub fn remove() -> Self {
        Change { domain: None, started: false, pending: false }
    }

    /// The domain stops: an inactive persistent domain stays (its persistent definition back in
    /// effect), a transient one goes.
    fn stop(mut domain: Domain, why: i32) -> Self {
        if !domain.persistent {
            return Change::remove();
        }
        domain.id = -1;
        domain.state = DomainState::Shutoff;
        domain.reason = why;
        domain.runtime = None;
        if let Some(def) = domain.next_def.take() {
            domain.def = def;
        }
        Change::update(domain)
    }
}

/// DefineXML: `by_uuid` and `by_name` are the domains that already hold the definition's UUID
/// and name (libvirt's virDomainObjListAddLocked conflict rules).
pub fn define(def: DomainDef, by_uuid: Option<&Domain>, by_name: Option<&Domain>) -> Result<Change> {
    let Some(existing) = same_domain(&def, by_uuid, by_name)? else {
        return Ok(Change::update(Domain::new(Arc::new(def), true)));
    };
    let mut domain = existing.clone();
    if domain.is_active() {
        // The new definition waits for the next boot; the running guest keeps its own.
        domain.next_def = Some(Arc::new(def));
    } else {
        domain.def = Arc::new(def);
    }
    domain.persistent = true;
    Ok(Change::update(domain))
}

/// CreateXML: a new transient domain, started, or the live instance of an inactive persistent
/// one (which stays persistent and gets its definition back when it stops).
pub fn create(def: DomainDef, by_uuid: Option<&Domain>, by_name: Option<&Domain>) -> Result<Change> {
    let Some(existing) = same_domain(&def, by_uuid, by_name)? else {
        return Ok(Change::start(Domain::new(Arc::new(def), false)));
    };
    if existing.is_active() {
        let reason = format!("domain '{}' is already active", existing.name());
        return Err(Error::invalid(existing.state, reason));
    }
    let mut domain = existing.clone();
    domain.next_def = Some(std::mem::replace(&mut domain.def, Arc::new(def)));
    domain.has_managed_save = false;
    Ok(Change::start(domain))
}

/// The domain a definition refers to, if any; a UUID or name held by a different domain is a
/// conflict.
fn same_domain<'a>(
    def: &DomainDef,
    by_uuid: Option<&'a Domain>,
    by_name: Option<&'a Domain>,
) -> Result<Option<&'a Domain>> {
    if let Some(existing) = by_uuid
        && existing.name() != &*def.name
    {
        return Err(Error::UuidTaken { name: existing.name().to_owned(), uuid: existing.uuid() });
    }
    if let Some(existing) = by_name
        && existing.uuid() != def.uuid
    {
        return Err(Error::NameTaken { name: def.name.to_string(), uuid: existing.uuid() });
    }
    Ok(by_uuid)
}

/// An operation on an existing domain.
pub fn apply(domain: &Domain, op: &Op, settles: Settles) -> Result<Change> {
    let state = domain.state;
    let not_running = || Error::invalid(state, "domain is not running");
    let mut next = domain.clone();
    match op {
        Op::Start => {
            if domain.is_active() {
                return Err(Error::invalid(state, "domain is already running"));
            }
            // As libvirt's test driver: a managed-save image is discarded, the guest boots.
            next.has_managed_save = false;
            Ok(Change::start(next))
        }
        Op::Shutdown => {
            if !domain.is_active() {
                return Err(not_running());
            }
            if settles == Settles::Later {
                return Ok(Change::pending(next));
            }
            if domain.def.extras().on_poweroff == "restart" {
                next.state = DomainState::Running;
                next.reason = reason::RUNNING_BOOTED;
                return Ok(Change::update(next));
            }
            Ok(Change::stop(next, reason::SHUTOFF_SHUTDOWN))
        }
        Op::Destroy => {
            if !domain.is_active() {
                return Err(not_running());
            }
            Ok(Change::stop(next, reason::SHUTOFF_DESTROYED))
        }
        Op::Suspend => {
            if !domain.is_active() {
                return Err(not_running());
            }
            if state == DomainState::Paused {
                return Err(Error::invalid(state, "domain is already paused"));
            }
            next.state = DomainState::Paused;
            next.reason = reason::PAUSED_USER;
            Ok(Change::update(next))
        }
        Op::Resume => {
            if state != DomainState::Paused {
                return Err(Error::invalid(state, "domain is not paused"));
            }
            next.state = DomainState::Running;
            next.reason = reason::RUNNING_UNPAUSED;
            Ok(Change::update(next))
        }
        Op::ManagedSave => {
            if !domain.is_active() {
                return Err(not_running());
            }
            if !domain.persistent {
                return Err(Error::invalid(state, "cannot do managed save for transient domain"));
            }
            next.has_managed_save = true;
            Ok(Change::stop(next, reason::SHUTOFF_SAVED))
        }
        Op::ManagedSaveRemove => {
            next.has_managed_save = false;
            Ok(Change::update(next))
        }
        Op::SetAutostart(autostart) => {
            // As libvirt's test driver: allowed on transient domains too.
            next.autostart = *autostart;
            Ok(Change::update(next))
        }
        Op::PmSuspend => {
            // Differs from libvirt's test driver, which does not implement PM suspend: rvirt
            // follows the QEMU driver, which suspends a running guest only.
            if state != DomainState::Running {
                return Err(not_running());
            }
            next.state = DomainState::PmSuspended;
            next.reason = reason::UNKNOWN;
            Ok(Change::update(next))
        }
        Op::PmWakeup => {
            // Differs from libvirt's test driver (not implemented there), as PmSuspend.
            if !domain.is_active() {
                return Err(not_running());
            }
            if state != DomainState::PmSuspended {
                return Err(Error::invalid(state, "Unable to wake up domain which is not suspended"));
            }
            next.state = DomainState::Running;
            next.reason = reason::RUNNING_WAKEUP;
            Ok(Change::update(next))
        }
        Op::Undefine(flags) => undefine(next, *flags),
        Op::SnapshotCreate(def, flags, now) => snapshot_create(next, def, *flags, *now),
        Op::SnapshotDelete(name, flags) => {
            let (snapshots, deleted) =
                delete_moment(&domain.moments.snapshots, name, *flags, |s| (&s.name, &mut s.parent))
                    .ok_or_else(|| Error::NoSnapshot(name.clone()))?;
            next.moments.snapshots = snapshots;
            if let Some(current) = &domain.moments.current_snapshot
                && deleted.contains(current)
            {
                // The current snapshot's nearest surviving ancestor becomes current.
                next.moments.current_snapshot =
                    surviving_ancestor(&domain.moments.snapshots, current, &deleted);
            }
            Ok(Change::update(next))
        }
        Op::CheckpointCreate(def, now) => checkpoint_create(next, def, *now),
        Op::CheckpointDelete(name, flags) => {
            let (checkpoints, _) =
                delete_moment(&domain.moments.checkpoints, name, *flags, |c| (&c.name, &mut c.parent))
                    .ok_or_else(|| Error::NoCheckpoint(name.clone()))?;
            next.moments.checkpoints = checkpoints;
            Ok(Change::update(next))
        }
    }
}

/// A state the hypervisor reports run `id` of the domain in, on its own (a guest powered off,
/// crashed, paused on an error): a stop is a stop like any other, any other state keeps the
/// domain active. `None` when there is nothing to change: the report is about an earlier run,
/// or the domain is already in that state. So a domain is active exactly when it has an id.
pub fn observed(domain: &Domain, id: i32, state: DomainState, why: i32) -> Option<Change> {
    if !domain.is_active() || domain.id != id || (domain.state, domain.reason) == (state, why) {
        return None;
    }
    let mut next = domain.clone();
    if state == DomainState::Shutoff {
        return Some(Change::stop(next, why));
    }
    next.state = state;
    next.reason = why;
    Some(Change::update(next))
}

fn undefine(mut domain: Domain, flags: u32) -> Result<Change> {
    if domain.has_managed_save && flags & flags::UNDEFINE_MANAGED_SAVE == 0 {
        return Err(Error::invalid(
            domain.state,
            "Refusing to undefine while domain managed save image exists",
        ));
    }
    if !domain.is_active()
        && !domain.moments.snapshots.is_empty()
        && flags & flags::UNDEFINE_SNAPSHOTS_METADATA == 0
    {
        let reason =
            format!("cannot delete inactive domain with {} snapshots", domain.moments.snapshots.len());
        return Err(Error::invalid(domain.state, reason));
    }
    if !domain.is_active() {
        return Ok(Change::remove());
    }
    // An active domain keeps running as a transient one (and, as in libvirt's test driver,
    // keeps its autostart mark and snapshot metadata). Undefining a transient domain succeeds
    // and changes nothing, as there.
    domain.persistent = false;
    domain.has_managed_save = false;
    domain.next_def = None;
    Ok(Change::update(domain))
}

fn snapshot_create(mut domain: Domain, def: &MomentDef, flags: u32, now: i64) -> Result<Change> {
    if !domain.moments.checkpoints.is_empty() {
        return Err(Error::OperationUnsupported("cannot create snapshot while checkpoint exists".into()));
    }
    let halt = flags & flags::SNAPSHOT_CREATE_HALT != 0;
    if halt && !domain.persistent {
        return Err(Error::invalid(domain.state, "transient domain needs to remain running"));
    }
    let name = def.name.clone().unwrap_or_else(|| now.to_string());
    crate::store::check_moment_name("snapshot", &name)?;
    if domain.moments.snapshots.iter().any(|s| s.name == name) {
        return Err(Error::MomentExists(name));
    }
    let moments = &mut *domain.moments;
    let parent = moments.current_snapshot.replace(name.clone());
    moments.snapshots.push(Snapshot {
        name: name.clone(),
        description: def.description.clone(),
        creation_time: now,
        state: snapshot_state(domain.state).to_owned(),
        parent,
    });
    if halt && domain.is_active() {
        return Ok(Change::stop(domain, reason::SHUTOFF_FROM_SNAPSHOT));
    }
    Ok(Change::update(domain))
}

fn checkpoint_create(mut domain: Domain, def: &MomentDef, now: i64) -> Result<Change> {
    if !domain.is_active() {
        return Err(Error::OperationUnsupported("cannot create checkpoint for inactive domain".into()));
    }
    if !domain.moments.snapshots.is_empty() {
        return Err(Error::OperationUnsupported("cannot create checkpoint while snapshot exists".into()));
    }
    if domain.def.disks.iter().all(|disk| disk.device != "disk") {
        return Err(Error::ConfigUnsupported("checkpoint for domain without disks".into()));
    }
    let name = def.name.clone().unwrap_or_else(|| now.to_string());
    crate::store::check_moment_name("checkpoint", &name)?;
    if domain.moments.checkpoints.iter().any(|c| c.name == name) {
        return Err(Error::MomentExists(name));
    }
    let parent = domain.moments.checkpoints.last().map(|c| c.name.clone());
    domain.moments.checkpoints.push(Checkpoint {
        name,
        description: def.description.clone(),
        creation_time: now,
        parent,
    });
    Ok(Change::update(domain))
}

/// Deletes a snapshot or checkpoint from a tree kept as a parent-linked list. Without flags the
/// moment goes and its children move up to its parent; CHILDREN takes the whole subtree;
/// CHILDREN_ONLY only the descendants. Returns the survivors and the deleted names, or `None`
/// when there is no moment of that name.
fn delete_moment<T: Clone>(
    moments: &[T],
    name: &str,
    flags: u32,
    fields: impl Fn(&mut T) -> (&String, &mut Option<String>),
) -> Option<(Vec<T>, Vec<String>)> {
    let mut all = moments.to_vec();
    let parents: Vec<(String, Option<String>)> = all
        .iter_mut()
        .map(|m| {
            let (n, p) = fields(m);
            (n.clone(), p.clone())
        })
        .collect();
    let target = parents.iter().find(|(n, _)| n == name)?;
    let target_parent = target.1.clone();
    let is_descendant = |candidate: &str| {
        let mut candidate = candidate.to_owned();
        while let Some((_, Some(parent))) = parents.iter().find(|(n, _)| *n == candidate) {
            if parent == name {
                return true;
            }
            candidate = parent.clone();
        }
        false
    };
    let deleted: Vec<String> = parents
        .iter()
        .map(|(n, _)| n)
        .filter(|n| {
            let descendant = is_descendant(n);
            let itself = *n == name;
            if flags & flags::MOMENT_DELETE_CHILDREN_ONLY != 0 {
                descendant
            } else if flags & flags::MOMENT_DELETE_CHILDREN != 0 {
                descendant || itself
            } else {
                itself
            }
        })
        .cloned()
        .collect();
    all.retain_mut(|m| !deleted.contains(fields(m).0));
    for m in &mut all {
        let (_, parent) = fields(m);
        if parent.as_deref() == Some(name) && deleted.iter().any(|d| d == name) {
            *parent = target_parent.clone();
        }
    }
    Some((all, deleted))
}

fn surviving_ancestor(snapshots: &[Snapshot], from: &str, deleted: &[String]) -> Option<String> {
    let mut current = from.to_owned();
    while deleted.contains(&current) {
        current = snapshots.iter().find(|s| s.name == current)?.parent.clone()?;
    }
    Some(current)
}

/// libvirt's snapshot state names (virDomainSnapshotState).
fn snapshot_state(state: DomainState) -> &'static str {
    match state {
        DomainState::NoState => "nostate",
        DomainState::Running => "running",
        DomainState::Blocked => "blocked",
        DomainState::Paused => "paused",
        DomainState::Shutdown => "shutdown",
        DomainState::Shutoff => "shutoff",
        DomainState::Crashed => "crashed",
        DomainState::PmSuspended => "pmsuspended",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::ParseDefaults;

    /// The table as the test driver uses it.
    fn apply(domain: &Domain, op: &Op) -> Result<Change> {
        super::apply(domain, op, Settles::AtOnce)
    }

    fn def(name: &str, disk: bool) -> DomainDef {
        let disk = if disk {
            "<devices><disk type='file'><source file='/x'/><target dev='vda'/></disk></devices>"
        } else {
            ""
        };
        let xml = format!(
            "<domain type='test'><name>{name}</name><memory>1</memory><os><type>hvm</type></os>{disk}</domain>"
        );
        DomainDef::parse(&xml, &ParseDefaults { arch: "i686" }).unwrap()
    }

    /// A persistent domain in `state` (active unless shut off).
    fn domain_in(state: DomainState) -> Domain {
        let mut domain = Domain::new(Arc::new(def("d", true)), true);
        domain.state = state;
        domain.id = if state == DomainState::Shutoff { -1 } else { 7 };
        domain
    }

    fn after(domain: &Domain, op: Op) -> Result<(DomainState, i32)> {
        let change = apply(domain, &op)?;
        let domain = change.domain.expect("persistent domains are not removed");
        Ok((domain.state, domain.reason))
    }

    /// The test driver's table (libvirt-semantics.md §6.6), every state by every state-changing op.
    #[test]
    fn transition_table_matches_libvirt_test_driver() {
        use DomainState::*;
        let ok = |s, r| Some((s, r));
        type Row = [Option<(DomainState, i32)>; 8];
        let table: Vec<(Op, Row)> = vec![
            // NoState, Running, Blocked, Paused, Shutdown, Shutoff, Crashed, PmSuspended
            (Op::Start, [None, None, None, None, None, ok(Running, 1), None, None]),
            (
                Op::Suspend,
                [
                    ok(Paused, 1),
                    ok(Paused, 1),
                    ok(Paused, 1),
                    None,
                    ok(Paused, 1),
                    None,
                    ok(Paused, 1),
                    ok(Paused, 1),
                ],
            ),
            (Op::Resume, [None, None, None, ok(Running, 5), None, None, None, None]),
            (
                Op::Shutdown,
                [
                    ok(Shutoff, 1),
                    ok(Shutoff, 1),
                    ok(Shutoff, 1),
                    ok(Shutoff, 1),
                    ok(Shutoff, 1),
                    None,
                    ok(Shutoff, 1),
                    ok(Shutoff, 1),
                ],
            ),
            (
                Op::Destroy,
                [
                    ok(Shutoff, 2),
                    ok(Shutoff, 2),
                    ok(Shutoff, 2),
                    ok(Shutoff, 2),
                    ok(Shutoff, 2),
                    None,
                    ok(Shutoff, 2),
                    ok(Shutoff, 2),
                ],
            ),
            (
                Op::ManagedSave,
                [
                    ok(Shutoff, 5),
                    ok(Shutoff, 5),
                    ok(Shutoff, 5),
                    ok(Shutoff, 5),
                    ok(Shutoff, 5),
                    None,
                    ok(Shutoff, 5),
                    ok(Shutoff, 5),
                ],
            ),
            (Op::PmSuspend, [None, ok(PmSuspended, 0), None, None, None, None, None, None]),
            (Op::PmWakeup, [None, None, None, None, None, None, None, ok(Running, 8)]),
        ];
        for (op, expected) in table {
            for (state, want) in DomainState::ALL.into_iter().zip(expected) {
                let got = after(&domain_in(state), op.clone());
                match (want, got) {
                    (Some(want), Ok(got)) => assert_eq!(got, want, "{op:?} from {state:?}"),
                    (None, Err(Error::OperationInvalid { state: s, .. })) => assert_eq!(s, state),
                    (want, got) => panic!("{op:?} from {state:?}: want {want:?}, got {got:?}"),
                }
            }
        }
    }

    #[test]
    fn start_discards_managed_save_and_stop_forgets_transients() {
        let mut saved = domain_in(DomainState::Shutoff);
        saved.has_managed_save = true;
        let started = apply(&saved, &Op::Start).unwrap();
        assert!(started.started && !started.domain.unwrap().has_managed_save);
        let mut transient = domain_in(DomainState::Running);
        transient.persistent = false;
        assert_eq!(apply(&transient, &Op::Destroy).unwrap().domain, None);
        assert!(matches!(apply(&transient, &Op::ManagedSave), Err(Error::OperationInvalid { .. })));
    }

    #[test]
    fn undefine_rules() {
        let mut saved = domain_in(DomainState::Shutoff);
        saved.has_managed_save = true;
        assert!(matches!(apply(&saved, &Op::Undefine(0)), Err(Error::OperationInvalid { .. })));
        assert_eq!(apply(&saved, &Op::Undefine(flags::UNDEFINE_MANAGED_SAVE)).unwrap().domain, None);
        let running = domain_in(DomainState::Running);
        let now_transient = apply(&running, &Op::Undefine(0)).unwrap().domain.unwrap();
        assert!(!now_transient.persistent && now_transient.is_active());
        let snap = Op::SnapshotCreate(MomentDef::default(), 0, 100);
        let with_snapshot = apply(&domain_in(DomainState::Shutoff), &snap).unwrap().domain.unwrap();
        assert!(matches!(apply(&with_snapshot, &Op::Undefine(0)), Err(Error::OperationInvalid { .. })));
        assert!(apply(&with_snapshot, &Op::Undefine(flags::UNDEFINE_SNAPSHOTS_METADATA)).is_ok());
    }

    #[test]
    fn define_and_create_conflicts() {
        let existing = domain_in(DomainState::Shutoff);
        let mut other_uuid = def("d", true);
        other_uuid.uuid = uuid::Uuid::new_v4();
        assert!(matches!(define(other_uuid, None, Some(&existing)), Err(Error::NameTaken { .. })));
        let mut renamed = (*existing.def).clone();
        renamed.name = "e".into();
        assert!(matches!(define(renamed, Some(&existing), None), Err(Error::UuidTaken { .. })));
        let same = (*existing.def).clone();
        let running = create(same.clone(), Some(&existing), Some(&existing)).unwrap();
        let running = running.domain.unwrap();
        assert!(running.persistent && running.next_def.is_some());
        let mut active = existing.clone();
        active.id = 3;
        active.state = DomainState::Running;
        assert!(matches!(
            create(same.clone(), Some(&active), Some(&active)),
            Err(Error::OperationInvalid { .. })
        ));
        let redefined = define(same, Some(&active), Some(&active)).unwrap().domain.unwrap();
        assert!(redefined.next_def.is_some() && redefined.persistent);
        let stopped = apply(&redefined, &Op::Destroy).unwrap().domain.unwrap();
        assert!(stopped.next_def.is_none());
    }

    #[test]
    fn snapshot_tree_deletion() {
        let mut domain = domain_in(DomainState::Shutoff);
        for name in ["a", "b", "c"] {
            let def = MomentDef { name: Some(name.into()), description: String::new() };
            domain = apply(&domain, &Op::SnapshotCreate(def, 0, 1)).unwrap().domain.unwrap();
        }
        assert_eq!(domain.moments.current_snapshot.as_deref(), Some("c"));
        let dup = MomentDef { name: Some("a".into()), description: String::new() };
        assert!(matches!(apply(&domain, &Op::SnapshotCreate(dup, 0, 1)), Err(Error::MomentExists(_))));
        let without_b = apply(&domain, &Op::SnapshotDelete("b".into(), 0)).unwrap().domain.unwrap();
        let c = without_b.moments.snapshots.iter().find(|s| s.name == "c").unwrap();
        assert_eq!(c.parent.as_deref(), Some("a"));
        let only_a =
            apply(&domain, &Op::SnapshotDelete("a".into(), flags::MOMENT_DELETE_CHILDREN_ONLY)).unwrap();
        let only_a = only_a.domain.unwrap();
        assert_eq!(only_a.moments.snapshots.len(), 1);
        assert_eq!(only_a.moments.current_snapshot.as_deref(), Some("a"));
        let none = apply(&domain, &Op::SnapshotDelete("a".into(), flags::MOMENT_DELETE_CHILDREN)).unwrap();
        assert_eq!(none.domain.unwrap().moments.current_snapshot, None);
        assert!(matches!(apply(&domain, &Op::SnapshotDelete("zz".into(), 0)), Err(Error::NoSnapshot(_))));
    }

    #[test]
    fn checkpoints_need_an_active_domain_with_disks_and_no_snapshots() {
        let cp = || Op::CheckpointCreate(MomentDef { name: Some("c".into()), description: String::new() }, 1);
        assert!(matches!(
            apply(&domain_in(DomainState::Shutoff), &cp()),
            Err(Error::OperationUnsupported(_))
        ));
        let running = domain_in(DomainState::Running);
        let with_cp = apply(&running, &cp()).unwrap().domain.unwrap();
        assert_eq!(with_cp.moments.checkpoints.len(), 1);
        assert!(matches!(apply(&with_cp, &cp()), Err(Error::MomentExists(_))));
        let snap = Op::SnapshotCreate(MomentDef::default(), 0, 1);
        assert!(matches!(apply(&with_cp, &snap), Err(Error::OperationUnsupported(_))));
        let mut diskless = running.clone();
        diskless.def = Arc::new(def("d", false));
        assert!(matches!(apply(&diskless, &cp()), Err(Error::ConfigUnsupported(_))));
    }
}
