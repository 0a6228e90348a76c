//! rvirtd: rvirt's domain management daemon.
//!
//! A tour, in the order a request flows: `connections` accepts it within the connection limits;
//! `grpc` validates and converts a request (its `budget` bounds the bytes held for clients, the
//! `pool` cuts large pages off the async workers); `domains` runs it as a job on the domain (job
//! lock, decision, driver, record, commit); `lifecycle` holds the transition table and `filter`
//! the ListAllDomains flags and `paging` its page tokens; `registry` holds every domain behind
//! one lock and hands out consistent views, and its `history` the recent changes a watch
//! follows, each with the lifecycle events `events` derives for it; `store` keeps them on disk and `counters` the ids and
//! generations; `driver` is the hypervisor (`driver::test`, in memory); `xml` parses and formats
//! libvirt domain XML, after `xml_limits` checked its shape; `domain` is the domain value itself; `error` names every failure; `config`
//! says where the daemon lives and `folders` keeps its folders and socket private; `systemd` tells
//! the service manager how it is doing.

pub mod access;
pub mod api;
pub mod caller;
pub mod config;
pub mod connections;
pub mod counters;
pub mod domain;
pub mod domains;
pub mod driver;
pub mod error;
pub mod events;
pub mod filter;
pub mod folders;
pub mod grpc;
pub mod history;
pub mod lifecycle;
pub mod native;
pub mod paging;
pub mod policy;
pub mod pool;
pub mod registry;
pub mod store;
pub mod systemd;
pub mod tls;
pub mod xml;
pub mod xml_limits;

use anyhow::Context;
use config::Config;
use domains::Domains;
use driver::Driver;
use rvirt_proto::v1::domain_service_server::DomainServiceServer;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

/// A socket the daemon serves on, bound by the caller (so a test can bind port 0 first).
#[derive(Debug)]
pub enum Listener {
    /// A unix socket: read-write, or read-only.
    Unix(UnixListener, caller::Access),
    /// Plain TCP (loopback only).
    Tcp(TcpListener),
    /// TCP over TLS.
    Tls(TcpListener, Arc<tls::TlsServer>),
    /// A unix socket speaking libvirt's own protocol (`native`): read-write, or read-only.
    Native(UnixListener, caller::Access),
}

