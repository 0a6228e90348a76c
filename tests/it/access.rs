//! Who may do what: the read-only socket refuses every mutating RPC and serves every read; the
//! access policy filters every list, count, lookup and watch, a hidden domain answering exactly as
//! a missing one; a policy replaced under churn never shows a listing what the policy in force
//! hid; SIGHUP reloads the policy of the real binary and keeps the old one when the new is bad.

use rvirt::proto;
use rvirt::{Connection, ErrorKind, ListFlags, TlsFiles, Update};
use rvirt_tests::certs::{self, Ca};
use rvirt_tests::{TestDaemon, domain_xml, start_daemon, start_daemon_with, uuid_for};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tonic::Code;

/// Calls the RPC at `path` with an empty request (every field at its default).
async fn call_empty(conn: &Connection, path: &str) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(conn.channel());
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = tonic::codegen::http::uri::PathAndQuery::try_from(path.to_owned()).unwrap();
    let codec = tonic_prost::ProstCodec::<(), ()>::default();
    grpc.unary(tonic::Request::new(()), path, codec).await.map(|_| ())
}

async fn state_of(conn: &Connection) -> (u64, Vec<String>) {
    let listing = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let domains =
        listing.domains.iter().map(|d| format!("{} {:?} {}", d.domain.name, d.state, d.autostart)).collect();
    (listing.generation, domains)
}

#[tokio::test]
async fn the_read_only_socket_refuses_every_mutating_rpc_and_serves_every_read() {
    let daemon = start_daemon().await;
    let rw = &daemon.client;
    rw.define_xml(&domain_xml("ro-a", 1), 0).await.unwrap();
    let running = rw.define_xml(&domain_xml("ro-b", 2), 0).await.unwrap();
    rw.domain(running.domain.unwrap().domain).create().await.unwrap();
    let before = state_of(rw).await;

    let ro_uri = daemon.ro_uri.clone().unwrap();
    let ro = Connection::open(&ro_uri).await.unwrap();
    let mutating = rvirtd::grpc::guard::mutating();
    assert_eq!(mutating.len(), 20, "{mutating:?}");
    for path in &mutating {
        let status = call_empty(&ro, path).await.unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{path}: {status:?}");
        let method = path.rsplit('/').next().unwrap();
        let expected = format!("operation forbidden: read only access prevents vir{method}");
        assert_eq!(status.message(), expected, "{path}");
        // The same empty request on the read-write socket is refused for its content, not access.
        let status = call_empty(rw, path).await.unwrap_err();
        assert_ne!(status.code(), Code::PermissionDenied, "{path}: {status:?}");
    }
    // Through the library too, on real domains: refused, and nothing changed.
    let handle = ro.lookup_by_name("ro-a").await.unwrap();
    for error in [
        handle.create().await.unwrap_err(),
        handle.undefine(Default::default()).await.unwrap_err(),
        handle.set_autostart(true).await.unwrap_err(),
        ro.define_xml(&domain_xml("ro-c", 3), 0).await.unwrap_err(),
    ] {
        assert_eq!(
            (error.code, error.kind),
            (Code::PermissionDenied, ErrorKind::OperationDenied),
            "{error:?}"
        );
    }
    assert_eq!(state_of(rw).await, before);

    // Every read works on the read-only socket.
    assert_eq!(state_of(&ro).await, before);
    assert_eq!(ro.num_of_domains().await.unwrap(), 1);
    assert_eq!(ro.list_defined_domains(10).await.unwrap(), vec!["ro-a".to_owned()]);
    let b = ro.lookup_by_name("ro-b").await.unwrap();
    assert!(b.is_active().await.unwrap());
    assert!(b.get_xml_desc(0).await.unwrap().contains("<name>ro-b</name>"));
    assert_eq!(ro.lookup_by_id(b.id.id).await.unwrap().id.name, "ro-b");
    let mut informer = ro.watch_all(ListFlags::empty());
    assert!(matches!(informer.next().await.unwrap(), Update::Synced { .. }));
    assert_eq!(informer.domains().len(), 2);
    rw.lookup_by_name("ro-a").await.unwrap().create().await.unwrap();
    assert!(matches!(informer.next().await.unwrap(), Update::Changed(_)));
    // Secrets: never with the secure flag on the read-only socket, and left out without it.
    let vnc = domain_xml("ro-vnc", 4)
        .replace("</devices>", "<graphics type='vnc' port='-1' passwd='s3cret'/></devices>");
    let vnc = rw.domain(rw.define_xml(&vnc, 0).await.unwrap().domain.unwrap().domain);
    assert!(vnc.get_xml_desc(1).await.unwrap().contains("passwd='s3cret'"));
    assert!(!vnc.get_xml_desc(0).await.unwrap().contains("s3cret"));
    let ro_vnc = ro.lookup_by_name("ro-vnc").await.unwrap();
    assert!(!ro_vnc.get_xml_desc(0).await.unwrap().contains("s3cret"));
    let error = ro_vnc.get_xml_desc(1).await.unwrap_err();
    assert_eq!(error.code, Code::PermissionDenied, "{error:?}");
    vnc.undefine(Default::default()).await.unwrap();

    daemon.stop().await;
}

