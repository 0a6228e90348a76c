//! The domain lifecycle over the wire: the state table with its reasons, the error code (and
//! libvirt error name) of every forbidden transition with the registry left unchanged, ids, the
//! XML round trip, managed save, autostart, reboot and reset, snapshots and checkpoints.

use rvirt::{Connection, Domain, DomainState, ListFlags, MomentDeleteFlags, RebootFlags, UndefineFlags};
use rvirt_tests::{domain_xml, start_daemon};
use tonic::Code;

async fn define(conn: &Connection, name: &str, n: u32) -> Domain {
    let change = conn.define_xml(&domain_xml(name, n), 0).await.unwrap();
    conn.domain(change.domain.unwrap().domain)
}

/// Runs `op` expecting a refusal with `code` and `libvirt_name`, and checks nothing changed.
async fn refused<F, Fut>(conn: &Connection, code: Code, libvirt_name: &str, op: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = rvirt::Result<rvirt::Change>>,
{
    let before = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let err = op().await.expect_err("should be refused");
    assert_eq!((err.code, err.libvirt_name.as_str()), (code, libvirt_name), "{}", err.message);
    let after = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    assert_eq!(after, before, "a refused call changed the registry");
}

async fn state(dom: &Domain) -> (DomainState, i32) {
    dom.get_state().await.unwrap()
}

#[tokio::test]
async fn state_table_with_reasons() {
    use DomainState::*;
    let daemon = start_daemon().await;
    let dom = define(&daemon.client, "d", 1).await;
    assert_eq!(state(&dom).await, (Shutoff, 0));
    dom.create().await.unwrap();
    assert_eq!(state(&dom).await, (Running, 1));
    dom.suspend().await.unwrap();
    assert_eq!(state(&dom).await, (Paused, 1));
    dom.resume().await.unwrap();
    assert_eq!(state(&dom).await, (Running, 5));
    dom.pm_suspend_for_duration(0, 0).await.unwrap();
    assert_eq!(state(&dom).await, (PmSuspended, 0));
    dom.suspend().await.unwrap(); // allowed from every "other" state, as libvirt's test driver
    assert_eq!(state(&dom).await, (Paused, 1));
    dom.shutdown().await.unwrap(); // and shutdown from paused
    assert_eq!(state(&dom).await, (Shutoff, 1));
    dom.create().await.unwrap();
    dom.pm_suspend_for_duration(0, 0).await.unwrap();
    dom.pm_wakeup().await.unwrap();
    assert_eq!(state(&dom).await, (Running, 8));
    dom.destroy().await.unwrap();
    assert_eq!(state(&dom).await, (Shutoff, 2));
    dom.create().await.unwrap();
    dom.managed_save().await.unwrap();
    assert_eq!(state(&dom).await, (Shutoff, 5));
    assert!(dom.has_managed_save_image().await.unwrap());
    dom.create().await.unwrap(); // boots, discarding the image (test driver)
    assert!(!dom.has_managed_save_image().await.unwrap());
    assert_eq!(state(&dom).await, (Running, 1));
    daemon.stop().await;
}

#[tokio::test]
async fn forbidden_transitions_are_failed_precondition_and_change_nothing() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let off = define(conn, "off", 1).await;
    let run = define(conn, "run", 2).await;
    run.create().await.unwrap();
    let paused = define(conn, "paused", 3).await;
    paused.create().await.unwrap();
    paused.suspend().await.unwrap();
    let invalid = "VIR_ERR_OPERATION_INVALID";
    let fp = Code::FailedPrecondition;
    // From shut off.
    refused(conn, fp, invalid, || off.shutdown()).await;
    refused(conn, fp, invalid, || off.destroy()).await;
    refused(conn, fp, invalid, || off.suspend()).await;
    refused(conn, fp, invalid, || off.resume()).await;
    refused(conn, fp, invalid, || off.managed_save()).await;
    refused(conn, fp, invalid, || off.pm_suspend_for_duration(0, 0)).await;
    refused(conn, fp, invalid, || off.pm_wakeup()).await;
    // From running.
    refused(conn, fp, invalid, || run.create()).await;
    refused(conn, fp, invalid, || run.resume()).await;
    refused(conn, fp, invalid, || run.pm_wakeup()).await;
    // From paused.
    refused(conn, fp, invalid, || paused.create()).await;
    refused(conn, fp, invalid, || paused.suspend()).await;
    refused(conn, fp, invalid, || paused.pm_suspend_for_duration(0, 0)).await;
    // Transient domains cannot be managed-saved.
    let temp = conn.create_xml(&domain_xml("temp", 4), 0).await.unwrap();
    let temp = conn.domain(temp.domain.unwrap().domain);
    refused(conn, fp, invalid, || temp.managed_save()).await;
    // Undefine refusals.
    run.managed_save().await.unwrap();
    refused(conn, fp, invalid, || run.undefine(UndefineFlags::empty())).await;
    off.snapshot_create_xml("<domainsnapshot/>", 0).await.unwrap();
    refused(conn, fp, invalid, || off.undefine(UndefineFlags::empty())).await;
    // Snapshots and checkpoints exclude each other; checkpoints need an active domain.
    refused(conn, fp, "VIR_ERR_OPERATION_UNSUPPORTED", || {
        run.checkpoint_create_xml("<domaincheckpoint/>", 0)
    })
    .await;
    paused.checkpoint_create_xml("<domaincheckpoint><name>c</name></domaincheckpoint>", 0).await.unwrap();
    refused(conn, fp, "VIR_ERR_OPERATION_UNSUPPORTED", || paused.snapshot_create_xml("<domainsnapshot/>", 0))
        .await;
    refused(conn, Code::AlreadyExists, "VIR_ERR_DOM_EXIST", || {
        paused.checkpoint_create_xml("<domaincheckpoint><name>c</name></domaincheckpoint>", 0)
    })
    .await;
    refused(conn, Code::NotFound, "VIR_ERR_NO_DOMAIN_CHECKPOINT", || {
        paused.checkpoint_delete("nope", MomentDeleteFlags::empty())
    })
    .await;
    refused(conn, Code::NotFound, "VIR_ERR_NO_DOMAIN_SNAPSHOT", || {
        off.snapshot_delete("nope", MomentDeleteFlags::empty())
    })
    .await;
    // A domain that is gone.
    temp.destroy().await.unwrap();
    refused(conn, Code::NotFound, "VIR_ERR_NO_DOMAIN", || temp.create()).await;
    refused(conn, Code::NotFound, "VIR_ERR_NO_DOMAIN", || temp.destroy()).await;
    daemon.stop().await;
}

