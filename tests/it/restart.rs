//! The real rvirtd process: restart (SIGTERM, SIGKILL) brings every domain back exactly, a host
//! reboot brings back only persistent domains and autostarts them, one daemon per state folder,
//! damaged files set aside, SIGHUP reload, health checking and reflection.

use rvirt::{Connection, DomainState, ListFlags, MomentDeleteFlags, UndefineFlags};
use rvirt_tests::process::{DaemonDirs, DaemonProcess};
use rvirt_tests::{domain_xml, start_daemon_tcp};

/// A spread of domains: every state the test driver reaches, transient and persistent, with
/// autostart, managed save, snapshots and checkpoints, and a redefined running domain.
async fn populate(conn: &Connection) {
    let define = |name: &'static str, n: u32| async move {
        let change = conn.define_xml(&domain_xml(name, n), 0).await.unwrap();
        conn.domain(change.domain.unwrap().domain)
    };
    let running = define("running", 1).await;
    running.create().await.unwrap();
    running.set_autostart(true).await.unwrap();
    running.checkpoint_create_xml("<domaincheckpoint><name>cp</name></domaincheckpoint>", 0).await.unwrap();
    let paused = define("paused", 2).await;
    paused.create().await.unwrap();
    paused.suspend().await.unwrap();
    paused.snapshot_create_xml("<domainsnapshot><name>s1</name></domainsnapshot>", 0).await.unwrap();
    paused.snapshot_create_xml("<domainsnapshot><name>s2</name></domainsnapshot>", 0).await.unwrap();
    let saved = define("saved", 3).await;
    saved.create().await.unwrap();
    saved.managed_save().await.unwrap();
    let destroyed = define("destroyed", 4).await;
    destroyed.create().await.unwrap();
    destroyed.destroy().await.unwrap();
    let off_autostart = define("off-autostart", 5).await;
    off_autostart.set_autostart(true).await.unwrap();
    let pm = define("pm", 6).await;
    pm.create().await.unwrap();
    pm.pm_suspend_for_duration(0, 0).await.unwrap();
    conn.create_xml(&domain_xml("transient", 7), 0).await.unwrap();
    let undefined = define("was-persistent", 8).await;
    undefined.create().await.unwrap();
    undefined.undefine(UndefineFlags::empty()).await.unwrap();
    let redefined = define("redefined", 9).await;
    redefined.create().await.unwrap();
    let titled = domain_xml("redefined", 9).replace("<memory", "<title>next boot</title><memory");
    conn.define_xml(&titled, 0).await.unwrap();
    let gone = define("gone", 10).await;
    gone.snapshot_create_xml("<domainsnapshot/>", 0).await.unwrap();
    gone.snapshot_delete(&gone.list_all_snapshots().await.unwrap()[0].name, MomentDeleteFlags::empty())
        .await
        .unwrap();
    gone.undefine(UndefineFlags::empty()).await.unwrap();
}

