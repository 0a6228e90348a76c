//! `Domain`: one domain as the registry holds it, a plain value (no locks, no I/O, no prost).
//! `DomainState` and the reason numbers carry libvirt's values.

use crate::xml::DomainDef;
use std::sync::Arc;
use uuid::Uuid;

/// virDomainState, with libvirt's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum DomainState {
    /// VIR_DOMAIN_NOSTATE.
    NoState = 0,
    /// VIR_DOMAIN_RUNNING.
    Running = 1,
    /// VIR_DOMAIN_BLOCKED ("idle").
    Blocked = 2,
    /// VIR_DOMAIN_PAUSED.
    Paused = 3,
    /// VIR_DOMAIN_SHUTDOWN ("in shutdown").
    Shutdown = 4,
    /// VIR_DOMAIN_SHUTOFF.
    Shutoff = 5,
    /// VIR_DOMAIN_CRASHED.
    Crashed = 6,
    /// VIR_DOMAIN_PMSUSPENDED.
    PmSuspended = 7,
}

impl DomainState {
    /// Every state, in libvirt's order.
    pub const ALL: [DomainState; 8] = [
        DomainState::NoState,
        DomainState::Running,
        DomainState::Blocked,
        DomainState::Paused,
        DomainState::Shutdown,
        DomainState::Shutoff,
        DomainState::Crashed,
        DomainState::PmSuspended,
    ];

    /// The state with libvirt's number `value`.
    pub fn from_i32(value: i32) -> Option<Self> {
        Self::ALL.get(usize::try_from(value).ok()?).copied()
    }
}

impl std::fmt::Display for DomainState {
    /// virsh's words for the state.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DomainState::NoState => "no state",
            DomainState::Running => "running",
            DomainState::Blocked => "idle",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "in shutdown",
            DomainState::Shutoff => "shut off",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
        })
    }
}

/// The reason numbers rvirt sets (vir<State>Reason in libvirt).
pub mod reason {
    /// Any state: VIR_DOMAIN_*_UNKNOWN.
    pub const UNKNOWN: i32 = 0;
    /// VIR_DOMAIN_RUNNING_BOOTED.
    pub const RUNNING_BOOTED: i32 = 1;
    /// VIR_DOMAIN_RUNNING_RESTORED.
    pub const RUNNING_RESTORED: i32 = 3;
    /// VIR_DOMAIN_RUNNING_UNPAUSED.
    pub const RUNNING_UNPAUSED: i32 = 5;
    /// VIR_DOMAIN_RUNNING_WAKEUP.
    pub const RUNNING_WAKEUP: i32 = 8;
    /// VIR_DOMAIN_PAUSED_USER.
    pub const PAUSED_USER: i32 = 1;
    /// VIR_DOMAIN_SHUTOFF_SHUTDOWN.
    pub const SHUTOFF_SHUTDOWN: i32 = 1;
    /// VIR_DOMAIN_SHUTOFF_DESTROYED.
    pub const SHUTOFF_DESTROYED: i32 = 2;
    /// VIR_DOMAIN_SHUTOFF_CRASHED.
    pub const SHUTOFF_CRASHED: i32 = 3;
    /// VIR_DOMAIN_SHUTOFF_SAVED.
    pub const SHUTOFF_SAVED: i32 = 5;
    /// VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT.
    pub const SHUTOFF_FROM_SNAPSHOT: i32 = 7;
}

/// A snapshot's metadata (libvirt's virDomainSnapshotDef, the part rvirt keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Unique among the domain's snapshots.
    pub name: String,
    /// Free text, possibly empty.
    pub description: String,
    /// Unix seconds.
    pub creation_time: i64,
    /// The domain's state when taken, as libvirt's snapshot XML names it ("running", "shutoff").
    pub state: String,
    /// The snapshot that was current when this one was taken.
    pub parent: Option<String>,
}

/// A checkpoint's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Unique among the domain's checkpoints.
    pub name: String,
    /// Free text, possibly empty.
    pub description: String,
    /// Unix seconds.
    pub creation_time: i64,
    /// The checkpoint that was the latest when this one was taken.
    pub parent: Option<String>,
}

/// One domain, as a value: the registry replaces it whole on every change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// The definition in effect: the live one while active, the persistent one while inactive.
    pub def: Arc<DomainDef>,
    /// The persistent definition to restore when an active domain stops: set when a running
    /// domain is redefined, or started with CreateXML over its persistent definition.
    pub next_def: Option<Arc<DomainDef>>,
    /// -1 when inactive; ids are never reused.
    pub id: i32,
    /// The state and its reason number.
    pub state: DomainState,
    /// vir<State>Reason for `state`.
    pub reason: i32,
    /// Defined (survives stopping) rather than transient (gone when it stops).
    pub persistent: bool,
    /// Start when the host starts.
    pub autostart: bool,
    /// A managed-save image exists.
    pub has_managed_save: bool,
    /// Snapshot and checkpoint metadata; most domains have none, and then it costs one word.
    pub moments: Moments,
    /// The driver's record of the running guest (pid, monitor, ...); `None` while inactive and
    /// on drivers that need none.
    pub runtime: Option<crate::driver::Runtime>,
}

impl Domain {
    /// A new inactive domain: SHUTOFF/UNKNOWN, id -1.
    pub fn new(def: Arc<DomainDef>, persistent: bool) -> Self {
        Domain {
            def,
            next_def: None,
            id: -1,
            state: DomainState::Shutoff,
            reason: reason::UNKNOWN,
            persistent,
            autostart: false,
            has_managed_save: false,
            moments: Moments::default(),
            runtime: None,
        }
    }

    /// The UUID, which never changes.
    pub fn uuid(&self) -> Uuid {
        self.def.uuid
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Active means it has an id (libvirt's virDomainObjIsActive).
    pub fn is_active(&self) -> bool {
        self.id != -1
    }
}

/// A domain's snapshots and checkpoints, boxed only when there are any: the registry holds
/// 100,000 domains, and three empty lists in each would cost 72 bytes apiece.
#[derive(Debug, Clone, Default)]
pub struct Moments(Option<Box<MomentLists>>);

/// The lists behind `Moments`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MomentLists {
    /// Snapshot metadata, in creation order.
    pub snapshots: Vec<Snapshot>,
    /// The current snapshot's name.
    pub current_snapshot: Option<String>,
    /// Checkpoint metadata, in creation order.
    pub checkpoints: Vec<Checkpoint>,
}

static NO_MOMENTS: MomentLists =
    MomentLists { snapshots: Vec::new(), current_snapshot: None, checkpoints: Vec::new() };

impl std::ops::Deref for Moments {
    type Target = MomentLists;

    fn deref(&self) -> &MomentLists {
        self.0.as_deref().unwrap_or(&NO_MOMENTS)
    }
}

impl std::ops::DerefMut for Moments {
    fn deref_mut(&mut self) -> &mut MomentLists {
        self.0.get_or_insert_default()
    }
}

impl PartialEq for Moments {
    /// Empty equals absent.
    fn eq(&self, other: &Moments) -> bool {
        **self == **other
    }
}

impl Eq for Moments {}
