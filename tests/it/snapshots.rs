//! Snapshots over the wire, through the client library: revert (states, reasons, ids,
//! generations, the current snapshot), the queries (lookup, current, parent, XML, children), the
//! listing flags, redefinition, refusals with nothing changed, and the tree after revert and
//! delete, also across a restart of the daemon.

use rvirt::flags::{SNAPSHOT_CREATE_CURRENT, SNAPSHOT_CREATE_HALT, SNAPSHOT_CREATE_REDEFINE};
use rvirt::{
    Connection, Domain, DomainState, ErrorKind, ListFlags, MomentDeleteFlags, SnapshotListFlags,
    SnapshotRevertFlags, UndefineFlags,
};
use rvirt_tests::{domain_xml, start_daemon, start_daemon_with};
use tonic::Code;

/// VIR_DOMAIN_RUNNING_FROM_SNAPSHOT, VIR_DOMAIN_PAUSED_FROM_SNAPSHOT,
/// VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT.
const RUNNING_FROM_SNAPSHOT: i32 = 4;
const PAUSED_FROM_SNAPSHOT: i32 = 7;
const SHUTOFF_FROM_SNAPSHOT: i32 = 7;

async fn define(conn: &Connection, name: &str, n: u32) -> Domain {
    let change = conn.define_xml(&domain_xml(name, n), 0).await.unwrap();
    conn.domain(change.domain.unwrap().domain)
}

async fn snapshot(dom: &Domain, name: &str) {
    let xml = format!("<domainsnapshot><name>{name}</name></domainsnapshot>");
    dom.snapshot_create_xml(&xml, 0).await.unwrap();
}

/// The snapshot names in the order the daemon gives them.
async fn names(dom: &Domain, flags: SnapshotListFlags) -> Vec<String> {
    dom.list_all_snapshots_with(flags).await.unwrap().into_iter().map(|s| s.name).collect()
}

async fn children(dom: &Domain, of: &str, flags: SnapshotListFlags) -> Vec<String> {
    dom.snapshot_list_all_children(of, flags).await.unwrap().into_iter().map(|s| s.name).collect()
}

/// Every domain and every snapshot of `dom`, to compare before and after a refusal.
async fn everything(conn: &Connection, dom: &Domain) -> (rvirt::Listing, Vec<rvirt::Snapshot>) {
    (conn.list_all_domains(ListFlags::empty()).await.unwrap(), dom.list_all_snapshots().await.unwrap())
}

/// Runs `op` expecting `code` and `libvirt_name`, and checks that nothing changed, not even the
/// generation.
async fn refused<T: std::fmt::Debug>(
    conn: &Connection,
    dom: &Domain,
    (code, libvirt_name): (Code, &str),
    op: impl Future<Output = rvirt::Result<T>>,
) -> rvirt::Error {
    let before = everything(conn, dom).await;
    let err = op.await.expect_err("should be refused");
    assert_eq!((err.code, err.libvirt_name.as_str()), (code, libvirt_name), "{}", err.message);
    assert_eq!(everything(conn, dom).await, before, "a refused call changed something");
    err
}

/// A domain with the snapshots off (taken shut off), run (running) and pau (paused), left
/// paused with id 1.
async fn three_states(conn: &Connection) -> Domain {
    let dom = define(conn, "a", 1).await;
    snapshot(&dom, "off").await;
    dom.create().await.unwrap();
    snapshot(&dom, "run").await;
    dom.suspend().await.unwrap();
    snapshot(&dom, "pau").await;
    dom
}