/// Every domain's summary and both XML descriptions, sorted by name.
async fn everything(conn: &Connection) -> (Vec<(rvirt::DomainSummary, String, String)>, u64) {
    let listing = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let mut all = Vec::new();
    for summary in listing.domains {
        let dom = conn.domain(summary.domain.clone());
        let live = dom.get_xml_desc(0).await.unwrap();
        let inactive = dom.get_xml_desc(rvirt::flags::XML_INACTIVE).await.unwrap();
        all.push((summary, live, inactive));
    }
    all.sort_by(|a, b| a.0.domain.name.cmp(&b.0.domain.name));
    (all, listing.generation)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_then_start_brings_back_every_domain_exactly() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let daemon = DaemonProcess::start(&dirs).await;
    populate(&daemon.connect().await).await;
    let (before, generation) = everything(&daemon.connect().await).await;
    assert_eq!(before.len(), 9);
    assert!(daemon.terminate().await.success());

    let daemon = DaemonProcess::start(&dirs).await;
    let conn = daemon.connect().await;
    let (after, restarted_generation) = everything(&conn).await;
    assert_eq!(after, before);
    // A clean stop writes the exact counters: the generation and the ids continue from there.
    assert_eq!(restarted_generation, generation);
    let max_id = after.iter().map(|d| d.0.domain.id).max().unwrap();
    let destroyed = conn.lookup_by_name("destroyed").await.unwrap();
    let change = destroyed.create().await.unwrap();
    assert_eq!(change.generation, generation + 1);
    assert_eq!(change.domain.unwrap().domain.id, max_id + 1);
    // No autostart on a plain restart: only a host boot autostarts.
    assert_eq!(
        conn.lookup_by_name("off-autostart").await.unwrap().get_state().await.unwrap().0,
        DomainState::Shutoff
    );
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_start_loses_nothing_and_never_goes_back() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let daemon = DaemonProcess::start(&dirs).await;
    populate(&daemon.connect().await).await;
    let (before, generation) = everything(&daemon.connect().await).await;
    daemon.kill9().await;

    let daemon = DaemonProcess::start(&dirs).await;
    let conn = daemon.connect().await;
    let (after, restarted_generation) = everything(&conn).await;
    assert_eq!(after, before);
    assert!(restarted_generation >= generation);
    let max_id = after.iter().map(|d| d.0.domain.id).max().unwrap();
    let change = conn.lookup_by_name("destroyed").await.unwrap().create().await.unwrap();
    assert!(change.generation > restarted_generation);
    assert!(change.domain.unwrap().domain.id > max_id, "ids are never reused, even after a crash");
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_reboot_keeps_persistent_domains_shut_off_and_autostarts() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let daemon = DaemonProcess::start(&dirs).await;
    populate(&daemon.connect().await).await;
    let (before, generation) = everything(&daemon.connect().await).await;
    daemon.terminate().await;
    std::fs::remove_dir_all(&dirs.runtime).unwrap();

    let daemon = DaemonProcess::start(&dirs).await;
    let conn = daemon.connect().await;
    let (after, restarted_generation) = everything(&conn).await;
    let names: Vec<&str> = after.iter().map(|d| d.0.domain.name.as_str()).collect();
    assert_eq!(names, ["destroyed", "off-autostart", "paused", "pm", "redefined", "running", "saved"]);
    let max_id_before = before.iter().map(|d| d.0.domain.id).max().unwrap();
    for (summary, live, _) in &after {
        let name = summary.domain.name.as_str();
        if matches!(name, "running" | "off-autostart") {
            // Autostarted once the state was loaded, with new ids.
            assert_eq!((summary.state, summary.reason), (DomainState::Running, 1), "{name}");
            assert!(summary.domain.id > max_id_before, "{name}");
        } else {
            assert_eq!(summary.state, DomainState::Shutoff, "{name}");
            assert_eq!(summary.domain.id, -1, "{name}");
        }
        // Metadata and marks survive a reboot; the redefined domain boots its new definition.
        let old = before.iter().find(|d| d.0.domain.name == name).unwrap();
        assert_eq!(summary.snapshot_count, old.0.snapshot_count, "{name}");
        assert_eq!(summary.checkpoint_count, old.0.checkpoint_count, "{name}");
        assert_eq!(summary.autostart, old.0.autostart, "{name}");
        assert_eq!(summary.has_managed_save, old.0.has_managed_save, "{name}");
        let live = live.replace(&format!(" id='{}'", summary.domain.id), "");
        assert_eq!(live, old.2, "{name}");
    }
    assert!(restarted_generation >= generation + 2, "two autostarts are two changes");
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_the_same_state_folder_exits_at_once() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let daemon = DaemonProcess::start(&dirs).await;
    let mut other = dirs.clone();
    other.socket = root.path().join("other-sock");
    let (status, logs) =
        DaemonProcess::start_with(&other, &[]).await.err().expect("the second daemon must fail");
    assert!(!status.success());
    let logs = logs.join("\n");
    assert!(logs.contains("another rvirtd") && logs.contains(&daemon.pid().to_string()), "{logs}");
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_and_foreign_files_are_set_aside_and_the_rest_loads() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let daemon = DaemonProcess::start(&dirs).await;
    let conn = daemon.connect().await;
    conn.define_xml(&domain_xml("good", 1), 0).await.unwrap();
    let bad = conn.define_xml(&domain_xml("bad", 2), 0).await.unwrap().domain.unwrap();
    daemon.terminate().await;
    let bad_config = dirs.state.join(format!("config/{}.xml", bad.domain.uuid));
    std::fs::write(&bad_config, "<domain type='test'><name>bad</name><memo").unwrap();
    std::fs::write(dirs.state.join("config/README"), "not mine").unwrap();

    let daemon = DaemonProcess::start(&dirs).await;
    let listing = daemon.connect().await.list_all_domains(ListFlags::empty()).await.unwrap();
    let names: Vec<String> = listing.domains.into_iter().map(|d| d.domain.name).collect();
    assert_eq!(names, ["good"]);
    assert!(dirs.state.join(format!("config/{}.xml.damaged", bad.domain.uuid)).exists());
    assert!(dirs.state.join("config/README.damaged").exists());
    let logs = daemon.logs().join("\n");
    assert!(logs.contains(&bad_config.display().to_string()), "the log names the file: {logs}");
    daemon.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_log_filter_and_says_so() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let config = root.path().join("rvirtd.toml");
    std::fs::write(&config, "log_filter = 'info'\n").unwrap();
    let daemon =
        DaemonProcess::start_with(&dirs, &["--config", config.to_str().unwrap()]).await.ok().unwrap();
    std::fs::write(&config, "log_filter = 'debug'\n").unwrap();
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded the log filter").await;
    // Refusals are logged at debug level: visible now.
    let conn = daemon.connect().await;
    assert!(conn.lookup_by_name("nope").await.is_err());
    let line = daemon.wait_for_log("request refused").await;
    assert!(line.contains("nope") && line.contains("DomainService/LookupDomainByName"), "{line}");
    let stopped = daemon.terminate().await;
    assert!(stopped.success());
}

