//! WatchDomainEvents: a stream that follows the registry's `History` from one generation.
//!
//! The stream is pulled, never pushed: the next message is cut from the history only when
//! HTTP/2 asks for it, so a watcher holds no queue of its own. What a slow or stalled client can
//! make the daemon hold is what HTTP/2 flow control lets hyper take for it (the client's window,
//! at most hyper's per-stream send buffer of 400 KiB, plus one message of at most
//! `MAX_MESSAGE_BYTES`), however many changes pass meanwhile. A watcher that falls out of the
//! history, or that HTTP/2 could not send to for `stall_timeout` while changes waited, ends with
//! RESOURCE_EXHAUSTED when it reads again and resumes from the last generation it received; a
//! client whose socket takes nothing that long loses its connection (`connections`). Nothing a
//! watcher holds grows, and the registry lock, the other watchers and the mutations never wait
//! for it.

use super::convert;
use crate::access::Grants;
use crate::domains::Domains;
use crate::error::Error;
use crate::filter::ListFilter;
use crate::history::{Entry, Gap, History};
use crate::registry::View;
use rvirt_proto::v1::{self, domain_event::Kind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio_stream::Stream;
use tokio_stream::wrappers::WatchStream;
use uuid::Uuid;

/// A message is cut once its events pass this size (or `MAX_EVENTS`).
const MAX_MESSAGE_BYTES: usize = 64 << 10;
/// ...or this many events.
const MAX_EVENTS: usize = 512;
/// History entries examined per read (a filtered watcher may skip most of them).
const READ_BATCH: usize = 1024;

/// The open watch streams, counted against `[watch] max_watchers`.
#[derive(Debug)]
pub struct Watchers {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One open watch stream's place in the count.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Watchers {
    /// At most `max` streams open at once.
    pub fn new(max: usize) -> Self {
        Watchers { open: Arc::new(AtomicUsize::new(0)), max }
    }

    fn admit(&self) -> Result<Slot, Error> {
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.open.clone());
        if open >= self.max {
            return Err(Error::Busy(format!("{} watch streams are open, the daemon's maximum", self.max)));
        }
        Ok(slot)
    }

    /// How many are open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// Where a watch starts.
pub enum Start {
    /// After this generation of the history.
    After(u64),
    /// With the current state of this view (every matching domain), then after its generation.
    Initial(Arc<View>),
}

/// The timings one stream works with.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Send a bookmark after this long without an event.
    pub bookmark_interval: Duration,
    /// End a watcher that has not asked for more this long while changes waited.
    pub stall_timeout: Duration,
}

/// An open WatchDomainEvents stream.
pub struct WatchEvents {
    domains: Arc<Domains>,
    filter: ListFilter,
    /// Every generation up to here has been delivered or was not this watcher's.
    position: u64,
    /// The initial state still to send: the view and the last UUID sent.
    initial: Option<(Arc<View>, Option<Uuid>)>,
    changes: WatchStream<u64>,
    bookmark: Pin<Box<tokio::time::Sleep>>,
    timing: Timing,
    /// When HTTP/2 last asked for more.
    last_poll: Instant,
    /// The caller's rights under the policy the stream started with; a replaced policy ends the
    /// stream (FAILED_PRECONDITION: list again).
    grants: Grants,
    /// The daemon is stopping: the stream ends (UNAVAILABLE), so the client resumes later instead
    /// of holding the shutdown up.
    stopping: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    done: bool,
    _slot: Slot,
}

impl WatchEvents {
    /// Opens a stream for the caller of `grants` following the history of `domains` from `start` for the domains `filter`
    /// matches. Refuses a generation the history does not reach (see `Gap`).
    pub fn open(
        watchers: &Watchers,
        domains: Arc<Domains>,
        filter: ListFilter,
        start: Start,
        timing: Timing,
        grants: Grants,
        stopping: tokio_util::sync::CancellationToken,
    ) -> Result<Self, Error> {
        let slot = watchers.admit()?;
        let own = domains.history();
        let changes = WatchStream::from_changes(own.subscribe());
        let (position, initial) = match start {
            Start::After(generation) => {
                own.check(generation).map_err(|gap| refusal(gap, generation))?;
                (generation, None)
            }
            Start::Initial(view) => (view.generation, Some((view, None))),
        };
        tracing::debug!(caller = %grants.caller(), position, flags = filter.flags(), "watch opened");
        Ok(WatchEvents {
            domains,
            filter,
            position,
            initial,
            changes,
            bookmark: Box::pin(tokio::time::sleep(timing.bookmark_interval)),
            timing,
            last_poll: Instant::now(),
            grants,
            stopping: Box::pin(stopping.cancelled_owned()),
            done: false,
            _slot: slot,
        })
    }

    fn history(&self) -> &History {
        self.domains.history()
    }

    fn message(
        &mut self,
        events: Vec<v1::DomainEvent>,
    ) -> Poll<Option<Result<v1::WatchDomainEventsResponse, tonic::Status>>> {
        let deadline = tokio::time::Instant::now() + self.timing.bookmark_interval;
        self.bookmark.as_mut().reset(deadline);
        let incarnation = self.history().incarnation();
        Poll::Ready(Some(Ok(v1::WatchDomainEventsResponse { incarnation, events })))
    }

    fn end(&mut self, error: Error) -> Poll<Option<Result<v1::WatchDomainEventsResponse, tonic::Status>>> {
        self.done = true;
        tracing::info!(caller = %self.grants.caller(), position = self.position, %error, "watch ended");
        Poll::Ready(Some(Err(error.into())))
    }