#[tokio::test]
async fn ids_start_at_one_grow_on_every_start_and_are_never_reused() {
    let daemon = start_daemon().await;
    let a = define(&daemon.client, "a", 1).await;
    let b = define(&daemon.client, "b", 2).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(a.create().await.unwrap().domain.unwrap().domain.id);
        a.destroy().await.unwrap();
    }
    ids.push(b.create().await.unwrap().domain.unwrap().domain.id);
    assert_eq!(ids, [1, 2, 3, 4]);
    // A shut-off domain has id -1; a handle keeps the id it was made with, as libvirt's.
    assert_eq!(daemon.client.lookup_by_name("a").await.unwrap().id.id, -1);
    assert_eq!(a.id.id, -1);
    daemon.stop().await;
}

#[tokio::test]
async fn every_change_bumps_the_generation_by_one_and_reports_the_result() {
    let daemon = start_daemon().await;
    let (_, g0) = daemon.client.count_all_domains(ListFlags::empty()).await.unwrap();
    let change = daemon.client.define_xml(&domain_xml("a", 1), 0).await.unwrap();
    assert_eq!(change.generation, g0 + 1);
    let dom = daemon.client.domain(change.domain.clone().unwrap().domain);
    let started = dom.create().await.unwrap();
    assert_eq!(started.generation, g0 + 2);
    let summary = started.domain.unwrap();
    assert_eq!((summary.state, summary.reason, summary.domain.id), (DomainState::Running, 1, 1));
    dom.destroy().await.unwrap();
    let removed = dom.undefine(UndefineFlags::empty()).await.unwrap();
    assert_eq!((removed.generation, removed.domain), (g0 + 4, None));
    daemon.stop().await;
}

#[tokio::test]
async fn undefine_of_a_running_domain_leaves_it_running_as_transient() {
    let daemon = start_daemon().await;
    let dom = define(&daemon.client, "a", 1).await;
    dom.create().await.unwrap();
    dom.set_autostart(true).await.unwrap();
    let change = dom.undefine(UndefineFlags::empty()).await.unwrap().domain.unwrap();
    assert!(!change.persistent && change.state == DomainState::Running);
    let transient = daemon.client.list_all_domains(ListFlags::TRANSIENT).await.unwrap();
    assert_eq!(transient.domains.len(), 1);
    assert!(!dom.is_persistent().await.unwrap());
    dom.destroy().await.unwrap();
    assert_eq!(daemon.client.lookup_by_name("a").await.unwrap_err().kind, rvirt::ErrorKind::NoDomain);
    daemon.stop().await;
}