#[tokio::test]
async fn health_checking_and_reflection_answer() {
    use tonic::codegen::tokio_stream::StreamExt;
    let daemon = start_daemon_tcp().await;
    let address = daemon.uri.replace("tcp://", "http://");
    let channel = tonic::transport::Endpoint::from_shared(address).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let request = tonic_health::pb::HealthCheckRequest { service: "rvirt.v1.DomainService".into() };
    let status = health.check(request).await.unwrap().into_inner().status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers =
        reflection.server_reflection_info(tokio_stream::once(request)).await.unwrap().into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        answers.next().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list")
    };
    let services: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(services.contains(&"rvirt.v1.DomainService".to_string()), "{services:?}");
    daemon.stop().await;
}

#[tokio::test]
async fn socket_activation_serves_the_sockets_systemd_passed_and_leaves_them_in_place() {
    let root = tempfile::tempdir().unwrap();
    let dirs = DaemonDirs::under(root.path());
    let socket_ro = dirs.runtime.join("rvirt-sock-ro");
    std::fs::create_dir_all(&dirs.runtime).unwrap();
    std::fs::set_permissions(&dirs.runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    // systemd-socket-activate binds both sockets, waits for a connection, then execs rvirtd with
    // LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, as systemd does for rvirtd.socket and rvirtd-ro.socket.
    let mut wrapper = tokio::process::Command::new("/usr/bin/systemd-socket-activate")
        .arg("-l")
        .arg(&dirs.socket)
        .arg("-l")
        .arg(&socket_ro)
        .arg("--fdname=rvirt-sock:rvirt-sock-ro")
        .arg("-E")
        .arg("RUST_LOG=info")
        .arg(rvirt_tests::workspace_binary("rvirtd"))
        .args(["--config", "/dev/null", "--state-dir"])
        .arg(&dirs.state)
        .arg("--runtime-dir")
        .arg(&dirs.runtime)
        .arg("--socket")
        .arg(&dirs.socket)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("systemd-socket-activate (Debian's systemd package; `cargo xtask test` installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(dirs.socket.exists() && socket_ro.exists()) {
        assert!(std::time::Instant::now() < deadline, "the sockets were not bound");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The first connection starts the daemon; it serves the socket it was handed.
    let conn = Connection::open(&format!("unix://{}", dirs.socket.display())).await.unwrap();
    conn.define_xml(&domain_xml("activated", 1), 0).await.unwrap();
    let ro = Connection::open(&format!("unix://{}?readonly", dirs.socket.display())).await.unwrap();
    assert_eq!(ro.list_defined_domains(10).await.unwrap(), vec!["activated".to_owned()]);
    let error = ro.define_xml(&domain_xml("other", 2), 0).await.unwrap_err();
    assert_eq!(error.code, tonic::Code::PermissionDenied, "{error:?}");
    // SIGTERM: the daemon stops and leaves systemd's sockets where they are.
    let pid = wrapper.id().unwrap(); // the wrapper exec'd rvirtd: the same process
    assert!(std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap().contains("rvirtd"));
    assert!(std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().unwrap().success());
    let status =
        tokio::time::timeout(std::time::Duration::from_secs(20), wrapper.wait()).await.unwrap().unwrap();
    let mut logs = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut wrapper.stdout.take().unwrap(), &mut logs).await.unwrap();
    assert!(status.success(), "{status:?}: {logs}");
    assert!(logs.contains("using the socket systemd passed socket=\"rvirt-sock-ro\""), "{logs}");
    assert!(dirs.socket.exists() && socket_ro.exists(), "the daemon removed sockets it did not bind");
}