/// A CA, the server's certificate and a client certificate for `alice`, with a daemon serving
/// TLS and holding `policy` (written to its folder).
struct Setup {
    daemon: TestDaemon,
    alice: TlsFiles,
    /// The CA the daemon trusts.
    ca: Ca,
    policy: PathBuf,
    _pki: tempfile::TempDir,
}

fn policy_text(alice_grants: &str) -> String {
    let uid = rvirt_proto::effective_uid();
    format!(
        "[[grant]]\nuid = {uid}\nallow = [\"all\"]\n\n[[grant]]\nsubject = \"{}\"\n{alice_grants}\n",
        certs::client_subject("alice")
    )
}

async fn setup(alice_grants: &str) -> Setup {
    let pki = tempfile::tempdir().unwrap();
    let made = certs::make(pki.path(), "alice").unwrap();
    let policy = pki.path().join("policy.toml");
    certs::write(&policy, &policy_text(alice_grants), 0o600).unwrap();
    let (policy_path, server, ca) = (policy.clone(), made.server.clone(), made.ca.clone());
    let daemon = start_daemon_with(move |config| {
        config.policy = Some(policy_path);
        config.tls = Some(rvirtd::config::TlsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert: server.0,
            key: server.1,
            client_ca: Some(ca),
        });
    })
    .await;
    let alice = TlsFiles {
        ca: Some(made.ca.clone()),
        cert: Some(made.client.0.clone()),
        key: Some(made.client.1.clone()),
    };
    Setup { daemon, alice, policy, ca: made.authority, _pki: pki }
}

impl Setup {
    async fn alice(&self) -> Connection {
        Connection::open_with(self.daemon.tls_uri.as_ref().unwrap(), &self.alice).await.unwrap()
    }
}

fn names(listing: &rvirt::Listing) -> Vec<String> {
    listing.domains.iter().map(|d| d.domain.name.clone()).collect()
}

/// Code, libvirt name and message: what must be the same for a hidden and a missing domain.
fn answer(error: rvirt::Error) -> (Code, String, String) {
    (error.code, error.libvirt_name, error.message)
}

/// What `conn` is answered when it looks up and acts on the domain `id`: by name, UUID and id;
/// its state, XML and snapshots; destroy and undefine.
async fn answers(conn: &Connection, id: &rvirt::DomainId) -> Vec<(Code, String, String)> {
    let direct = conn.domain(id.clone());
    vec![
        answer(conn.lookup_by_name(&id.name).await.unwrap_err()),
        answer(conn.lookup_by_uuid(id.uuid).await.unwrap_err()),
        answer(conn.lookup_by_id(id.id).await.unwrap_err()),
        answer(direct.get_state().await.unwrap_err()),
        answer(direct.get_xml_desc(0).await.unwrap_err()),
        answer(direct.destroy().await.unwrap_err()),
        answer(direct.undefine(Default::default()).await.unwrap_err()),
        answer(direct.list_all_snapshots().await.unwrap_err()),
    ]
}

