//! `ReadOnlyLayer`: a read-only connection's mutating calls are refused before anything is
//! decoded (PERMISSION_DENIED, libvirt's "read only access prevents ..."). Which calls mutate is
//! read from the contract itself: every RPC that answers `DomainChangeResponse`, and only those
//! (proto/rvirt/v1/domain.proto says so), so a new mutating RPC is covered without a list to
//! keep. Jobs check the same again (`access`): this layer only answers early.
//! Only the function's name is libvirt's ("virDomainCreate"): the message is the same as
//! libvirt's remote driver sends for a read-only connection.

use crate::caller::Caller;
use crate::error::Error;
use std::collections::HashSet;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use tonic::body::Body;
use tonic::codegen::http;

/// The answer type of every mutating RPC.
const CHANGE_RESPONSE: &str = ".rvirt.v1.DomainChangeResponse";

/// The HTTP paths ("/rvirt.v1.DomainService/DomainCreate") of the mutating RPCs.
static MUTATING: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let set: prost_types::FileDescriptorSet = prost::Message::decode(rvirt_proto::FILE_DESCRIPTOR_SET)
        .expect("the compiled-in descriptor set decodes");
    let mut paths = HashSet::new();
    for file in &set.file {
        for service in &file.service {
            let full = format!("{}.{}", file.package(), service.name());
            for method in &service.method {
                if method.output_type() == CHANGE_RESPONSE {
                    paths.insert(format!("/{full}/{}", method.name()));
                }
            }
        }
    }
    paths
});

/// Whether the RPC at `path` changes anything.
pub fn is_mutating(path: &str) -> bool {
    MUTATING.contains(path)
}

/// Every mutating RPC's path, sorted (for tests and docs).
pub fn mutating() -> Vec<String> {
    let mut paths: Vec<String> = MUTATING.iter().cloned().collect();
    paths.sort();
    paths
}

/// Wraps a service with `ReadOnly`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyLayer;

/// The guarded service.
#[derive(Debug, Clone)]
pub struct ReadOnly<S> {
    inner: S,
}

impl<S> tower::Layer<S> for ReadOnlyLayer {
    type Service = ReadOnly<S>;

    fn layer(&self, inner: S) -> ReadOnly<S> {
        ReadOnly { inner }
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S> tower::Service<http::Request<Body>> for ReadOnly<S>
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
        let read_only = request.extensions().get::<Arc<Caller>>().is_some_and(|caller| caller.read_only());
        if read_only && is_mutating(request.uri().path()) {
            // libvirt names the function: the RPCs carry libvirt's names without "vir".
            let method = request.uri().path().rsplit('/').next().unwrap_or_default();
            let status: tonic::Status = Error::read_only(format!("vir{method}")).into();
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mutating_rpcs_are_read_from_the_contract() {
        let paths = super::mutating();
        assert!(paths.contains(&"/rvirt.v1.DomainService/DomainCreate".to_owned()), "{paths:?}");
        assert!(paths.contains(&"/rvirt.v1.DomainService/DomainDefineXML".to_owned()), "{paths:?}");
        assert!(!paths.iter().any(|p| p.ends_with("/ListAllDomains") || p.ends_with("/DomainGetState")));
        assert_eq!(paths.len(), 20);
    }
}