#[tokio::test]
async fn revert_follows_the_snapshot_state_with_a_new_id_and_one_generation() {
    use DomainState::*;
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let dom = three_states(conn).await;
    let none = SnapshotRevertFlags::empty();
    // (snapshot, flags) -> (state, reason, whether a new id was given)
    let steps = [
        ("off", none, (Shutoff, SHUTOFF_FROM_SNAPSHOT, false)),
        ("off", SnapshotRevertFlags::RUNNING, (Shutoff, SHUTOFF_FROM_SNAPSHOT, false)),
        ("run", none, (Running, RUNNING_FROM_SNAPSHOT, true)),
        ("run", none, (Running, RUNNING_FROM_SNAPSHOT, true)),
        ("run", SnapshotRevertFlags::PAUSED, (Paused, PAUSED_FROM_SNAPSHOT, true)),
        ("pau", SnapshotRevertFlags::RUNNING, (Running, RUNNING_FROM_SNAPSHOT, true)),
        ("pau", SnapshotRevertFlags::FORCE, (Paused, PAUSED_FROM_SNAPSHOT, true)),
        ("off", SnapshotRevertFlags::PAUSED, (Shutoff, SHUTOFF_FROM_SNAPSHOT, false)),
    ];
    let mut id = 1;
    for (name, flags, (state, reason, started)) in steps {
        let (_, generation) = conn.count_all_domains(ListFlags::empty()).await.unwrap();
        let change = dom.revert_to_snapshot(name, flags).await.unwrap();
        assert_eq!(change.generation, generation + 1, "one revert, one generation");
        let after = change.domain.expect("a persistent domain stays");
        assert_eq!((after.state, after.reason), (state, reason), "revert to {name} with {flags:?}");
        if started {
            assert!(after.domain.id > id, "a fresh start takes a fresh id");
            id = after.domain.id;
        } else {
            assert_eq!(after.domain.id, -1);
        }
        assert_eq!(dom.get_state().await.unwrap(), (state, reason));
        assert_eq!(dom.snapshot_current().await.unwrap().name, name);
        assert!(dom.snapshot_is_current(name).await.unwrap());
    }
    // Shut off to shut off keeps the reason it had: only the current snapshot moves.
    dom.create().await.unwrap();
    dom.destroy().await.unwrap();
    dom.revert_to_snapshot("off", SnapshotRevertFlags::RUNNING).await.unwrap();
    assert_eq!(dom.get_state().await.unwrap(), (Shutoff, 2));
    // Reverting changes no snapshot's metadata.
    let snapshots = dom.list_all_snapshots().await.unwrap();
    let parents: Vec<(&str, &str)> = snapshots.iter().map(|s| (s.name.as_str(), s.parent.as_str())).collect();
    assert_eq!(parents, [("off", ""), ("run", "off"), ("pau", "run")]);
    daemon.stop().await;
}

#[tokio::test]
async fn revert_refusals_change_nothing() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let dom = three_states(conn).await;
    let both = SnapshotRevertFlags::RUNNING | SnapshotRevertFlags::PAUSED;
    let invalid = (Code::InvalidArgument, "VIR_ERR_INVALID_ARG");
    let err = refused(conn, &dom, invalid, dom.revert_to_snapshot("run", both)).await;
    assert!(err.message.contains("mutually exclusive"), "{}", err.message);
    let err =
        refused(conn, &dom, invalid, dom.revert_to_snapshot("run", SnapshotRevertFlags::RESET_NVRAM)).await;
    assert!(err.message.contains("unsupported flags (0x8)"), "{}", err.message);
    let none = SnapshotRevertFlags::empty();
    refused(conn, &dom, (Code::NotFound, "VIR_ERR_NO_DOMAIN_SNAPSHOT"), dom.revert_to_snapshot("nope", none))
        .await;
    refused(conn, &dom, invalid, dom.revert_to_snapshot("", none)).await;
    // A transient domain cannot go to a snapshot taken shut off without RUNNING or PAUSED.
    dom.undefine(UndefineFlags::empty()).await.unwrap();
    let precondition = (Code::FailedPrecondition, "VIR_ERR_OPERATION_INVALID");
    let err = refused(conn, &dom, precondition, dom.revert_to_snapshot("off", none)).await;
    assert!(err.message.contains("transient domain needs to request run or pause"), "{}", err.message);
    // To a running snapshot it may: it starts afresh, still transient.
    let after = dom.revert_to_snapshot("run", none).await.unwrap().domain.unwrap();
    assert!(!after.persistent && after.state == DomainState::Running);
    // Differs from libvirt (see lifecycle::snapshot_revert): to a shut-off snapshot with RUNNING it
    // stops, and as a transient domain it goes.
    let gone = dom.revert_to_snapshot("off", SnapshotRevertFlags::RUNNING).await.unwrap();
    assert_eq!(gone.domain, None);
    assert_eq!(conn.lookup_by_name("a").await.unwrap_err().kind, ErrorKind::NoDomain);
    daemon.stop().await;
}

