//! The transition table: which operation is allowed in which state, and what it leaves behind.
//!
//! Pure functions from the domain as it is (and the operation) to the domain as it will be, or an
//! `Error`. They follow libvirt 9.0's test driver (`test:///default`), so a client written against
//! it sees the same successes, failures, states and reasons; where the test driver says
//! INTERNAL_ERROR for a wrong state, rvirt says OPERATION_INVALID. No I/O, no locks.

use crate::domain::{Checkpoint, Domain, DomainState, MomentLists, Snapshot, reason};
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
    pub const XML_ALL: u32 = XML_SECURE | XML_INACTIVE | 8;
    /// VIR_DOMAIN_XML_SECURE: include secrets (graphics passwords).
    pub const XML_SECURE: u32 = 1;
    /// VIR_DOMAIN_XML_INACTIVE.
    pub const XML_INACTIVE: u32 = 2;
    /// VIR_DOMAIN_REBOOT_ACPI_POWER_BTN | GUEST_AGENT | INITCTL | SIGNAL | PARAVIRT: every reboot
    /// method, all accepted as libvirt's test driver accepts them (DEFAULT is 0).
    pub const REBOOT_ALL: u32 = 1 | 2 | 4 | 8 | 16;
    /// VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE.
    pub const SNAPSHOT_CREATE_REDEFINE: u32 = 1;
    /// VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT (only with REDEFINE).
    pub const SNAPSHOT_CREATE_CURRENT: u32 = 2;
    /// VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA (refused; named for libvirt's exclusion message).
    pub const SNAPSHOT_CREATE_NO_METADATA: u32 = 4;
    /// VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING.
    pub const SNAPSHOT_REVERT_RUNNING: u32 = 1;
    /// VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED.
    pub const SNAPSHOT_REVERT_PAUSED: u32 = 2;
    /// VIR_DOMAIN_SNAPSHOT_REVERT_FORCE: accepted, and changes nothing, as in libvirt's test
    /// driver (nothing rvirt reverts is risky). RESET_NVRAM (8) is refused there and here.
    pub const SNAPSHOT_REVERT_FORCE: u32 = 4;
    /// Every revert flag accepted.
    pub const SNAPSHOT_REVERT_ALL: u32 =
        SNAPSHOT_REVERT_RUNNING | SNAPSHOT_REVERT_PAUSED | SNAPSHOT_REVERT_FORCE;
    /// VIR_DOMAIN_SNAPSHOT_XML_SECURE: the nested definition keeps its secrets.
    pub const SNAPSHOT_XML_SECURE: u32 = 1;
    /// VIR_DOMAIN_CHECKPOINT_XML_SECURE, as for snapshots.
    pub const CHECKPOINT_XML_SECURE: u32 = 1;
    /// VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN: no nested definition.
    pub const CHECKPOINT_XML_NO_DOMAIN: u32 = 2;
    /// VIR_DOMAIN_CHECKPOINT_XML_SIZE (accepted; rvirt's checkpoints track no sizes).
    pub const CHECKPOINT_XML_SIZE: u32 = 4;
    /// VIR_DOMAIN_SNAPSHOT_LIST_ROOTS: whole-domain listings, only snapshots without a parent.
    pub const SNAPSHOT_LIST_ROOTS: u32 = 1;
    /// VIR_DOMAIN_SNAPSHOT_LIST_DESCENDANTS: children listings, every descendant (ROOTS' bit).
    pub const SNAPSHOT_LIST_DESCENDANTS: u32 = 1;
    /// VIR_DOMAIN_SNAPSHOT_LIST_METADATA.
    pub const SNAPSHOT_LIST_METADATA: u32 = 1 << 1;
    /// VIR_DOMAIN_SNAPSHOT_LIST_LEAVES.
    pub const SNAPSHOT_LIST_LEAVES: u32 = 1 << 2;
    /// VIR_DOMAIN_SNAPSHOT_LIST_NO_LEAVES.
    pub const SNAPSHOT_LIST_NO_LEAVES: u32 = 1 << 3;
    /// VIR_DOMAIN_SNAPSHOT_LIST_NO_METADATA.
    pub const SNAPSHOT_LIST_NO_METADATA: u32 = 1 << 4;
    /// VIR_DOMAIN_SNAPSHOT_LIST_INACTIVE: taken while shut off.
    pub const SNAPSHOT_LIST_INACTIVE: u32 = 1 << 5;
    /// VIR_DOMAIN_SNAPSHOT_LIST_ACTIVE: taken while active, memory included.
    pub const SNAPSHOT_LIST_ACTIVE: u32 = 1 << 6;
    /// VIR_DOMAIN_SNAPSHOT_LIST_DISK_ONLY: disk-only snapshots (rvirt takes none).
    pub const SNAPSHOT_LIST_DISK_ONLY: u32 = 1 << 7;
    /// VIR_DOMAIN_SNAPSHOT_LIST_INTERNAL: every rvirt snapshot.
    pub const SNAPSHOT_LIST_INTERNAL: u32 = 1 << 8;
    /// VIR_DOMAIN_SNAPSHOT_LIST_EXTERNAL: none of rvirt's.
    pub const SNAPSHOT_LIST_EXTERNAL: u32 = 1 << 9;
    /// VIR_DOMAIN_SNAPSHOT_LIST_TOPOLOGICAL.
    pub const SNAPSHOT_LIST_TOPOLOGICAL: u32 = 1 << 10;
    /// Every listing flag: what ListAllSnapshots, SnapshotNum, SnapshotListAllChildren and
    /// SnapshotNumChildren accept (ROOTS or DESCENDANTS, TOPOLOGICAL, FILTERS_ALL).
    pub const SNAPSHOT_LIST_ALL: u32 = (1 << 11) - 1;
}

