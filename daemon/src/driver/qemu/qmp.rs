//! `Qmp`: an async client for one QEMU 7.2 monitor socket (QMP), and `QmpError`.
//!
//! Our own client over a tokio `UnixStream` with serde_json line framing rather than the
//! `qapi` crate, because we need a handful of untyped commands, `getfd` with SCM_RIGHTS, a
//! bound on line length and bounded event back-pressure, and qapi's generated types would
//! pin us to its QEMU schema version while bringing none of those.
//!
//! One connection has two tasks: a reader that routes replies to their caller by `"id"` and
//! hands events to a bounded channel, and a writer that puts whole lines on the socket, so a
//! caller that gives up (timeout, dropped future) never leaves half a command on the wire.
//! It knows nothing about domains, the registry or how events change a domain's state: the
//! QEMU driver owns the `Events` receiver and decides that.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The longest line (reply or event, without its newline) the client accepts from QEMU.
/// A longer one closes the connection with a `Protocol` error instead of being buffered.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// Events buffered for a slow consumer before the reader stops reading the socket.
pub const EVENT_QUEUE: usize = 256;

/// The timeout of `execute` (use `execute_timeout` to choose another). Every command the
/// driver sends answers in well under a second here; 30 s only catches a wedged QEMU.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Commands queued for the writer task; a caller waits (within its timeout) for room.
const OUTGOING_QUEUE: usize = 64;

/// The events of one connection, in the order QEMU sent them. It yields `None` once the
/// connection has ended and every event received before the end has been taken.
///
/// The reader waits for room in this channel, so a consumer that stops draining it also
/// stops replies from arriving: drain it from its own task.
pub type Events = mpsc::Receiver<QmpEvent>;

/// One QMP event, e.g. `SHUTDOWN` with `{"guest": true, "reason": "guest-shutdown"}`.
#[derive(Debug, Clone, PartialEq)]
pub struct QmpEvent {
    /// The event name, e.g. `"STOP"`.
    pub name: String,
    /// The event's `data` member, `Value::Null` if it has none.
    pub data: Value,
    /// QEMU's timestamp of the event, in microseconds since the Unix epoch.
    pub timestamp_us: u64,
}

/// The QEMU version the greeting announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct QemuVersion {
    /// e.g. 7
    pub major: u64,
    /// e.g. 2
    pub minor: u64,
    /// e.g. 22
    pub micro: u64,
}

/// What went wrong talking to a QEMU monitor.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be connected to (or an fd for `getfd` not duplicated).
    #[error("i/o error on qmp socket {}", path.display())]
    Io {
        /// The monitor socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// QEMU answered the command with an error.
    #[error("qmp command {command} failed: {desc} ({class})")]
    Command {
        /// The command (for a job: its type and id, e.g. `snapshot-save job s1`).
        command: String,
        /// QMP's error class, e.g. `GenericError`, `CommandNotFound`.
        class: String,
        /// QMP's description.
        desc: String,
    },
    /// The monitor connection ended (QEMU exited or was killed) before an answer came.
    #[error("{}", closed_message(command.as_deref()))]
    Closed {
        /// The command left without an answer; `None` if no command was waiting.
        command: Option<String>,
    },
    /// No answer came in time. The connection stays usable; a late answer is discarded.
    #[error("timed out waiting for qmp {command}")]
    Timeout {
        /// The command (or `greeting`, or the job waited for).
        command: String,
    },
    /// QEMU sent something that is not QMP: a bad greeting, invalid JSON, a line too long.
    #[error("qmp protocol error: {0}")]
    Protocol(String),
}

fn closed_message(command: Option<&str>) -> String {
    match command {
        Some(command) => format!("qmp monitor closed before {command} was answered"),
        None => "qmp monitor closed".to_owned(),
    }
}

/// A connected QMP monitor. Clones share one connection, which stays open as long as a clone
/// (or a call in progress) exists, or until QEMU closes it.
#[derive(Clone)]
pub struct Qmp {
    inner: Arc<Inner>,
}

impl fmt::Debug for Qmp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qmp").field("path", &self.inner.path).field("closed", &self.is_closed()).finish()
    }
}

