//! The rvirtd binary: flags, tracing, signals, sockets; everything else is `rvirtd::serve`.

use anyhow::Context;
use clap::Parser;
use rvirtd::{Listener, config::Config};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// rvirt's domain management daemon: serves the rvirt.v1 gRPC API on a unix socket (and on TCP
/// when asked), with the in-memory `test` driver.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Folder for persistent state [default: /var/lib/rvirt as root, else $XDG_STATE_HOME/rvirt]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Unix socket to serve on [default: /run/rvirt/rvirt-sock as root, else $XDG_RUNTIME_DIR/rvirt/rvirt-sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Also serve on this TCP address (e.g. 127.0.0.1:16510); unauthenticated, keep it on loopback
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = Config::defaults();
    if let Some(dir) = args.state_dir {
        config.state_dir = dir;
    }
    if let Some(socket) = args.socket {
        config.socket = socket;
    }
    config.listen = args.listen.or(config.listen);

    let mut listeners = vec![Listener::Unix(bind_unix(&config.socket)?)];
    if let Some(address) = config.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        listeners.push(Listener::Tcp(listener));
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let socket = config.socket.clone();
    let result = rvirtd::serve(listeners, config, shutdown).await;
    let _ = std::fs::remove_file(&socket);
    result
}

/// Binds the unix socket, creating its folder and replacing a stale socket file left by a daemon
/// that died; a socket someone still answers on is an error.
fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create socket folder {}", dir.display()))?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another daemon is already serving on {}; stop it or pick another --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping"),
        _ = int.recv() => tracing::info!("SIGINT: stopping"),
    }
    shutdown.cancel();
}