/// An operation on an existing domain.
#[derive(Debug, Clone)]
pub enum Op {
    /// virDomainCreateWithFlags.
    Start,
    /// virDomainShutdownFlags.
    Shutdown,
    /// virDomainDestroyFlags, with its flags (GRACEFUL).
    Destroy(u32),
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
    /// virDomainReboot, with its flags (the reboot method).
    Reboot(u32),
    /// virDomainReset.
    Reset,
    /// virDomainRevertToSnapshot: name and flags.
    SnapshotRevert(String, u32),
    /// virDomainSnapshotCreateXML with REDEFINE: the document and the flags (CURRENT).
    SnapshotRedefine(MomentDef, u32),
}

impl Op {
    /// The libvirt call this operation mirrors, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Start => "start",
            Op::Shutdown => "shutdown",
            Op::Destroy(_) => "destroy",
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
            Op::Reboot(_) => "reboot",
            Op::Reset => "reset",
            Op::SnapshotRevert(..) => "snapshot revert",
            Op::SnapshotRedefine(..) => "snapshot redefine",
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
    /// A transient domain that went because it stopped: its shut-off reason, which its watchers
    /// are told (the domain itself is gone).
    pub stopped_as: Option<i32>,
}

impl Change {
    /// The domain becomes `domain`.
    pub fn update(domain: Domain) -> Self {
        Change { domain: Some(domain), started: false, pending: false, stopped_as: None }
    }

    fn start(mut domain: Domain) -> Self {
        domain.state = DomainState::Running;
        domain.reason = reason::RUNNING_BOOTED;
        Change { domain: Some(domain), started: true, pending: false, stopped_as: None }
    }

    fn pending(domain: Domain) -> Self {
        Change { domain: Some(domain), started: false, pending: true, stopped_as: None }
    }

    /// Nothing changes: the domain stays as it is.
    pub fn unchanged(domain: &Domain) -> Self {
        Change::pending(domain.clone())
    }

    /// The domain goes.
    pub fn remove() -> Self {
        Change { domain: None, started: false, pending: false, stopped_as: None }
    }