#[tokio::test]
async fn reverting_discards_a_managed_save_image_only_when_the_guest_starts() {
    let daemon = start_daemon().await;
    let dom = define(&daemon.client, "a", 1).await;
    snapshot(&dom, "off").await;
    dom.create().await.unwrap();
    snapshot(&dom, "run").await;
    dom.managed_save().await.unwrap();
    dom.revert_to_snapshot("off", SnapshotRevertFlags::empty()).await.unwrap();
    assert!(dom.has_managed_save_image().await.unwrap());
    assert_eq!(dom.get_state().await.unwrap(), (DomainState::Shutoff, 5), "shut off to shut off: as it was");
    dom.revert_to_snapshot("run", SnapshotRevertFlags::empty()).await.unwrap();
    assert!(!dom.has_managed_save_image().await.unwrap());
    daemon.stop().await;
}

/// r -> (a -> (a1, a2), b -> bp): a2 after a1 (a made current again), b after a (reverted to r).
async fn tree(conn: &Connection) -> Domain {
    let dom = define(conn, "t", 2).await;
    for name in ["r", "a", "a1"] {
        snapshot(&dom, name).await;
    }
    let a = dom.snapshot_get_xml_desc("a", 0).await.unwrap();
    dom.snapshot_create_xml(&a, SNAPSHOT_CREATE_REDEFINE | SNAPSHOT_CREATE_CURRENT).await.unwrap();
    snapshot(&dom, "a2").await;
    dom.revert_to_snapshot("r", SnapshotRevertFlags::empty()).await.unwrap();
    dom.create().await.unwrap();
    snapshot(&dom, "b").await;
    dom.suspend().await.unwrap();
    snapshot(&dom, "bp").await;
    dom
}

#[tokio::test]
async fn listing_flags_select_as_libvirt() {
    type F = SnapshotListFlags;
    let daemon = start_daemon().await;
    let dom = tree(&daemon.client).await;
    assert_eq!(names(&dom, F::empty()).await, ["r", "a", "a1", "a2", "b", "bp"], "creation order");
    assert_eq!(names(&dom, F::TOPOLOGICAL).await, ["r", "b", "bp", "a", "a2", "a1"]);
    assert_eq!(names(&dom, F::ROOTS).await, ["r"]);
    assert_eq!(names(&dom, F::LEAVES).await, ["a1", "a2", "bp"]);
    assert_eq!(names(&dom, F::NO_LEAVES).await, ["r", "a", "b"]);
    assert!(names(&dom, F::LEAVES | F::NO_LEAVES).await.is_empty());
    assert_eq!(names(&dom, F::INACTIVE).await, ["r", "a", "a1", "a2"]);
    assert_eq!(names(&dom, F::ACTIVE).await, ["b", "bp"]);
    assert!(names(&dom, F::DISK_ONLY | F::EXTERNAL).await.is_empty());
    assert!(names(&dom, F::NO_METADATA).await.is_empty());
    assert_eq!(names(&dom, F::METADATA | F::INTERNAL).await.len(), 6);
    assert_eq!(dom.snapshot_num_with(F::LEAVES).await.unwrap(), 3);
    assert_eq!(dom.snapshot_num().await.unwrap(), 6);
    assert_eq!(children(&dom, "r", F::empty()).await, ["a", "b"]);
    assert_eq!(children(&dom, "r", F::DESCENDANTS | F::TOPOLOGICAL).await, ["b", "bp", "a", "a2", "a1"]);
    assert_eq!(children(&dom, "r", F::DESCENDANTS | F::LEAVES).await, ["a1", "a2", "bp"]);
    assert_eq!(dom.snapshot_num_children("a", F::empty()).await.unwrap(), 2);
    assert_eq!(dom.snapshot_num_children("r", F::DESCENDANTS).await.unwrap(), 5);
    // Unknown bits are refused, as libvirt's virCheckFlags.
    let raw = rvirt::proto::DomainListAllSnapshotsRequest { uuid: dom.id.uuid.to_string(), flags: 1 << 11 };
    let err = rvirt::Error::from(daemon.client.rpc().domain_list_all_snapshots(raw).await.unwrap_err());
    assert_eq!((err.kind, err.message.contains("(0x800)")), (ErrorKind::InvalidArg, true), "{}", err.message);
    let err = dom.snapshot_list_all_children("nope", F::empty()).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoSnapshot);
    daemon.stop().await;
}

