//! `RpcTraceLayer`: one tracing span per RPC, with its method and caller, and a closing event with
//! its duration and gRPC status. A tower layer, so every service (ours, health, reflection) gets it.

use crate::caller::Caller;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tracing::Instrument;

/// Wraps a service with `RpcTrace`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcTraceLayer;

/// The traced service.
#[derive(Debug, Clone)]
pub struct RpcTrace<S> {
    inner: S,
}

impl<S> tower::Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> RpcTrace<S> {
        RpcTrace { inner }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for RpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let span = tracing::info_span!(
            "rpc",
            method = request.uri().path(),
            caller = %caller_of(&request),
            duration_us = tracing::field::Empty,
            grpc_status = tracing::field::Empty,
        );
        let mutating = super::guard::is_mutating(request.uri().path());
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(
            async move {
                let result = response.await;
                // A failed unary call answers "trailers-only": its status is in the headers.
                let status = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("0")
                        .to_owned(),
                    Err(_) => "transport error".to_owned(),
                };
                let span = tracing::Span::current();
                span.record("duration_us", started.elapsed().as_micros() as u64);
                span.record("grpc_status", status.as_str());
                // Every mutating call is logged, with its caller (the span's fields).
                if mutating {
                    tracing::info!("rpc done");
                } else {
                    tracing::debug!("rpc done");
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Who is calling, for the log.
fn caller_of<B>(request: &http::Request<B>) -> String {
    request
        .extensions()
        .get::<Arc<Caller>>()
        .map_or_else(|| "unknown".to_owned(), |caller| caller.to_string())
}