/// Loads the state folder, re-attaches to the guests still running, then serves the API on
/// every listener until `shutdown` is cancelled, applying the events `driver` sends to the other
/// end of `events` (see `driver::events`); then stops accepting, waits (at most
/// `config.shutdown_timeout`) for in-flight calls and jobs, and writes the exact counters.
/// `authority` decides who may do what (its policy can be replaced while serving).
pub async fn serve(
    listeners: Vec<Listener>,
    config: Config,
    (driver, authority): (Arc<dyn Driver>, Arc<access::Authority>),
    events: driver::EventPump,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    folders::ensure_private_dir(&config.state_dir, "state folder")?;
    folders::ensure_private_dir(&config.runtime_dir, "runtime folder")?;
    let store = store::Store::open(&config.state_dir, &config.runtime_dir)?;
    let loaded = store.load(&driver.parse_defaults()).context("loading the state folder")?;
    tracing::info!(
        domains = loaded.domains.len(), generation = loaded.generation, next_id = loaded.next_id,
        host_rebooted = loaded.rebooted, state_dir = %config.state_dir.display(), "state loaded"
    );
    let registry =
        registry::Registry::new(loaded.domains, loaded.generation, history::Retention::of(&config.watch))
            .context("indexing domains")?;
    let counters = counters::Counters::new(loaded.generation, loaded.next_id);
    authority.follow(registry.history().subscribe());
    let domains = Domains::new(registry, driver, store, counters, authority);
    domains.reattach().await;
    let pump = tokio::spawn(pump_events(domains.clone(), events, shutdown.clone()));
    if loaded.rebooted {
        domains.autostart().await;
    }

    let limits = &config.limits;
    let pool =
        pool::WorkPool::new(limits.work_threads(), limits.work_queue).context("starting the work threads")?;
    let budget = grpc::budget::ByteBudget::answers(limits.answer_budget_bytes);
    let requests = grpc::budget::ByteBudget::requests(limits.request_budget_bytes);
    let gate = connections::Gate::new(limits.clone());
    // Requests are small but for XML documents: decoding more than the largest document accepted
    // would only hold memory for a request that is refused anyway.
    let max_request_bytes = config.max_message_bytes.min(xml::MAX_XML_BYTES + (64 << 10));
    let service = DomainServiceServer::new(grpc::Service::new(
        domains.clone(),
        config.max_message_bytes,
        pool.clone(),
        budget.clone(),
        (config.watch.clone(), config.limits.stall_timeout_ms),
        shutdown.clone(),
    ))
    .max_decoding_message_size(max_request_bytes)
    .max_encoding_message_size(config.max_message_bytes);
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<DomainServiceServer<grpc::Service>>().await;
    // Reflection in both versions: grpcurl and current tools speak v1; grpcio-reflection's own
    // client, older grpcurl and several GUIs still speak only v1alpha.
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(rvirt_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder().build_v1().context("building the reflection service")?;
    let reflection_v1alpha =
        reflection_builder().build_v1alpha().context("building the v1alpha reflection service")?;
    let native = native::Native::new(
        domains.clone(),
        (requests.clone(), budget.clone(), pool.clone()),
        limits,
        shutdown.clone(),
    );
    let mut servers = tokio::task::JoinSet::new();
    for listener in listeners {
        if let Listener::Native(listener, access) = listener {
            let (native, gate) = (native.clone(), gate.clone());
            servers.spawn(async move {
                native::serve(native, listener, access, gate).await;
                Ok(())
            });
            continue;
        }
        // Large windows and frames: a listing of 100,000 domains is ~10 MiB, which the default
        // 64 KiB windows would cut into flow-control round trips.
        // Bounds: streams per connection (over it, a stream is refused at once: UNAVAILABLE),
        // pings that find dead peers, a deadline for every call.
        let router = tonic::transport::Server::builder()
            .initial_stream_window_size(16 << 20)
            .initial_connection_window_size(32 << 20)
            .max_frame_size(1 << 20)
            .max_concurrent_streams(Some(limits.max_client_requests))
            .http2_keepalive_interval(Some(Duration::from_secs(limits.keepalive_interval_secs)))
            .http2_keepalive_timeout(Some(Duration::from_secs(limits.keepalive_timeout_secs)))
            .timeout(Duration::from_secs(limits.request_timeout_secs))
            .layer(connections::ActivityLayer::new(requests.clone()))
            .layer(grpc::trace::RpcTraceLayer)
            .layer(grpc::guard::ReadOnlyLayer)
            .add_service(service.clone())
            .add_service(health_service.clone())
            .add_service(reflection.clone())
            .add_service(reflection_v1alpha.clone());
        let stop = shutdown.clone().cancelled_owned();
        let (gate, shutdown) = (gate.clone(), shutdown.clone());
        let expect = (connections::HTTP2_PREFACE_BYTES, connections::Idle::Close);
        match listener {
            Listener::Unix(listener, access) => {
                tracing::info!(socket = ?listener.local_addr().ok(), ?access, "listening");
                let incoming =
                    connections::accept(connections::UnixAccept { listener, access }, gate, shutdown, expect);
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            }
            Listener::Tcp(listener) => {
                tracing::info!(address = ?listener.local_addr().ok(), "listening (plain TCP)");
                let incoming = connections::accept(connections::TcpAccept(listener), gate, shutdown, expect);
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            }
            Listener::Tls(listener, tls) => {
                tracing::info!(address = ?listener.local_addr().ok(), "listening (TLS)");
                let incoming =
                    connections::accept(connections::TlsAccept { listener, tls }, gate, shutdown, expect);
                servers.spawn(router.serve_with_incoming_shutdown(incoming, stop));
            }
            Listener::Native(..) => unreachable!("served above"),
        }
    }
    systemd::notify("READY=1");

    let finished = async {
        while let Some(result) = servers.join_next().await {
            result.context("server task panicked")?.context("serving")?;
        }
        anyhow::Ok(())
    };
    let deadline = async {
        shutdown.cancelled().await;
        systemd::notify("STOPPING=1");
        tracing::info!(timeout = ?config.shutdown_timeout, "stopping: no new calls, waiting for in-flight ones");
        tokio::time::sleep(config.shutdown_timeout).await;
    };
    tokio::select! {
        result = finished => result?,
        () = deadline => tracing::warn!("in-flight calls did not finish in time; stopping anyway"),
    }
    pump.abort();
    domains.wait_for_jobs(config.shutdown_timeout).await;
    domains.flush().context("writing the counters")?;
    tracing::info!(generation = domains.view().generation, "stopped");
    Ok(())
}

/// The one event path: every change a driver reports is applied as a job of its own. Events
/// about one domain are applied in the order they came; those about different domains do not
/// wait for each other (a domain busy with a long job delays only its own).
async fn pump_events(domains: Arc<Domains>, mut events: driver::EventPump, shutdown: CancellationToken) {
    let mut last: std::collections::HashMap<uuid::Uuid, tokio::task::JoinHandle<()>> = Default::default();
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            () = shutdown.cancelled() => None,
        };
        let Some(event) = event else { return };
        let previous = last.remove(&event.uuid);
        let domains = domains.clone();
        let uuid = event.uuid;
        last.insert(
            uuid,
            tokio::spawn(async move {
                if let Some(previous) = previous {
                    let _ = previous.await;
                }
                match domains.apply_event(event.clone()).await {
                    Ok(committed) => {
                        tracing::debug!(?event, generation = committed.generation, "event applied")
                    }
                    Err(error) => tracing::warn!(?event, %error, "event not applied"),
                }
            }),
        );
        if last.len() > 1024 {
            last.retain(|_, task| !task.is_finished());
        }
    }
}
