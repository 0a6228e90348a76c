//! `AnswerBudget`: one daemon-wide budget for the bytes of answers built but not yet taken by
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

/// The daemon-wide budget for unread answers.
#[derive(Debug, Clone)]
pub struct AnswerBudget {
    permits: Arc<Semaphore>,
    total_bytes: usize,
}

/// A reservation of answer bytes; put it in the response's extensions (as `Held`) and it is kept
/// until the body is gone.
#[derive(Debug)]
pub struct AnswerReservation(OwnedSemaphorePermit);

impl AnswerReservation {
    /// Gives back what is reserved beyond `bytes` (the answer turned out smaller than estimated).
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = bytes.div_ceil(UNIT).max(1);
        if let Some(excess) = (self.0.num_permits()).checked_sub(keep).filter(|n| *n > 0) {
            drop(self.0.split(excess));
        }
    }
}

impl AnswerBudget {
    /// A budget of `total_bytes`.
    pub fn new(total_bytes: usize) -> Self {
        let units = (total_bytes / UNIT).clamp(1, u32::MAX as usize);
        AnswerBudget { permits: Arc::new(Semaphore::new(units)), total_bytes }
    }

    /// Reserves `bytes` or refuses at once with `Error::Busy`.
    pub fn reserve(&self, bytes: usize) -> Result<AnswerReservation> {
        let units = bytes.div_ceil(UNIT).clamp(1, u32::MAX as usize) as u32;
        match self.permits.clone().try_acquire_many_owned(units) {
            Ok(permit) => Ok(AnswerReservation(permit)),
            Err(_) => Err(Error::Busy(format!(
                "answers of {} MiB wait for clients to read them (the budget, answer_budget_bytes, is {} MiB); \
                 this answer of {} KiB would exceed it: retry later, or ask for smaller pages",
                (self.total_bytes / UNIT - self.permits.available_permits()) / UNIT,
                self.total_bytes >> 20,
                bytes / UNIT
            ))),
        }
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
        let budget = AnswerBudget::new(4 << 20);
        let first = budget.reserve(3 << 20).unwrap();
        let error = budget.reserve(2 << 20).unwrap_err().to_string();
        assert!(error.contains("answer_budget_bytes") && error.contains("3 MiB"), "{error}");
        let mut small = budget.reserve(512 << 10).unwrap();
        drop(first);
        budget.reserve(3 << 20).unwrap();
        // Shrinking gives the excess back at once.
        small.shrink_to(1);
        assert_eq!(budget.permits.available_permits(), (4 << 10) - 1);
    }
}
