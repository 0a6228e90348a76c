//! libvirt's native remote protocol (XDR over a unix socket, program 0x20008086): the second
//! front end beside `grpc`, so unmodified virsh, python3-libvirt and go-libvirt talk to rvirtd.
//! Like `grpc` it validates, converts and calls `Domains` (through `api`), nothing else.
//!
//! `xdr` is the codec, `protocol` the numbers and messages, `frame` the framing, `session` one
//! connection (handshake state, keepalive, concurrent calls, event callbacks), `procedures` the
//! calls, `listing` the atomic listing's answer (and the last one kept) and `failure` how an
//! `Error` is told as libvirt's `remote_error`.

pub mod failure;
pub mod frame;
pub mod listing;
pub mod procedures;
pub mod protocol;
pub mod session;
pub mod xdr;

use crate::caller::Access;
use crate::connections::{self, Gate, Idle, UnixAccept};
use crate::domains::Domains;
use crate::grpc::budget::ByteBudget;
use crate::pool::WorkPool;
use std::sync::Arc;
use std::sync::atomic::AtomicI32;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

/// libvirtd's default `max_client_requests`: calls one connection may have in flight.
pub const LIBVIRTD_MAX_CLIENT_REQUESTS: usize = 5;

/// What every native connection of one daemon shares.
#[derive(Debug)]
pub struct Native {
    /// The registry, lifecycle and access checks every front end shares.
    pub domains: Arc<Domains>,
    /// The URI of the daemon's driver ("test:///default", "qemu:///system"): the one
    /// `CONNECT_OPEN` accepts.
    pub uri: &'static str,
    /// libvirt's error domain for the driver's errors (VIR_FROM_TEST, VIR_FROM_QEMU).
    pub error_domain: i32,
    /// The last listing's answer, sent again while nothing changed.
    pub listings: listing::Listings,
    /// Event callback ids: one counter for the whole daemon, as libvirtd's.
    pub next_callback: AtomicI32,
    /// Bytes of requests received but not yet handled, daemon-wide (shared with gRPC).
    pub requests: ByteBudget,
    /// Bytes of answers built but not yet written, daemon-wide (shared with gRPC).
    pub answers: ByteBudget,
    /// Where large XML documents are parsed, off the async workers.
    pub pool: WorkPool,
    /// Concurrent calls on one connection: libvirtd's default `max_client_requests` (5), or
    /// `[limits]`'s when lower (its default, 100, is for HTTP/2 streams).
    pub max_calls: usize,
    /// Once a frame's length word has come, the rest must come within this
    /// (`handshake_timeout_secs`): a client stopped mid-frame holds its bytes no longer.
    pub frame_deadline: std::time::Duration,
    /// A client that reads nothing this long while answers wait for it is cut off.
    pub stall_timeout: std::time::Duration,
    /// Cancelled when the daemon stops: every connection closes.
    pub stopping: CancellationToken,
}

impl Native {
    /// The shared state for `domains`, whose driver names the URI clients must open.
    pub fn new(
        domains: Arc<Domains>,
        (requests, answers, pool): (ByteBudget, ByteBudget, WorkPool),
        limits: &crate::config::Limits,
        stopping: CancellationToken,
    ) -> Arc<Self> {
        let (uri, error_domain) = match domains.driver().name() {
            "qemu" => ("qemu:///system", failure::FROM_QEMU),
            _ => ("test:///default", failure::FROM_TEST),
        };
        Arc::new(Native {
            domains,
            uri,
            error_domain,
            listings: listing::Listings::default(),
            next_callback: AtomicI32::new(0),
            requests,
            answers,
            pool,
            max_calls: (limits.max_client_requests as usize).clamp(1, LIBVIRTD_MAX_CLIENT_REQUESTS),
            frame_deadline: std::time::Duration::from_secs(limits.handshake_timeout_secs),
            stall_timeout: std::time::Duration::from_millis(limits.stall_timeout_ms),
            stopping,
        })
    }
}

/// Serves libvirt's protocol on `listener` (read-write or read-only) until the daemon stops;
/// connections are admitted by the same `gate` as the gRPC ones.
pub async fn serve(native: Arc<Native>, listener: tokio::net::UnixListener, access: Access, gate: Arc<Gate>) {
    tracing::info!(socket = ?listener.local_addr().ok(), ?access, "listening (libvirt protocol)");
    let preface = protocol::LEN_BYTES + protocol::HEADER_BYTES;
    let mut incoming = connections::accept(
        UnixAccept { listener, access },
        gate,
        native.stopping.clone(),
        (preface, Idle::Keep),
    );
    let mut sessions = tokio::task::JoinSet::new();
    while let Some(conn) = incoming.next().await {
        let Ok(conn) = conn else { continue };
        sessions.spawn(session::run(native.clone(), conn));
        while sessions.try_join_next().is_some() {}
    }
    sessions.join_all().await;
}