struct Inner {
    path: PathBuf,
    version: QemuVersion,
    /// Lines for the writer task. Bounded: a QEMU that stops reading stalls callers, not memory.
    outgoing: mpsc::Sender<Outgoing>,
    /// The id of the next command; ids are unique for the life of the connection.
    next_id: AtomicU64,
    /// Shared with the reader and writer tasks.
    shared: Arc<Shared>,
}

impl Drop for Inner {
    /// The last handle is gone: nobody can send or wait any more, so end both tasks, which
    /// closes the socket (QEMU's monitor then accepts a new client).
    fn drop(&mut self) {
        self.shared.close(CloseReason::Dropped);
    }
}

/// State the caller side and the two tasks share.
struct Shared {
    /// Callers waiting for a reply, by id. A std lock: it is never held across an await.
    pending: Mutex<Pending>,
    /// Cancelled exactly when the connection ends; `Qmp::closed` waits on it.
    closed: CancellationToken,
}

struct Pending {
    /// Why the connection ended, once it has; no caller is registered after that.
    ended: Option<CloseReason>,
    waiters: HashMap<u64, oneshot::Sender<Reply>>,
}

#[derive(Debug, Clone)]
enum CloseReason {
    Eof,
    Io(String),
    Protocol(String),
    Dropped,
}

enum Reply {
    Return(Value),
    Error { class: String, desc: String },
}

struct Outgoing {
    line: Vec<u8>,
    /// Sent as SCM_RIGHTS together with the first bytes of `line` (for `getfd`).
    fd: Option<OwnedFd>,
}

impl Shared {
    /// Ends the connection once; the first reason wins. Waiting callers are woken (their
    /// reply senders are dropped) and learn the reason from `ended`.
    fn close(&self, reason: CloseReason) {
        let waiters = {
            let mut pending = self.pending.lock().unwrap();
            if pending.ended.is_some() {
                return;
            }
            match &reason {
                CloseReason::Eof => debug!("qmp connection closed by qemu"),
                CloseReason::Dropped => debug!("qmp connection closed by the client"),
                CloseReason::Io(error) => warn!(%error, "qmp connection failed"),
                CloseReason::Protocol(error) => warn!(%error, "qmp connection dropped"),
            }
            pending.ended = Some(reason);
            std::mem::take(&mut pending.waiters)
        };
        drop(waiters);
        self.closed.cancel();
    }

    fn ended(&self) -> Option<CloseReason> {
        self.pending.lock().unwrap().ended.clone()
    }

    fn deliver(&self, id: u64, reply: Reply) {
        let waiter = self.pending.lock().unwrap().waiters.remove(&id);
        match waiter {
            // The caller may have just given up; then the reply is dropped with the send.
            Some(waiter) => drop(waiter.send(reply)),
            None => debug!(id, "qmp reply for a caller that gave up, discarded"),
        }
    }
}

/// Removes a caller's entry when its call ends in any way, so a late reply finds no one.
struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.pending.lock().unwrap().waiters.remove(&self.id);
    }
}

