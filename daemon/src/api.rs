//! libvirt's API calls, checked as libvirt's public API and test driver check them (flag bits,
//! exclusive and required flags, argument ranges, names) and turned into an `Op` or read off a
//! `Domain`. The one home of those rules: both front ends (`grpc`, `native`) call these and only
//! convert their own wire types around them.

use crate::domain::{Checkpoint, Domain, DomainState, Snapshot};
use crate::error::{Error, Result};
use crate::lifecycle::{self, Op, flags};
use crate::xml::{self, MomentDef};

/// virDomainCreateWithFlags.
pub fn start(start_flags: u32) -> Result<Op> {
    Error::check_flags(start_flags, 0, "virDomainCreateWithFlags")?;
    Ok(Op::Start)
}

/// virDomainShutdownFlags.
pub fn shutdown(shutdown_flags: u32) -> Result<Op> {
    Error::check_flags(shutdown_flags, 0, "virDomainShutdownFlags")?;
    Ok(Op::Shutdown)
}

/// virDomainReboot.
pub fn reboot(reboot_flags: u32) -> Result<Op> {
    Error::check_flags(reboot_flags, flags::REBOOT_ALL, "virDomainReboot")?;
    Ok(Op::Reboot(reboot_flags))
}

/// virDomainReset.
pub fn reset(reset_flags: u32) -> Result<Op> {
    Error::check_flags(reset_flags, 0, "virDomainReset")?;
    Ok(Op::Reset)
}

/// virDomainDestroyFlags.
pub fn destroy(destroy_flags: u32) -> Result<Op> {
    Error::check_flags(destroy_flags, flags::DESTROY_GRACEFUL, "virDomainDestroyFlags")?;
    Ok(Op::Destroy(destroy_flags))
}

/// virDomainUndefineFlags.
pub fn undefine(undefine_flags: u32) -> Result<Op> {
    let known = flags::UNDEFINE_MANAGED_SAVE | flags::UNDEFINE_SNAPSHOTS_METADATA;
    Error::check_flags(undefine_flags, known, "virDomainUndefineFlags")?;
    Ok(Op::Undefine(undefine_flags))
}

/// virDomainManagedSave.
pub fn managed_save(save_flags: u32) -> Result<Op> {
    Error::check_flags(save_flags, flags::MANAGED_SAVE_ALL, "virDomainManagedSave")?;
    Ok(Op::ManagedSave)
}

/// virDomainManagedSaveRemove.
pub fn managed_save_remove(remove_flags: u32) -> Result<Op> {
    Error::check_flags(remove_flags, 0, "virDomainManagedSaveRemove")?;
    Ok(Op::ManagedSaveRemove)
}

/// virDomainPMSuspendForDuration.
pub fn pm_suspend(target: u32, duration: u64, suspend_flags: u32) -> Result<Op> {
    Error::check_flags(suspend_flags, 0, "virDomainPMSuspendForDuration")?;
    if target > 2 {
        return Err(Error::InvalidArg(format!("unknown suspend target {target}")));
    }
    if duration != 0 {
        // As the QEMU driver: guests cannot be told when to wake up.
        return Err(Error::InvalidArg("duration not supported, use 0".into()));
    }
    Ok(Op::PmSuspend)
}

/// virDomainPMWakeup.
pub fn pm_wakeup(wakeup_flags: u32) -> Result<Op> {
    Error::check_flags(wakeup_flags, 0, "virDomainPMWakeup")?;
    Ok(Op::PmWakeup)
}

/// virDomainSnapshotCreateXML (pure CPU: callers may run it off the async workers). REDEFINE
/// (and CURRENT) are checked as libvirt's public API does: CURRENT needs REDEFINE, which
/// excludes HALT and NO_METADATA.
pub fn snapshot_create(xml: &str, create_flags: u32) -> Result<Op> {
    if create_flags & (flags::SNAPSHOT_CREATE_REDEFINE | flags::SNAPSHOT_CREATE_CURRENT) == 0 {
        Error::check_flags(create_flags, flags::SNAPSHOT_CREATE_ALL, "virDomainSnapshotCreateXML")?;
        return Ok(Op::SnapshotCreate(MomentDef::parse(xml, "domainsnapshot")?, create_flags, now()));
    }
    let redefine = (flags::SNAPSHOT_CREATE_REDEFINE, "VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE");
    requires_flag(
        create_flags,
        (flags::SNAPSHOT_CREATE_CURRENT, "VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT"),
        redefine,
    )?;
    let no_metadata = (flags::SNAPSHOT_CREATE_NO_METADATA, "VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA");
    exclusive_flags(create_flags, redefine, no_metadata)?;
    exclusive_flags(
        create_flags,
        redefine,
        (flags::SNAPSHOT_CREATE_HALT, "VIR_DOMAIN_SNAPSHOT_CREATE_HALT"),
    )?;
    Error::check_flags(
        create_flags,
        flags::SNAPSHOT_CREATE_ALL | flags::SNAPSHOT_CREATE_REDEFINE | flags::SNAPSHOT_CREATE_CURRENT,
        "virDomainSnapshotCreateXML",
    )?;
    Ok(Op::SnapshotRedefine(MomentDef::parse(xml, "domainsnapshot")?, create_flags))
}

