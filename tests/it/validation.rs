//! Bad input on every kind of field: unknown flag bits, malformed XML, empty and 1 MiB names, bad
//! UUIDs, negative counts. Each is refused with a precise code and the registry is unchanged.

use rvirt::proto;
use rvirt_tests::{TestDaemon, domain_xml, start_daemon};
use tonic::Code;

/// Asserts `result` is a refusal with `code`, and that the registry did not change since
/// `generation`.
async fn assert_refused<T: std::fmt::Debug>(
    daemon: &TestDaemon,
    generation: u64,
    code: Code,
    what: &str,
    result: Result<T, tonic::Status>,
) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {}", status.message());
    let (count, now) = daemon.client.count_all_domains(rvirt::ListFlags::empty()).await.unwrap();
    assert_eq!((count, now), (1, generation), "{what} changed the registry");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let daemon = start_daemon().await;
    let change = daemon.client.define_xml(&domain_xml("a", 1), 0).await.unwrap();
    let generation = change.generation;
    let uuid = change.domain.unwrap().domain.uuid.to_string();
    let mut rpc = daemon.client.rpc();
    let invalid = Code::InvalidArgument;

    // Unknown flag bits, on every RPC that takes flags.
    let bit = 1 << 20;
    let u = || uuid.clone();
    assert_refused(
        &daemon,
        generation,
        invalid,
        "define flags",
        rpc.domain_define_xml(proto::DomainDefineXmlRequest { xml: domain_xml("b", 2), flags: 2 }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "create-xml flags",
        rpc.domain_create_xml(proto::DomainCreateXmlRequest { xml: domain_xml("b", 2), flags: 1 }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "create flags",
        rpc.domain_create(proto::DomainCreateRequest { uuid: u(), flags: bit }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "destroy flags",
        rpc.domain_destroy(proto::DomainDestroyRequest { uuid: u(), flags: bit }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "undefine nvram flag",
        rpc.domain_undefine(proto::DomainUndefineRequest { uuid: u(), flags: 4 }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "managed save flags",
        rpc.domain_managed_save(proto::DomainManagedSaveRequest { uuid: u(), flags: bit }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "snapshot flags",
        rpc.domain_snapshot_create_xml(proto::DomainSnapshotCreateXmlRequest {
            uuid: u(),
            xml: "<domainsnapshot/>".into(),
            flags: 1,
        })
        .await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "xml flags",
        rpc.domain_get_xml_desc(proto::DomainGetXmlDescRequest { uuid: u(), flags: 4 }).await,
    )
    .await;
    assert_refused(
        &daemon,
        generation,
        invalid,
        "pm target",
        rpc.domain_pm_suspend_for_duration(proto::DomainPmSuspendForDurationRequest {
            uuid: u(),
            target: 3,
            duration: 0,
            flags: 0,
        })
        .await,
    )
    .await;

    // Snapshot deletion: an unknown bit; CHILDREN with CHILDREN_ONLY (exclusive); METADATA_ONLY
    // (refused by libvirt's test driver).
    for flags in [8, 5, 2] {
        let request = proto::DomainSnapshotDeleteRequest { uuid: u(), name: "s".into(), flags };
        let result = rpc.domain_snapshot_delete(request).await;
        assert_refused(&daemon, generation, invalid, &format!("snapshot delete flags {flags}"), result).await;
    }

    // Malformed or incomplete XML.
    for xml in [
        "",
        "not xml",
        "<domain type='test'><name>b</name>",
        "<domain type='test'><name>b</name><memory>1</memory></domain>",
        "<domain type='nope'><name>b</name><memory>1</memory><os><type>hvm</type></os></domain>",
        "<domain type='test'><name>b</name><memory>x</memory><os><type>hvm</type></os></domain>",
        "<domain type='test'><name>b</name><uuid>not-a-uuid</uuid><memory>1</memory><os><type>hvm</type></os></domain>",
        "<network><name>b</name></network>",
    ] {
        let request = proto::DomainDefineXmlRequest { xml: xml.into(), flags: 0 };
        assert_refused(&daemon, generation, invalid, xml, rpc.domain_define_xml(request).await).await;
        let request = proto::DomainCreateXmlRequest { xml: xml.into(), flags: 0 };
        assert_refused(&daemon, generation, invalid, xml, rpc.domain_create_xml(request).await).await;
    }
    let request =
        proto::DomainSnapshotCreateXmlRequest { uuid: u(), xml: "<domainsnapshot>".into(), flags: 0 };
    assert_refused(
        &daemon,
        generation,
        invalid,
        "snapshot xml",
        rpc.domain_snapshot_create_xml(request).await,
    )
    .await;

    // Names: empty, 1 MiB, with a newline.
    let huge = "n".repeat(1 << 20);
    for name in ["", huge.as_str(), "a\nb"] {
        let xml = format!(
            "<domain type='test'><name>{name}</name><memory>1</memory><os><type>hvm</type></os></domain>"
        );
        let request = proto::DomainDefineXmlRequest { xml, flags: 0 };
        assert_refused(&daemon, generation, invalid, "bad name", rpc.domain_define_xml(request).await).await;
    }
    // A title with a newline: libvirt refuses it ("Domain title can't contain newlines").
    let xml = "<domain type='test'><name>t</name><title>a\nb</title><memory>1</memory><os><type>hvm</type></os></domain>";
    let request = proto::DomainDefineXmlRequest { xml: xml.into(), flags: 0 };
    assert_refused(&daemon, generation, invalid, "title newline", rpc.domain_define_xml(request).await).await;
    for name in ["", huge.as_str()] {
        let request = proto::LookupDomainByNameRequest { name: name.into() };
        assert_refused(&daemon, generation, invalid, "lookup name", rpc.lookup_domain_by_name(request).await)
            .await;
    }

    // UUIDs: malformed ones are INVALID_ARGUMENT, well-formed unknown ones NOT_FOUND.
    for bad in
        ["", "zzz", "{52540000-0000-4000-8000-000000000001}", "52540000-0000-4000-8000-00000000000", &huge]
    {
        let request = proto::LookupDomainByUuidRequest { uuid: bad.to_string() };
        assert_refused(&daemon, generation, invalid, "lookup uuid", rpc.lookup_domain_by_uuid(request).await)
            .await;
        let request = proto::DomainCreateRequest { uuid: bad.to_string(), flags: 0 };
        assert_refused(&daemon, generation, invalid, "create uuid", rpc.domain_create(request).await).await;
    }
    let unknown = "52540000-0000-4000-8000-0000000000ff".to_string();
    let request = proto::DomainCreateRequest { uuid: unknown.clone(), flags: 0 };
    assert_refused(&daemon, generation, Code::NotFound, "unknown uuid", rpc.domain_create(request).await)
        .await;
    let request = proto::DomainSetAutostartRequest { uuid: unknown, autostart: true };
    assert_refused(
        &daemon,
        generation,
        Code::NotFound,
        "unknown uuid",
        rpc.domain_set_autostart(request).await,
    )
    .await;

    // Snapshot and checkpoint names.
    let request = proto::DomainSnapshotDeleteRequest { uuid: u(), name: String::new(), flags: 0 };
    assert_refused(
        &daemon,
        generation,
        invalid,
        "empty snapshot name",
        rpc.domain_snapshot_delete(request).await,
    )
    .await;
    let request = proto::DomainCheckpointDeleteRequest { uuid: u(), name: huge.clone(), flags: 0 };
    assert_refused(
        &daemon,
        generation,
        invalid,
        "huge checkpoint name",
        rpc.domain_checkpoint_delete(request).await,
    )
    .await;
    daemon.stop().await;
}