#[tokio::test]
async fn queries_answer_for_the_snapshot_named() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let dom = tree(conn).await;
    let bp = dom.snapshot_lookup_by_name("bp").await.unwrap();
    assert_eq!((bp.state.as_str(), bp.parent.as_str(), bp.current), ("paused", "b", true));
    assert!(dom.has_current_snapshot().await.unwrap());
    assert_eq!(dom.snapshot_current().await.unwrap(), bp);
    assert_eq!(dom.snapshot_get_parent("a1").await.unwrap().name, "a");
    let err = dom.snapshot_get_parent("r").await.unwrap_err();
    assert_eq!((err.kind, err.code), (ErrorKind::NoSnapshot, Code::NotFound));
    assert!(err.message.contains("snapshot 'r' does not have a parent"), "{}", err.message);
    assert!(!dom.snapshot_is_current("r").await.unwrap());
    assert!(dom.snapshot_has_metadata("r").await.unwrap());
    for err in [
        dom.snapshot_lookup_by_name("nope").await.unwrap_err(),
        dom.snapshot_is_current("nope").await.unwrap_err(),
        dom.snapshot_has_metadata("nope").await.unwrap_err(),
        dom.snapshot_get_xml_desc("nope", 0).await.unwrap_err(),
    ] {
        assert_eq!(
            (err.kind, err.libvirt_name.as_str()),
            (ErrorKind::NoSnapshot, "VIR_ERR_NO_DOMAIN_SNAPSHOT")
        );
    }
    let xml = dom.snapshot_get_xml_desc("b", rvirt::flags::SNAPSHOT_XML_SECURE).await.unwrap();
    for part in [
        "<domainsnapshot>\n  <name>b</name>\n  <state>running</state>\n",
        "  <parent>\n    <name>r</name>\n  </parent>\n",
        "  <memory snapshot='internal'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n",
        "  <domain type='test'>\n    <name>t</name>\n",
    ] {
        assert!(xml.contains(part), "missing {part:?} in\n{xml}");
    }
    assert!(xml.ends_with("  </domain>\n</domainsnapshot>\n"), "{xml}");
    let r = dom.snapshot_get_xml_desc("r", 0).await.unwrap();
    assert!(r.contains("<memory snapshot='no'/>") && !r.contains("<parent>"), "{r}");
    let err = dom.snapshot_get_xml_desc("r", 2).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArg);
    // A domain without snapshots has no current one.
    let bare = define(conn, "bare", 3).await;
    assert!(!bare.has_current_snapshot().await.unwrap());
    let err = bare.snapshot_current().await.unwrap_err();
    assert_eq!((err.kind, err.code), (ErrorKind::NoSnapshot, Code::NotFound));
    assert!(err.message.contains("the domain does not have a current snapshot"), "{}", err.message);
    daemon.stop().await;
}

#[tokio::test]
async fn redefine_sets_the_current_snapshot_and_refuses_what_rvirt_cannot_do() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let dom = define(conn, "a", 1).await;
    let described = "<domainsnapshot><name>s1</name><description>one</description></domainsnapshot>";
    dom.snapshot_create_xml(described, 0).await.unwrap();
    snapshot(&dom, "s2").await;
    let xml = dom.snapshot_get_xml_desc("s1", 0).await.unwrap().replace(">one<", ">uno<");
    // REDEFINE alone updates, and leaves the current snapshot where it is.
    let (_, generation) = conn.count_all_domains(ListFlags::empty()).await.unwrap();
    assert_eq!(
        dom.snapshot_create_xml(&xml, SNAPSHOT_CREATE_REDEFINE).await.unwrap().generation,
        generation + 1
    );
    let s1 = dom.snapshot_lookup_by_name("s1").await.unwrap();
    assert_eq!((s1.description.as_str(), s1.current), ("uno", false));
    dom.snapshot_create_xml(&xml, SNAPSHOT_CREATE_REDEFINE | SNAPSHOT_CREATE_CURRENT).await.unwrap();
    assert_eq!(dom.snapshot_current().await.unwrap().name, "s1");
    // The next snapshot is the current one's child.
    snapshot(&dom, "s3").await;
    assert_eq!(dom.snapshot_get_parent("s3").await.unwrap().name, "s1");
    let invalid = (Code::InvalidArgument, "VIR_ERR_INVALID_ARG");
    let err = refused(conn, &dom, invalid, dom.snapshot_create_xml(&xml, SNAPSHOT_CREATE_CURRENT)).await;
    assert!(err.message.contains("is required by flag"), "{}", err.message);
    let halt = SNAPSHOT_CREATE_REDEFINE | SNAPSHOT_CREATE_HALT;
    refused(conn, &dom, invalid, dom.snapshot_create_xml(&xml, halt)).await;
    let unknown = "<domainsnapshot><name>s9</name></domainsnapshot>";
    let unsupported = (Code::FailedPrecondition, "VIR_ERR_OPERATION_UNSUPPORTED");
    refused(conn, &dom, unsupported, dom.snapshot_create_xml(unknown, SNAPSHOT_CREATE_REDEFINE)).await;
    daemon.stop().await;
}