/// virDomainCheckpointCreateXML (pure CPU).
pub fn checkpoint_create(xml: &str, create_flags: u32) -> Result<Op> {
    Error::check_flags(create_flags, flags::CHECKPOINT_CREATE_QUIESCE, "virDomainCheckpointCreateXML")?;
    Ok(Op::CheckpointCreate(MomentDef::parse(xml, "domaincheckpoint")?, now()))
}

/// The time a new snapshot or checkpoint is stamped with: Unix seconds.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// virDomainRevertToSnapshot.
pub fn snapshot_revert(name: &str, revert_flags: u32) -> Result<Op> {
    exclusive_flags(
        revert_flags,
        (flags::SNAPSHOT_REVERT_RUNNING, "VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING"),
        (flags::SNAPSHOT_REVERT_PAUSED, "VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED"),
    )?;
    Error::check_flags(revert_flags, flags::SNAPSHOT_REVERT_ALL, "virDomainRevertToSnapshot")?;
    Ok(Op::SnapshotRevert(moment_name(name)?.to_owned(), revert_flags))
}

/// virDomainSnapshotDelete.
pub fn snapshot_delete(name: &str, delete_flags: u32) -> Result<Op> {
    Error::check_flags(delete_flags, flags::SNAPSHOT_DELETE_ALL, "virDomainSnapshotDelete")?;
    exclusive_children_flags(delete_flags, "SNAPSHOT")?;
    Ok(Op::SnapshotDelete(moment_name(name)?.to_owned(), delete_flags))
}

/// virDomainCheckpointDelete.
pub fn checkpoint_delete(name: &str, delete_flags: u32) -> Result<Op> {
    Error::check_flags(delete_flags, flags::CHECKPOINT_DELETE_ALL, "virDomainCheckpointDelete")?;
    exclusive_children_flags(delete_flags, "CHECKPOINT")?;
    Ok(Op::CheckpointDelete(moment_name(name)?.to_owned(), delete_flags))
}

/// virDomainGetState: the state and its reason.
pub fn state(domain: &Domain, state_flags: u32) -> Result<(DomainState, i32)> {
    Error::check_flags(state_flags, 0, "virDomainGetState")?;
    Ok((domain.state, domain.reason))
}

/// virDomainHasManagedSaveImage.
pub fn has_managed_save(domain: &Domain, has_flags: u32) -> Result<bool> {
    Error::check_flags(has_flags, 0, "virDomainHasManagedSaveImage")?;
    Ok(domain.has_managed_save)
}

/// virDomainGetXMLDesc's flags, checked before the domain is looked up. As libvirt: secrets only
/// when asked for, and never on a read-only connection.
pub fn xml_desc_flags(xml_flags: u32, read_only: bool) -> Result<()> {
    Error::check_flags(xml_flags, flags::XML_ALL, "virDomainGetXMLDesc")?;
    secure_flag(xml_flags & flags::XML_SECURE != 0, read_only, "virDomainGetXMLDesc")
}

/// libvirt's rule for every call that prints a domain's XML (virDomainGetXMLDesc, and the
/// snapshot and checkpoint documents that nest one): its SECURE flag is refused on a read-only
/// connection, before anything else is looked at.
pub fn secure_flag(secure: bool, read_only: bool, function: &str) -> Result<()> {
    if secure && read_only {
        return Err(Error::ReadOnly(format!("{function} with secure flag")));
    }
    Ok(())
}

/// virDomainGetXMLDesc, its flags checked by `xml_desc_flags`.
pub fn xml_desc(domain: &Domain, xml_flags: u32) -> String {
    let xml = if xml_flags & flags::XML_INACTIVE != 0 {
        domain.next_def.as_ref().unwrap_or(&domain.def).to_xml(None)
    } else {
        domain.def.to_xml(domain.is_active().then_some(domain.id))
    };
    if xml_flags & flags::XML_SECURE != 0 { xml } else { without_secrets(xml) }
}

