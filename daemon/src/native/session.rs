//! One libvirt-protocol connection: reads frames, answers keepalive PINGs, runs calls (up to
//! `Native::max_calls` at once, answered in any order, matched by serial), and sends the
//! lifecycle events its callbacks asked for, read from the history in generation order.
//!
//! Every answer goes through one bounded queue to one writer, holding its share of the answer
//! budget until written: a client that stops reading stops its own calls and events
//! (back-pressure), and is cut off after the stall timeout.

use super::Native;
use super::failure::Failure;
use super::frame::{self, FrameError, Outgoing};
use super::procedures;
use super::protocol::{self as p, Header};
use super::xdr;
use crate::caller::{Access, Caller};
use crate::connections::Conn;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;
use uuid::Uuid;

const CALL: u32 = p::MessageType::Call as u32;
const CALL_WITH_FDS: u32 = p::MessageType::CallWithFds as u32;
const MESSAGE: u32 = p::MessageType::Message as u32;

/// Frames queued for the writer; a sender waits beyond that.
const OUT_FRAMES: usize = 32;

/// libvirtd's defaults: a PING after this much silence from a client that asked for keepalive...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
/// ...and the connection closed after this many unanswered ones.
const KEEPALIVE_COUNT: u32 = 5;

/// Event callbacks one connection may hold (libvirt clients register one per event id: 28).
pub const MAX_CALLBACKS: usize = 1024;

/// Entries read from the history at a time by the event follower.
const EVENT_BATCH: usize = 256;

/// A registered event callback (`CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY`).
#[derive(Debug, Clone, Copy)]
pub struct Callback {
    /// libvirt's `VIR_DOMAIN_EVENT_ID_*`.
    pub event_id: i32,
    /// Only this domain's events (`None`: every domain's).
    pub domain: Option<Uuid>,
}

/// The state of one connection the calls share.
#[derive(Debug)]
pub struct Session {
    /// Daemon-wide state.
    pub native: Arc<Native>,
    /// Who connected, as the socket says (its access: the socket's).
    pub peer: Arc<Caller>,
    /// After `CONNECT_OPEN`: the caller the calls run as (read-only if the socket or the open's
    /// flags say so).
    opened: Mutex<Option<Arc<Caller>>>,
    /// The client asked for keepalive (feature 10): PING it and drop it when it goes silent.
    keepalive: AtomicBool,
    /// When the client was last heard from.
    heard: Mutex<Instant>,
    /// Event callbacks by id.
    callbacks: Mutex<HashMap<i32, Callback>>,
    /// Whether the event follower runs.
    following: AtomicBool,
    /// To the writer.
    out: mpsc::Sender<Outgoing>,
    /// Cancelled when the connection is to close.
    pub closing: CancellationToken,
}

