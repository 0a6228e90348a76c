//! rvirtd: rvirt's domain management daemon.
//!
//! A tour, in the order a request flows: `grpc` validates and converts a request; `domains` runs
//! it as a job on the domain (job lock, decision, driver, commit); `lifecycle` holds the
//! transition table and `filter` the ListAllDomains flags; `registry` holds every domain behind
//! one lock and hands out consistent views; `driver` is the hypervisor (`driver::test`, in
//! memory); `xml` parses and formats libvirt domain XML; `domain` is the domain value itself;
//! `error` names every failure; `config` says where the daemon lives.

pub mod config;
pub mod domain;
pub mod domains;
pub mod driver;
pub mod error;
pub mod filter;
pub mod grpc;
pub mod lifecycle;
pub mod registry;
pub mod xml;

use anyhow::Context;
use config::Config;
use domains::Domains;
use rvirt_proto::v1::domain_service_server::DomainServiceServer;
use std::sync::Arc;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

/// A socket the daemon serves on, bound by the caller (so a test can bind port 0 first).
#[derive(Debug)]
pub enum Listener {
    /// A unix socket.
    Unix(UnixListener),
    /// A TCP socket.
    Tcp(TcpListener),
}

/// Serves the API on every listener until `shutdown` is cancelled, then stops accepting, lets
/// in-flight calls finish and returns.
pub async fn serve(
    listeners: Vec<Listener>,
    config: Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let driver: Arc<dyn driver::Driver> = Arc::new(driver::test::TestDriver);
    let registry = registry::Registry::new([], 0, 1).context("loading domains")?;
    let domains = Arc::new(Domains::new(registry, driver));
    let service = DomainServiceServer::new(grpc::Service::new(domains))
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        let router = tonic::transport::Server::builder().add_service(service.clone());
        let stop = shutdown.clone().cancelled_owned();
        match listener {
            Listener::Unix(listener) => {
                tracing::info!(socket = ?listener.local_addr().ok(), "listening");
                let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            }
            Listener::Tcp(listener) => {
                tracing::info!(address = ?listener.local_addr().ok(), "listening");
                let incoming =
                    tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true));
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            }
        }
    }
    while let Some(result) = servers.join_next().await {
        result.context("server task panicked")?.context("serving")?;
    }
    tracing::info!("stopped");
    Ok(())
}
