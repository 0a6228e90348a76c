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

/// virDomainSnapshotGetXMLDesc: the `<domainsnapshot>` document as libvirt 9.0's test driver
/// formats it, the domain's definition nested inside.
///
/// Differs from libvirt: rvirt keeps no definition with each snapshot, so the nested `<domain>`
/// is the definition the domain has now (libvirt shows the one it had when the snapshot was
/// taken), and elements rvirt does not model (device addresses, controllers) are absent from it.
pub fn snapshot_xml(domain: &Domain, snapshot: &Snapshot) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("<domainsnapshot>\n");
    let _ = writeln!(out, "  <name>{}</name>", xml::escape(&snapshot.name));
    if !snapshot.description.is_empty() {
        let _ = writeln!(out, "  <description>{}</description>", xml::escape(&snapshot.description));
    }
    let _ = writeln!(out, "  <state>{}</state>", xml::escape(&snapshot.state));
    if let Some(parent) = &snapshot.parent {
        let _ = writeln!(out, "  <parent>\n    <name>{}</name>\n  </parent>", xml::escape(parent));
    }
    let _ = writeln!(out, "  <creationTime>{}</creationTime>", snapshot.creation_time);
    // Memory is saved with every snapshot of an active guest (all of rvirt's are internal).
    let memory = if snapshot.state == "shutoff" { "no" } else { "internal" };
    let _ = writeln!(out, "  <memory snapshot='{memory}'/>");
    if !domain.def.disks.is_empty() {
        out.push_str("  <disks>\n");
        for disk in &domain.def.disks {
            // A CD-ROM is read-only: libvirt's virDomainSnapshotAlignDisks leaves it out.
            let kind = if disk.device.as_str() == "cdrom" { "no" } else { "internal" };
            let _ = writeln!(out, "    <disk name='{}' snapshot='{kind}'/>", xml::escape(&disk.target_dev));
        }
        out.push_str("  </disks>\n");
    }
    for line in domain.def.to_xml(None).lines() {
        let _ = writeln!(out, "  {line}");
    }
    out.push_str("</domainsnapshot>\n");
    out
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

/// A domain name field (lookups): non-empty, bounded.
pub fn name(text: &str) -> Result<&str> {
    if text.is_empty() {
        return Err(Error::InvalidArg("domain name must not be empty".into()));
    }
    if text.len() > xml::MAX_NAME_BYTES {
        return Err(Error::InvalidArg(format!(
            "domain name is {} bytes long, the limit is {}",
            text.len(),
            xml::MAX_NAME_BYTES
        )));
    }
    Ok(text)
}

/// A snapshot or checkpoint name field.
pub fn moment_name(text: &str) -> Result<&str> {
    xml::check_name(text).map_err(|error| match error {
        Error::Xml(message) => Error::InvalidArg(message),
        other => other,
    })?;
    Ok(text)
}

/// A `max_ids`/`max_names` field: zero or greater, as libvirt's virConnectListDomains.
pub fn max_count(value: i32, what: &str) -> Result<usize> {
    usize::try_from(value).map_err(|_| Error::InvalidArg(format!("{what} must be zero or greater")))
}

/// A domain document without its secrets, as libvirt formats one without
/// VIR_DOMAIN_XML_SECURE: the `passwd` attribute of `<graphics>` (kept as written, since rvirt
/// does not model graphics) is left out. Attribute values never hold their own quote (the
/// formatter escapes them), so an attribute ends at the next one.
pub fn without_secrets(xml: String) -> String {
    if !xml.contains(" passwd=") {
        return xml;
    }
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml.as_str();
    while let Some(at) = rest.find(" passwd=") {
        let value = &rest[at + " passwd=".len()..];
        let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
            continue;
        };
        let Some(end) = value[1..].find(quote) else { break };
        out.push_str(&rest[..at]);
        rest = &value[1 + end + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod secret_tests {
    #[test]
    fn passwords_are_left_out() {
        let xml =
            "<graphics type='vnc' port='-1' passwd='s3cret' keymap='en'/><graphics passwd=\"x\"/>".to_owned();
        assert_eq!(super::without_secrets(xml), "<graphics type='vnc' port='-1' keymap='en'/><graphics/>");
        let plain = "<name>passwd</name>".to_owned();
        assert_eq!(super::without_secrets(plain.clone()), plain);
    }
}