impl Session {
    /// The caller of an open connection.
    pub fn caller(&self) -> Result<Arc<Caller>, Failure> {
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| Failure::rpc_internal("hypervisor connection not open"))
    }

    /// Whether `CONNECT_OPEN` succeeded (and no `CONNECT_CLOSE` followed).
    pub fn is_open(&self) -> bool {
        self.opened.lock().unwrap_or_else(|p| p.into_inner()).is_some()
    }

    /// `CONNECT_OPEN`: the connection now runs calls for the peer, read-only if `read_only`.
    pub fn open(&self, read_only: bool) -> Result<(), Failure> {
        let mut opened = self.opened.lock().unwrap_or_else(|p| p.into_inner());
        if opened.is_some() {
            return Err(Failure::rpc_internal("connection already open"));
        }
        let access = if read_only { Access::ReadOnly } else { self.peer.access };
        *opened = Some(Arc::new(Caller { identity: self.peer.identity.clone(), access }));
        Ok(())
    }

    /// `CONNECT_CLOSE`: later calls are refused as before the open; callbacks are dropped.
    pub fn close(&self) {
        // Callbacks first: a follower that finds the connection closed then finds none left.
        self.callbacks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        *self.opened.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Feature 10 was asked for: libvirtd starts its keepalive on that client, and so does rvirtd.
    pub fn enable_keepalive(self: &Arc<Self>) {
        if !self.keepalive.swap(true, Ordering::AcqRel) {
            tokio::spawn(keepalive(self.clone()));
        }
    }

    /// Registers a callback; the events of changes committed from now on reach it. `None` when
    /// the connection already holds `MAX_CALLBACKS`.
    pub fn register(self: &Arc<Self>, callback: Callback) -> Option<i32> {
        let mut callbacks = self.callbacks.lock().unwrap_or_else(|p| p.into_inner());
        if callbacks.len() >= MAX_CALLBACKS {
            return None;
        }
        let id = self.native.next_callback.fetch_add(1, Ordering::AcqRel);
        callbacks.insert(id, callback);
        // Under the callbacks' lock, as the follower's `stop_following`: a follower stops only
        // when no callback is left, and one registered after that starts another.
        if !self.following.swap(true, Ordering::AcqRel) {
            let position = self.native.domains.history().head();
            tokio::spawn(follow(self.clone(), position));
        }
        Some(id)
    }

    /// Deregisters callback `id`; false if this connection has no such callback.
    pub fn deregister(&self, id: i32) -> bool {
        self.callbacks.lock().unwrap_or_else(|p| p.into_inner()).remove(&id).is_some()
    }

    /// For the follower of a connection closed by `CONNECT_CLOSE`: true (stop) unless callbacks
    /// were registered again since, after a new open.
    fn stop_following(&self) -> bool {
        let callbacks = self.callbacks.lock().unwrap_or_else(|p| p.into_inner());
        let stop = callbacks.is_empty();
        if stop {
            self.following.store(false, Ordering::Release);
        }
        stop
    }

    fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Queues a frame for the writer; false once the connection is closing.
    async fn send(&self, frame: Outgoing) -> bool {
        tokio::select! {
            sent = self.out.send(frame) => sent.is_ok(),
            () = self.closing.cancelled() => false,
        }
    }
}

