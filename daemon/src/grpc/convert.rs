//! Conversions between the daemon's types and the rvirt.v1 messages, and request-field parsing.

use crate::domain::{Checkpoint, Domain, DomainState, Snapshot};
use crate::error::{Error, Result};
use crate::registry::Committed;
use crate::xml;
use rvirt_proto::v1;
use uuid::Uuid;

/// The handle message for a domain as it is now.
pub fn handle(domain: &Domain) -> v1::Domain {
    v1::Domain { uuid: uuid_bytes(domain.uuid()), name: domain.name().to_owned(), id: domain.id }
}

/// A UUID as the 16 bytes answers carry.
pub fn uuid_bytes(uuid: Uuid) -> prost::bytes::Bytes {
    prost::bytes::Bytes::copy_from_slice(uuid.as_bytes())
}

/// The proto state.
pub fn state(state: DomainState) -> i32 {
    state as i32
}

/// One ListAllDomains entry.
pub fn summary(domain: &Domain) -> v1::DomainSummary {
    v1::DomainSummary {
        uuid_high: (domain.uuid().as_u128() >> 64) as u64,
        uuid_low: domain.uuid().as_u128() as u64,
        name: domain.name().to_owned(),
        id: domain.id,
        state: state(domain.state),
        reason: domain.reason,
        persistent: domain.persistent,
        autostart: domain.autostart,
        has_managed_save: domain.has_managed_save,
        snapshot_count: domain.moments.snapshots.len() as u32,
        checkpoint_count: domain.moments.checkpoints.len() as u32,
        title: domain.def.extras().title.as_deref().unwrap_or_default().to_owned(),
    }
}

/// The answer to every mutating call.
pub fn change(committed: Committed, incarnation: u64) -> v1::DomainChangeResponse {
    v1::DomainChangeResponse {
        incarnation,
        generation: committed.generation,
        domain: committed.domain.as_deref().map(summary),
    }
}

/// A snapshot's metadata.
pub fn snapshot(snapshot: &Snapshot, current: bool) -> v1::DomainSnapshot {
    v1::DomainSnapshot {
        name: snapshot.name.clone(),
        description: snapshot.description.clone(),
        creation_time: snapshot.creation_time,
        state: snapshot.state.clone(),
        parent: snapshot.parent.clone().unwrap_or_default(),
        current,
    }
}

/// A snapshot of `domain`'s, marked current if it is.
pub fn snapshot_of(domain: &Domain, snapshot: &Snapshot) -> v1::DomainSnapshot {
    self::snapshot(snapshot, domain.moments.current_snapshot.as_deref() == Some(snapshot.name.as_str()))
}

/// A checkpoint's metadata.
pub fn checkpoint(checkpoint: &Checkpoint) -> v1::DomainCheckpoint {
    v1::DomainCheckpoint {
        name: checkpoint.name.clone(),
        description: checkpoint.description.clone(),
        creation_time: checkpoint.creation_time,
        parent: checkpoint.parent.clone().unwrap_or_default(),
    }
}

/// A UUID field, parsed as libvirt's virUUIDParse does.
pub fn uuid(text: &str) -> Result<Uuid> {
    if text.len() > 64 {
        return Err(Error::InvalidArg(format!("uuid is {} bytes long; a UUID has 36", text.len())));
    }
    xml::parse_uuid(text).ok_or_else(|| Error::InvalidArg(format!("invalid UUID '{text}'")))
}