    /// Refuses to go on once the access policy the stream decides with was replaced.
    fn same_policy(&self) -> Result<(), Error> {
        if self.domains.authority().epoch() == self.grants.epoch() {
            return Ok(());
        }
        Err(Error::PolicyChanged(format!(
            "the access policy changed after generation {}; list again",
            self.position
        )))
    }

    /// The next part of the initial state, or its end marker.
    fn initial_part(&mut self) -> Option<Vec<v1::DomainEvent>> {
        let (view, after) = self.initial.as_mut()?;
        let mut events = Vec::new();
        let mut bytes = 0;
        let (filter, grants) = (&self.filter, &self.grants);
        for domain in view.iter_after(*after).filter(|d| filter.matches(d) && grants.sees(d)) {
            let event = v1::DomainEvent {
                kind: Kind::Added as i32,
                generation: view.generation,
                domain: Some(convert::summary(domain)),
                ..Default::default()
            };
            bytes += prost::Message::encoded_len(&event);
            *after = Some(domain.uuid());
            events.push(event);
            if events.len() == MAX_EVENTS || bytes >= MAX_MESSAGE_BYTES {
                return Some(events);
            }
        }
        let generation = view.generation;
        self.initial = None;
        events.push(v1::DomainEvent {
            kind: Kind::InitialStateDone as i32,
            generation,
            ..Default::default()
        });
        Some(events)
    }

    /// The events of the history after `position` this watcher sees, up to one message; `Err`
    /// when the history no longer reaches back to it.
    fn live_part(&mut self) -> Result<Vec<v1::DomainEvent>, Error> {
        let mut events = Vec::new();
        let mut bytes = 0;
        loop {
            let entries = self.history().read(self.position, READ_BATCH).map_err(|gap| match gap {
                Gap::TooOld { oldest } => Error::Busy(format!(
                    "the watcher fell behind: the daemon's history no longer holds generation {} (it starts after {oldest}); list again",
                    self.position + 1
                )),
                Gap::Future { head } => Error::driver(format!("watch position {} is past the head {head}", self.position)),
            })?;
            if entries.is_empty() {
                return Ok(events);
            }
            for entry in entries {
                // Checked before each entry is judged, so none is judged by a replaced policy.
                self.same_policy()?;
                self.position = entry.generation;
                if let Some(event) = event(&entry, &self.filter, &self.grants) {
                    bytes += prost::Message::encoded_len(&event);
                    events.push(event);
                    if events.len() == MAX_EVENTS || bytes >= MAX_MESSAGE_BYTES {
                        return Ok(events);
                    }
                }
            }
        }
    }
}

/// What one history entry is to a watcher with `filter` and `grants`: nothing when the domain
/// was not in its view before and is not after. A domain the caller may not see is in no view.
fn event(entry: &Entry, filter: &ListFilter, grants: &Grants) -> Option<v1::DomainEvent> {
    let before = entry.before.as_ref().filter(|d| filter.matches(d) && grants.sees(d));
    let after = entry.after.as_ref().filter(|d| filter.matches(d) && grants.sees(d));
    let (kind, domain) = match (before, after) {
        (None, None) => return None,
        (None, Some(after)) => (Kind::Added, after),
        (Some(_), Some(after)) => (Kind::Modified, after),
        (Some(before), None) => (Kind::Removed, before),
    };
    Some(v1::DomainEvent {
        kind: kind as i32,
        generation: entry.generation,
        domain: Some(convert::summary(domain)),
        lifecycle: entry
            .lifecycle
            .iter()
            .map(|(r#type, detail)| v1::LifecycleEvent { r#type, detail })
            .collect(),
        changed: entry.changed,
        gone: kind == Kind::Removed && entry.after.is_none(),
    })
}

/// The status for a watch that cannot start after `generation`.
pub fn refusal(gap: Gap, generation: u64) -> Error {
    match gap {
        Gap::TooOld { oldest } => Error::HistoryTooOld(format!(
            "generation {generation} is older than the daemon's history (it resumes after {oldest} at the earliest); list again"
        )),
        Gap::Future { head } => {
            Error::InvalidArg(format!("generation {generation} has not happened yet (the latest is {head})"))
        }
    }
}

impl Stream for WatchEvents {
    type Item = Result<v1::WatchDomainEventsResponse, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.stopping.as_mut().poll(cx).is_ready() {
            let message = format!("the daemon is stopping; resume from generation {}", self.position);
            self.done = true;
            return Poll::Ready(Some(Err(tonic::Status::unavailable(message))));
        }
        // A change that waited `stall_timeout` for a poll that never came: HTTP/2 could not send
        // this client anything for that long.
        let (now, last_poll) = (Instant::now(), std::mem::replace(&mut self.last_poll, Instant::now()));
        if let Some(committed) = self.history().committed_at(self.position + 1)
            && last_poll < committed
            && now.duration_since(committed) > self.timing.stall_timeout
        {
            let message = format!(
                "the watcher read nothing for {:.1} s while changes waited; resume from generation {}",
                now.duration_since(last_poll).as_secs_f64(),
                self.position
            );
            return self.end(Error::Busy(message));
        }
        if let Err(error) = self.same_policy() {
            return self.end(error);
        }
        if let Some(events) = self.initial_part() {
            return self.message(events);
        }
        loop {
            match self.live_part() {
                Err(error) => return self.end(error),
                Ok(events) if !events.is_empty() => return self.message(events),
                Ok(_) => {}
            }
            // Caught up: sleep until the next generation, or until a bookmark is due.
            match Pin::new(&mut self.changes).poll_next(cx) {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            }
            if self.bookmark.as_mut().poll(cx).is_ready() {
                let generation = self.position;
                let bookmark =
                    v1::DomainEvent { kind: Kind::Bookmark as i32, generation, ..Default::default() };
                return self.message(vec![bookmark]);
            }
            return Poll::Pending;
        }
    }
}