/// Serves one admitted connection until the client leaves, a frame is out of bounds, the
/// client stops reading or the daemon stops.
pub async fn run(native: Arc<Native>, conn: Conn<tokio::net::UnixStream>) {
    let peer = conn.connect_info().caller;
    let (mut reader, writer) = tokio::io::split(conn);
    let (out, queue) = mpsc::channel(OUT_FRAMES);
    let closing = native.stopping.child_token();
    // A call answered in this task that panicked still ends the writer and the helpers.
    let _closes = closing.clone().drop_guard();
    let session = Arc::new(Session {
        peer,
        native: native.clone(),
        opened: Mutex::new(None),
        keepalive: AtomicBool::new(false),
        heard: Mutex::new(Instant::now()),
        callbacks: Mutex::new(HashMap::new()),
        following: AtomicBool::new(false),
        out,
        closing: closing.clone(),
    });
    let writer = tokio::spawn(write(writer, queue, native.stall_timeout, closing.clone()));
    tracing::debug!(caller = %session.peer, "libvirt-protocol connection opened");
    let calls = Arc::new(tokio::sync::Semaphore::new(native.max_calls));
    let reason = loop {
        let read = tokio::select! {
            () = closing.cancelled() => break "closing".to_owned(),
            read = frame::read(&mut reader, (&native.requests, native.frame_deadline)) => read,
        };
        let (frame, reservation) = match read {
            Ok(read) => read,
            Err(FrameError::Closed) => break "client closed the connection".to_owned(),
            Err(FrameError::Refused { header, error }) => {
                session.heard();
                if header.kind == CALL && !session.send(refusal(&session, &header, error.into())).await {
                    break "closing".to_owned();
                }
                continue;
            }
            Err(error) => break error.to_string(),
        };
        session.heard();
        let header = frame.header.clone();
        match (header.prog, header.kind) {
            (p::KEEPALIVE_PROGRAM, MESSAGE) => {
                if header.procedure == p::KEEPALIVE_PING
                    && !session.send(keepalive_frame(p::KEEPALIVE_PONG)).await
                {
                    break "closing".to_owned();
                }
            }
            (_, CALL) => {
                // Calls wait for a free slot: a client with `max_calls` calls in flight is not
                // read from until one finishes.
                let permit = tokio::select! {
                    permit = calls.clone().acquire_owned() => permit.expect("never closed"),
                    () = closing.cancelled() => break "closing".to_owned(),
                };
                let session = session.clone();
                let mut call = Box::pin(async move {
                    let answer = answer(&session, header.clone(), &frame.payload).await;
                    drop((frame, reservation));
                    // Held until written, as a gRPC answer is: what slow readers make the daemon
                    // hold is bounded by the answer budget; over it, the call is refused instead.
                    // Differs from libvirt: libvirtd has no such budget.
                    let answer = match session.native.answers.reserve(answer.len()) {
                        Ok(held) => Outgoing { held: Some(held), ..answer },
                        Err(error) => refusal(&session, &header, error.into()),
                    };
                    session.send(answer).await;
                    drop(permit);
                });
                // Most calls (every read) finish without waiting: answered here, they cost no
                // task and no wake-up of another worker. One that waits (a lifecycle change, a
                // parse off the workers, a full queue) goes on in its own task, so the
                // connection's other calls are read and run meanwhile. A future polled again
                // wakes the waker of its newest poll, so the first poll's no-op waker is harmless.
                let mut first = std::task::Context::from_waker(std::task::Waker::noop());
                if call.as_mut().poll(&mut first).is_pending() {
                    tokio::spawn(call);
                }
            }
            (_, CALL_WITH_FDS) => break "a call with file descriptors (not supported)".to_owned(),
            // Stream data, stray replies: rvirtd opens no streams and sends no calls.
            _ => tracing::debug!(?header, "ignoring an unexpected message"),
        }
    };
    tracing::debug!(caller = %session.peer, reason, "libvirt-protocol connection closed");
    closing.cancel();
    session.close();
    let _ = writer.await;
}

/// The reply frame to one call.
async fn answer(session: &Arc<Session>, header: Header, payload: &[u8]) -> Outgoing {
    let result = if header.prog != p::REMOTE_PROGRAM || header.vers != p::REMOTE_PROTOCOL_VERSION {
        Err(Failure::rpc(format!("Cannot find program {} version {}", header.prog, header.vers)))
    } else {
        procedures::call(session, header.procedure, payload).await
    };
    match result {
        Ok(mut frame) => {
            let length = frame.len() as u32;
            frame.head[..p::LEN_BYTES].copy_from_slice(&length.to_be_bytes());
            let header = xdr::encode(&header.reply(p::Status::Ok));
            frame.head[p::LEN_BYTES..procedures::ROOM].copy_from_slice(&header);
            frame
        }
        Err(failure) => refusal(session, &header, failure),
    }
}

/// The error reply to the call `header` heads.
fn refusal(session: &Session, header: &Header, failure: Failure) -> Outgoing {
    let error = failure.remote(session.native.error_domain);
    tracing::debug!(procedure = header.procedure, code = error.code, message = ?error.message, "call refused");
    frame::encode(&header.reply(p::Status::Error), &error).into()
}

fn keepalive_frame(procedure: i32) -> Outgoing {
    frame::encode(&Header::keepalive(procedure), &()).into()
}

