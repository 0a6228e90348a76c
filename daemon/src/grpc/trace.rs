//! `RpcTraceLayer`: one tracing span per RPC, with its method and peer, and a closing event with
//! its duration and gRPC status. A tower layer, so every service (ours, health, reflection) gets it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, UdsConnectInfo};
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
            peer = %peer(&request),
            duration_us = tracing::field::Empty,
            grpc_status = tracing::field::Empty,
        );
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
                tracing::debug!("rpc done");
                result
            }
            .instrument(span),
        )
    }
}

/// Who is calling: the TCP address, or the unix peer's pid and uid.
fn peer<B>(request: &http::Request<B>) -> String {
    if let Some(info) = request.extensions().get::<TcpConnectInfo>() {
        return info.remote_addr().map_or_else(|| "tcp".to_owned(), |address| address.to_string());
    }
    if let Some(info) = request.extensions().get::<UdsConnectInfo>() {
        return match &info.peer_cred {
            Some(cred) => format!("unix pid={} uid={}", cred.pid().unwrap_or(-1), cred.uid()),
            None => "unix".to_owned(),
        };
    }
    "unknown".to_owned()
}