impl Qmp {
    /// Connects to the monitor at `path`, reads the greeting and leaves capabilities
    /// negotiation with `qmp_capabilities`, all within `timeout`.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<(Qmp, Events), QmpError> {
        let deadline = Instant::now() + timeout;
        let stream = match tokio::time::timeout_at(deadline, UnixStream::connect(path)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(source)) => return Err(QmpError::Io { path: path.to_owned(), source }),
            Err(_) => return Err(QmpError::Timeout { command: "connect".to_owned() }),
        };
        let (read_half, write_half) = stream.into_split();
        let mut reader = BufReader::new(read_half);
        let mut line = Vec::new();
        let greeting =
            match tokio::time::timeout_at(deadline, read_line(&mut reader, &mut line, MAX_LINE)).await {
                // QEMU talks to one client per monitor; a second one gets no greeting at all.
                Err(_) => return Err(QmpError::Timeout { command: "greeting".to_owned() }),
                Ok(Err(source)) => return Err(QmpError::Io { path: path.to_owned(), source }),
                Ok(Ok(LineRead::Eof)) => return Err(QmpError::Closed { command: None }),
                Ok(Ok(LineRead::TooLong)) => return Err(too_long()),
                Ok(Ok(LineRead::Line)) => parse_greeting(&line)?,
            };

        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending { ended: None, waiters: HashMap::new() }),
            closed: CancellationToken::new(),
        });
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (outgoing_tx, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
        tokio::spawn(read_loop(reader, line, events_tx, shared.clone()));
        tokio::spawn(write_loop(write_half, outgoing_rx, shared.clone()));
        let qmp = Qmp {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                version: greeting,
                outgoing: outgoing_tx,
                next_id: AtomicU64::new(1),
                shared,
            }),
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        qmp.execute_timeout("qmp_capabilities", None, remaining).await?;
        Ok((qmp, events_rx))
    }

    /// The monitor socket this handle is connected to.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The QEMU version from the greeting.
    pub fn version(&self) -> QemuVersion {
        self.inner.version
    }

    /// Runs `command` with `arguments` (a JSON object) and returns its `return` member,
    /// waiting at most `DEFAULT_COMMAND_TIMEOUT`.
    pub async fn execute(&self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        self.execute_timeout(command, arguments, DEFAULT_COMMAND_TIMEOUT).await
    }

    /// `execute` with its own timeout. After a timeout the connection stays usable: the
    /// command may still run in QEMU, and its reply is discarded when it comes.
    pub async fn execute_timeout(
        &self,
        command: &str,
        arguments: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        self.call(command, arguments, None, timeout).await
    }

    /// Hands `fd` to QEMU under `fdname` (`getfd` with SCM_RIGHTS), e.g. for `migrate` to
    /// `fd:NAME`. QEMU gets its own duplicate; the caller keeps `fd`. Release it in QEMU
    /// with `closefd` if no command consumes it.
    pub async fn send_fd(&self, fdname: &str, fd: BorrowedFd<'_>) -> Result<(), QmpError> {
        // A duplicate, so the writer task can own it past a caller that gives up.
        let fd = fd
            .try_clone_to_owned()
            .map_err(|source| QmpError::Io { path: self.inner.path.clone(), source })?;
        let arguments = json!({ "fdname": fdname });
        self.call("getfd", Some(arguments), Some(fd), DEFAULT_COMMAND_TIMEOUT).await?;
        Ok(())
    }

    /// Waits until job `job_id` (snapshot-save/-load/-delete, blockdev-create) has concluded,
    /// then dismisses it. A job that concluded with an error gives a `Command` error with
    /// QMP's `error` string; it is dismissed all the same.
    pub async fn wait_job(&self, job_id: &str, timeout: Duration) -> Result<(), QmpError> {
        // Polling rather than JOB_STATUS_CHANGE: the events belong to the driver's consumer,
        // and these jobs take 10–30 ms here, so a few polls with backoff cost nothing.
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let jobs =
                self.execute_timeout("query-jobs", None, remaining).await.map_err(|error| match error {
                    QmpError::Timeout { .. } => job_timeout(job_id),
                    other => other,
                })?;
            let job = jobs
                .as_array()
                .and_then(|jobs| jobs.iter().find(|job| job["id"].as_str() == Some(job_id)))
                .ok_or_else(|| QmpError::Command {
                    command: format!("query-jobs (job {job_id})"),
                    class: "GenericError".to_owned(),
                    desc: format!("job {job_id} not found"),
                })?;
            if job["status"].as_str() == Some("concluded") {
                let job_type = job["type"].as_str().unwrap_or("job").to_owned();
                let job_error = job["error"].as_str().map(str::to_owned);
                // A moment even past the deadline: a concluded job left undismissed would
                // block the next job with the same id.
                let dismiss_timeout = remaining.max(Duration::from_secs(1));
                self.execute_timeout("job-dismiss", Some(json!({ "id": job_id })), dismiss_timeout).await?;
                return match job_error {
                    None => Ok(()),
                    Some(desc) => Err(QmpError::Command {
                        command: format!("{job_type} job {job_id}"),
                        class: "GenericError".to_owned(),
                        desc,
                    }),
                };
            }
            if Instant::now() + pause >= deadline {
                return Err(job_timeout(job_id));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Resolves once the connection has ended (QEMU closed it or died, or a protocol error).
    /// Any number of callers may wait.
    pub async fn closed(&self) {
        self.inner.shared.closed.cancelled().await
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.is_cancelled()
    }

    async fn call(
        &self,
        command: &str,
        arguments: Option<Value>,
        fd: Option<OwnedFd>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let shared = &*self.inner.shared;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = json!({ "execute": command, "id": id });
        if let Some(arguments) = arguments {
            message["arguments"] = arguments;
        }
        // Compact JSON escapes newlines inside strings, so this is exactly one line.
        let mut line = serde_json::to_vec(&message).expect("a json value always serializes");
        line.push(b'\n');

        let (reply_tx, reply_rx) = oneshot::channel();
        let _registration = {
            let mut pending = shared.pending.lock().unwrap();
            if let Some(reason) = &pending.ended {
                return Err(closed_error(reason, command));
            }
            pending.waiters.insert(id, reply_tx);
            Registration { shared, id }
        };
        let exchange = async {
            self.inner.outgoing.send(Outgoing { line, fd }).await.ok()?;
            reply_rx.await.ok()
        };
        match tokio::time::timeout(timeout, exchange).await {
            Err(_) => Err(QmpError::Timeout { command: command.to_owned() }),
            Ok(Some(Reply::Return(value))) => Ok(value),
            Ok(Some(Reply::Error { class, desc })) => {
                Err(QmpError::Command { command: command.to_owned(), class, desc })
            }
            Ok(None) => {
                let reason = shared.ended().unwrap_or(CloseReason::Eof);
                Err(closed_error(&reason, command))
            }
        }
    }
}

fn closed_error(reason: &CloseReason, command: &str) -> QmpError {
    match reason {
        CloseReason::Protocol(error) => {
            QmpError::Protocol(format!("{error}; connection closed before {command} was answered"))
        }
        CloseReason::Eof | CloseReason::Io(_) | CloseReason::Dropped => {
            QmpError::Closed { command: Some(command.to_owned()) }
        }
    }
}

fn job_timeout(job_id: &str) -> QmpError {
    QmpError::Timeout { command: format!("job {job_id} to conclude") }
}

fn too_long() -> QmpError {
    QmpError::Protocol(format!("qemu sent a line longer than {MAX_LINE} bytes"))
}

enum LineRead {
    Line,
    Eof,
    TooLong,
}

/// Reads one line into `line` (without the newline), refusing to hold more than `max` bytes.
/// A partial line at EOF (QEMU killed mid-write) counts as EOF.
async fn read_line(
    reader: &mut BufReader<OwnedReadHalf>,
    line: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    line.clear();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(LineRead::Eof);
        }
        let (chunk, consumed, complete) = match available.iter().position(|&byte| byte == b'\n') {
            Some(newline) => (&available[..newline], newline + 1, true),
            None => (available, available.len(), false),
        };
        if line.len() + chunk.len() > max {
            return Ok(LineRead::TooLong);
        }
        line.extend_from_slice(chunk);
        reader.consume(consumed);
        if complete {
            return Ok(LineRead::Line);
        }
    }
}