    /// The domain stops: an inactive persistent domain stays (its persistent definition back in
    /// effect), a transient one goes.
    fn stop(mut domain: Domain, why: i32) -> Self {
        if !domain.persistent {
            return Change { stopped_as: Some(why), ..Change::remove() };
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
        Op::Destroy(_) => {
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
        Op::Reboot(_) => {
            if !domain.is_active() {
                return Err(not_running());
            }
            if settles == Settles::Later {
                return Ok(Change::pending(next));
            }
            // As libvirt's testDomainReboot: <on_reboot> restart (or rename-restart) boots the
            // guest again in place, with the same id, a paused one too; destroy and preserve
            // stop it as a shutdown does.
            match domain.def.extras().on_reboot {
                "restart" | "rename-restart" => {
                    next.state = DomainState::Running;
                    next.reason = reason::RUNNING_BOOTED;
                    Ok(Change::update(next))
                }
                _ => Ok(Change::stop(next, reason::SHUTOFF_SHUTDOWN)),
            }
        }
        Op::Reset => {
            if !domain.is_active() {
                return Err(not_running());
            }
            // The guest starts over at once; its state, reason and id stay (libvirt's test
            // driver changes nothing at all), so there is nothing to record.
            Ok(Change::unchanged(domain))
        }
        Op::SnapshotRevert(name, flags) => snapshot_revert(next, name, *flags),
        Op::SnapshotRedefine(def, flags) => snapshot_redefine(next, def, *flags),
    }
}

/// virDomainRevertToSnapshot, as libvirt 9.0's test driver does it: a snapshot taken while
/// running or paused restarts the domain from it, any other one leaves it shut off; the
/// snapshot becomes the current one.
fn snapshot_revert(mut domain: Domain, name: &str, revert_flags: u32) -> Result<Change> {
    let taken = find_snapshot(&domain.moments, name)?.state.clone();
    let taken_active = matches!(taken.as_str(), "running" | "paused");
    let run_or_pause = revert_flags & (flags::SNAPSHOT_REVERT_RUNNING | flags::SNAPSHOT_REVERT_PAUSED) != 0;
    if !domain.persistent && !taken_active && !run_or_pause {
        return Err(Error::invalid(
            domain.state,
            "transient domain needs to request run or pause to revert to inactive snapshot",
        ));
    }
    let paused = revert_flags & flags::SNAPSHOT_REVERT_RUNNING == 0
        && (taken == "paused" || revert_flags & flags::SNAPSHOT_REVERT_PAUSED != 0);
    domain.moments.current_snapshot = Some(name.to_owned());
    // Differs from libvirt: rvirt keeps no domain definition with a snapshot, so a revert leaves
    // the domain's definition as it is, where libvirt puts back the one saved with the snapshot.
    if taken_active {
        // As libvirt 9.0's test driver: the guest starts afresh from the snapshot, with a new
        // id even when it was running, and a managed-save image is discarded.
        domain.has_managed_save = false;
        let mut change = Change::start(domain);
        if let Some(started) = &mut change.domain {
            (started.state, started.reason) = if paused {
                (DomainState::Paused, reason::PAUSED_FROM_SNAPSHOT)
            } else {
                (DomainState::Running, reason::RUNNING_FROM_SNAPSHOT)
            };
        }
        return Ok(change);
    }
    if domain.is_active() {
        // Differs from libvirt: a transient domain reverted (with RUNNING or PAUSED) to a
        // snapshot taken while shut off goes, as every transient domain that stops; libvirt's
        // test driver leaves it listed, shut off and still transient, a state nothing else makes.
        return Ok(Change::stop(domain, reason::SHUTOFF_FROM_SNAPSHOT));
    }
    // Shut off to shut off: only the current snapshot changes; RUNNING and PAUSED start nothing,
    // as in libvirt's test driver.
    Ok(Change::update(domain))
}

/// virDomainSnapshotCreateXML with REDEFINE, for a snapshot the domain has: its description is
/// replaced; with CURRENT it becomes the current snapshot.
fn snapshot_redefine(mut domain: Domain, def: &MomentDef, create_flags: u32) -> Result<Change> {
    let Some(name) = &def.name else {
        return Err(Error::Xml("a redefined snapshot must have a name".into()));
    };
    let Some(snapshot) = domain.moments.snapshots.iter_mut().find(|s| &s.name == name) else {
        // Differs from libvirt: redefining a snapshot that does not exist creates it there, from
        // the state, parent, time and domain definition the document holds; rvirt reads only a
        // snapshot document's name and description, so it refuses.
        return Err(Error::OperationUnsupported(format!(
            "cannot redefine snapshot '{name}': it does not exist, and rvirt redefines existing snapshots only"
        )));
    };
    snapshot.description = def.description.clone();
    if create_flags & flags::SNAPSHOT_CREATE_CURRENT != 0 {
        domain.moments.current_snapshot = Some(name.clone());
    }
    Ok(Change::update(domain))
}

/// The snapshot `name` of these moments.
pub fn find_snapshot<'a>(moments: &'a MomentLists, name: &str) -> Result<&'a Snapshot> {
    moments.snapshots.iter().find(|s| s.name == name).ok_or_else(|| Error::NoSnapshot(name.to_owned()))
}

