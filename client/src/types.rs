//! Plain values the client returns: domain states, listing entries, change results.

use crate::error::{Error, ErrorKind, Result};
use rvirt_proto::v1;
use uuid::Uuid;

pub use rvirt_proto::DomainState;

/// A domain handle's identity: name, uuid and id as they were when it was returned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainId {
    /// The name.
    pub name: String,
    /// The UUID.
    pub uuid: Uuid,
    /// The id, -1 when inactive.
    pub id: i32,
}

/// One ListAllDomains entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DomainSummary {
    /// Name, uuid and id.
    pub domain: DomainId,
    /// The state.
    pub state: DomainState,
    /// The reason number for the state.
    pub reason: i32,
    /// Defined rather than transient.
    pub persistent: bool,
    /// Marked for autostart.
    pub autostart: bool,
    /// A managed-save image exists.
    pub has_managed_save: bool,
    /// Snapshot count.
    pub snapshot_count: u32,
    /// Checkpoint count.
    pub checkpoint_count: u32,
    /// The `<title>`, empty if none.
    pub title: String,
}

/// An atomic listing: every matching domain as of one generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The domains, in the daemon's order (by UUID).
    pub domains: Vec<DomainSummary>,
    /// The generation of the snapshot the listing was cut from.
    pub generation: u64,
    /// The daemon incarnation the generation belongs to.
    pub incarnation: u64,
}

/// What a mutating call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The generation the change produced.
    pub generation: u64,
    /// The daemon incarnation the generation belongs to.
    pub incarnation: u64,
    /// The domain after the change; `None` if it was removed.
    pub domain: Option<DomainSummary>,
}

/// virDomainGetInfo and friends, as virsh's dominfo shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainInfo {
    /// Name, uuid and id.
    pub domain: DomainId,
    /// The state.
    pub state: DomainState,
    /// The reason number.
    pub reason: i32,
    /// Maximum memory, KiB.
    pub max_memory_kib: u64,
    /// Current memory, KiB.
    pub memory_kib: u64,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// CPU time used, ns.
    pub cpu_time_ns: u64,
    /// virDomainGetOSType.
    pub os_type: String,
    /// Defined rather than transient.
    pub persistent: bool,
    /// Marked for autostart.
    pub autostart: bool,
    /// A managed-save image exists.
    pub has_managed_save: bool,
}

/// A snapshot's metadata.
pub type Snapshot = v1::DomainSnapshot;
/// A checkpoint's metadata.
pub type Checkpoint = v1::DomainCheckpoint;

pub(crate) fn domain_id(message: Option<v1::Domain>) -> Result<DomainId> {
    let message = message.ok_or_else(|| malformed("domain missing"))?;
    Ok(DomainId { name: message.name, uuid: uuid(&message.uuid)?, id: message.id })
}

fn uuid(bytes: &[u8]) -> Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|_| malformed("a UUID is not 16 bytes"))
}

pub(crate) fn state(value: i32) -> Result<DomainState> {
    DomainState::from_i32(value).ok_or_else(|| malformed("unknown state"))
}

pub(crate) fn summary(message: v1::DomainSummary) -> Result<DomainSummary> {
    Ok(DomainSummary {
        domain: DomainId {
            uuid: Uuid::from_u64_pair(message.uuid_high, message.uuid_low),
            name: message.name,
            id: message.id,
        },
        state: state(message.state)?,
        reason: message.reason,
        persistent: message.persistent,
        autostart: message.autostart,
        has_managed_save: message.has_managed_save,
        snapshot_count: message.snapshot_count,
        checkpoint_count: message.checkpoint_count,
        title: message.title,
    })
}

pub(crate) fn change(message: v1::DomainChangeResponse) -> Result<Change> {
    Ok(Change {
        generation: message.generation,
        incarnation: message.incarnation,
        domain: message.domain.map(summary).transpose()?,
    })
}

pub(crate) fn snapshot(message: Option<v1::DomainSnapshot>) -> Result<Snapshot> {
    message.ok_or_else(|| malformed("snapshot missing"))
}

pub(crate) fn info(message: v1::DomainGetInfoResponse) -> Result<DomainInfo> {
    Ok(DomainInfo {
        domain: domain_id(message.domain)?,
        state: state(message.state)?,
        reason: message.reason,
        max_memory_kib: message.max_memory_kib,
        memory_kib: message.memory_kib,
        vcpus: message.vcpus,
        cpu_time_ns: message.cpu_time_ns,
        os_type: message.os_type,
        persistent: message.persistent,
        autostart: message.autostart,
        has_managed_save: message.has_managed_save,
    })
}

fn malformed(what: &str) -> Error {
    Error::local(ErrorKind::Internal, format!("malformed answer from the daemon: {what}"))
}