fn parse_greeting(line: &[u8]) -> Result<QemuVersion, QmpError> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| QmpError::Protocol(format!("greeting is not json: {error}")))?;
    let qemu = &value["QMP"]["version"]["qemu"];
    let number = |field: &str| qemu[field].as_u64();
    match (number("major"), number("minor"), number("micro")) {
        (Some(major), Some(minor), Some(micro)) => Ok(QemuVersion { major, minor, micro }),
        _ => Err(QmpError::Protocol(format!("expected a qmp greeting, got {}", excerpt(line)))),
    }
}

/// The start of a line, for error messages.
fn excerpt(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(200)]);
    if line.len() > 200 { format!("{text}...") } else { text.into_owned() }
}

enum Message {
    Reply(u64, Reply),
    Event(QmpEvent),
}

fn parse_message(line: &[u8]) -> Result<Message, String> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| format!("invalid json from qemu ({error}): {}", excerpt(line)))?;
    if let Some(name) = value["event"].as_str() {
        let timestamp = &value["timestamp"];
        let seconds = timestamp["seconds"].as_u64().unwrap_or(0);
        let microseconds = timestamp["microseconds"].as_u64().unwrap_or(0);
        return Ok(Message::Event(QmpEvent {
            name: name.to_owned(),
            data: value.get("data").cloned().unwrap_or(Value::Null),
            timestamp_us: seconds.saturating_mul(1_000_000).saturating_add(microseconds),
        }));
    }
    let id = value["id"].as_u64();
    let reply = if let Some(result) = value.get("return") {
        Reply::Return(result.clone())
    } else if let Some(error) = value.get("error") {
        Reply::Error {
            class: error["class"].as_str().unwrap_or("GenericError").to_owned(),
            desc: error["desc"].as_str().unwrap_or_default().to_owned(),
        }
    } else {
        return Err(format!("neither reply nor event from qemu: {}", excerpt(line)));
    };
    match id {
        Some(id) => Ok(Message::Reply(id, reply)),
        // QEMU answers without an id only when it could not parse the command, which our
        // serializer rules out; a reply nobody can claim is a desync.
        None => Err(format!("reply without an id from qemu: {}", excerpt(line))),
    }
}