#[tokio::test]
async fn the_policy_filters_every_list_count_lookup_and_watch_and_a_hidden_domain_is_missing() {
    let setup = setup("allow = [\"read\", \"lifecycle\", \"define\"]\nnames = [\"a-*\"]").await;
    let admin = &setup.daemon.client;
    for (name, n) in [("a-1", 1), ("a-2", 2), ("h-1", 3), ("h-2", 4)] {
        admin.define_xml(&domain_xml(name, n), 0).await.unwrap();
    }
    for name in ["a-1", "h-1"] {
        admin.lookup_by_name(name).await.unwrap().create().await.unwrap();
    }
    let alice = setup.alice().await;
    let mut informer = alice.watch_all(ListFlags::empty());
    assert!(matches!(informer.next().await.unwrap(), Update::Synced { .. }));
    let seen: BTreeSet<String> = informer.domains().values().map(|d| d.domain.name.clone()).collect();
    assert_eq!(seen, BTreeSet::from(["a-1".to_owned(), "a-2".to_owned()]));

    // Listings, counts, pages: only what alice may see, from one snapshot.
    assert_eq!(names(&admin.list_all_domains(ListFlags::empty()).await.unwrap()).len(), 4);
    assert_eq!(
        names(&alice.list_all_domains(ListFlags::empty()).await.unwrap()),
        names(&alice.list_all_domains(ListFlags::empty()).await.unwrap())
    );
    let all: BTreeSet<String> =
        names(&alice.list_all_domains(ListFlags::empty()).await.unwrap()).into_iter().collect();
    assert_eq!(all, seen);
    assert_eq!(names(&alice.list_all_domains(ListFlags::ACTIVE).await.unwrap()), vec!["a-1".to_owned()]);
    assert_eq!(alice.count_all_domains(ListFlags::empty()).await.unwrap().0, 2);
    let mut paged = Vec::new();
    let mut request = proto::ListAllDomainsRequest { page_size: 1, ..Default::default() };
    loop {
        let page = alice.rpc().list_all_domains(request.clone()).await.unwrap().into_inner();
        assert_eq!(page.count, 2);
        paged.extend(page.domains.into_iter().map(|d| d.name));
        if page.next_page_token.is_empty() {
            break;
        }
        request.page_token = page.next_page_token;
    }
    assert_eq!(paged.into_iter().collect::<BTreeSet<_>>(), seen);
    assert_eq!(alice.num_of_domains().await.unwrap(), 1);
    assert_eq!(alice.num_of_defined_domains().await.unwrap(), 1);
    assert_eq!(alice.list_defined_domains(100).await.unwrap(), vec!["a-2".to_owned()]);
    let a1 = alice.lookup_by_name("a-1").await.unwrap();
    assert_eq!(alice.list_domains(100).await.unwrap(), vec![a1.id.id]);

    // Acting on a visible domain without the right: denied, nothing changed.
    let denied = a1.set_autostart(true).await.unwrap_err();
    assert_eq!(denied.code, Code::PermissionDenied, "{denied:?}");
    assert!(!admin.lookup_by_name("a-1").await.unwrap().get_autostart().await.unwrap());
    a1.suspend().await.unwrap();

    // A define that collides with a hidden domain names only what alice sent.
    let h1 = admin.lookup_by_name("h-1").await.unwrap();
    let collide = domain_xml("a-9", 3); // h-1's UUID
    let error = alice.define_xml(&collide, 0).await.unwrap_err();
    assert_eq!(error.code, Code::PermissionDenied, "{error:?}");
    assert!(!error.message.contains("h-1") && !error.message.contains(&uuid_for(3).to_string()), "{error:?}");
    let outside = alice.define_xml(&domain_xml("zz", 9), 0).await.unwrap_err();
    assert_eq!(error.message.replace("a-9", "zz"), outside.message);
    // A hidden name, outside alice's names, answers as any name outside them; with a visible
    // domain's UUID, the answer names only that visible domain.
    let hidden_name = alice.define_xml(&domain_xml("h-2", 77), 0).await.unwrap_err();
    assert_eq!(hidden_name.message, outside.message.replace("zz", "h-2"));
    let taken = alice.define_xml(&domain_xml("a-8", 2), 0).await.unwrap_err(); // a-2's UUID
    assert_eq!(taken.code, Code::AlreadyExists, "{taken:?}");
    assert!(taken.message.contains("a-2") && !taken.message.contains("h-"), "{taken:?}");

    // Hidden domains, looked up and acted on, answer exactly as missing ones: record the answers,
    // then make them missing and ask again.
    let hidden = h1.id.clone();
    let answers_hidden = answers(&alice, &hidden).await;
    // While here: alice's watch saw nothing of h-1's changes; her informer follows a-1's.
    h1.suspend().await.unwrap();
    let a1_resume = alice.lookup_by_name("a-1").await.unwrap().resume().await.unwrap();
    loop {
        if let Update::Changed(event) = informer.next().await.unwrap() {
            assert!(event.domain.as_ref().is_some_and(|d| d.domain.name.starts_with("a-")), "{event:?}");
            if informer.generation() >= a1_resume.generation {
                break;
            }
        }
    }
    admin.domain(hidden.clone()).destroy().await.unwrap();
    admin.domain(hidden.clone()).undefine(Default::default()).await.unwrap();
    let answers_missing = answers(&alice, &hidden).await;
    assert!(answers_hidden.iter().all(|(code, ..)| *code == Code::NotFound), "{answers_hidden:?}");
    assert_eq!(answers_hidden, answers_missing);
    // The informer saw neither h-1's destroy nor its undefine.
    let everyone = informer.domains().values().map(|d| d.domain.name.clone()).collect::<BTreeSet<_>>();
    assert_eq!(everyone, seen);
    setup.daemon.stop().await;
}

