//! `Domain`: one domain as the registry holds it, a plain value (no locks, no I/O, no prost).
//! `DomainState` and the reason numbers are rvirt-proto's (`rvirt_proto::state`).

use crate::xml::DomainDef;
use std::sync::Arc;
use uuid::Uuid;

pub use rvirt_proto::state::{DomainState, reason};

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