async fn read_loop(
    mut reader: BufReader<OwnedReadHalf>,
    mut line: Vec<u8>,
    events: mpsc::Sender<QmpEvent>,
    shared: Arc<Shared>,
) {
    let reason = loop {
        let read = tokio::select! {
            _ = shared.closed.cancelled() => return,
            read = read_line(&mut reader, &mut line, MAX_LINE) => read,
        };
        match read {
            Ok(LineRead::Line) => {}
            Ok(LineRead::Eof) => break CloseReason::Eof,
            Ok(LineRead::TooLong) => {
                break CloseReason::Protocol(format!("qemu sent a line longer than {MAX_LINE} bytes"));
            }
            // A QEMU that exits (after `quit`, or killed) resets a monitor it inherited as a
            // listening socket instead of closing it: the end of the stream, not a failure.
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => break CloseReason::Eof,
            Err(error) => break CloseReason::Io(error.to_string()),
        }
        match parse_message(&line) {
            Ok(Message::Reply(id, reply)) => shared.deliver(id, reply),
            Ok(Message::Event(event)) => {
                // Awaiting room rather than dropping: a lost SHUTDOWN would turn a clean
                // poweroff into a "crash". A receiver that is gone wants no events.
                tokio::select! {
                    _ = shared.closed.cancelled() => return,
                    sent = events.send(event) => if sent.is_err() { debug!("qmp event discarded, nobody listens") },
                }
            }
            Err(error) => break CloseReason::Protocol(error),
        }
        // One huge reply must not pin its buffer for the life of the connection.
        if line.capacity() > 1024 * 1024 {
            line = Vec::new();
        }
    };
    shared.close(reason);
    // `events` drops here, after every event read before the end was queued.
}

async fn write_loop(mut writer: OwnedWriteHalf, mut outgoing: mpsc::Receiver<Outgoing>, shared: Arc<Shared>) {
    loop {
        let message = tokio::select! {
            _ = shared.closed.cancelled() => return,
            message = outgoing.recv() => match message {
                Some(message) => message,
                None => return,
            },
        };
        let written = tokio::select! {
            _ = shared.closed.cancelled() => return,
            written = write_message(&mut writer, &message) => written,
        };
        if let Err(error) = written {
            shared.close(CloseReason::Io(error.to_string()));
            return;
        }
    }
}