/// The prefix every name of a listing shares, when they all share "a-" or "b-".
fn one_prefix(names: &[String]) -> Option<&'static str> {
    ["a-", "b-"].into_iter().find(|prefix| names.iter().all(|name| name.starts_with(prefix)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_policy_replaced_under_churn_never_shows_a_listing_what_it_hid() {
    let grant = |prefix: &str| format!("allow = [\"read\"]\nnames = [\"{prefix}*\"]");
    let setup = setup(&grant("a-")).await;
    let admin = setup.daemon.client.clone();
    for n in 0..20 {
        for prefix in ["a-", "b-"] {
            let n = n + if prefix == "a-" { 0 } else { 100 };
            admin.define_xml(&domain_xml(&format!("{prefix}{n}"), n), 0).await.unwrap();
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churn = {
        let (admin, stop) = (admin.clone(), stop.clone());
        tokio::spawn(async move {
            let mut round = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let n = round % 20 + if round.is_multiple_of(2) { 0 } else { 100 };
                let prefix = if round.is_multiple_of(2) { "a-" } else { "b-" };
                let domain = admin.lookup_by_name(&format!("{prefix}{n}")).await.unwrap();
                domain.create().await.unwrap();
                domain.destroy().await.unwrap();
                round += 1;
            }
            round
        })
    };
    let flipper = {
        let (authority, policy, stop) = (setup.daemon.authority.clone(), setup.policy.clone(), stop.clone());
        tokio::spawn(async move {
            let mut flips = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let prefix = if flips.is_multiple_of(2) { "b-" } else { "a-" };
                certs::write(&policy, &policy_text(&grant(prefix)), 0o600).unwrap();
                authority.reload(&policy).unwrap();
                flips += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            flips
        })
    };
    let alice = setup.alice().await;
    let mut informer = alice.watch_all(ListFlags::empty());
    let (mut listings, mut synced, mut prefixes) = (0, 0, BTreeSet::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < deadline {
        // A paged listing: every page from one snapshot and one policy, or refused to start over.
        let mut request = proto::ListAllDomainsRequest { page_size: 7, ..Default::default() };
        let mut listed = Vec::new();
        loop {
            match alice.rpc().list_all_domains(request.clone()).await {
                Ok(page) => {
                    let page = page.into_inner();
                    listed.extend(page.domains.into_iter().map(|d| d.name));
                    if page.next_page_token.is_empty() {
                        break;
                    }
                    request.page_token = page.next_page_token;
                }
                Err(status) => {
                    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
                    assert!(status.message().contains("access policy changed"), "{status:?}");
                    listed.clear();
                    request = proto::ListAllDomainsRequest { page_size: 7, ..Default::default() };
                }
            }
        }
        let prefix =
            one_prefix(&listed).unwrap_or_else(|| panic!("a listing mixed two policies: {listed:?}"));
        assert_eq!(listed.len(), 20, "{listed:?}");
        prefixes.insert(prefix);
        listings += 1;
        // The informer relists at each replacement; its map is always one policy's.
        while let Ok(update) = tokio::time::timeout(Duration::from_millis(1), informer.next()).await {
            if let Update::Synced { .. } = update.unwrap() {
                synced += 1;
            }
            let names: Vec<String> = informer.domains().values().map(|d| d.domain.name.clone()).collect();
            assert!(one_prefix(&names).is_some(), "the informer mixed two policies: {names:?}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (rounds, flips) = (churn.await.unwrap(), flipper.await.unwrap());
    assert!(
        flips >= 20 && rounds >= 20 && listings >= 20,
        "flips {flips}, churn rounds {rounds}, listings {listings}"
    );
    assert_eq!(prefixes.len(), 2, "both policies were seen");
    assert!(synced >= 2 && informer.relists() >= 1, "synced {synced}, relists {}", informer.relists());
    setup.daemon.stop().await;
}

#[tokio::test]
async fn sighup_reloads_the_policy_and_a_bad_one_keeps_the_old() {
    let root = tempfile::tempdir().unwrap();
    let dirs = rvirt_tests::process::DaemonDirs::under(root.path());
    let policy = root.path().join("policy.toml");
    let uid = rvirt_proto::effective_uid();
    let write = |path: &Path, text: &str| certs::write(path, text, 0o600).unwrap();
    write(&policy, &format!("[[grant]]\nuid = {uid}\nallow = [\"read\"]\n"));
    let daemon =
        rvirt_tests::process::DaemonProcess::start_with(&dirs, &["--policy", policy.to_str().unwrap()])
            .await
            .unwrap();
    let conn = daemon.connect().await;
    let error = conn.define_xml(&domain_xml("hup", 1), 0).await.unwrap_err();
    assert_eq!(error.code, Code::PermissionDenied, "{error:?}");
    assert!(error.message.starts_with("access denied:"), "{error:?}");

    write(&policy, &format!("[[grant]]\nuid = {uid}\nallow = [\"all\"]\n"));
    daemon.signal("HUP");
    daemon.wait_for_log("reloaded the access policy").await;
    conn.define_xml(&domain_xml("hup", 1), 0).await.unwrap();

    write(&policy, "[[grant]]\nallow = [\"all\"]\n");
    daemon.signal("HUP");
    let line = daemon.wait_for_log("kept the old access policy").await;
    assert!(line.contains("names nobody"), "{line}");
    conn.lookup_by_name("hup").await.unwrap().create().await.unwrap();
    daemon.terminate().await;

    // A bad policy at start: the daemon starts, grants nothing, and says why.
    let daemon =
        rvirt_tests::process::DaemonProcess::start_with(&dirs, &["--policy", policy.to_str().unwrap()])
            .await
            .unwrap();
    let line = daemon.wait_for_log("nothing is granted to anyone").await;
    assert!(line.contains("names nobody"), "{line}");
    let conn = daemon.connect().await;
    assert!(conn.list_all_domains(ListFlags::empty()).await.unwrap().domains.is_empty());
    let error = conn.lookup_by_name("hup").await.unwrap_err();
    assert_eq!(error.code, Code::NotFound, "{error:?}");
    daemon.terminate().await;
}

#[tokio::test]
async fn mutual_tls_takes_a_good_certificate_and_refuses_none_an_expired_one_and_another_cas() {
    let setup = setup("allow = [\"all\"]").await;
    let uri = setup.daemon.tls_uri.clone().unwrap();
    let alice = setup.alice().await;
    alice.define_xml(&domain_xml("tls-1", 1), 0).await.unwrap();
    assert_eq!(names(&alice.list_all_domains(ListFlags::empty()).await.unwrap()), vec!["tls-1".to_owned()]);

    let pki = tempfile::tempdir().unwrap();
    let save = |name: &str, issued: &certs::Issued| -> (PathBuf, PathBuf) {
        let (cert, key) =
            (pki.path().join(format!("{name}.pem")), pki.path().join(format!("{name}-key.pem")));
        certs::write(&cert, &issued.cert, 0o644).unwrap();
        certs::write(&key, &issued.key, 0o600).unwrap();
        (cert, key)
    };
    // The daemon's own CA, but expired; another CA, valid; and no certificate at all.
    let other = Ca::new("another CA").unwrap();
    let expired = save("expired", &setup.ca.client("alice", -2).unwrap());
    let foreign = save("foreign", &other.client("alice", 30).unwrap());
    let ca = setup.alice.ca.clone();
    let attempts = [
        ("no certificate", TlsFiles { ca: ca.clone(), cert: None, key: None }),
        ("an expired certificate", TlsFiles { ca: ca.clone(), cert: Some(expired.0), key: Some(expired.1) }),
        (
            "another CA's certificate",
            TlsFiles { ca: ca.clone(), cert: Some(foreign.0), key: Some(foreign.1) },
        ),
    ];
    for (what, files) in attempts {
        let result = match Connection::open_with(&uri, &files).await {
            Ok(conn) => conn.list_all_domains(ListFlags::empty()).await.map(|_| ()),
            Err(error) => Err(error),
        };
        assert!(result.is_err(), "{what} was accepted");
    }
    // Refused handshakes cost the daemon nothing: alice's connection, opened before, goes on.
    assert_eq!(alice.num_of_defined_domains().await.unwrap(), 1);
    // A client that does not trust the server's CA refuses the server.
    let wrong = pki.path().join("other-ca.pem");
    certs::write(&wrong, &other.cert_pem(), 0o644).unwrap();
    let files = TlsFiles { ca: Some(wrong), ..setup.alice.clone() };
    let refused = match Connection::open_with(&uri, &files).await {
        Ok(conn) => conn.list_all_domains(ListFlags::empty()).await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(refused.is_err());
    setup.daemon.stop().await;
}

#[tokio::test]
async fn new_certificates_are_used_after_a_reload_and_open_connections_keep_theirs() {
    let setup = setup("allow = [\"all\"]").await;
    let uri = setup.daemon.tls_uri.clone().unwrap();
    let before = setup.alice().await;
    before.define_xml(&domain_xml("keep", 1), 0).await.unwrap();
    // A new CA for everything: server certificate, client CA, client certificate.
    let fresh = tempfile::tempdir().unwrap();
    let made = certs::make(fresh.path(), "alice").unwrap();
    let pki = setup._pki.path();
    // What alice had: the old CA (kept aside, as its file is replaced), the old certificate.
    std::fs::copy(pki.join("cacert.pem"), fresh.path().join("old-ca.pem")).unwrap();
    let old = TlsFiles { ca: Some(fresh.path().join("old-ca.pem")), ..setup.alice.clone() };
    for (from, to) in
        [(&made.server.0, "servercert.pem"), (&made.server.1, "serverkey.pem"), (&made.ca, "cacert.pem")]
    {
        std::fs::copy(from, pki.join(to)).unwrap();
    }
    // Broken files first: the reload is refused and the old certificates stay.
    certs::write(&pki.join("serverkey.pem"), "not a key", 0o600).unwrap();
    assert!(setup.daemon.tls.as_ref().unwrap().reload().is_err());
    let still = Connection::open_with(&uri, &old).await.unwrap();
    assert_eq!(still.num_of_defined_domains().await.unwrap(), 1);
    std::fs::copy(&made.server.1, pki.join("serverkey.pem")).unwrap();
    setup.daemon.tls.as_ref().unwrap().reload().unwrap();

    // The connection opened before goes on; new ones need the new CA and certificate.
    assert_eq!(before.num_of_defined_domains().await.unwrap(), 1);
    let renewed = TlsFiles {
        ca: Some(made.ca.clone()),
        cert: Some(made.client.0.clone()),
        key: Some(made.client.1.clone()),
    };
    let after = Connection::open_with(&uri, &renewed).await.unwrap();
    assert_eq!(after.num_of_defined_domains().await.unwrap(), 1);
    let stale = match Connection::open_with(&uri, &old).await {
        Ok(conn) => conn.num_of_defined_domains().await.map(|_| ()),
        Err(error) => Err(error),
    };
    assert!(stale.is_err(), "the old certificates still work after the reload");
    setup.daemon.stop().await;
}

#[tokio::test]
async fn a_watch_cannot_resume_across_a_policy_reload_even_with_no_change_between() {
    let setup = setup("allow = [\"read\"]\nnames = [\"a-*\"]").await;
    setup.daemon.client.define_xml(&domain_xml("a-1", 1), 0).await.unwrap();
    let alice = setup.alice().await;
    let listing = alice.list_all_domains(ListFlags::empty()).await.unwrap();
    let resume = proto::WatchDomainEventsRequest {
        incarnation: listing.incarnation,
        after_generation: listing.generation,
        ..Default::default()
    };
    alice.watch_domain_events(resume).await.unwrap();
    // The same policy, reloaded: the listing above may not be what it would show now.
    setup.daemon.authority.reload(&setup.policy).unwrap();
    let error = alice.watch_domain_events(resume).await.unwrap_err();
    assert_eq!(error.code, Code::FailedPrecondition, "{error:?}");
    assert!(error.message.contains("access policy changed"), "{error:?}");
    setup.daemon.stop().await;
}