#[tokio::test]
async fn define_and_create_conflicts() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let dom = define(conn, "a", 1).await;
    // Same name, other UUID; same UUID, other name.
    let other_uuid = domain_xml("a", 2);
    let err = conn.define_xml(&other_uuid, 0).await.unwrap_err();
    assert_eq!((err.code, err.libvirt_name.as_str()), (Code::AlreadyExists, "VIR_ERR_DOM_EXIST"));
    let renamed = domain_xml("b", 1);
    assert_eq!(conn.define_xml(&renamed, 0).await.unwrap_err().code, Code::AlreadyExists);
    assert_eq!(conn.create_xml(&renamed, 0).await.unwrap_err().code, Code::AlreadyExists);
    // CreateXML over the inactive persistent domain starts it and keeps it persistent.
    let started = conn.create_xml(&domain_xml("a", 1), 0).await.unwrap().domain.unwrap();
    assert!(started.persistent && started.state == DomainState::Running);
    let err = conn.create_xml(&domain_xml("a", 1), 0).await.unwrap_err();
    assert_eq!(err.code, Code::FailedPrecondition);
    // Redefining a running domain changes the next boot's definition, not the live one.
    let titled = domain_xml("a", 1).replace("<memory", "<title>new</title><memory");
    conn.define_xml(&titled, 0).await.unwrap();
    assert!(!dom.get_xml_desc(0).await.unwrap().contains("<title>"));
    assert!(dom.get_xml_desc(rvirt::flags::XML_INACTIVE).await.unwrap().contains("<title>new</title>"));
    dom.destroy().await.unwrap();
    assert!(dom.get_xml_desc(0).await.unwrap().contains("<title>new</title>"));
    daemon.stop().await;
}

#[tokio::test]
async fn xml_round_trips() {
    let daemon = start_daemon().await;
    let xml = "<domain type='test'><name>rt</name><uuid>52540000-0000-4000-8000-0000000000aa</uuid>\
        <title>T &amp; t</title><description>d</description><memory unit='GiB'>1</memory>\
        <currentMemory unit='MiB'>512</currentMemory><vcpu>4</vcpu>\
        <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='cdrom'/><boot dev='hd'/></os>\
        <clock offset='localtime'/><on_poweroff>preserve</on_poweroff><on_crash>restart</on_crash>\
        <devices><disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='sda'/></disk>\
        <disk type='file' device='cdrom'><target dev='hdc'/></disk></devices></domain>";
    let change = daemon.client.define_xml(xml, 0).await.unwrap();
    let dom = daemon.client.domain(change.domain.unwrap().domain);
    let formatted = dom.get_xml_desc(0).await.unwrap();
    for part in [
        "<title>T &amp; t</title>",
        "<memory unit='KiB'>1048576</memory>",
        "<currentMemory unit='KiB'>524288</currentMemory>",
        "<vcpu placement='static'>4</vcpu>",
        "<type arch='x86_64' machine='pc'>hvm</type>",
        "<boot dev='cdrom'/>\n    <boot dev='hd'/>",
        "<clock offset='localtime'/>",
        "<on_poweroff>preserve</on_poweroff>",
        "<on_crash>restart</on_crash>",
        "<source dev='/dev/sdz'/>",
        "<target dev='sda' bus='scsi'/>",
        "<disk type='file' device='cdrom'>\n      <target dev='hdc' bus='ide'/>",
    ] {
        assert!(formatted.contains(part), "missing {part:?} in\n{formatted}");
    }
    // Defining what GetXMLDesc returned changes nothing but the generation.
    daemon.client.define_xml(&formatted, 0).await.unwrap();
    assert_eq!(dom.get_xml_desc(0).await.unwrap(), formatted);
    let info = dom.get_info().await.unwrap();
    assert_eq!((info.max_memory_kib, info.memory_kib, info.vcpus), (1048576, 524288, 4));
    assert_eq!(info.os_type, "linux");
    daemon.stop().await;
}

