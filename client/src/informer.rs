//! `Informer`: a local map of the daemon's domains that always equals the daemon's state at some
//! generation, kept current by WatchDomainEvents (Kubernetes' informer, for rvirt).
//!
//! It starts with the watch's initial state (one call: the current domains, then every change
//! after them), hands the application each change as it applies it, resumes from its last
//! generation after a dropped connection or a RESOURCE_EXHAUSTED cut-off, and lists again only
//! when the daemon's history no longer reaches back (OUT_OF_RANGE) or the daemon restarted (a new
//! incarnation, FAILED_PRECONDITION).

use crate::connection::Connection;
use crate::error::{Error, ErrorKind, Result};
use crate::flags::ListFlags;
use crate::types::{self, DomainSummary};
use rvirt_proto::event::EventType;
use rvirt_proto::v1::{self, domain_event::Kind};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;
use tonic::Code;
use uuid::Uuid;

/// One event of a watch stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened to the watcher's view.
    pub kind: EventKind,
    /// The generation of the change (of the snapshot, for the initial state).
    pub generation: u64,
    /// The domain after the change; before it, for `Removed`; `None` for bookmarks and markers.
    pub domain: Option<DomainSummary>,
    /// libvirt's lifecycle events for the change, in order: (event type, detail number).
    pub lifecycle: Vec<(EventType, i32)>,
    /// `rvirt_proto::event::changed` bits: which fields of the record changed.
    pub changed: u32,
    /// `Removed` because the domain no longer exists (not merely no longer matching).
    pub gone: bool,
}

/// `Event::kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The domain came into view.
    Added,
    /// The domain changed and is still in view.
    Modified,
    /// The domain left the view.
    Removed,
    /// Nothing in view changed up to `generation`.
    Bookmark,
    /// The initial state is complete as of `generation`.
    InitialStateDone,
}

pub(crate) fn event(message: v1::DomainEvent) -> Result<Event> {
    let kind = match Kind::try_from(message.kind) {
        Ok(Kind::Added) => EventKind::Added,
        Ok(Kind::Modified) => EventKind::Modified,
        Ok(Kind::Removed) => EventKind::Removed,
        Ok(Kind::Bookmark) => EventKind::Bookmark,
        Ok(Kind::InitialStateDone) => EventKind::InitialStateDone,
        _ => return Err(malformed("an event of unknown kind")),
    };
    let domain = message.domain.map(types::summary).transpose()?;
    if domain.is_none() && matches!(kind, EventKind::Added | EventKind::Modified | EventKind::Removed) {
        return Err(malformed("an event without its domain"));
    }
    let lifecycle = message
        .lifecycle
        .iter()
        .map(|e| {
            EventType::from_i32(e.r#type)
                .map(|t| (t, e.detail))
                .ok_or_else(|| malformed("unknown event type"))
        })
        .collect::<Result<_>>()?;
    Ok(Event {
        kind,
        generation: message.generation,
        domain,
        lifecycle,
        changed: message.changed,
        gone: message.gone,
    })
}

fn malformed(what: &str) -> Error {
    Error::local(ErrorKind::Internal, format!("malformed watch event from the daemon: {what}"))
}

/// What `Informer::next` did to the map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// The map was (re)built from the daemon's current state, as of `generation`: the first
    /// time, and after a relist (the daemon's history did not reach back, or it restarted).
    Synced {
        /// The generation of the state.
        generation: u64,
        /// A relist replaced an earlier map.
        relisted: bool,
    },
    /// One change, applied.
    Changed(Event),
    /// Nothing in view changed up to this generation.
    Bookmark(u64),
}

/// A local copy of the domains `flags` selects, following the daemon. See the module comment.
#[derive(Debug)]
pub struct Informer {
    conn: Connection,
    flags: ListFlags,
    domains: BTreeMap<Uuid, DomainSummary>,
    generation: u64,
    incarnation: u64,
    /// The map follows the daemon (else the next stream starts with the initial state).
    synced: bool,
    ever_synced: bool,
    stream: Option<tonic::Streaming<v1::WatchDomainEventsResponse>>,
    /// Events received, not yet applied.
    pending: VecDeque<v1::DomainEvent>,
    /// The initial state being received (the map it replaces stays in effect until it is done).
    building: Option<BTreeMap<Uuid, DomainSummary>>,
    bookmark_interval_ms: u32,
    backoff: Duration,
    resumes: u64,
    relists: u64,
}

impl Connection {
    /// Starts an informer over the domains `flags` selects (ListAllDomains' flags); the first
    /// `Informer::next` returns `Update::Synced` with the initial state.
    pub fn watch_all(&self, flags: ListFlags) -> Informer {
        Informer {
            conn: self.clone(),
            flags,
            domains: BTreeMap::new(),
            generation: 0,
            incarnation: 0,
            synced: false,
            ever_synced: false,
            stream: None,
            pending: VecDeque::new(),
            building: None,
            bookmark_interval_ms: 0,
            backoff: Duration::ZERO,
            resumes: 0,
            relists: 0,
        }
    }