/// The snapshots a listing selects (virDomainListAllSnapshots with `from` `None`,
/// virDomainSnapshotListAllChildren of `from` otherwise), `flags` already checked against
/// `flags::SNAPSHOT_LIST_ALL`: every snapshot (ROOTS: only those without a parent), or `from`'s
/// children (DESCENDANTS: all its descendants); then the filter groups, as libvirt's
/// virDomainSnapshotObjListGetNames: LEAVES and NO_LEAVES must both hold, METADATA/NO_METADATA,
/// INACTIVE/ACTIVE/DISK_ONLY and INTERNAL/EXTERNAL are ORs, ignored when no bit is set. In
/// creation order; with TOPOLOGICAL parents before children, depth first, siblings newest first
/// (libvirt links each new child first).
///
/// Differs from libvirt: its sibling order also moves a redefined snapshot first and puts the
/// children a deleted snapshot leaves behind before their new siblings; rvirt keeps creation
/// order, so `--topological` listings can order siblings differently after such changes.
pub fn list_snapshots<'a>(
    moments: &'a MomentLists,
    from: Option<&str>,
    list_flags: u32,
) -> Result<Vec<&'a Snapshot>> {
    use flags::*;
    let snapshots = &moments.snapshots;
    if let Some(from) = from {
        find_snapshot(moments, from)?;
    }
    let has_children = |s: &Snapshot| snapshots.iter().any(|c| c.parent.as_deref() == Some(&*s.name));
    // Whole-domain listings go all the way down unless ROOTS; children listings only with
    // DESCENDANTS (the same bit).
    let deep = (from.is_none() && list_flags & SNAPSHOT_LIST_ROOTS == 0)
        || (from.is_some() && list_flags & SNAPSHOT_LIST_DESCENDANTS != 0);
    let selected: Vec<&Snapshot> = if list_flags & SNAPSHOT_LIST_TOPOLOGICAL != 0 {
        // Depth first; children pushed oldest first come off the stack newest first. Bounded,
        // so even parent links that loop cannot keep it going.
        let mut stack: Vec<&Snapshot> = snapshots.iter().filter(|s| s.parent.as_deref() == from).collect();
        let mut selected = Vec::new();
        while let Some(snapshot) = stack.pop() {
            if selected.len() == snapshots.len() {
                break;
            }
            selected.push(snapshot);
            if deep {
                stack.extend(snapshots.iter().filter(|c| c.parent.as_deref() == Some(&*snapshot.name)));
            }
        }
        selected
    } else {
        snapshots
            .iter()
            .filter(|s| match (from, deep) {
                (None, true) => true,
                (_, false) => s.parent.as_deref() == from,
                (Some(ancestor), true) => descends_from(snapshots, s, ancestor),
            })
            .collect()
    };
    let metadata = list_flags & (SNAPSHOT_LIST_METADATA | SNAPSHOT_LIST_NO_METADATA);
    if metadata == SNAPSHOT_LIST_NO_METADATA {
        // Every rvirt snapshot has metadata.
        return Ok(Vec::new());
    }
    let status = list_flags & (SNAPSHOT_LIST_INACTIVE | SNAPSHOT_LIST_ACTIVE | SNAPSHOT_LIST_DISK_ONLY);
    let location = list_flags & (SNAPSHOT_LIST_INTERNAL | SNAPSHOT_LIST_EXTERNAL);
    let keep = |s: &Snapshot| {
        let leaf = !has_children(s);
        let class = match s.state.as_str() {
            "shutoff" => SNAPSHOT_LIST_INACTIVE,
            "disk-snapshot" => SNAPSHOT_LIST_DISK_ONLY,
            _ => SNAPSHOT_LIST_ACTIVE,
        };
        (list_flags & SNAPSHOT_LIST_LEAVES == 0 || leaf)
            && (list_flags & SNAPSHOT_LIST_NO_LEAVES == 0 || !leaf)
            && (status == 0 || status & class != 0)
            // Every rvirt snapshot is internal.
            && (location == 0 || location & SNAPSHOT_LIST_INTERNAL != 0)
    };
    Ok(selected.into_iter().filter(|s| keep(s)).collect())
}