async fn write_message(writer: &mut OwnedWriteHalf, message: &Outgoing) -> io::Result<()> {
    let mut rest = &message.line[..];
    if let Some(fd) = &message.fd {
        let socket: &UnixStream = writer.as_ref();
        let sent = loop {
            socket.writable().await?;
            match socket.try_io(Interest::WRITABLE, || send_with_fd(socket.as_fd(), rest, fd.as_fd())) {
                Ok(sent) => break sent,
                // Readiness was stale; try_io has cleared it, so wait again.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
        };
        // The fd went with the first byte; the rest of the line is plain data.
        rest = &rest[sent..];
    }
    writer.write_all(rest).await
}

fn send_with_fd(socket: BorrowedFd<'_>, bytes: &[u8], fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("no room for SCM_RIGHTS"));
    }
    let sent = rustix::net::sendmsg(socket, &[IoSlice::new(bytes)], &mut control, SendFlags::NOSIGNAL)?;
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::qemu::guest_image::read_tick_counter;
    use crate::driver::qemu::guest_image::testing::TestQemu;
    use tokio::io::AsyncWriteExt;
    use tokio::net::UnixListener;

    const WAIT: Duration = Duration::from_secs(10);

    /// Takes events until one named `name` arrives.
    async fn next_event(events: &mut Events, name: &str) -> QmpEvent {
        let wanted = async {
            loop {
                let event = events.recv().await.unwrap_or_else(|| panic!("events ended before {name}"));
                if event.name == name {
                    return event;
                }
            }
        };
        tokio::time::timeout(WAIT, wanted).await.unwrap_or_else(|_| panic!("no {name} event"))
    }

    async fn status(qmp: &Qmp) -> String {
        let status = qmp.execute("query-status", None).await.unwrap();
        status["status"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn connect_reads_greeting_and_status_is_prelaunch() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        assert_eq!((qmp.version().major, qmp.version().minor), (7, 2));
        assert_eq!(status(&qmp).await, "prelaunch");
    }

    #[tokio::test]
    async fn cont_runs_the_guest_and_stop_freezes_it() {
        let qemu = TestQemu::start().await;
        let (qmp, mut events) = qemu.connect().await;
        assert_eq!(read_tick_counter(&qmp).await.unwrap(), 0);
        qmp.execute("cont", None).await.unwrap();
        next_event(&mut events, "RESUME").await;
        let first = qemu.wait_for_ticks(&qmp, 1).await;
        let later = qemu.wait_for_ticks(&qmp, first + 2).await;
        assert!(later > first);

        qmp.execute("stop", None).await.unwrap();
        next_event(&mut events, "STOP").await;
        assert_eq!(status(&qmp).await, "paused");
        let frozen = read_tick_counter(&qmp).await.unwrap();
        // About 5 ticks would pass in this time if the guest still ran.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(read_tick_counter(&qmp).await.unwrap(), frozen);
    }

    #[tokio::test]
    async fn unknown_command_is_command_not_found() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        let error = qmp.execute("no-such-command", None).await.unwrap_err();
        let QmpError::Command { command, class, desc } = &error else { panic!("{error:?}") };
        assert_eq!((command.as_str(), class.as_str()), ("no-such-command", "CommandNotFound"));
        assert!(desc.contains("no-such-command"), "{desc}");
        assert!(error.to_string().contains("no-such-command"), "{error}");
        // The monitor is still fine.
        assert_eq!(status(&qmp).await, "prelaunch");
    }

    #[tokio::test]
    async fn concurrent_callers_each_get_their_own_reply() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        let mut tasks = Vec::new();
        for task in 0..8u32 {
            let qmp = qmp.clone();
            tasks.push(tokio::spawn(async move {
                // HMP's xp echoes the address, so each reply names the call it answers.
                let address = 0x600 + 4 * task;
                for _ in 0..25 {
                    let arguments = json!({ "command-line": format!("xp /1wx {address:#x}") });
                    let reply = qmp.execute("human-monitor-command", Some(arguments)).await.unwrap();
                    let text = reply.as_str().unwrap();
                    assert!(text.starts_with(&format!("{address:016x}:")), "task {task} got {text:?}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }

    #[tokio::test]
    async fn system_powerdown_of_a_booted_guest_gives_guest_shutdown() {
        let qemu = TestQemu::start().await;
        let (qmp, mut events) = qemu.connect().await;
        qmp.execute("cont", None).await.unwrap();
        // The counter moves only once the boot sector has armed the power button.
        qemu.wait_for_ticks(&qmp, 1).await;
        assert!(qemu.serial().contains("BOOT"));
        qmp.execute("system_powerdown", None).await.unwrap();
        next_event(&mut events, "POWERDOWN").await;
        let shutdown = next_event(&mut events, "SHUTDOWN").await;
        assert_eq!(shutdown.data["guest"], true, "{shutdown:?}");
        assert!(shutdown.timestamp_us > 1_600_000_000_000_000, "{shutdown:?}");
        // -no-shutdown: QEMU stays, in status shutdown.
        next_event(&mut events, "STOP").await;
        assert_eq!(status(&qmp).await, "shutdown");
        assert!(qemu.serial().contains("PWROFF"));
    }

    #[tokio::test]
    async fn quit_ends_events_and_resolves_closed() {
        let qemu = TestQemu::start().await;
        let (qmp, mut events) = qemu.connect().await;
        let waiter = tokio::spawn({
            let qmp = qmp.clone();
            async move { qmp.closed().await }
        });
        qmp.execute("quit", None).await.unwrap();
        let shutdown = next_event(&mut events, "SHUTDOWN").await;
        assert_eq!(shutdown.data["guest"], false);
        let end = tokio::time::timeout(WAIT, events.recv()).await.unwrap();
        assert_eq!(end, None);
        tokio::time::timeout(WAIT, qmp.closed()).await.unwrap();
        tokio::time::timeout(WAIT, waiter).await.unwrap().unwrap();
        assert!(qmp.is_closed());
        let error = qmp.execute("query-status", None).await.unwrap_err();
        assert!(matches!(&error, QmpError::Closed { command: Some(c) } if c == "query-status"), "{error:?}");
        assert!(error.to_string().contains("query-status"), "{error}");
    }

    #[tokio::test]
    async fn sigkill_of_qemu_resolves_closed_within_a_second() {
        let qemu = TestQemu::start().await;
        let (qmp, mut events) = qemu.connect().await;
        qemu.kill();
        tokio::time::timeout(Duration::from_secs(1), qmp.closed()).await.expect("closed() within 1 s");
        // EOF without a SHUTDOWN event: what a crash looks like.
        assert_eq!(tokio::time::timeout(WAIT, events.recv()).await.unwrap(), None);
        let error = qmp.execute("query-status", None).await.unwrap_err();
        assert!(matches!(error, QmpError::Closed { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn getfd_passes_a_real_fd_and_closefd_releases_it() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        let (_reader, writer) = std::io::pipe().unwrap();
        qmp.send_fd("testfd", writer.as_fd()).await.unwrap();
        qmp.execute("closefd", Some(json!({ "fdname": "testfd" }))).await.unwrap();
        // QEMU really held it: a second closefd finds nothing.
        let error = qmp.execute("closefd", Some(json!({ "fdname": "testfd" }))).await.unwrap_err();
        assert!(matches!(&error, QmpError::Command { class, .. } if class == "GenericError"), "{error:?}");
    }

    #[tokio::test]
    async fn wait_job_reports_the_job_error_and_dismisses_it() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        // No snapshot-capable disk (the boot disk is read-only raw), so the job fails.
        let arguments = json!({ "job-id": "d1", "tag": "nosuch", "devices": ["boot"] });
        qmp.execute("snapshot-delete", Some(arguments)).await.unwrap();
        let error = qmp.wait_job("d1", WAIT).await.unwrap_err();
        let QmpError::Command { command, desc, .. } = &error else { panic!("{error:?}") };
        assert_eq!(command, "snapshot-delete job d1");
        assert!(desc.contains("does not support snapshots"), "{desc}");
        assert_eq!(qmp.execute("query-jobs", None).await.unwrap(), json!([]));
        let error = qmp.wait_job("d1", WAIT).await.unwrap_err();
        assert!(matches!(error, QmpError::Command { .. }), "{error:?}");
    }

    #[tokio::test]
    async fn wait_job_returns_when_blockdev_create_concludes() {
        let qemu = TestQemu::start().await;
        let (qmp, _events) = qemu.connect().await;
        let image = qemu.dir.path().join("state.qcow2");
        let options = json!({ "driver": "file", "filename": image, "size": 0 });
        qmp.execute("blockdev-create", Some(json!({ "job-id": "c1", "options": options }))).await.unwrap();
        qmp.wait_job("c1", WAIT).await.unwrap();
        assert!(image.exists());
        assert_eq!(qmp.execute("query-jobs", None).await.unwrap(), json!([]));
    }

    // Below: a fake QEMU on a socket, for what a real one will not do on demand.

    const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#;

    /// A fake monitor: greets, answers qmp_capabilities, then hands the stream to `script`.
    async fn fake_qemu<F, Fut>(script: F) -> (Qmp, Events, tokio::task::JoinHandle<()>, tempfile::TempDir)
    where
        F: FnOnce(BufReader<UnixStream>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut stream = BufReader::new(stream);
            stream.get_mut().write_all(format!("{GREETING}\n").as_bytes()).await.unwrap();
            let request = read_request(&mut stream).await;
            assert_eq!(request["execute"], "qmp_capabilities");
            reply(&mut stream, &request, json!({})).await;
            script(stream).await;
        });
        let (qmp, events) = Qmp::connect(&path, WAIT).await.unwrap();
        (qmp, events, server, dir)
    }

    async fn read_request(stream: &mut BufReader<UnixStream>) -> Value {
        let mut line = String::new();
        stream.read_line(&mut line).await.unwrap();
        serde_json::from_str(&line).unwrap()
    }

    async fn reply(stream: &mut BufReader<UnixStream>, request: &Value, result: Value) {
        let line = json!({ "return": result, "id": request["id"] }).to_string() + "\n";
        stream.get_mut().write_all(line.as_bytes()).await.unwrap();
    }

    #[tokio::test]
    async fn a_line_over_16_mib_is_refused_and_closes_the_connection() {
        let (qmp, mut events, server, _dir) = fake_qemu(|mut stream| async move {
            let _request = read_request(&mut stream).await;
            let huge = vec![b' '; MAX_LINE + 1];
            // The client stops reading and closes; the rest of the write may fail.
            let _ = stream.get_mut().write_all(&huge).await;
        })
        .await;
        let error = qmp.execute("query-status", None).await.unwrap_err();
        let QmpError::Protocol(message) = &error else { panic!("{error:?}") };
        assert!(message.contains("longer than") && message.contains("query-status"), "{message}");
        tokio::time::timeout(WAIT, qmp.closed()).await.unwrap();
        assert_eq!(events.recv().await, None);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_timed_out_command_leaves_the_monitor_usable() {
        let (qmp, _events, server, _dir) = fake_qemu(|mut stream| async move {
            let slow = read_request(&mut stream).await;
            let next = read_request(&mut stream).await;
            // The late reply first: the client must discard it by id.
            reply(&mut stream, &slow, json!("late")).await;
            reply(&mut stream, &next, json!("on time")).await;
            let _eof = read_request_or_eof(&mut stream).await;
        })
        .await;
        let error = qmp.execute_timeout("slow-command", None, Duration::from_millis(50)).await.unwrap_err();
        assert!(matches!(&error, QmpError::Timeout { command } if command == "slow-command"), "{error:?}");
        assert!(error.to_string().contains("slow-command"), "{error}");
        assert_eq!(qmp.execute("next-command", None).await.unwrap(), json!("on time"));
        assert!(!qmp.is_closed());
        drop(qmp);
        server.await.unwrap();
    }

    async fn read_request_or_eof(stream: &mut BufReader<UnixStream>) -> Option<Value> {
        let mut line = String::new();
        match stream.read_line(&mut line).await.unwrap() {
            0 => None,
            _ => Some(serde_json::from_str(&line).unwrap()),
        }
    }

    #[tokio::test]
    async fn a_slow_event_consumer_loses_no_events() {
        const N: u64 = 3 * EVENT_QUEUE as u64;
        let (qmp, mut events, server, _dir) = fake_qemu(|mut stream| async move {
            for n in 0..N {
                let event = json!({ "event": "TICK", "data": { "n": n }, "timestamp": { "seconds": 1, "microseconds": n } });
                stream.get_mut().write_all(format!("{event}\n").as_bytes()).await.unwrap();
            }
        })
        .await;
        // Nothing read until the server has written everything it can; the reader is blocked.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for n in 0..N {
            let event = tokio::time::timeout(WAIT, events.recv()).await.unwrap().unwrap();
            assert_eq!(
                (event.name.as_str(), &event.data["n"], event.timestamp_us),
                ("TICK", &json!(n), 1_000_000 + n)
            );
        }
        assert_eq!(tokio::time::timeout(WAIT, events.recv()).await.unwrap(), None);
        tokio::time::timeout(WAIT, qmp.closed()).await.unwrap();
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_bad_greeting_is_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.write_all(b"{\"hello\": 1}\n").await.unwrap();
        });
        let error = Qmp::connect(&path, WAIT).await.unwrap_err();
        assert!(matches!(&error, QmpError::Protocol(message) if message.contains("hello")), "{error:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn connect_to_a_missing_socket_is_io_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.sock");
        let error = Qmp::connect(&path, WAIT).await.unwrap_err();
        assert!(
            matches!(&error, QmpError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound),
            "{error:?}"
        );
        assert!(error.to_string().contains("absent.sock"), "{error}");
    }
}
