//! Accepting connections within bounds: at most `max_clients` open connections and
//! `max_clients_per_peer` from one peer (a uid on the unix socket, an IP address on TCP); accept
//! errors that mean "out of descriptors or memory" back off instead of spinning; a connection that
//! sends nothing after it was accepted (`handshake_timeout_secs`), has no call in flight for
//! `idle_timeout_secs` (on listeners that close idle connections, `Idle`), or whose socket takes
//! nothing for `stall_timeout_ms` while the daemon has bytes for it (a client that stopped
//! reading: what it would make the daemon hold is freed) is closed. Every refusal is logged at
//! debug with its reason.
//!
//! `accept` turns a listener into the stream of connections tonic serves; `ActivityLayer` tells
//! each connection when calls start and end, so it knows when it is idle.

use crate::caller::{Access, Caller, Identity};
use crate::config::Limits;
use crate::grpc::budget::{ByteBudget, metered};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::transport::server::Connected;

/// A client has shaken hands once it sent HTTP/2's 24-byte preface and the 9-byte header of its
/// SETTINGS frame; one that sends less within `handshake_timeout_secs` (a trickle, half a preface)
/// is closed like one that sent nothing.
pub const HTTP2_PREFACE_BYTES: usize = 24 + 9;

/// How often a kept connection's watchdog wakes when nothing is pending (it has no deadline).
const KEPT_IDLE_RECHECK: Duration = Duration::from_secs(3600);

/// Whether a listener closes a connection that has had no call in flight for
/// `idle_timeout_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Closes it: a gRPC client reconnects on its own when it next calls.
    Close,
    /// Keeps it, as libvirtd keeps its clients: a libvirt client's connection that closes is
    /// gone for good (python3-libvirt, go-libvirt and a script holding one between polls never
    /// reopen it). What bounds such connections is `max_clients` and `max_clients_per_peer`; a
    /// dead unix peer's end closes with it, and keepalive finds a hung one that asked for it.
    Keep,
}

/// Who a connection comes from, for the per-peer limit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A local user, on the unix socket.
    Uid(u32),
    /// An address, on TCP.
    Ip(IpAddr),
    /// The transport did not say.
    Unknown,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Peer::Uid(uid) => write!(f, "uid {uid}"),
            Peer::Ip(ip) => write!(f, "{ip}"),
            Peer::Unknown => f.write_str("an unknown peer"),
        }
    }
}

/// The open connections of one daemon, shared by all its listeners.
#[derive(Debug)]
pub struct Gate {
    limits: Limits,
    open: Mutex<(usize, HashMap<Peer, usize>)>,
}

impl Gate {
    /// A gate enforcing `limits`.
    pub fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Gate { limits, open: Mutex::new((0, HashMap::new())) })
    }

    /// Counts a new connection from `peer`, or says why it is refused.
    fn admit(self: &Arc<Self>, peer: Peer) -> Result<Slot, String> {
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if open.0 >= self.limits.max_clients {
            return Err(format!("{} connections are open (max_clients)", open.0));
        }
        let from_peer = open.1.get(&peer).copied().unwrap_or(0);
        if from_peer >= self.limits.max_clients_per_peer {
            return Err(format!("{from_peer} connections from {peer} are open (max_clients_per_peer)"));
        }
        open.0 += 1;
        *open.1.entry(peer.clone()).or_default() += 1;
        Ok(Slot { gate: self.clone(), peer })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).0
    }
}

/// One admitted connection's place; given back when the connection is dropped.
#[derive(Debug)]
struct Slot {
    gate: Arc<Gate>,
    peer: Peer,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.gate.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        open.0 -= 1;
        if let Some(count) = open.1.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                open.1.remove(&self.peer);
            }
        }
    }
}

/// What `ActivityLayer` reports to a connection.
#[derive(Debug, Default)]
pub struct Activity {
    in_flight: AtomicUsize,
    last_call_end: Mutex<Option<Instant>>,
}

/// A connection's info as tonic puts it in every request: its caller, and its activity.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Who is calling, stamped when the connection was established.
    pub caller: Arc<Caller>,
    activity: Arc<Activity>,
}