/// Whether `snapshot` is a descendant of `ancestor` (bounded by the number of snapshots, so
/// looping parent links end).
fn descends_from(snapshots: &[Snapshot], snapshot: &Snapshot, ancestor: &str) -> bool {
    let mut parent = snapshot.parent.as_deref();
    for _ in 0..snapshots.len() {
        match parent {
            Some(name) if name == ancestor => return true,
            Some(name) => {
                parent = snapshots.iter().find(|s| s.name == name).and_then(|s| s.parent.as_deref())
            }
            None => return false,
        }
    }
    false
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
                Op::Destroy(0),
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
        assert_eq!(apply(&transient, &Op::Destroy(0)).unwrap().domain, None);
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
        let stopped = apply(&redefined, &Op::Destroy(0)).unwrap().domain.unwrap();
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

    fn snapshot_named(name: &str) -> MomentDef {
        MomentDef { name: Some(name.into()), description: String::new() }
    }

    /// `domain` after taking the snapshot `name` (it becomes current, its parent the old current).
    fn with_snapshot(domain: &Domain, name: &str) -> Domain {
        apply(domain, &Op::SnapshotCreate(snapshot_named(name), 0, 1)).unwrap().domain.unwrap()
    }

    #[test]
    fn reboot_restarts_in_place_or_stops_as_on_reboot_says_and_reset_changes_nothing() {
        use DomainState::*;
        for state in [Running, Paused, Blocked, Crashed, PmSuspended] {
            let change = apply(&domain_in(state), &Op::Reboot(0)).unwrap();
            let domain = change.domain.unwrap();
            assert_eq!((domain.state, domain.reason, domain.id, change.started), (Running, 1, 7, false));
        }
        let off = domain_in(Shutoff);
        assert!(matches!(apply(&off, &Op::Reboot(0)), Err(Error::OperationInvalid { .. })));
        assert!(matches!(apply(&off, &Op::Reset), Err(Error::OperationInvalid { .. })));
        let mut destroy = domain_in(Paused);
        let xml = "<domain type='test'><name>d</name><memory>1</memory><os><type>hvm</type></os>\
                   <on_reboot>destroy</on_reboot></domain>";
        destroy.def = Arc::new(DomainDef::parse(xml, &ParseDefaults { arch: "i686" }).unwrap());
        let stopped = apply(&destroy, &Op::Reboot(0)).unwrap().domain.unwrap();
        assert_eq!((stopped.state, stopped.reason, stopped.id), (Shutoff, reason::SHUTOFF_SHUTDOWN, -1));
        destroy.persistent = false;
        assert_eq!(apply(&destroy, &Op::Reboot(0)).unwrap().domain, None);
        // A hypervisor that reboots on its own time reports the outcome later.
        assert!(super::apply(&domain_in(Running), &Op::Reboot(1), Settles::Later).unwrap().pending);
        let mut unpaused = domain_in(Running);
        unpaused.reason = reason::RUNNING_UNPAUSED;
        let reset = apply(&unpaused, &Op::Reset).unwrap();
        assert!(reset.pending && reset.domain.as_ref() == Some(&unpaused));
    }

    /// libvirt 9.0's test driver, verified with virsh: (domain state, snapshot, flags) to the
    /// state, reason, whether it starts afresh (a new id), and the current snapshot after.
    #[test]
    fn revert_follows_the_snapshot_state_and_the_flags() {
        use DomainState::*;
        let (running, paused, force) =
            (flags::SNAPSHOT_REVERT_RUNNING, flags::SNAPSHOT_REVERT_PAUSED, flags::SNAPSHOT_REVERT_FORCE);
        let mut base = with_snapshot(&domain_in(Shutoff), "off");
        base.state = Running;
        base.id = 7;
        base = with_snapshot(&base, "run");
        base.state = Paused;
        base = with_snapshot(&base, "pau");
        // From state, snapshot, flags; to state, reason, started afresh.
        type Row = (DomainState, &'static str, u32, (DomainState, i32, bool));
        let table: &[Row] = &[
            (Shutoff, "off", 0, (Shutoff, reason::SHUTOFF_DESTROYED, false)),
            (Shutoff, "off", running, (Shutoff, reason::SHUTOFF_DESTROYED, false)),
            (Shutoff, "run", 0, (Running, reason::RUNNING_FROM_SNAPSHOT, true)),
            (Shutoff, "run", paused, (Paused, reason::PAUSED_FROM_SNAPSHOT, true)),
            (Shutoff, "pau", 0, (Paused, reason::PAUSED_FROM_SNAPSHOT, true)),
            (Shutoff, "pau", running | force, (Running, reason::RUNNING_FROM_SNAPSHOT, true)),
            (Running, "off", 0, (Shutoff, reason::SHUTOFF_FROM_SNAPSHOT, false)),
            (Running, "off", paused, (Shutoff, reason::SHUTOFF_FROM_SNAPSHOT, false)),
            (Running, "run", 0, (Running, reason::RUNNING_FROM_SNAPSHOT, true)),
            (Running, "run", paused | force, (Paused, reason::PAUSED_FROM_SNAPSHOT, true)),
            (Paused, "run", 0, (Running, reason::RUNNING_FROM_SNAPSHOT, true)),
            (Paused, "pau", 0, (Paused, reason::PAUSED_FROM_SNAPSHOT, true)),
            (Paused, "pau", running, (Running, reason::RUNNING_FROM_SNAPSHOT, true)),
            (Paused, "off", force, (Shutoff, reason::SHUTOFF_FROM_SNAPSHOT, false)),
        ];
        for &(state, name, revert_flags, want) in table {
            let mut domain = base.clone();
            domain.state = state;
            (domain.id, domain.reason) =
                if state == Shutoff { (-1, reason::SHUTOFF_DESTROYED) } else { (7, 1) };
            let change = apply(&domain, &Op::SnapshotRevert(name.into(), revert_flags)).unwrap();
            let after = change.domain.expect("persistent domains stay");
            assert_eq!(
                (after.state, after.reason, change.started),
                want,
                "{state:?} to {name} with {revert_flags:#x}"
            );
            assert_eq!(after.moments.current_snapshot.as_deref(), Some(name));
            assert_eq!(after.moments.snapshots, base.moments.snapshots, "the tree does not change");
        }
        // A managed-save image goes when the guest starts from a snapshot, not otherwise.
        let mut saved = base.clone();
        (saved.state, saved.id, saved.has_managed_save) = (Shutoff, -1, true);
        assert!(
            apply(&saved, &Op::SnapshotRevert("off".into(), 0)).unwrap().domain.unwrap().has_managed_save
        );
        assert!(
            !apply(&saved, &Op::SnapshotRevert("run".into(), 0)).unwrap().domain.unwrap().has_managed_save
        );
        // A transient domain needs RUNNING or PAUSED to go to a shut-off snapshot, and then goes.
        let mut transient = base.clone();
        transient.persistent = false;
        let refused = apply(&transient, &Op::SnapshotRevert("off".into(), 0));
        assert!(matches!(refused, Err(Error::OperationInvalid { state: Paused, .. })));
        assert_eq!(apply(&transient, &Op::SnapshotRevert("off".into(), running)).unwrap().domain, None);
        assert!(apply(&transient, &Op::SnapshotRevert("run".into(), 0)).unwrap().started);
        assert!(matches!(apply(&base, &Op::SnapshotRevert("zz".into(), 0)), Err(Error::NoSnapshot(_))));
    }

    #[test]
    fn redefine_updates_an_existing_snapshot_and_can_make_it_current() {
        let domain = with_snapshot(&with_snapshot(&domain_in(DomainState::Shutoff), "a"), "b");
        let described = MomentDef { name: Some("a".into()), description: "new".into() };
        let kept = apply(&domain, &Op::SnapshotRedefine(described.clone(), flags::SNAPSHOT_CREATE_REDEFINE));
        let kept = kept.unwrap().domain.unwrap();
        assert_eq!(
            (kept.moments.current_snapshot.as_deref(), kept.moments.snapshots[0].description.as_str()),
            (Some("b"), "new")
        );
        let redefine_current = flags::SNAPSHOT_CREATE_REDEFINE | flags::SNAPSHOT_CREATE_CURRENT;
        let current =
            apply(&domain, &Op::SnapshotRedefine(described, redefine_current)).unwrap().domain.unwrap();
        assert_eq!(current.moments.current_snapshot.as_deref(), Some("a"));
        let unknown = apply(&domain, &Op::SnapshotRedefine(snapshot_named("zz"), redefine_current));
        assert!(matches!(unknown, Err(Error::OperationUnsupported(_))));
        let unnamed = apply(&domain, &Op::SnapshotRedefine(MomentDef::default(), redefine_current));
        assert!(matches!(unnamed, Err(Error::Xml(_))));
    }

    /// The tree r -> (a -> (a1, a2), b -> bp): a2 taken after a1, b after a; a1, a2 and r taken
    /// shut off, b running, bp paused. Checked against libvirt 9.0's test driver.
    #[test]
    fn snapshot_listings_select_and_order_as_libvirt() {
        use flags::*;
        let mut domain = domain_in(DomainState::Shutoff);
        for (name, parent, state) in [
            ("r", None, "shutoff"),
            ("a", Some("r"), "shutoff"),
            ("a1", Some("a"), "shutoff"),
            ("a2", Some("a"), "shutoff"),
            ("b", Some("r"), "running"),
            ("bp", Some("b"), "paused"),
        ] {
            domain.moments.snapshots.push(Snapshot {
                name: name.into(),
                description: String::new(),
                creation_time: 1,
                state: state.into(),
                parent: parent.map(Into::into),
            });
        }
        fn listed(moments: &MomentLists, from: Option<&str>, list_flags: u32) -> Vec<String> {
            list_snapshots(moments, from, list_flags).unwrap().iter().map(|s| s.name.clone()).collect()
        }
        let names = |from: Option<&str>, list_flags: u32| listed(&domain.moments, from, list_flags);
        assert_eq!(names(None, 0), ["r", "a", "a1", "a2", "b", "bp"]);
        assert_eq!(names(None, SNAPSHOT_LIST_ROOTS), ["r"]);
        assert_eq!(names(None, SNAPSHOT_LIST_TOPOLOGICAL), ["r", "b", "bp", "a", "a2", "a1"]);
        assert_eq!(names(None, SNAPSHOT_LIST_ROOTS | SNAPSHOT_LIST_TOPOLOGICAL), ["r"]);
        assert_eq!(names(None, SNAPSHOT_LIST_LEAVES), ["a1", "a2", "bp"]);
        assert_eq!(names(None, SNAPSHOT_LIST_NO_LEAVES), ["r", "a", "b"]);
        assert!(names(None, SNAPSHOT_LIST_LEAVES | SNAPSHOT_LIST_NO_LEAVES).is_empty());
        assert_eq!(names(None, SNAPSHOT_LIST_ROOTS | SNAPSHOT_LIST_NO_LEAVES), ["r"]);
        assert!(names(None, SNAPSHOT_LIST_ROOTS | SNAPSHOT_LIST_LEAVES).is_empty());
        assert_eq!(names(None, SNAPSHOT_LIST_METADATA).len(), 6);
        assert!(names(None, SNAPSHOT_LIST_NO_METADATA).is_empty());
        assert_eq!(names(None, SNAPSHOT_LIST_METADATA | SNAPSHOT_LIST_NO_METADATA).len(), 6);
        assert_eq!(names(None, SNAPSHOT_LIST_INACTIVE), ["r", "a", "a1", "a2"]);
        assert_eq!(names(None, SNAPSHOT_LIST_ACTIVE), ["b", "bp"]);
        assert!(names(None, SNAPSHOT_LIST_DISK_ONLY).is_empty());
        assert_eq!(names(None, SNAPSHOT_LIST_INACTIVE | SNAPSHOT_LIST_DISK_ONLY).len(), 4);
        assert_eq!(names(None, SNAPSHOT_LIST_INACTIVE | SNAPSHOT_LIST_ACTIVE).len(), 6);
        assert_eq!(names(None, SNAPSHOT_LIST_INTERNAL).len(), 6);
        assert!(names(None, SNAPSHOT_LIST_EXTERNAL).is_empty());
        assert_eq!(names(None, SNAPSHOT_LIST_INTERNAL | SNAPSHOT_LIST_EXTERNAL).len(), 6);
        assert_eq!(names(None, SNAPSHOT_LIST_LEAVES | SNAPSHOT_LIST_TOPOLOGICAL), ["bp", "a2", "a1"]);
        // Children listings.
        assert_eq!(names(Some("r"), 0), ["a", "b"]);
        assert_eq!(names(Some("r"), SNAPSHOT_LIST_TOPOLOGICAL), ["b", "a"]);
        assert_eq!(names(Some("r"), SNAPSHOT_LIST_DESCENDANTS), ["a", "a1", "a2", "b", "bp"]);
        assert_eq!(
            names(Some("r"), SNAPSHOT_LIST_DESCENDANTS | SNAPSHOT_LIST_TOPOLOGICAL),
            ["b", "bp", "a", "a2", "a1"]
        );
        assert!(names(Some("r"), SNAPSHOT_LIST_LEAVES).is_empty());
        assert_eq!(names(Some("r"), SNAPSHOT_LIST_DESCENDANTS | SNAPSHOT_LIST_LEAVES), ["a1", "a2", "bp"]);
        assert_eq!(names(Some("r"), SNAPSHOT_LIST_INACTIVE), ["a"]);
        assert_eq!(names(Some("a"), SNAPSHOT_LIST_LEAVES), ["a1", "a2"]);
        assert!(names(Some("bp"), SNAPSHOT_LIST_DESCENDANTS).is_empty());
        assert!(matches!(list_snapshots(&domain.moments, Some("zz"), 0), Err(Error::NoSnapshot(_))));
        // Parent links that loop (a damaged store) end the walks.
        let mut looped = domain.moments.clone();
        looped.snapshots[0].parent = Some("bp".into());
        assert!(listed(&looped, None, SNAPSHOT_LIST_TOPOLOGICAL).is_empty());
        assert_eq!(
            listed(&looped, Some("r"), SNAPSHOT_LIST_DESCENDANTS | SNAPSHOT_LIST_TOPOLOGICAL).len(),
            6
        );
        assert_eq!(listed(&looped, Some("r"), SNAPSHOT_LIST_DESCENDANTS).len(), 6);
    }
}