/// virDomainListAllSnapshots (`from` `None`) or virDomainSnapshotListAllChildren; `function`
/// names the call for the flags error.
pub fn snapshots<'a>(
    domain: &'a Domain,
    from: Option<&str>,
    list_flags: u32,
    function: &'static str,
) -> Result<Vec<&'a Snapshot>> {
    Error::check_flags(list_flags, flags::SNAPSHOT_LIST_ALL, function)?;
    let from = from.map(moment_name).transpose()?;
    lifecycle::list_snapshots(&domain.moments, from, list_flags)
}

/// virDomainSnapshotLookupByName and the calls on a snapshot handle (GetXMLDesc, GetParent,
/// IsCurrent, HasMetadata, ...), `known` flags accepted.
pub fn snapshot<'a>(
    domain: &'a Domain,
    name: &str,
    (lookup_flags, known, function): (u32, u32, &'static str),
) -> Result<&'a Snapshot> {
    Error::check_flags(lookup_flags, known, function)?;
    lifecycle::find_snapshot(&domain.moments, moment_name(name)?)
}

/// virDomainSnapshotCurrent.
pub fn snapshot_current(domain: &Domain, current_flags: u32) -> Result<&Snapshot> {
    Error::check_flags(current_flags, 0, "virDomainSnapshotCurrent")?;
    let current = domain
        .moments
        .current_snapshot
        .as_deref()
        .ok_or_else(|| Error::NoRelatedSnapshot("the domain does not have a current snapshot".into()))?;
    lifecycle::find_snapshot(&domain.moments, current)
}

/// virDomainHasCurrentSnapshot.
pub fn has_current_snapshot(domain: &Domain, has_flags: u32) -> Result<bool> {
    Error::check_flags(has_flags, 0, "virDomainHasCurrentSnapshot")?;
    Ok(domain.moments.current_snapshot.is_some())
}

/// virDomainSnapshotGetParent.
pub fn snapshot_parent<'a>(domain: &'a Domain, name: &str, parent_flags: u32) -> Result<&'a Snapshot> {
    let snapshot = snapshot(domain, name, (parent_flags, 0, "virDomainSnapshotGetParent"))?;
    let parent = snapshot.parent.as_deref().ok_or_else(|| {
        Error::NoRelatedSnapshot(format!("snapshot '{}' does not have a parent", snapshot.name))
    })?;
    lifecycle::find_snapshot(&domain.moments, parent)
}

/// Whether `snapshot` is `domain`'s current one.
pub fn is_current(domain: &Domain, snapshot: &Snapshot) -> bool {
    domain.moments.current_snapshot.as_deref() == Some(snapshot.name.as_str())
}

/// virDomainListAllCheckpoints.
pub fn checkpoints(domain: &Domain, list_flags: u32) -> Result<&[Checkpoint]> {
    Error::check_flags(list_flags, 0, "virDomainListAllCheckpoints")?;
    Ok(&domain.moments.checkpoints)
}

/// virDomainCheckpointLookupByName and the calls on a checkpoint handle.
pub fn checkpoint<'a>(
    domain: &'a Domain,
    name: &str,
    (lookup_flags, known, function): (u32, u32, &'static str),
) -> Result<&'a Checkpoint> {
    Error::check_flags(lookup_flags, known, function)?;
    let name = moment_name(name)?;
    domain
        .moments
        .checkpoints
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Error::NoCheckpoint(name.to_owned()))
}

/// virDomainCheckpointGetParent.
pub fn checkpoint_parent<'a>(domain: &'a Domain, name: &str, parent_flags: u32) -> Result<&'a Checkpoint> {
    let checkpoint = checkpoint(domain, name, (parent_flags, 0, "virDomainCheckpointGetParent"))?;
    let parent = checkpoint.parent.as_deref().ok_or_else(|| {
        Error::NoRelatedCheckpoint(format!("checkpoint '{}' does not have a parent", checkpoint.name))
    })?;
    domain
        .moments
        .checkpoints
        .iter()
        .find(|c| c.name == parent)
        .ok_or_else(|| Error::NoCheckpoint(parent.to_owned()))
}

/// virDomainSnapshotGetXMLDesc: the `<domainsnapshot>` document as libvirt 9.0's test driver
/// formats it, the domain's definition nested inside.
///
/// Differs from libvirt: rvirt keeps no definition with each snapshot, so the nested `<domain>`
/// is the definition the domain has now (libvirt shows the one it had when the snapshot was
/// taken), and elements rvirt does not model (device addresses, controllers) are absent from it.
/// The nested definition keeps its secrets only when `secure` (VIR_DOMAIN_SNAPSHOT_XML_SECURE,
/// checked with `secure_flag`).
pub fn snapshot_xml(domain: &Domain, snapshot: &Snapshot, secure: bool) -> String {
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
    nest_domain(&mut out, domain, secure);
    out.push_str("</domainsnapshot>\n");
    out
}