#[tokio::test]
async fn the_tree_after_revert_and_delete() {
    type F = SnapshotListFlags;
    let daemon = start_daemon().await;
    let dom = tree(&daemon.client).await;
    // Reverting to a2 and taking c makes c a2's child.
    dom.revert_to_snapshot("a2", SnapshotRevertFlags::empty()).await.unwrap();
    snapshot(&dom, "c").await;
    assert_eq!(dom.snapshot_get_parent("c").await.unwrap().name, "a2");
    // Deleting a moves its children up to r; the current snapshot (c) stays.
    dom.snapshot_delete("a", MomentDeleteFlags::empty()).await.unwrap();
    assert_eq!(children(&dom, "r", F::empty()).await, ["a1", "a2", "b"]);
    assert_eq!(dom.snapshot_get_parent("a1").await.unwrap().name, "r");
    assert_eq!(dom.snapshot_current().await.unwrap().name, "c");
    // Deleting the current one makes its parent current.
    dom.snapshot_delete("c", MomentDeleteFlags::empty()).await.unwrap();
    assert_eq!(dom.snapshot_current().await.unwrap().name, "a2");
    // CHILDREN_ONLY under b takes bp; then a revert to b and a delete of b with its children.
    dom.snapshot_delete("b", MomentDeleteFlags::CHILDREN_ONLY).await.unwrap();
    assert!(children(&dom, "b", F::DESCENDANTS).await.is_empty());
    dom.revert_to_snapshot("b", SnapshotRevertFlags::empty()).await.unwrap();
    assert_eq!(dom.get_state().await.unwrap(), (DomainState::Running, RUNNING_FROM_SNAPSHOT));
    dom.snapshot_delete("b", MomentDeleteFlags::CHILDREN).await.unwrap();
    assert_eq!(dom.snapshot_current().await.unwrap().name, "r", "b's parent");
    assert_eq!(names(&dom, F::empty()).await, ["r", "a1", "a2"]);
    assert_eq!(names(&dom, F::LEAVES).await, ["a1", "a2"]);
    // Deleting the root leaves two roots.
    dom.snapshot_delete("r", MomentDeleteFlags::empty()).await.unwrap();
    assert_eq!(names(&dom, F::ROOTS).await, ["a1", "a2"]);
    assert!(!dom.has_current_snapshot().await.unwrap());
    daemon.stop().await;
}

#[tokio::test]
async fn reverts_and_the_current_snapshot_survive_a_restart() {
    let folder = tempfile::tempdir().unwrap();
    let (state, run) = (folder.path().join("state"), folder.path().join("run"));
    let same_folders = |config: &mut rvirtd::config::Config| {
        config.state_dir = state.clone();
        config.runtime_dir = run.clone();
    };
    let daemon = start_daemon_with(same_folders).await;
    let dom = three_states(&daemon.client).await;
    let a = dom.snapshot_get_xml_desc("off", 0).await.unwrap();
    dom.snapshot_create_xml(&a, SNAPSHOT_CREATE_REDEFINE | SNAPSHOT_CREATE_CURRENT).await.unwrap();
    snapshot(&dom, "off2").await;
    let reverted = dom.revert_to_snapshot("run", SnapshotRevertFlags::PAUSED).await.unwrap().domain.unwrap();
    let before = dom.list_all_snapshots().await.unwrap();
    daemon.stop().await;

    let daemon = start_daemon_with(same_folders).await;
    let dom = daemon.client.lookup_by_name("a").await.unwrap();
    assert_eq!(dom.id.id, reverted.domain.id);
    assert_eq!(dom.get_state().await.unwrap(), (DomainState::Paused, PAUSED_FROM_SNAPSHOT));
    assert_eq!(dom.list_all_snapshots().await.unwrap(), before);
    assert_eq!(dom.snapshot_current().await.unwrap().name, "run");
    assert_eq!(dom.snapshot_get_parent("off2").await.unwrap().name, "off");
    daemon.stop().await;
}
