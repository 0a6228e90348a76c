//! The qemu driver on real guests (the boot-sector guest under TCG): every operation end to end
//! through a real rvirtd, what guests do on their own seen as one generation each, and nothing
//! left behind. Without qemu-system-x86 these fail, never skip.

use rvirt::{DomainState, ListFlags};
use rvirt_tests::qemu::{TestGuest, kill, qemu_pids};
use rvirt_tests::{TestDaemon, start_daemon_with};
use rvirtd::config::DriverKind;
use rvirtd::domain::reason;
use std::time::{Duration, Instant};

async fn qemu_daemon() -> TestDaemon {
    start_daemon_with(|config| {
        config.driver = DriverKind::Qemu;
        config.qemu.monitor_timeout_secs = 2;
    })
    .await
}

/// Defines and starts `guest`; returns its handle once the guest's code runs.
async fn boot(daemon: &TestDaemon, guest: &TestGuest) -> rvirt::Domain {
    let defined = daemon.client.define_xml(&guest.xml(true), 0).await.expect("define").domain.unwrap();
    let domain = daemon.client.domain(defined.domain);
    domain.create().await.expect("start");
    guest.wait_serial("BOOT", 1).await;
    domain
}

/// Polls the listing (at most `within`) until `uuid` is in `state`; returns the listing and how
/// long it took.
async fn until_state(
    conn: &rvirt::Connection,
    uuid: uuid::Uuid,
    state: DomainState,
    within: Duration,
) -> (rvirt::Listing, Duration) {
    let started = Instant::now();
    loop {
        let listing = conn.list_all_domains(ListFlags::empty()).await.unwrap();
        if listing.domains.iter().any(|d| d.domain.uuid == uuid && d.state == state) {
            return (listing, started.elapsed());
        }
        assert!(started.elapsed() < within, "{uuid} not {state:?} within {within:?}: {listing:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn summary(listing: &rvirt::Listing, uuid: uuid::Uuid) -> &rvirt::DomainSummary {
    listing.domains.iter().find(|d| d.domain.uuid == uuid).expect("listed")
}

#[tokio::test]
async fn a_paused_guest_stops_counting_and_counts_again_after_resume() {
    let daemon = qemu_daemon().await;
    let guest = TestGuest::new(daemon.dir(), "pause");
    let domain = boot(&daemon, &guest).await;
    let tap = guest.tap_monitor().await;
    domain.suspend().await.unwrap();
    let frozen = guest.ticks(&tap).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(guest.ticks(&tap).await, frozen, "a paused guest's counter moved");
    assert_eq!(domain.get_state().await.unwrap(), (DomainState::Paused, reason::PAUSED_USER));
    domain.resume().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(guest.ticks(&tap).await > frozen + 2, "a resumed guest's counter did not move");
    let info = domain.get_info().await.unwrap();
    assert!(info.cpu_time_ns > 0, "real CPU time is reported: {info:?}");
    // A reboot: the guest's power-off becomes a reset; it boots again, same run, same QEMU.
    let pids = qemu_pids(&info.domain.uuid);
    let asked = domain.reboot(rvirt::RebootFlags::empty()).await.unwrap().domain.unwrap();
    guest.wait_serial("BOOT", 2).await;
    assert_eq!((asked.state, asked.domain.id), (DomainState::Running, info.domain.id));
    assert_eq!(domain.get_state().await.unwrap().0, DomainState::Running);
    assert_eq!(qemu_pids(&info.domain.uuid), pids, "a reboot keeps its QEMU");
    domain.destroy().await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn managed_save_then_start_continues_the_counter_and_snapshot_revert_brings_it_back() {
    let daemon = qemu_daemon().await;
    let guest = TestGuest::new(daemon.dir(), "save");
    let domain = boot(&daemon, &guest).await;
    let tap = guest.tap_monitor().await;
    // Saved while paused, so the counter is exact: the restored guest is paused too.
    domain.suspend().await.unwrap();
    let saved = guest.ticks(&tap).await;
    let change = domain.managed_save().await.unwrap();
    let after = change.domain.unwrap();
    assert_eq!(
        (after.state, after.reason, after.has_managed_save),
        (DomainState::Shutoff, reason::SHUTOFF_SAVED, true)
    );
    assert!(qemu_pids(&after.domain.uuid).is_empty(), "the saved guest's QEMU still runs");
    domain.create().await.unwrap();
    let tap = guest.tap_monitor().await;
    assert_eq!(guest.ticks(&tap).await, saved, "the restored counter is not the saved one");
    assert!(!domain.has_managed_save_image().await.unwrap(), "the image outlived its restore");
    domain.resume().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(guest.ticks(&tap).await > saved, "the restored guest does not run");

    // A snapshot of the running guest, then revert: the counter comes back exactly.
    domain.suspend().await.unwrap();
    let at_snapshot = guest.ticks(&tap).await;
    domain.resume().await.unwrap();
    domain
        .snapshot_create_xml("<domainsnapshot><name>s1</name></domainsnapshot>", 0)
        .await
        .expect("snapshot of a running guest");
    let pid = qemu_pids(&after.domain.uuid);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(guest.ticks(&tap).await > at_snapshot);
    domain.revert_to_snapshot("s1", rvirt::SnapshotRevertFlags::empty()).await.expect("revert");
    let reverted = guest.ticks(&tap).await;
    // The snapshot was taken running: between the read above and the save the guest ran on.
    assert!(
        (at_snapshot..at_snapshot + 4).contains(&reverted),
        "revert gave counter {reverted}, the snapshot was taken at about {at_snapshot}"
    );
    assert_eq!(qemu_pids(&after.domain.uuid), pid, "revert restarted QEMU");
    domain.destroy().await.unwrap();
    domain.undefine(rvirt::UndefineFlags::SNAPSHOTS_METADATA).await.unwrap();
    assert!(leftovers(&daemon).is_empty(), "left behind: {:?}", leftovers(&daemon));
    daemon.stop().await;
}

/// Files the driver keeps for domains (runtime folders, images), after everything was undefined.
fn leftovers(daemon: &TestDaemon) -> Vec<String> {
    ["run/qemu", "state/qemu"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(daemon.dir().join(dir)).into_iter().flatten().flatten())
        .map(|entry| entry.path().display().to_string())
        .collect()
}

#[tokio::test]
async fn an_acpi_shutdown_powers_the_guest_off_and_a_guest_that_ignores_it_runs_until_destroyed() {
    let daemon = qemu_daemon().await;
    let conn = &daemon.client;
    let guest = TestGuest::new(daemon.dir(), "acpi");
    let domain = boot(&daemon, &guest).await;
    let uuid = domain.get_info().await.unwrap().domain.uuid;
    // The call only asks: the domain is still running when it returns.
    let asked = domain.shutdown().await.unwrap();
    assert_eq!(
        asked.domain.unwrap().state,
        DomainState::Running,
        "shutdown returned before the guest powered off"
    );
    let (listing, took) = until_state(conn, uuid, DomainState::Shutoff, Duration::from_secs(10)).await;
    assert_eq!(summary(&listing, uuid).reason, reason::SHUTOFF_SHUTDOWN);
    assert_eq!(listing.generation, asked.generation + 1, "the power-off is one generation");
    guest.wait_serial("PWROFF", 1).await;
    assert!(qemu_pids(&uuid).is_empty(), "QEMU outlived the power-off");
    eprintln!("ACPI shutdown until shut off: {took:?}");

    let stubborn = TestGuest::new(daemon.dir(), "stubborn");
    let defined = conn.define_xml(&stubborn.xml(false), 0).await.unwrap().domain.unwrap();
    let stubborn_domain = conn.domain(defined.domain.clone());
    stubborn_domain.create().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stubborn_domain.shutdown().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        stubborn_domain.get_state().await.unwrap().0,
        DomainState::Running,
        "no OS answered the button"
    );
    // VIR_DOMAIN_DESTROY_GRACEFUL: a QEMU that answers `quit` ends the same way.
    let request = rvirt_proto::v1::DomainDestroyRequest { uuid: defined.domain.uuid.to_string(), flags: 1 };
    conn.rpc().domain_destroy(request).await.expect("graceful destroy");
    let (state, why) = stubborn_domain.get_state().await.unwrap();
    assert_eq!((state, why), (DomainState::Shutoff, reason::SHUTOFF_DESTROYED));
    assert!(qemu_pids(&defined.domain.uuid).is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn a_killed_qemu_and_a_guest_power_off_are_each_seen_within_a_second_as_one_generation() {
    let daemon = qemu_daemon().await;
    let conn = &daemon.client;
    let killed = TestGuest::new(daemon.dir(), "killed");
    let powered = TestGuest::new(daemon.dir(), "powered");
    let (a, b) = tokio::join!(boot(&daemon, &killed), boot(&daemon, &powered));
    let a_uuid = a.get_info().await.unwrap().domain.uuid;
    let b_uuid = b.get_info().await.unwrap().domain.uuid;

    let before = conn.list_all_domains(ListFlags::empty()).await.unwrap().generation;
    let pids = qemu_pids(&a_uuid);
    assert_eq!(pids.len(), 1, "one QEMU per running domain: {pids:?}");
    kill(pids[0], "KILL");
    let (listing, took) = until_state(conn, a_uuid, DomainState::Shutoff, Duration::from_secs(1)).await;
    assert_eq!(summary(&listing, a_uuid).reason, reason::SHUTOFF_CRASHED);
    assert_eq!(listing.generation, before + 1);
    eprintln!("kill -9 seen after {took:?}");

    // The guest powers itself off (its own S5 write, after the button pressed through the tap).
    let tap = powered.tap_monitor().await;
    tap.execute("system_powerdown", None).await.unwrap();
    let (listing, took) = until_state(conn, b_uuid, DomainState::Shutoff, Duration::from_secs(1)).await;
    assert_eq!(summary(&listing, b_uuid).reason, reason::SHUTOFF_SHUTDOWN);
    assert_eq!(listing.generation, before + 2);
    eprintln!("guest power-off seen after {took:?}");
    assert!(qemu_pids(&b_uuid).is_empty() && qemu_pids(&a_uuid).is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn a_hung_qemu_delays_only_its_own_domain_with_a_clear_deadline_error() {
    let daemon = qemu_daemon().await;
    let conn = &daemon.client;
    let hung = TestGuest::new(daemon.dir(), "hung");
    let domain = boot(&daemon, &hung).await;
    let uuid = domain.get_info().await.unwrap().domain.uuid;
    let pid = qemu_pids(&uuid)[0];
    kill(pid, "STOP");
    let started = Instant::now();
    let suspend = tokio::spawn({
        let domain = domain.clone();
        async move { domain.suspend().await }
    });
    // Meanwhile the registry answers as fast as ever, and other domains are defined.
    for i in 0..20 {
        let listed = Instant::now();
        conn.list_all_domains(ListFlags::empty()).await.unwrap();
        assert!(listed.elapsed() < Duration::from_millis(200), "a listing waited on the hung QEMU");
        let other = TestGuest::new(daemon.dir(), &format!("other{i}"));
        conn.define_xml(&other.xml(true), 0).await.unwrap();
    }
    let error = suspend.await.unwrap().expect_err("a stopped QEMU cannot suspend");
    assert_eq!(error.code, tonic::Code::DeadlineExceeded, "{error}");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Destroy still ends it (SIGKILL reaches a stopped process).
    domain.destroy().await.unwrap();
    assert!(qemu_pids(&uuid).is_empty());
    daemon.stop().await;
}

#[tokio::test]
async fn start_failures_say_why_and_leave_nothing() {
    let daemon = qemu_daemon().await;
    let conn = &daemon.client;
    let guest = TestGuest::new(daemon.dir(), "broken");
    let missing_disk = guest.xml(true).replace("boot.img", "nothere.img");
    let id = conn.define_xml(&missing_disk, 0).await.unwrap().domain.unwrap().domain;
    let domain = conn.domain(id.clone());
    let error = domain.create().await.expect_err("a missing disk");
    assert_eq!(error.code, tonic::Code::FailedPrecondition, "{error}");
    assert!(error.to_string().contains("nothere.img"), "{error}");
    assert_eq!(domain.get_state().await.unwrap().0, DomainState::Shutoff);

    // QEMU refuses its command line: its own words come back.
    let bad = guest
        .xml(true)
        .replace("<qemu:arg value='-qmp'/>", "<qemu:arg value='-no-such-option'/><qemu:arg value='-qmp'/>");
    domain.undefine(rvirt::UndefineFlags::empty()).await.unwrap();
    let domain = conn.domain(conn.define_xml(&bad, 0).await.unwrap().domain.unwrap().domain);
    let error = domain.create().await.expect_err("a bad command line");
    assert!(error.to_string().contains("-no-such-option"), "QEMU's message is lost: {error}");

    // What is kept but needs no action is accepted (and shown again by dumpxml).
    let harmless = guest.xml(true).replace("<features><acpi/></features>", "<features><acpi/><apic/></features><cpu mode='host-model'/><clock offset='utc'><timer name='rtc' tickpolicy='catchup'/></clock>");
    let kept = conn
        .define_xml(&harmless.replace("<name>broken</name>", "<name>harmless</name>"), 0)
        .await
        .expect("harmless elements");
    let shown = conn.domain(kept.domain.unwrap().domain).get_xml_desc(0).await.unwrap();
    assert!(shown.contains("<apic/>") && shown.contains("tickpolicy='catchup'"), "{shown}");
    // What the driver cannot honour is refused at define, naming it.
    let interface = guest
        .xml(true)
        .replace("</devices>", "<interface type='network'><source network='default'/></interface></devices>");
    let error = conn.define_xml(&interface, 0).await.expect_err("an interface");
    assert_eq!(error.code, tonic::Code::InvalidArgument, "{error}");
    assert!(error.to_string().contains("interface"), "{error}");
    assert!(qemu_pids(&id.uuid).is_empty());
    assert!(leftovers(&daemon).is_empty(), "a failed start left {:?}", leftovers(&daemon));
    daemon.stop().await;

    // The emulator missing altogether.
    let daemon = start_daemon_with(|config| {
        config.driver = DriverKind::Qemu;
        config.qemu.binary = "/nonexistent/qemu-system-x86_64".into();
    })
    .await;
    let guest = TestGuest::new(daemon.dir(), "nobinary");
    let domain = daemon
        .client
        .domain(daemon.client.define_xml(&guest.xml(true), 0).await.unwrap().domain.unwrap().domain);
    let error = domain.create().await.expect_err("no emulator");
    assert!(error.to_string().contains("apt-get install qemu-system-x86"), "{error}");
    daemon.stop().await;
}

#[tokio::test]
async fn a_client_that_gives_up_on_a_start_leaves_it_started_and_recorded_or_not_started() {
    let daemon = qemu_daemon().await;
    let conn = &daemon.client;
    for (i, deadline) in [1u64, 5, 15, 30, 60].into_iter().enumerate() {
        let guest = TestGuest::new(daemon.dir(), &format!("cancel{i}"));
        let defined = conn.define_xml(&guest.xml(true), 0).await.unwrap().domain.unwrap();
        let uuid = defined.domain.uuid;
        let mut request =
            tonic::Request::new(rvirt_proto::v1::DomainCreateRequest { uuid: uuid.to_string(), flags: 0 });
        request.set_timeout(Duration::from_millis(deadline));
        let _ = conn.rpc().domain_create(request).await;
        // Whatever the client saw, the job finishes: wait for it, then the registry and the
        // processes must agree.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (state, _) = conn.domain(defined.domain).get_state().await.unwrap();
        let pids = qemu_pids(&uuid);
        match state {
            DomainState::Running => assert_eq!(pids.len(), 1, "recorded running with {pids:?}"),
            DomainState::Shutoff => assert!(pids.is_empty(), "a QEMU the daemon does not know: {pids:?}"),
            other => panic!("unexpected state {other:?}"),
        }
    }
    daemon.stop().await;
}

#[tokio::test]
async fn guests_outlive_a_killed_daemon_and_are_reattached_with_their_ids_and_states() {
    use rvirt_tests::process::{DaemonDirs, DaemonProcess};
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let args = ["--driver", "qemu"];
    let daemon = DaemonProcess::start_with(&dirs, &args).await.unwrap_or_else(|(_, logs)| panic!("{logs:?}"));
    let conn = daemon.connect().await;
    let names = ["running", "paused", "killed", "poweredoff", "transient"];
    let guests: Vec<TestGuest> = names.iter().map(|name| TestGuest::new(root.path(), name)).collect();
    let mut handles = Vec::new();
    for guest in &guests {
        let change = match guest.name.as_str() {
            "transient" => conn.create_xml(&guest.xml(true), 0).await.unwrap(),
            _ => {
                let id = conn.define_xml(&guest.xml(true), 0).await.unwrap().domain.unwrap().domain;
                conn.domain(id).create().await.unwrap()
            }
        };
        handles.push(conn.domain(change.domain.unwrap().domain));
    }
    for guest in &guests {
        guest.wait_serial("BOOT", 1).await;
    }
    handles[1].suspend().await.unwrap();
    let before = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let id_of = |listing: &rvirt::Listing, name: &str| {
        listing.domains.iter().find(|d| d.domain.name == name).map(|d| (d.domain.id, d.state, d.reason))
    };
    let uuid_of = |name: &str| before.domains.iter().find(|d| d.domain.name == name).unwrap().domain.uuid;
    let pids: Vec<Vec<i32>> = names.iter().map(|name| qemu_pids(&uuid_of(name))).collect();
    assert!(pids.iter().all(|p| p.len() == 1), "one QEMU each: {pids:?}");

    // A start in flight when the daemon dies.
    let inflight = TestGuest::new(root.path(), "inflight");
    let inflight_id = conn.define_xml(&inflight.xml(true), 0).await.unwrap().domain.unwrap().domain;
    let starting = tokio::spawn({
        let domain = conn.domain(inflight_id.clone());
        async move { domain.create().await }
    });
    tokio::time::sleep(Duration::from_millis(15)).await;
    daemon.kill9().await;
    let _ = starting.await;

    // While it is down: one QEMU killed, one guest powers itself off.
    kill(pids[2][0], "KILL");
    guests[3].tap_monitor().await.execute("system_powerdown", None).await.unwrap();
    guests[3].wait_serial("PWROFF", 1).await;

    let daemon = DaemonProcess::start_with(&dirs, &args).await.unwrap_or_else(|(_, logs)| panic!("{logs:?}"));
    let conn = daemon.connect().await;
    let after = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    for name in ["running", "paused", "transient"] {
        assert_eq!(id_of(&after, name), id_of(&before, name), "{name} re-attached with its id and state");
        assert_eq!(
            qemu_pids(&uuid_of(name)),
            pids[names.iter().position(|n| *n == name).unwrap()],
            "{name}: same QEMU"
        );
    }
    assert_eq!(id_of(&after, "killed"), Some((-1, DomainState::Shutoff, reason::SHUTOFF_CRASHED)));
    assert_eq!(id_of(&after, "poweredoff"), Some((-1, DomainState::Shutoff, reason::SHUTOFF_SHUTDOWN)));
    assert!(qemu_pids(&uuid_of("poweredoff")).is_empty(), "the powered-off guest's QEMU was ended");
    let (_, state, _) = id_of(&after, "inflight").unwrap();
    let inflight_pids = qemu_pids(&inflight_id.uuid);
    match state {
        DomainState::Running => assert_eq!(inflight_pids.len(), 1),
        _ => assert!(inflight_pids.is_empty(), "a QEMU nobody recorded survived: {inflight_pids:?}"),
    }
    // Watched again: a re-attached guest's death is seen.
    kill(pids[0][0], "KILL");
    until_state(&conn, uuid_of("running"), DomainState::Shutoff, Duration::from_secs(2)).await;
    let now = conn.list_all_domains(ListFlags::ACTIVE).await.unwrap();
    for domain in &now.domains {
        conn.domain(domain.domain.clone()).destroy().await.unwrap();
    }
    for name in names.iter().chain(["inflight"].iter()) {
        assert!(qemu_pids(&uuid_of_any(&after, name)).is_empty(), "{name}: QEMU left");
    }
    daemon.terminate().await;
    let left: Vec<_> =
        std::fs::read_dir(dirs.runtime.join("qemu")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "runtime folders left: {left:?}");
}

fn uuid_of_any(listing: &rvirt::Listing, name: &str) -> uuid::Uuid {
    listing.domains.iter().find(|d| d.domain.name == name).unwrap().domain.uuid
}

/// rvirsh drives a real guest end to end, with virsh's messages and listings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rvirsh_drives_a_real_guest_end_to_end() {
    let daemon = qemu_daemon().await;
    let guest = TestGuest::new(daemon.dir(), "g");
    let xml = guest.dir.join("g.xml");
    std::fs::write(&xml, guest.xml(true)).unwrap();
    let rvirsh = |commands: &str| {
        let output = std::process::Command::new(rvirt_tests::workspace_binary("rvirsh"))
            .args(["-c", &daemon.uri, commands])
            .output()
            .expect("run rvirsh");
        let (stdout, stderr) =
            (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "rvirsh {commands:?} failed: {stdout}{stderr}");
        eprintln!("$ rvirsh {commands:?}\n{stdout}");
        stdout
    };
    // virsh's table, its widths as virsh sizes them (rvirsh's own layout is checked byte for byte
    // against virsh in tests/it/rvirsh.rs): the rows, whitespace collapsed.
    let rows = |output: &str| -> Vec<String> {
        let lines: Vec<&str> = output.lines().collect();
        let header = lines.iter().position(|l| l.trim_start().starts_with("Id")).expect("a table");
        assert!(lines[header + 1].chars().all(|c| c == '-'), "{output}");
        lines[header + 2..]
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(
        rvirsh(&format!("define {}", xml.display())),
        format!("Domain 'g' defined from {}\n\n", xml.display())
    );
    let out = rvirsh("start g; list --all");
    assert!(out.starts_with("Domain 'g' started\n\n"), "{out}");
    assert_eq!(rows(&out), ["1 g running"]);
    guest.wait_serial("BOOT", 1).await;
    let out = rvirsh("suspend g; list --all; resume g");
    assert!(out.starts_with("Domain 'g' suspended\n\n") && out.ends_with("Domain 'g' resumed\n\n"), "{out}");
    assert_eq!(rows(out.trim_end_matches("Domain 'g' resumed\n\n")), ["1 g paused"]);
    let out = rvirsh("managedsave g; list --all --managed-save");
    assert!(out.starts_with("\nDomain 'g' state saved by libvirt\n\n"), "{out}");
    assert_eq!(rows(&out), ["- g saved"]);
    let out = rvirsh("start g; list");
    assert!(out.starts_with("Domain 'g' started\n\n"), "{out}");
    assert_eq!(rows(&out), ["2 g running"]);
    assert_eq!(rvirsh("snapshot-create-as g s1"), "Domain snapshot s1 created\n");
    assert_eq!(
        rvirsh("snapshot-revert g s1; snapshot-current g --name"),
        "Domain snapshot s1 reverted\n\ns1\n"
    );
    assert_eq!(rows(&rvirsh("list")), ["3 g running"], "a revert is a new run");
    assert_eq!(rvirsh("shutdown g"), "Domain 'g' is being shutdown\n\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&rvirsh("list --all")) != ["- g shut off"] {
        assert!(Instant::now() < deadline, "the guest never powered off");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = rvirsh("start g; destroy g; undefine g --snapshots-metadata; list --all");
    assert!(
        out.starts_with("Domain 'g' started\n\nDomain 'g' destroyed\n\nDomain 'g' has been undefined\n\n"),
        "{out}"
    );
    assert!(rows(&out).is_empty(), "{out}");
    assert!(leftovers(&daemon).is_empty(), "left behind: {:?}", leftovers(&daemon));
    daemon.stop().await;
}

/// What a daemon that died between spawning a QEMU and recording the start leaves: a runtime
/// folder naming a QEMU nobody recorded. The next start ends that QEMU and removes the folder.
#[tokio::test]
async fn a_start_the_daemon_never_recorded_is_ended_at_the_next_start() {
    use rvirt_tests::process::{DaemonDirs, DaemonProcess};
    rvirt_tests::qemu::require_qemu();
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    // First start: creates the folders; then stop it.
    let args = ["--driver", "qemu"];
    DaemonProcess::start_with(&dirs, &args)
        .await
        .unwrap_or_else(|(_, logs)| panic!("{logs:?}"))
        .terminate()
        .await;
    let uuid = uuid::Uuid::new_v4();
    let folder = dirs.runtime.join("qemu").join(uuid.to_string());
    std::fs::create_dir_all(&folder).unwrap();
    // Killed right after the spawn, before even the pid was written: only the pidfile argument
    // on the orphan's command line names the folder.
    let orphan = std::process::Command::new("qemu-system-x86_64")
        .args(["-machine", "none", "-S", "-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-uuid", &uuid.to_string(), "-pidfile", &folder.join("qemu.pid").display().to_string()])
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("spawn the orphan QEMU");
    let pid = orphan.id() as i32;
    let deadline = Instant::now() + Duration::from_secs(5);
    while qemu_pids(&uuid).is_empty() {
        assert!(Instant::now() < deadline, "the orphan QEMU did not start");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let daemon = DaemonProcess::start_with(&dirs, &args).await.unwrap_or_else(|(_, logs)| panic!("{logs:?}"));
    daemon.wait_for_log("ending a QEMU whose start was never recorded").await;
    assert!(qemu_pids(&uuid).is_empty(), "the unrecorded QEMU {pid} still runs");
    assert!(!folder.exists(), "its runtime folder is left");
    daemon.terminate().await;
    drop(orphan);
}
