//! `ByteBudget`: one daemon-wide budget for the bytes of answers built but not yet taken by
//! their clients. A large answer reserves its size before it is built; the reservation rides in
//! the response body (`connections::ActivityLayer` moves it there with `hold`) and is released
//! only when the body has been sent whole or dropped. HTTP/2 flow control stops the body from being drained faster than the client reads,
//! so clients that ask and never read hold at most the budget, and the next large answer is
//! refused with RESOURCE_EXHAUSTED instead of growing the daemon until it is killed.

use crate::error::{Error, Result};
use http_body::Frame;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::codegen::Bytes;

/// Budget accounting is in KiB: a semaphore counts at most u32::MAX permits at once.
const UNIT: usize = 1024;

/// A daemon-wide budget of bytes held for clients: answers not yet read, or requests being
/// received.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    permits: Arc<Semaphore>,
    total_bytes: usize,
    /// The config key that sets it, and what a refusal advises, for the message.
    key: &'static str,
    advice: &'static str,
}

/// A reservation of answer bytes; put it in the response's extensions (as `Held`) and it is kept
/// until the body is gone.
#[derive(Debug)]
pub struct Reservation(OwnedSemaphorePermit);

impl Reservation {
    /// Makes the reservation exactly `bytes` (the answer turned out another size than estimated):
    /// gives back the excess, or reserves the rest from `budget`, refused with `Error::Busy`.
    pub fn fit_to(&mut self, bytes: usize, budget: &ByteBudget) -> Result<()> {
        let keep = bytes.div_ceil(UNIT).max(1);
        let held = self.0.num_permits();
        if held > keep {
            drop(self.0.split(held - keep));
        } else if keep > held {
            self.merge(budget.reserve((keep - held) * UNIT)?);
        }
        Ok(())
    }
}

impl ByteBudget {
    /// The budget for answers built but not yet read: `limits.answer_budget_bytes`.
    pub fn answers(total_bytes: usize) -> Self {
        Self::new(total_bytes, "answer_budget_bytes", "retry later, or ask for smaller pages")
    }

    /// The budget for requests being received: `limits.request_budget_bytes`.
    pub fn requests(total_bytes: usize) -> Self {
        Self::new(total_bytes, "request_budget_bytes", "retry later")
    }

    fn new(total_bytes: usize, key: &'static str, advice: &'static str) -> Self {
        let units = (total_bytes / UNIT).clamp(1, u32::MAX as usize);
        ByteBudget { permits: Arc::new(Semaphore::new(units)), total_bytes, key, advice }
    }

    /// Reserves `bytes` or refuses at once with `Error::Busy`.
    pub fn reserve(&self, bytes: usize) -> Result<Reservation> {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as usize) as u32;
        match self.permits.clone().try_acquire_many_owned(units) {
            Ok(permit) => Ok(Reservation(permit)),
            Err(_) => Err(Error::Busy(format!(
                "{} MiB are held for clients (the budget, {}, is {} MiB); {} KiB more would exceed it: {}",
                (self.total_bytes / UNIT - self.permits.available_permits()) / UNIT,
                self.key,
                self.total_bytes >> 20,
                bytes / UNIT,
                self.advice
            ))),
        }
    }
}

impl Reservation {
    fn merge(&mut self, other: Reservation) {
        self.0.merge(other.0);
    }
}

/// `body`, a request's, with every byte it delivers counted against `budget` until the body is
/// dropped (once its message is decoded); over the budget, the body fails with
/// RESOURCE_EXHAUSTED, which tonic answers.
pub fn metered(body: tonic::body::Body, budget: ByteBudget) -> tonic::body::Body {
    tonic::body::Body::new(MeteredBody { body, budget, held: None })
}

struct MeteredBody {
    body: tonic::body::Body,
    budget: ByteBudget,
    held: Option<Reservation>,
}

impl http_body::Body for MeteredBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, tonic::Status>>> {
        let frame = std::task::ready!(Pin::new(&mut self.body).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|frame| frame.as_ref().map(Frame::data_ref)) {
            let size = data.map_or(0, Bytes::len);
            if size > 0 {
                match self.budget.reserve(size) {
                    Ok(more) => match &mut self.held {
                        Some(held) => held.merge(more),
                        None => self.held = Some(more),
                    },
                    Err(error) => return Poll::Ready(Some(Err(error.into()))),
                }
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// Something kept in a response's extensions until a layer moves it into the body (extensions
/// must be `Clone`; the shared slot hands the value out once).
#[derive(Debug)]
pub struct Held<T>(Arc<std::sync::Mutex<Option<T>>>);

impl<T> Clone for Held<T> {
    fn clone(&self) -> Self {
        Held(self.0.clone())
    }
}

impl<T> Held<T> {
    /// `value`, to be held.
    pub fn new(value: T) -> Self {
        Held(Arc::new(std::sync::Mutex::new(Some(value))))
    }

    /// The value, once.
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// `body`, keeping `guard` alive until it has been sent whole or dropped.
pub fn hold<G: Send + Unpin + 'static>(body: tonic::body::Body, guard: G) -> tonic::body::Body {
    tonic::body::Body::new(HeldBody { body, _guard: guard })
}

/// A response body that keeps a guard (a budget reservation, an in-flight mark) until it is sent
/// whole or dropped.
struct HeldBody<G> {
    body: tonic::body::Body,
    _guard: G,
}

impl<G: Send + Unpin + 'static> http_body::Body for HeldBody<G> {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_refused_past_the_budget_and_come_back_when_dropped() {
        let budget = ByteBudget::answers(4 << 20);
        let first = budget.reserve(3 << 20).unwrap();
        let error = budget.reserve(2 << 20).unwrap_err().to_string();
        assert!(error.contains("answer_budget_bytes") && error.contains("3 MiB"), "{error}");
        let mut small = budget.reserve(512 << 10).unwrap();
        drop(first);
        budget.reserve(3 << 20).unwrap();
        // Fitting gives the excess back at once, and takes more only within the budget.
        small.fit_to(1, &budget).unwrap();
        assert_eq!(budget.permits.available_permits(), (4 << 10) - 1);
        assert!(small.fit_to(8 << 20, &budget).is_err());
        small.fit_to(2048, &budget).unwrap();
        assert_eq!(budget.permits.available_permits(), (4 << 10) - 2);
    }
}