#[tokio::test]
async fn snapshots_and_checkpoints() {
    let daemon = start_daemon().await;
    let dom = define(&daemon.client, "a", 1).await;
    for name in ["s1", "s2", "s3"] {
        let xml = format!(
            "<domainsnapshot><name>{name}</name><description>about {name}</description></domainsnapshot>"
        );
        dom.snapshot_create_xml(&xml, 0).await.unwrap();
    }
    assert_eq!(dom.snapshot_num().await.unwrap(), 3);
    let snapshots = dom.list_all_snapshots().await.unwrap();
    assert_eq!(snapshots[2].parent, "s2");
    assert!(snapshots[2].current && snapshots[0].state == "shutoff");
    dom.snapshot_delete("s3", MomentDeleteFlags::empty()).await.unwrap();
    let current: Vec<String> =
        dom.list_all_snapshots().await.unwrap().into_iter().filter(|s| s.current).map(|s| s.name).collect();
    assert_eq!(current, ["s2"]);
    dom.snapshot_delete("s1", MomentDeleteFlags::CHILDREN).await.unwrap();
    assert_eq!(dom.snapshot_num().await.unwrap(), 0);
    // HALT stops a running domain: SHUTOFF/FROM_SNAPSHOT.
    dom.create().await.unwrap();
    dom.snapshot_create_xml("<domainsnapshot/>", rvirt::flags::SNAPSHOT_CREATE_HALT).await.unwrap();
    assert_eq!(dom.get_state().await.unwrap(), (DomainState::Shutoff, 7));
    dom.undefine(UndefineFlags::SNAPSHOTS_METADATA).await.unwrap();
    // Checkpoints: running domain with a disk; they survive stopping.
    let cp = define(&daemon.client, "c", 2).await;
    cp.create().await.unwrap();
    cp.checkpoint_create_xml("<domaincheckpoint><name>c1</name></domaincheckpoint>", 0).await.unwrap();
    cp.checkpoint_create_xml("<domaincheckpoint><name>c2</name></domaincheckpoint>", 0).await.unwrap();
    cp.destroy().await.unwrap();
    let with = daemon.client.list_all_domains(ListFlags::HAS_CHECKPOINT).await.unwrap();
    assert_eq!(with.domains.len(), 1);
    let checkpoints = cp.list_all_checkpoints().await.unwrap();
    assert_eq!((checkpoints.len(), checkpoints[1].parent.as_str()), (2, "c1"));
    cp.checkpoint_delete("c1", MomentDeleteFlags::CHILDREN_ONLY).await.unwrap();
    assert_eq!(cp.list_all_checkpoints().await.unwrap().len(), 1);
    daemon.stop().await;
}

#[tokio::test]
async fn reboot_restarts_in_place_and_reset_changes_nothing() {
    use DomainState::*;
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let dom = define(conn, "a", 1).await;
    let fp = (Code::FailedPrecondition, "VIR_ERR_OPERATION_INVALID");
    for err in [dom.reboot(RebootFlags::empty()).await.unwrap_err(), dom.reset().await.unwrap_err()] {
        assert_eq!((err.code, err.libvirt_name.as_str()), fp, "{}", err.message);
    }
    dom.create().await.unwrap();
    dom.suspend().await.unwrap();
    // A reboot un-pauses: RUNNING/BOOTED, the same id, one generation.
    let (_, generation) = conn.count_all_domains(ListFlags::empty()).await.unwrap();
    let rebooted = dom.reboot(RebootFlags::ACPI_POWER_BTN | RebootFlags::GUEST_AGENT).await.unwrap();
    assert_eq!(rebooted.generation, generation + 1);
    let summary = rebooted.domain.unwrap();
    assert_eq!((summary.state, summary.reason, summary.domain.id), (Running, 1, 1));
    // A reset leaves everything as it is, the generation too.
    dom.suspend().await.unwrap();
    let before = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let reset = dom.reset().await.unwrap();
    assert_eq!(reset.generation, before.generation);
    assert_eq!(reset.domain.as_ref(), before.domains.first());
    assert_eq!(conn.list_all_domains(ListFlags::empty()).await.unwrap(), before);
    assert_eq!(state(&dom).await, (Paused, 1));
    // Unknown reboot methods and any reset flag are refused.
    let raw = rvirt::proto::DomainRebootRequest { uuid: dom.id.uuid.to_string(), flags: 32 };
    let err = rvirt::Error::from(conn.rpc().domain_reboot(raw).await.unwrap_err());
    assert_eq!((err.code, err.message.contains("(0x20)")), (Code::InvalidArgument, true), "{}", err.message);
    let raw = rvirt::proto::DomainResetRequest { uuid: dom.id.uuid.to_string(), flags: 1 };
    assert_eq!(conn.rpc().domain_reset(raw).await.unwrap_err().code(), Code::InvalidArgument);
    daemon.stop().await;
}

#[tokio::test]
async fn reboot_with_on_reboot_destroy_stops_and_a_transient_domain_goes() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let xml =
        |name: &str, n| domain_xml(name, n).replace("<devices>", "<on_reboot>destroy</on_reboot><devices>");
    let persistent = conn.define_xml(&xml("p", 1), 0).await.unwrap();
    let persistent = conn.domain(persistent.domain.unwrap().domain);
    persistent.create().await.unwrap();
    let stopped = persistent.reboot(RebootFlags::empty()).await.unwrap().domain.unwrap();
    assert_eq!((stopped.state, stopped.reason, stopped.domain.id), (DomainState::Shutoff, 1, -1));
    let transient = conn.create_xml(&xml("t", 2), 0).await.unwrap();
    let transient = conn.domain(transient.domain.unwrap().domain);
    assert_eq!(transient.reboot(RebootFlags::PARAVIRT).await.unwrap().domain, None);
    assert_eq!(conn.lookup_by_name("t").await.unwrap_err().kind, rvirt::ErrorKind::NoDomain);
    daemon.stop().await;
}