/// An accepted, admitted connection.
#[derive(Debug)]
pub struct Conn<IO> {
    io: IO,
    info: ConnInfo,
    /// Fires at the next moment the connection may have to be closed.
    watchdog: Pin<Box<Sleep>>,
    /// Bytes received, counted up to `preface`.
    received_bytes: usize,
    /// The bytes a client sends before it waits for the server: the HTTP/2 preface and SETTINGS
    /// header (`HTTP2_PREFACE_BYTES`), or one libvirt frame header.
    preface: usize,
    accepted: Instant,
    handshake_timeout: Duration,
    /// `None`: an idle connection is kept (`Idle::Keep`).
    idle_timeout: Option<Duration>,
    stall_timeout: Duration,
    /// Since when a write has been waiting for the socket.
    write_blocked_since: Option<Instant>,
    _slot: Slot,
}

impl<IO> Conn<IO> {
    /// Whether the watchdog says to close; re-arms it otherwise.
    fn expired(&mut self) -> bool {
        if self.received_bytes < self.preface {
            tracing::debug!(
                timeout = ?self.handshake_timeout, received = self.received_bytes,
                "closing a connection that did not complete its preface"
            );
            return true;
        }
        let now = Instant::now();
        let stalled = self.write_blocked_since.map(|since| since + self.stall_timeout);
        if stalled.is_some_and(|deadline| deadline <= now) {
            tracing::debug!(timeout = ?self.stall_timeout, "closing a connection whose client reads nothing");
            return true;
        }
        let deadline = match self.idle_timeout {
            // Nothing to check until a write blocks, which re-arms the watchdog (`wrote`).
            None => now + KEPT_IDLE_RECHECK,
            Some(idle_timeout) if self.info.activity.in_flight.load(Ordering::Acquire) > 0 => {
                now + idle_timeout
            }
            Some(idle_timeout) => {
                let last_call_end =
                    *self.info.activity.last_call_end.lock().unwrap_or_else(|p| p.into_inner());
                let deadline = last_call_end.unwrap_or(self.accepted) + idle_timeout;
                if deadline <= now {
                    tracing::debug!(timeout = ?idle_timeout, "closing an idle connection");
                    return true;
                }
                deadline
            }
        };
        self.watchdog.as_mut().reset(stalled.map_or(deadline, |stalled| stalled.min(deadline)));
        false
    }

