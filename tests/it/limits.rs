//! Resource bounds, through real sockets: connections in total and per peer, silent and idle
//! connections closed, the budget for unread answers, XML shapes refused before parsing, and a
//! stop that idle connections cannot hold up. Each limit is set low so a test reaches it quickly.

use rvirt::proto;
use rvirt_tests::{domain_xml, start_daemon_with};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

/// A connection that closes at once (refused) fails its first call, or its opening.
async fn refused(uri: &str) -> bool {
    match rvirt::Connection::open(uri).await {
        Err(_) => true,
        Ok(conn) => conn.num_of_domains().await.is_err(),
    }
}

#[tokio::test]
async fn connections_over_the_per_peer_and_total_limits_are_refused_and_slots_come_back() {
    // The harness's own client is the first connection from this uid.
    let daemon = start_daemon_with(|config| {
        config.limits.max_clients_per_peer = 2;
        config.limits.max_clients = 3;
    })
    .await;
    let second = rvirt::Connection::open(&daemon.uri).await.unwrap();
    second.num_of_domains().await.unwrap();
    assert!(refused(&daemon.uri).await, "a third connection from one uid was served");
    // One more from another peer (TCP, 127.0.0.1) is within the total.
    let tcp = daemon.tcp_uri.clone().unwrap();
    let third = rvirt::Connection::open(&tcp).await.unwrap();
    third.num_of_domains().await.unwrap();
    // A second from 127.0.0.1 is within its peer's limit, but a fourth in all.
    assert!(refused(&tcp).await, "a fourth connection in all was served");
    // Closing one gives its slot back.
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(conn) = rvirt::Connection::open(&daemon.uri).await
            && conn.num_of_domains().await.is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "the closed connection's slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.client.num_of_domains().await.unwrap();
    daemon.stop().await;
}

/// Reads until the daemon closes the connection; false if it is still open after `within`.
async fn closed_by_daemon(stream: &mut tokio::net::UnixStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {} // the daemon's SETTINGS, pings, GOAWAY
        }
    }
}

#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    let daemon = start_daemon_with(|config| {
        config.limits.handshake_timeout_secs = 1;
        config.limits.idle_timeout_secs = 2;
    })
    .await;
    let socket = daemon.uri.strip_prefix("unix://").unwrap().to_owned();
    // Sends nothing at all: closed after the handshake timeout.
    let mut silent = tokio::net::UnixStream::connect(&socket).await.unwrap();
    assert!(closed_by_daemon(&mut silent, Duration::from_secs(5)).await, "a silent connection stayed open");
    // Sends half the preface, then nothing: closed after the handshake timeout too.
    let mut half = tokio::net::UnixStream::connect(&socket).await.unwrap();
    half.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert!(closed_by_daemon(&mut half, Duration::from_secs(5)).await, "half a preface kept a connection");
    // Completes the HTTP/2 preface, then makes no call: closed after the idle timeout, not before
    // the handshake timeout.
    let mut idle = tokio::net::UnixStream::connect(&socket).await.unwrap();
    idle.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    assert!(
        !closed_by_daemon(&mut idle, Duration::from_millis(1500)).await,
        "closed before its idle timeout"
    );
    assert!(closed_by_daemon(&mut idle, Duration::from_secs(5)).await, "an idle connection stayed open");
    // A client that calls again reconnects and is served.
    daemon.client.num_of_domains().await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn a_listing_over_the_answer_budget_is_refused_while_small_calls_work() {
    let daemon = start_daemon_with(|config| config.limits.answer_budget_bytes = 1 << 20).await;
    let mut defines = tokio::task::JoinSet::new();
    for n in 0..4_000u32 {
        let client = daemon.client.clone();
        defines.spawn(async move { client.define_xml(&domain_xml(&format!("d{n}"), n), 0).await.unwrap() });
        if defines.len() >= 64 {
            defines.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(define) = defines.join_next().await {
        define.unwrap();
    }
    let mut rpc = daemon.client.rpc();
    let all = proto::ListAllDomainsRequest::default();
    let status = rpc.list_all_domains(all).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{}", status.message());
    assert!(status.message().contains("answer_budget_bytes"), "{}", status.message());
    // Small pages, counts and lookups still answer.
    let page = proto::ListAllDomainsRequest { page_size: 100, ..Default::default() };
    assert_eq!(rpc.list_all_domains(page).await.unwrap().into_inner().domains.len(), 100);
    assert_eq!(daemon.client.count_all_domains(rvirt::ListFlags::empty()).await.unwrap().0, 4_000);
    daemon.client.lookup_by_name("d7").await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn requests_over_the_request_budget_are_refused() {
    let daemon = start_daemon_with(|config| config.limits.request_budget_bytes = 1 << 20).await;
    // 2 MiB of description: within the size limit, over the budget while it is received.
    let xml = format!(
        "<domain type='test'><name>big</name><description>{}</description></domain>",
        "x".repeat(2 << 20)
    );
    let mut rpc = daemon.client.rpc();
    let status = rpc.domain_define_xml(proto::DomainDefineXmlRequest { xml, flags: 0 }).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{}", status.message());
    assert!(status.message().contains("request_budget_bytes"), "{}", status.message());
    // Ordinary requests still pass, the budget given back.
    daemon.client.define_xml(&domain_xml("small", 1), 0).await.unwrap();
    daemon.stop().await;
}

#[tokio::test]
async fn xml_too_wide_or_too_deep_is_refused_before_parsing() {
    let daemon = start_daemon_with(|_| {}).await;
    let attributes: String = (0..100_000).map(|n| format!(" a{n}='v'")).collect();
    let wide = format!("<domain type='test'{attributes}><name>w</name></domain>");
    let deep = format!("<domain type='test'>{}{}</domain>", "<a>".repeat(10_000), "</a>".repeat(10_000));
    let mut rpc = daemon.client.rpc();
    for (xml, limit) in [(wide, "more than 256"), (deep, "nested deeper than 128")] {
        let status =
            rpc.domain_define_xml(proto::DomainDefineXmlRequest { xml, flags: 0 }).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(limit), "{}", status.message());
    }
    // A request larger than any document accepted is refused as it is decoded, not held.
    let xml = format!(
        "<domain type='test'><name>big</name><description>{}</description></domain>",
        "x".repeat(5 << 20)
    );
    let status = rpc.domain_define_xml(proto::DomainDefineXmlRequest { xml, flags: 0 }).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{}", status.message());
    assert_eq!(daemon.client.count_all_domains(rvirt::ListFlags::empty()).await.unwrap().0, 0);
    daemon.stop().await;
}

#[tokio::test]
async fn idle_connections_do_not_hold_up_a_stop() {
    let daemon = start_daemon_with(|config| config.shutdown_timeout = Duration::from_secs(3)).await;
    let socket = daemon.uri.strip_prefix("unix://").unwrap().to_owned();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::UnixStream::connect(&socket).await.unwrap());
    }
    let clients: Vec<_> = idle_clients(daemon.uri.clone(), 5).await;
    let started = Instant::now();
    daemon.stop().await;
    // Generous: the point is that it ends, bounded by shutdown_timeout, not that it is fast.
    assert!(started.elapsed() < Duration::from_secs(4), "stopping took {:?}", started.elapsed());
    drop((silent, clients));
}

/// `n` connections that each made one call and stay open.
async fn idle_clients(uri: String, n: usize) -> Vec<rvirt::Connection> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let conn = rvirt::Connection::open(&uri).await.unwrap();
        conn.num_of_domains().await.unwrap();
        clients.push(conn);
    }
    clients
}