/// virDomainCheckpointGetXMLDesc: the `<domaincheckpoint>` document, the domain's definition
/// nested inside unless `with_domain` is false (VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN), with its
/// secrets only when `secure` (VIR_DOMAIN_CHECKPOINT_XML_SECURE, checked with `secure_flag`).
///
/// Differs from libvirt: as for snapshots, the nested `<domain>` is the definition the domain has
/// now, and no per-disk bitmap is listed (rvirt's checkpoints track no disk bitmaps).
pub fn checkpoint_xml(domain: &Domain, checkpoint: &Checkpoint, with_domain: bool, secure: bool) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("<domaincheckpoint>\n");
    let _ = writeln!(out, "  <name>{}</name>", xml::escape(&checkpoint.name));
    if !checkpoint.description.is_empty() {
        let _ = writeln!(out, "  <description>{}</description>", xml::escape(&checkpoint.description));
    }
    if let Some(parent) = &checkpoint.parent {
        let _ = writeln!(out, "  <parent>\n    <name>{}</name>\n  </parent>", xml::escape(parent));
    }
    let _ = writeln!(out, "  <creationTime>{}</creationTime>", checkpoint.creation_time);
    if with_domain {
        nest_domain(&mut out, domain, secure);
    }
    out.push_str("</domaincheckpoint>\n");
    out
}

/// The domain's definition, indented two spaces, inside a moment's document; without its
/// secrets unless `secure`, as virDomainGetXMLDesc prints it.
fn nest_domain(out: &mut String, domain: &Domain, secure: bool) {
    let xml = domain.def.to_xml(None);
    let xml = if secure { xml } else { without_secrets(xml) };
    for line in xml.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
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

/// A domain name argument (lookups): non-empty, bounded.
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

/// A snapshot or checkpoint name argument.
pub fn moment_name(text: &str) -> Result<&str> {
    xml::check_name(text).map_err(|error| match error {
        Error::Xml(message) => Error::InvalidArg(message),
        other => other,
    })?;
    Ok(text)
}

/// A `maxids`/`maxnames` argument: zero or greater, as libvirt's virConnectListDomains.
pub fn max_count(value: i32, what: &str) -> Result<usize> {
    usize::try_from(value).map_err(|_| Error::ApiArg(format!("{what} must be zero or greater")))
}

/// A domain id argument (virDomainLookupByID): zero or greater.
pub fn id(value: i32) -> Result<i32> {
    if value < 0 {
        return Err(Error::ApiArg("id in virDomainLookupByID must be zero or greater".into()));
    }
    Ok(value)
}

/// libvirt's virCheckExclusiveFlags: `a` and `b` (bit and libvirt name) not both.
fn exclusive_flags(value: u32, (a, a_name): (u32, &str), (b, b_name): (u32, &str)) -> Result<()> {
    if value & a != 0 && value & b != 0 {
        return Err(Error::ApiArg(format!("Flags '{a_name}' and '{b_name}' are mutually exclusive")));
    }
    Ok(())
}

/// libvirt's VIR_REQUIRE_FLAG_RET: `flag` only with `required` (bit and libvirt name each).
fn requires_flag(
    value: u32,
    (flag, flag_name): (u32, &str),
    (required, required_name): (u32, &str),
) -> Result<()> {
    if value & flag != 0 && value & required == 0 {
        return Err(Error::ApiArg(format!("Flag '{required_name}' is required by flag '{flag_name}'")));
    }
    Ok(())
}

/// libvirt's public API refuses CHILDREN with CHILDREN_ONLY (virCheckExclusiveFlags); `kind` is
/// SNAPSHOT or CHECKPOINT, for libvirt's message.
fn exclusive_children_flags(delete_flags: u32, kind: &str) -> Result<()> {
    let both = flags::MOMENT_DELETE_CHILDREN | flags::MOMENT_DELETE_CHILDREN_ONLY;
    if delete_flags & both == both {
        return Err(Error::ApiArg(format!(
            "Flags 'VIR_DOMAIN_{kind}_DELETE_CHILDREN' and 'VIR_DOMAIN_{kind}_DELETE_CHILDREN_ONLY' are mutually exclusive"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_left_out() {
        let xml =
            "<graphics type='vnc' port='-1' passwd='s3cret' keymap='en'/><graphics passwd=\"x\"/>".to_owned();
        assert_eq!(super::without_secrets(xml), "<graphics type='vnc' port='-1' keymap='en'/><graphics/>");
        let plain = "<name>passwd</name>".to_owned();
        assert_eq!(super::without_secrets(plain.clone()), plain);
    }
}