    /// WatchDomainEvents as it comes.
    pub async fn watch_domain_events(
        &self,
        request: v1::WatchDomainEventsRequest,
    ) -> Result<tonic::Streaming<v1::WatchDomainEventsResponse>> {
        Ok(self.rpc().watch_domain_events(request).await?.into_inner())
    }
}

/// Errors after which the watch resumes (the same request would never succeed after the others).
fn retriable(code: Code) -> bool {
    !matches!(
        code,
        Code::InvalidArgument
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::Unimplemented
            | Code::NotFound
    )
}

const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl Informer {
    /// Ask the daemon for bookmarks this often (at least 100 ms) instead of its default.
    pub fn with_bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval_ms = interval.as_millis().clamp(100, u128::from(u32::MAX)) as u32;
        self
    }

    /// The domains in view, as of `generation()`.
    pub fn domains(&self) -> &BTreeMap<Uuid, DomainSummary> {
        &self.domains
    }

    /// The generation the map is at.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The daemon incarnation `generation()` belongs to.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Times the watch was resumed from its last generation.
    pub fn resumes(&self) -> u64 {
        self.resumes
    }

    /// Times the map was rebuilt from a new initial state after the first.
    pub fn relists(&self) -> u64 {
        self.relists
    }

    /// Drops the stream, as a lost connection would: the next call resumes from the last
    /// generation (for tests and for applications that want to reconnect themselves).
    pub fn disconnect(&mut self) {
        self.stream = None;
        self.pending.clear();
        self.building = None;
    }

    /// Applies the next change and says what it was. Waits for one; reconnects (with a backoff
    /// up to 2 s) through dropped connections and daemon restarts, for ever. Fails only on what
    /// retrying cannot fix (invalid flags, permission denied) or a malformed answer.
    pub async fn next(&mut self) -> Result<Update> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                if let Some(update) = self.apply(event(message)?) {
                    return Ok(update);
                }
                continue;
            }
            if self.stream.is_none()
                && let Err(error) = self.open().await
            {
                self.failed(error).await?;
                continue;
            }
            let stream = self.stream.as_mut().expect("opened above");
            match stream.message().await {
                Ok(Some(message)) => {
                    self.backoff = Duration::ZERO;
                    if self.building.is_some() {
                        self.incarnation = message.incarnation;
                    } else if message.incarnation != self.incarnation {
                        return Err(malformed("a resumed watch from another incarnation"));
                    }
                    self.pending.extend(message.events);
                }
                Ok(None) => {
                    self.failed(Error::local(ErrorKind::Connection, "the watch stream ended")).await?
                }
                Err(status) => self.failed(status.into()).await?,
            }
        }
    }

    async fn open(&mut self) -> Result<()> {
        let resume = self.synced && self.building.is_none();
        let request = v1::WatchDomainEventsRequest {
            flags: self.flags.bits(),
            incarnation: self.incarnation,
            after_generation: self.generation,
            send_initial_state: !resume,
            bookmark_interval_ms: self.bookmark_interval_ms,
        };
        let stream = self.conn.watch_domain_events(request).await?;
        if resume {
            self.resumes += 1;
        } else {
            self.building = Some(BTreeMap::new());
        }
        self.stream = Some(stream);
        Ok(())
    }

    /// After a failed open or a broken stream: resume or relist, after a backoff, or give up.
    async fn failed(&mut self, error: Error) -> Result<()> {
        self.disconnect();
        if matches!(error.code, Code::OutOfRange | Code::FailedPrecondition) {
            // The history does not reach back, or the daemon restarted: list again.
            self.synced = false;
            return Ok(());
        }
        if error.kind != ErrorKind::Connection && !retriable(error.code) {
            return Err(error);
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).clamp(Duration::from_millis(20), MAX_BACKOFF);
        Ok(())
    }

    fn apply(&mut self, event: Event) -> Option<Update> {
        if let Some(building) = &mut self.building {
            match event.kind {
                EventKind::Added => {
                    let domain = event.domain.expect("checked in event()");
                    building.insert(domain.domain.uuid, domain);
                }
                EventKind::InitialStateDone => {
                    self.domains = self.building.take().expect("building");
                    self.generation = event.generation;
                    self.synced = true;
                    let relisted = std::mem::replace(&mut self.ever_synced, true);
                    if relisted {
                        self.relists += 1;
                    }
                    return Some(Update::Synced { generation: event.generation, relisted });
                }
                // Changes come only after the initial state; bookmarks may not.
                _ => {}
            }
            return None;
        }
        self.generation = event.generation;
        match event.kind {
            EventKind::Added | EventKind::Modified => {
                let domain = event.domain.clone().expect("checked in event()");
                self.domains.insert(domain.domain.uuid, domain);
            }
            EventKind::Removed => {
                let uuid = event.domain.as_ref().expect("checked in event()").domain.uuid;
                self.domains.remove(&uuid);
            }
            EventKind::Bookmark => return Some(Update::Bookmark(event.generation)),
            EventKind::InitialStateDone => return None,
        }
        Some(Update::Changed(event))
    }
}