    /// Notes whether a write is waiting for the socket, and arms the watchdog for the stall.
    fn wrote<T>(&mut self, result: &Poll<T>) {
        match (result, self.write_blocked_since) {
            (Poll::Pending, None) => {
                let since = Instant::now();
                self.write_blocked_since = Some(since);
                if since + self.stall_timeout < self.watchdog.deadline() {
                    self.watchdog.as_mut().reset(since + self.stall_timeout);
                }
            }
            (Poll::Ready(_), Some(_)) => self.write_blocked_since = None,
            _ => {}
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Conn<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.watchdog.as_mut().poll(cx).is_ready() {
            if self.expired() {
                if self.write_blocked_since.is_some() {
                    // Not an end of stream: hyper would wait to flush to a socket that takes
                    // nothing. An error drops the connection, and all it holds, at once.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client reads nothing",
                    )));
                }
                return Poll::Ready(Ok(())); // end of stream: hyper closes the connection
            }
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if self.received_bytes < self.preface {
            self.received_bytes += buf.filled().len() - before;
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Conn<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.wrote(&result);
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.wrote(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO> Connected for Conn<IO> {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

/// A listener rvirtd accepts on: it accepts a raw connection (cheap, in the accept loop), then
/// establishes it (a TLS handshake, in a task of its own) and says who the caller is.
pub trait Accept: Send + Sync + 'static {
    /// What `accept` returns.
    type Raw: Send + 'static;
    /// The established connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Waits for the next connection and says where it is from.
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Raw, Peer)>> + Send;
    /// Finishes setting up `raw` and names its caller; an error closes it.
    fn establish(&self, raw: Self::Raw) -> impl Future<Output = io::Result<(Self::Io, Caller)>> + Send;
}

/// A unix socket, read-write or read-only.
#[derive(Debug)]
pub struct UnixAccept {
    /// The bound socket.
    pub listener: tokio::net::UnixListener,
    /// What it allows.
    pub access: Access,
}

impl Accept for UnixAccept {
    type Raw = tokio::net::UnixStream;
    type Io = tokio::net::UnixStream;

    async fn accept(&self) -> io::Result<(Self::Raw, Peer)> {
        let (stream, _) = self.listener.accept().await?;
        let peer = stream.peer_cred().map_or(Peer::Unknown, |cred| Peer::Uid(cred.uid()));
        Ok((stream, peer))
    }

    async fn establish(&self, stream: Self::Raw) -> io::Result<(Self::Io, Caller)> {
        // The kernel's word for who is calling; without it there is no identity to decide on.
        let cred = stream.peer_cred()?;
        let identity = Identity::Unix { uid: cred.uid(), gid: cred.gid(), pid: cred.pid().unwrap_or(-1) };
        Ok((stream, Caller { identity, access: self.access }))
    }
}

/// Plain TCP (loopback only, see `Config::resolve`): callers are anonymous.
#[derive(Debug)]
pub struct TcpAccept(pub tokio::net::TcpListener);

impl Accept for TcpAccept {
    type Raw = (tokio::net::TcpStream, SocketAddr);
    type Io = tokio::net::TcpStream;

    async fn accept(&self) -> io::Result<(Self::Raw, Peer)> {
        let (stream, address) = self.0.accept().await?;
        // Small calls answer in one round trip instead of waiting for Nagle's timer.
        let _ = stream.set_nodelay(true);
        Ok(((stream, address), Peer::Ip(address.ip())))
    }

    async fn establish(&self, (stream, address): Self::Raw) -> io::Result<(Self::Io, Caller)> {
        Ok((stream, Caller { identity: Identity::Anonymous { address }, access: Access::ReadWrite }))
    }
}

/// TCP over TLS: the handshake runs in the connection's own task, within the handshake timeout;
/// the client certificate, when the configuration asks for one, names the caller.
#[derive(Debug)]
pub struct TlsAccept {
    /// The bound socket.
    pub listener: tokio::net::TcpListener,
    /// Certificates and client verification, reloadable.
    pub tls: Arc<crate::tls::TlsServer>,
}

impl Accept for TlsAccept {
    type Raw = (tokio::net::TcpStream, SocketAddr);
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

    async fn accept(&self) -> io::Result<(Self::Raw, Peer)> {
        let (stream, address) = self.listener.accept().await?;
        let _ = stream.set_nodelay(true);
        Ok(((stream, address), Peer::Ip(address.ip())))
    }

    async fn establish(&self, (stream, address): Self::Raw) -> io::Result<(Self::Io, Caller)> {
        let config = self
            .tls
            .current()
            .ok_or_else(|| io::Error::other("no TLS certificate is loaded (see the log at start)"))?;
        let stream = tokio_rustls::TlsAcceptor::from(config).accept(stream).await?;
        let identity = crate::tls::identity(stream.get_ref().1, address);
        Ok((stream, Caller { identity, access: Access::ReadWrite }))
    }
}

/// Whether an accept error means the process or the system ran out of something that comes back
/// (descriptors, buffers, memory): then wait before trying again, or accept would spin.
fn is_exhaustion(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// The connections `listener` accepts, admitted by `gate`, as a stream for
/// `serve_with_incoming_shutdown`. The accepting task ends with `stop`. A connection that has not
/// sent `preface` bytes within the handshake timeout is closed; one that is idle, as `idle` says.
pub fn accept<L: Accept>(
    listener: L,
    gate: Arc<Gate>,
    stop: CancellationToken,
    (preface, idle): (usize, Idle),
) -> tokio_stream::wrappers::ReceiverStream<io::Result<Conn<L::Io>>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(64);
    let listener = Arc::new(listener);
    let handshake_timeout = Duration::from_secs(gate.limits.handshake_timeout_secs);
    let idle_timeout = (idle == Idle::Close).then(|| Duration::from_secs(gate.limits.idle_timeout_secs));
    let stall_timeout = Duration::from_millis(gate.limits.stall_timeout_ms);
    tokio::spawn(async move {
        let mut backoff = Duration::ZERO;
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (raw, peer) = match accepted {
                Ok(accepted) => {
                    backoff = Duration::ZERO;
                    accepted
                }
                Err(error) if is_exhaustion(&error) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                    tracing::warn!(%error, retry_in = ?backoff, open = gate.open(), "cannot accept connections");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(backoff) => continue,
                    }
                }
                Err(error) => {
                    // ECONNABORTED and the like: that one connection is gone, the next may come.
                    tracing::debug!(%error, "accept failed");
                    continue;
                }
            };
            let slot = match gate.admit(peer.clone()) {
                Ok(slot) => slot,
                Err(reason) => {
                    tracing::debug!(%peer, reason, "connection refused");
                    continue; // dropping `io` closes it
                }
            };
            // Established in a task of its own, so one slow TLS handshake holds up no other
            // connection; the handshake timeout covers it and the HTTP/2 preface together.
            let (listener, sender, accepted) = (listener.clone(), sender.clone(), Instant::now());
            tokio::spawn(async move {
                let (io, caller) = match tokio::time::timeout(handshake_timeout, listener.establish(raw))
                    .await
                {
                    Ok(Ok(established)) => established,
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "connection not established");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, timeout = ?handshake_timeout, "connection not established in time");
                        return;
                    }
                };
                let conn = Conn {
                    io,
                    info: ConnInfo { caller: Arc::new(caller), activity: Arc::default() },
                    watchdog: Box::pin(tokio::time::sleep_until(accepted + handshake_timeout)),
                    received_bytes: 0,
                    preface,
                    accepted,
                    handshake_timeout,
                    idle_timeout,
                    stall_timeout,
                    write_blocked_since: None,
                    _slot: slot,
                };
                let _ = sender.send(Ok(conn)).await; // an error: the server stopped taking connections
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// Tells each request's connection when a call starts and ends (when its answer has been sent
/// whole), keeps the answer's budget reservation (`grpc::budget`) until then too, and puts the
/// connection's `Arc<Caller>` in the request, where the rest of the daemon looks for it.
/// Request bodies are metered against `requests` as they arrive.
#[derive(Debug, Clone)]
pub struct ActivityLayer {
    requests: ByteBudget,
}

impl ActivityLayer {
    /// Meters request bodies against `requests`.
    pub fn new(requests: ByteBudget) -> Self {
        ActivityLayer { requests }
    }
}

/// The service `ActivityLayer` makes.
#[derive(Debug, Clone)]
pub struct ActivityService<S> {
    inner: S,
    requests: ByteBudget,
}

impl<S> tower::Layer<S> for ActivityLayer {
    type Service = ActivityService<S>;

    fn layer(&self, inner: S) -> ActivityService<S> {
        ActivityService { inner, requests: self.requests.clone() }
    }
}

/// Counts a call as in flight for as long as it lives.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_call_end.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for ActivityService<S>
where
    S: tower::Service<http::Request<Body>, Response = http::Response<Body>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let mut request = request.map(|body| metered(body, self.requests.clone()));
        let info = request.extensions().get::<ConnInfo>().cloned();
        let in_flight = info.map(|info| {
            request.extensions_mut().insert(info.caller);
            InFlight::new(info.activity)
        });
        let response = self.inner.call(request);
        // In flight until the answer is sent whole: a slow reader is not idle, and the memory its
        // answer holds stays counted.
        Box::pin(async move {
            use crate::grpc::budget::{Held, Reservation, hold};
            let mut response = response.await?;
            let reservation = response.extensions_mut().remove::<Held<Reservation>>().and_then(|h| h.take());
            Ok(match (in_flight, reservation) {
                (None, None) => response,
                guards => response.map(|body| hold(body, guards)),
            })
        })
    }
}