/// The one writer: frames in queue order; a socket that takes nothing for `stall` ends the
/// connection.
async fn write(
    mut writer: tokio::io::WriteHalf<Conn<tokio::net::UnixStream>>,
    mut queue: mpsc::Receiver<Outgoing>,
    stall: Duration,
    closing: CancellationToken,
) {
    loop {
        let frame = tokio::select! {
            frame = queue.recv() => frame,
            () = closing.cancelled() => None,
        };
        let Some(frame) = frame else { break };
        match tokio::time::timeout(stall, frame::write(&mut writer, &frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::debug!(%error, "writing to a libvirt-protocol client failed");
                break;
            }
            Err(_) => {
                tracing::debug!(?stall, "closing a libvirt-protocol client that reads nothing");
                break;
            }
        }
    }
    closing.cancel();
    let _ = writer.shutdown().await;
}

/// PINGs a client that asked for keepalive after each `KEEPALIVE_INTERVAL` of silence, and
/// closes the connection after `KEEPALIVE_COUNT` unanswered ones, as libvirtd does.
async fn keepalive(session: Arc<Session>) {
    let mut pinged_at = None;
    loop {
        let heard = *session.heard.lock().unwrap_or_else(|p| p.into_inner());
        // The next PING is due an interval after the client was last heard from, or after the
        // last PING while it stays silent.
        let due = pinged_at.filter(|at| *at > heard).unwrap_or(heard) + KEEPALIVE_INTERVAL;
        if Instant::now() < due {
            tokio::select! {
                () = tokio::time::sleep_until(due.into()) => {}
                () = session.closing.cancelled() => return,
            }
            continue;
        }
        let silent = heard.elapsed();
        if silent >= KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1) {
            tracing::debug!(?silent, "closing a libvirt-protocol connection due to keepalive timeout");
            session.closing.cancel();
            return;
        }
        if !session.send(keepalive_frame(p::KEEPALIVE_PING)).await {
            return;
        }
        pinged_at = Some(Instant::now());
    }
}

/// Sends the lifecycle events of every change after `position` to the callbacks that asked, in
/// generation order. The history is gap-free; if this connection fell so far behind that the
/// history no longer holds what it has not sent, it is closed rather than left with a hole.
async fn follow(session: Arc<Session>, mut position: u64) {
    let domains = session.native.domains.clone();
    let mut head = domains.history().subscribe();
    loop {
        let entries = match domains.history().read(position, EVENT_BATCH) {
            Ok(entries) => entries,
            Err(gap) => {
                tracing::warn!(caller = %session.peer, ?gap, "closing a libvirt-protocol client too far behind on events");
                session.closing.cancel();
                return;
            }
        };
        if entries.is_empty() {
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                () = session.closing.cancelled() => return,
            }
            continue;
        }
        let Ok(caller) = session.caller() else {
            if session.stop_following() {
                return;
            }
            continue; // opened again, with callbacks: they see what is committed from now on
        };
        let grants = domains.grants(&caller);
        for entry in entries {
            position = entry.generation;
            let seen = |d: &&Arc<crate::domain::Domain>| grants.sees(d);
            let Some(domain) = entry.after.as_ref().filter(seen).or(entry.before.as_ref().filter(seen))
            else {
                continue;
            };
            let id = entry.after.as_ref().map_or(-1, |after| after.id);
            let dom = procedures::handle_with_id(domain, id);
            let targets: Vec<i32> = {
                let callbacks = session.callbacks.lock().unwrap_or_else(|p| p.into_inner());
                callbacks
                    .iter()
                    .filter(|(_, c)| {
                        c.event_id == p::event_id::LIFECYCLE && c.domain.is_none_or(|u| u == entry.uuid)
                    })
                    .map(|(id, _)| *id)
                    .collect()
            };
            for (event, detail) in entry.lifecycle.iter() {
                for &callback_id in &targets {
                    let msg = p::DomainEventCallbackLifecycleMsg {
                        callback_id,
                        msg: p::DomainEventLifecycleMsg { dom: dom.clone(), event, detail },
                    };
                    // libvirtd puts serial 1 on events; clients do not look.
                    let header = Header::event(p::procedure::DOMAIN_EVENT_CALLBACK_LIFECYCLE);
                    if !session.send(frame::encode(&header, &msg).into()).await {
                        return;
                    }
                }
            }
        }
    }
}
