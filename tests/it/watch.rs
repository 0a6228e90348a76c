//! WatchDomainEvents and the informer: every change after a generation, in order, with no gap
//! and no duplicate, across dropped connections and a daemon restart; libvirt's lifecycle
//! events; filters that bring domains into and out of view; bookmarks; the refusals; a stalled
//! watcher cut off while the others go on.

use rvirt::proto::{self, domain_event::Kind};
use rvirt::{DomainSummary, EventKind, ListFlags, Update, changed};
use rvirt_tests::{domain_xml, start_daemon, start_daemon_with};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::Code;
use uuid::Uuid;

fn by_uuid(domains: Vec<DomainSummary>) -> BTreeMap<Uuid, DomainSummary> {
    domains.into_iter().map(|d| (d.domain.uuid, d)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_informer_equals_every_listing_under_churn_across_dropped_streams_and_a_restart() {
    let root = tempfile::tempdir().unwrap();
    let config = rvirt_tests::soak::SoakConfig { events: 1500, restarts: 1, churners: 3, drop_every: 7 };
    let report = rvirt_tests::soak::run(root.path(), &config, |_| {}).await.unwrap();
    let summary = format!("{report:#?}");
    assert_eq!((report.divergences, report.gaps), (0, 0), "{summary}");
    assert!(report.compared >= 20, "too few listings compared: {summary}");
    assert!(report.events >= 1500, "{summary}");
    assert!(report.resumes >= 3, "{summary}");
    assert_eq!((report.restarts, report.relists), (1, 1), "one relist, after the restart: {summary}");
}

/// The next event of a raw stream, within 5 s.
async fn next_event(
    stream: &mut tonic::Streaming<proto::WatchDomainEventsResponse>,
    pending: &mut Vec<proto::DomainEvent>,
) -> proto::DomainEvent {
    while pending.is_empty() {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .expect("the stream goes on");
        pending.extend(message.events.into_iter().rev());
    }
    pending.pop().unwrap()
}

/// The next event that is not a bookmark: a loaded machine can leave a quiet spell longer than
/// a short bookmark interval between two changes.
async fn next_change(
    stream: &mut tonic::Streaming<proto::WatchDomainEventsResponse>,
    pending: &mut Vec<proto::DomainEvent>,
) -> proto::DomainEvent {
    loop {
        let event = next_event(stream, pending).await;
        if event.kind() != Kind::Bookmark {
            return event;
        }
    }
}

fn words(event: &proto::DomainEvent) -> Vec<String> {
    event
        .lifecycle
        .iter()
        .map(|e| {
            let kind = rvirt::EventType::from_i32(e.r#type).unwrap();
            format!("{} {}", kind.virsh_name(), kind.detail_name(e.detail))
        })
        .collect()
}

#[tokio::test]
async fn events_carry_libvirts_lifecycle_and_filters_bring_domains_into_and_out_of_view() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    let start = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let watch = |flags: ListFlags| {
        conn.watch_domain_events(proto::WatchDomainEventsRequest {
            flags: flags.bits(),
            incarnation: start.incarnation,
            after_generation: start.generation,
            bookmark_interval_ms: 200,
            ..Default::default()
        })
    };
    let (mut all, mut active) =
        (watch(ListFlags::empty()).await.unwrap(), watch(ListFlags::ACTIVE).await.unwrap());
    let (mut all_pending, mut active_pending) = (Vec::new(), Vec::new());

    let defined = conn.define_xml(&domain_xml("a", 1), 0).await.unwrap();
    let dom = conn.domain(defined.domain.clone().unwrap().domain);
    let started = dom.create().await.unwrap();
    dom.suspend().await.unwrap();
    dom.resume().await.unwrap();
    dom.set_autostart(true).await.unwrap();
    dom.snapshot_create_xml("<domainsnapshot><name>s</name></domainsnapshot>", 0).await.unwrap();
    dom.managed_save().await.unwrap();
    dom.create().await.unwrap();
    dom.destroy().await.unwrap();
    let undefined = dom.undefine(rvirt::UndefineFlags::SNAPSHOTS_METADATA).await.unwrap();
    conn.create_xml(&domain_xml("t", 2), 0).await.unwrap();
    let t = conn.lookup_by_name("t").await.unwrap();
    let gone = t.destroy().await.unwrap();

    let expected: &[(Kind, &[&str], u32)] = &[
        (Kind::Added, &["Defined Added"], 0xff),
        (Kind::Modified, &["Started Booted"], changed::STATE | changed::ID),
        (Kind::Modified, &["Suspended Paused"], changed::STATE),
        (Kind::Modified, &["Resumed Unpaused"], changed::STATE),
        (Kind::Modified, &[], changed::AUTOSTART),
        (Kind::Modified, &[], changed::SNAPSHOTS),
        (Kind::Modified, &["Stopped Saved"], changed::STATE | changed::ID | changed::MANAGED_SAVE),
        (Kind::Modified, &["Started Restored"], changed::STATE | changed::ID | changed::MANAGED_SAVE),
        (Kind::Modified, &["Stopped Destroyed"], changed::STATE | changed::ID),
        (Kind::Removed, &["Undefined Removed"], 0xff),
        (Kind::Added, &["Started Booted"], 0xff),
        (Kind::Removed, &["Stopped Destroyed"], 0xff),
    ];
    for (i, (kind, lifecycle, bits)) in expected.iter().enumerate() {
        let event = next_change(&mut all, &mut all_pending).await;
        assert_eq!(event.generation, start.generation + 1 + i as u64, "no gap, no duplicate");
        assert_eq!(
            (event.kind(), words(&event), event.changed),
            (*kind, lifecycle.iter().map(|s| s.to_string()).collect(), *bits),
            "event {i}"
        );
    }
    assert_eq!(defined.generation, start.generation + 1);
    assert_eq!(started.incarnation, start.incarnation);
    assert!(undefined.domain.is_none() && gone.domain.is_none());

    // The ACTIVE watcher: `a` comes into view when it starts, leaves when it stops (not gone),
    // comes back on the restore; the transient `t` arrives and goes for good.
    let mut seen = Vec::new();
    while seen.len() < 7 {
        let event = next_change(&mut active, &mut active_pending).await;
        seen.push((event.kind(), event.domain.unwrap().name, event.gone, event.generation));
    }
    let g = |i: u64| start.generation + i;
    assert_eq!(
        seen,
        [
            (Kind::Added, "a".into(), false, g(2)),
            (Kind::Modified, "a".into(), false, g(3)),
            (Kind::Modified, "a".into(), false, g(4)),
            (Kind::Modified, "a".into(), false, g(5)),
            (Kind::Modified, "a".into(), false, g(6)),
            (Kind::Removed, "a".into(), false, g(7)),
            (Kind::Added, "a".into(), false, g(8)),
        ]
    );
    let mut tail = Vec::new();
    for _ in 0..3 {
        let event = next_change(&mut active, &mut active_pending).await;
        tail.push((event.kind(), event.domain.unwrap().name, event.gone, event.generation));
    }
    assert_eq!(
        tail,
        [
            (Kind::Removed, "a".into(), false, g(9)),
            (Kind::Added, "t".into(), false, g(11)),
            (Kind::Removed, "t".into(), true, g(12)),
        ]
    );
    // Quiet: a bookmark at the head, so the filtered watcher can resume from there.
    let bookmark = next_event(&mut active, &mut active_pending).await;
    assert_eq!((bookmark.kind(), bookmark.generation, bookmark.domain), (Kind::Bookmark, g(12), None));
}

#[tokio::test]
async fn a_guest_driven_change_is_an_event_like_any_other() {
    let daemon = start_daemon().await;
    let (conn, driver) = (&daemon.client, daemon.test_driver.clone().unwrap());
    let dom = conn.domain(conn.define_xml(&domain_xml("g", 1), 0).await.unwrap().domain.unwrap().domain);
    let running = dom.create().await.unwrap().domain.unwrap();
    let mut informer = conn.watch_all(ListFlags::empty());
    informer.next().await.unwrap();
    let crashed = rvirtd::driver::DriverEvent {
        uuid: running.domain.uuid,
        id: running.domain.id,
        state: rvirtd::domain::DomainState::Shutoff,
        reason: rvirtd::domain::reason::SHUTOFF_CRASHED,
    };
    driver.inject(crashed).await.unwrap();
    let Update::Changed(event) = informer.next().await.unwrap() else { panic!("a change") };
    assert_eq!(event.kind, EventKind::Modified);
    assert_eq!(event.lifecycle, [(rvirt::EventType::Stopped, rvirt::detail::STOPPED_CRASHED)]);
    assert_eq!(informer.domains()[&running.domain.uuid].state, rvirt::DomainState::Shutoff);
}

#[tokio::test]
async fn the_initial_state_is_one_snapshot_in_many_messages_then_the_changes_after_it() {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    for n in 0..1500 {
        conn.define_xml(&domain_xml(&format!("i{n:04}"), n), 0).await.unwrap();
    }
    let mut stream = conn
        .watch_domain_events(proto::WatchDomainEventsRequest {
            send_initial_state: true,
            ..Default::default()
        })
        .await
        .unwrap();
    // A change while the initial state is sent comes after it.
    conn.lookup_by_name("i0007").await.unwrap().create().await.unwrap();
    let (mut added, mut messages, mut marker) = (BTreeMap::new(), 0, None);
    while marker.is_none() {
        let message = stream.message().await.unwrap().unwrap();
        messages += 1;
        for event in message.events {
            match event.kind() {
                Kind::Added => {
                    let domain = event.domain.unwrap();
                    assert!(added.insert(domain.name.clone(), event.generation).is_none(), "listed twice");
                }
                Kind::InitialStateDone => marker = Some(event.generation),
                other => panic!("{other:?} before the initial state was done"),
            }
        }
    }
    let marker = marker.unwrap();
    assert_eq!(added.len(), 1500);
    assert!(added.values().all(|&g| g == marker), "every initial entry is of the snapshot's generation");
    assert!(messages > 1, "a large initial state comes in several messages");
    let mut pending = Vec::new();
    let next = next_event(&mut stream, &mut pending).await;
    assert_eq!(
        (next.kind(), next.generation, next.domain.unwrap().name),
        (Kind::Modified, marker + 1, "i0007".into())
    );
}

#[tokio::test]
async fn a_generation_the_history_lost_another_incarnation_or_the_future_is_refused_and_the_informer_relists()
{
    let daemon = start_daemon_with(|c| c.watch.history_max_changes = 10).await;
    let conn = &daemon.client;
    let mut informer = conn.watch_all(ListFlags::empty());
    informer.next().await.unwrap();
    let first = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    for n in 0..30 {
        conn.define_xml(&domain_xml(&format!("h{n}"), n), 0).await.unwrap();
    }
    let now = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let request = |incarnation: u64, after_generation: u64| proto::WatchDomainEventsRequest {
        incarnation,
        after_generation,
        ..Default::default()
    };
    let refused = |result: rvirt::Result<_>| result.map(drop).unwrap_err();
    let old = refused(conn.watch_domain_events(request(first.incarnation, first.generation)).await);
    assert_eq!(old.code, Code::OutOfRange, "{}", old.message);
    assert!(old.message.contains("list again"), "{}", old.message);
    let other = refused(conn.watch_domain_events(request(first.incarnation ^ 1, now.generation)).await);
    assert_eq!(other.code, Code::FailedPrecondition, "{}", other.message);
    let future = refused(conn.watch_domain_events(request(now.incarnation, now.generation + 1)).await);
    assert_eq!(future.code, Code::InvalidArgument, "{}", future.message);
    let flags = refused(
        conn.watch_domain_events(proto::WatchDomainEventsRequest {
            flags: 1 << 20,
            ..request(now.incarnation, now.generation)
        })
        .await,
    );
    assert_eq!(flags.code, Code::InvalidArgument);
    let bookmark = refused(
        conn.watch_domain_events(proto::WatchDomainEventsRequest {
            bookmark_interval_ms: 10,
            ..request(now.incarnation, now.generation)
        })
        .await,
    );
    assert_eq!(bookmark.code, Code::InvalidArgument);
    // The edge of the history still resumes.
    assert!(conn.watch_domain_events(request(now.incarnation, now.generation - 10)).await.is_ok());

    // The informer, disconnected through the 30 changes, cannot resume: it lists again.
    informer.disconnect();
    let update = informer.next().await.unwrap();
    assert_eq!(update, Update::Synced { generation: now.generation, relisted: true });
    assert_eq!(informer.domains(), &by_uuid(now.domains));
    assert_eq!((informer.relists(), informer.resumes()), (1, 0), "refused at once, so never resumed");
}

#[tokio::test]
async fn watchers_past_the_limit_are_refused() {
    let daemon = start_daemon_with(|c| c.watch.max_watchers = 2).await;
    let conn = &daemon.client;
    let open = || {
        conn.watch_domain_events(proto::WatchDomainEventsRequest {
            send_initial_state: true,
            ..Default::default()
        })
    };
    let (a, b) = (open().await.unwrap(), open().await.unwrap());
    let refused = open().await.map(drop).unwrap_err();
    assert_eq!(refused.code, Code::ResourceExhausted, "{}", refused.message);
    drop((a, b));
    // The slots come back when the streams end.
    let deadline = Instant::now() + Duration::from_secs(5);
    while open().await.is_err() {
        assert!(Instant::now() < deadline, "a closed watch stream kept its slot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A socket whose reads can be frozen: a client that stops reading altogether.
struct Freezable<T> {
    io: T,
    frozen: Freezer,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Freezable<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        {
            let mut frozen = self.frozen.0.lock().unwrap();
            if frozen.0 {
                frozen.1 = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
        }
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Freezable<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Freezes or thaws a `Freezable`'s reads.
#[derive(Clone, Default)]
struct Freezer(Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>);

impl Freezer {
    fn set(&self, frozen: bool) {
        let mut state = self.0.lock().unwrap();
        state.0 = frozen;
        if let Some(waker) = state.1.take() {
            waker.wake();
        }
    }
}

/// A WatchDomainEvents stream on a raw HTTP/2 connection with `window`-byte windows, refilled
/// only as `read_events` consumes (so while nobody reads, the daemon can send it only so much):
/// over TCP to `address`, or over the unix socket `address` with reads frozen by `freezer`.
async fn raw_watch(
    address: &str,
    window: u32,
    freezer: Option<&Freezer>,
    request: proto::WatchDomainEventsRequest,
) -> h2::RecvStream {
    let mut builder = h2::client::Builder::new();
    builder.initial_window_size(window).initial_connection_window_size(window);
    let client = if let Some(freezer) = freezer {
        let io = Freezable {
            io: tokio::net::UnixStream::connect(address).await.unwrap(),
            frozen: freezer.clone(),
        };
        let (client, connection) = builder.handshake(io).await.unwrap();
        tokio::spawn(connection);
        client
    } else {
        let (client, connection) =
            builder.handshake(tokio::net::TcpStream::connect(address).await.unwrap()).await.unwrap();
        tokio::spawn(connection);
        client
    };
    let mut client = client.ready().await.unwrap();
    let head = http::Request::builder()
        .method("POST")
        .uri("http://localhost/rvirt.v1.DomainService/WatchDomainEvents")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(head, false).unwrap();
    let body = prost::Message::encode_to_vec(&request);
    let mut frame = vec![0u8];
    frame.extend((body.len() as u32).to_be_bytes());
    frame.extend(body);
    send.send_data(bytes::Bytes::from(frame), true).unwrap();
    response.await.unwrap().into_body()
}

/// grpc-message's percent-encoding undone.
fn percent_decoded(text: &str) -> String {
    let mut bytes = Vec::new();
    let mut rest = text.as_bytes();
    while let [first, tail @ ..] = rest {
        match (first, tail) {
            (b'%', [high, low, tail @ ..]) => {
                bytes.push(u8::from_str_radix(std::str::from_utf8(&[*high, *low]).unwrap(), 16).unwrap());
                rest = tail;
            }
            _ => {
                bytes.push(*first);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// Reads a raw stream to its end: every event, then the grpc-status and grpc-message (or, when
/// the connection broke, "broken" and the error).
async fn read_events(mut body: h2::RecvStream) -> (Vec<proto::DomainEvent>, String, String) {
    let (mut buffer, mut events) = (Vec::new(), Vec::new());
    while let Some(data) = body.data().await {
        let data = match data {
            Ok(data) => data,
            Err(error) => return (events, "broken".into(), error.to_string()),
        };
        body.flow_control().release_capacity(data.len()).unwrap();
        buffer.extend_from_slice(&data);
        while buffer.len() >= 5 {
            let len = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
            if buffer.len() < 5 + len {
                break;
            }
            let message: proto::WatchDomainEventsResponse =
                prost::Message::decode(&buffer[5..5 + len]).unwrap();
            events.extend(message.events);
            buffer.drain(..5 + len);
        }
    }
    let trailers = match body.trailers().await {
        Ok(trailers) => trailers.expect("trailers"),
        Err(error) => return (events, "broken".into(), error.to_string()),
    };
    let text =
        |name: &str| trailers.get(name).map(|v| percent_decoded(v.to_str().unwrap())).unwrap_or_default();
    (events, text("grpc-status"), text("grpc-message"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_watcher_is_cut_off_and_resumes_while_the_others_and_the_mutations_go_on() {
    let daemon = start_daemon_with(|c| c.limits.stall_timeout_ms = 1000).await;
    let conn = &daemon.client;
    let start = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let address = daemon.tcp_uri.clone().unwrap().replace("tcp://", "");
    let request = proto::WatchDomainEventsRequest {
        incarnation: start.incarnation,
        after_generation: start.generation,
        ..Default::default()
    };
    let stalled = raw_watch(&address, 65_535, None, request).await;
    let mut informer = conn.watch_all(ListFlags::empty());
    informer.next().await.unwrap();

    // Large records (a 2 KiB title), so the stalled stream's window fills after a few dozen events.
    let title = "t".repeat(2000);
    let xml = move |n: u32| {
        domain_xml(&format!("s{n}"), n).replace("<memory", &format!("<title>{title}</title><memory"))
    };
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicU64::new(0));
    let mutator = {
        let (conn, stop, acknowledged) = (conn.clone(), stop.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                for n in 0..4 {
                    let started = Instant::now();
                    conn.define_xml(&xml(n), 0).await.unwrap();
                    worst = worst.max(started.elapsed());
                    acknowledged.fetch_add(1, Ordering::Relaxed);
                }
            }
            worst
        })
    };
    // The reading informer keeps up throughout.
    let reader = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let _ = tokio::time::timeout(Duration::from_millis(100), informer.next()).await;
        }
        informer
    });
    let mut informer = reader.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let worst = mutator.await.unwrap();
    let changes = acknowledged.load(Ordering::Relaxed);
    assert!(changes > 300, "only {changes} changes in 3 s");
    assert!(worst < Duration::from_secs(1), "a mutation took {worst:?} while a watcher stalled");

    // The stalled stream gets what the daemon had handed to HTTP/2, in order, then the cut-off.
    let (events, status, message) = read_events(stalled).await;
    assert_eq!(status, (Code::ResourceExhausted as i32).to_string(), "{message}");
    assert!(message.contains("resume from generation"), "{message}");
    let mut last = start.generation;
    for event in &events {
        assert_eq!(event.generation, last + 1, "gap-free up to the cut-off");
        last = event.generation;
    }
    let head = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    assert!(
        (last - start.generation) * 4 < head.generation - start.generation,
        "the stalled watcher received {} of {} changes before the cut-off",
        last - start.generation,
        head.generation - start.generation
    );
    // It resumes from its last generation and catches up, gap-free.
    let mut resumed = conn
        .watch_domain_events(proto::WatchDomainEventsRequest {
            incarnation: start.incarnation,
            after_generation: last,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut pending = Vec::new();
    while last < head.generation {
        let event = next_event(&mut resumed, &mut pending).await;
        assert_eq!(event.generation, last + 1);
        last = event.generation;
    }
    // And the informer that kept reading equals the listing.
    while informer.generation() < head.generation {
        informer.next().await.unwrap();
    }
    assert_eq!(informer.domains(), &by_uuid(head.domains));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_reads_nothing_loses_its_connection_within_the_stall_timeout() {
    let daemon = start_daemon_with(|c| {
        c.limits.stall_timeout_ms = 1000;
        c.watch.max_watchers = 2;
    })
    .await;
    let conn = &daemon.client;
    let start = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let socket = daemon.uri.trim_start_matches("unix://").to_owned();
    let request = proto::WatchDomainEventsRequest {
        incarnation: start.incarnation,
        after_generation: start.generation,
        ..Default::default()
    };
    // Large windows: flow control never stops the daemon; the client's socket does.
    let freezer = Freezer::default();
    let stalled = raw_watch(&socket, 1 << 30, Some(&freezer), request).await;
    freezer.set(true);
    let other = conn.watch_domain_events(proto::WatchDomainEventsRequest {
        send_initial_state: true,
        ..Default::default()
    });
    let _other = other.await.unwrap();
    let title = "t".repeat(2000);
    let xml = |n: u32| {
        domain_xml(&format!("c{n}"), n).replace("<memory", &format!("<title>{title}</title><memory"))
    };
    // Churn until the stalled connection is closed: its watch slot comes back.
    let started = Instant::now();
    let closed = loop {
        for n in 0..4 {
            conn.define_xml(&xml(n), 0).await.unwrap();
        }
        let probe = conn.watch_domain_events(proto::WatchDomainEventsRequest {
            send_initial_state: true,
            ..Default::default()
        });
        if probe.await.is_ok() {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the stalled connection was never closed");
    };
    assert!(closed >= Duration::from_millis(900), "closed after {closed:?}, before the stall timeout");
    freezer.set(false);
    let (events, status, message) = read_events(stalled).await;
    assert_eq!(status, "broken", "the connection was closed under the stream: {message}");
    assert!(!events.is_empty() && (events.len() as u64) < start.generation + 10_000);
}
