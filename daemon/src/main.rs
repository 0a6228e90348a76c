//! The rvirtd binary: flags and config file, tracing, signals, sockets; everything else is
//! `rvirtd::serve`.

use anyhow::Context;
use clap::Parser;
use rvirtd::Listener;
use rvirtd::caller::Access;
use rvirtd::config::{Config, LogFormat, RawConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, reload};

// mimalloc: the daemon makes and drops many small objects per listing and per change; measured
// with glibc's malloc, building a 100,000-domain answer took twice as long.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// rvirt's domain management daemon. Serves the rvirt.v1 gRPC API (plus gRPC health checking and
/// server reflection) on a read-write and a read-only unix socket, on loopback TCP and on TCP over
/// TLS when asked, with the in-memory `test` driver or QEMU.
///
/// Flags override the config file, which overrides the defaults. SIGTERM or SIGINT stop it
/// cleanly; SIGHUP re-reads the config file's log_filter, the access policy and the TLS files.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Config file (TOML; keys as the long flags with '_' for '-')
    /// [default: /etc/rvirt/rvirtd.toml as root, else $XDG_CONFIG_HOME/rvirt/rvirtd.toml, if present]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder for persistent state: domain configs, metadata, counters
    /// [default: /var/lib/rvirt as root, else $XDG_STATE_HOME/rvirt]
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Folder for runtime status of active domains; its emptying means the host rebooted
    /// [default: /run/rvirt as root, else $XDG_RUNTIME_DIR/rvirt, else /tmp/rvirt-$UID]
    #[arg(long, value_name = "DIR")]
    runtime_dir: Option<PathBuf>,
    /// Unix socket to serve on
    /// [default: /run/rvirt/rvirt-sock as root, else $XDG_RUNTIME_DIR/rvirt/rvirt-sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Read-only unix socket: reads only, for whoever may open it [default: the socket's path with "-ro"]
    #[arg(long, value_name = "PATH")]
    socket_ro: Option<PathBuf>,
    /// Unix socket for libvirt's own protocol (virsh -c 'test+unix:///default?socket=PATH')
    /// [default: libvirt-sock beside the socket; its read-only twin gets "-ro"]
    #[arg(long, value_name = "PATH")]
    native_socket: Option<PathBuf>,
    /// Also serve plain TCP on this address, e.g. 127.0.0.1:16510 (loopback only; for remote
    /// clients use the config file's [tls] table)
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Access policy file (TOML, see README): who may do what to which domains [default: none,
    /// the read-write socket grants everything]
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Log lines as text or as one JSON object each [default: text]
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, RUST_LOG syntax (e.g. "info", "rvirtd=debug") [default: $RUST_LOG, else info]
    #[arg(long, value_name = "FILTER")]
    log_filter: Option<String>,
    /// The hypervisor driver: test (in-memory domains) or qemu (real guests) [default: test]
    #[arg(long, value_name = "DRIVER")]
    driver: Option<rvirtd::config::DriverKind>,
    /// Seconds a stopping daemon waits for in-flight calls [default: 10]
    #[arg(long, value_name = "SECONDS")]
    shutdown_timeout_secs: Option<u64>,
}

fn main() -> anyhow::Result<()> {
    restrict_umask();
    // Before any thread: it reads and clears the environment.
    let passed = rvirtd::systemd::passed_sockets();
    // More workers than cores: a worker busy encoding a large listing must not keep a short call
    // (a mutation, a lookup) waiting for a free one; the kernel shares the cores between them.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads((cores * 2).max(4))
        .enable_all()
        .build()?
        .block_on(run(passed))
}

async fn run(mut passed: Vec<rvirtd::systemd::Passed>) -> anyhow::Result<()> {
    let args = Args::parse();
    let config_path = args.config.clone().or_else(RawConfig::default_path);
    let file = match &config_path {
        Some(path) => RawConfig::read(path)?,
        None => RawConfig::default(),
    };
    let flags = RawConfig {
        state_dir: args.state_dir,
        runtime_dir: args.runtime_dir,
        socket: args.socket,
        socket_ro: args.socket_ro,
        native_socket: args.native_socket,
        listen: args.listen,
        policy: args.policy,
        log_filter: args.log_filter.or_else(|| std::env::var("RUST_LOG").ok().filter(|f| !f.is_empty())),
        log_format: args.log_format,
        shutdown_timeout_secs: args.shutdown_timeout_secs,
        driver: args.driver,
        ..RawConfig::default()
    };
    let config = Config::resolve(file.overlay(flags))?;
    let filter = init_tracing(&config)?;
    raise_descriptor_limit();
    if let Some(path) = &config_path {
        tracing::info!(config = %path.display(), "read config file");
    }

    rvirtd::folders::ensure_private_dir(&config.runtime_dir, "runtime folder")?;
    // Sockets systemd passed (rvirtd.socket, rvirtd-ro.socket, ...) are used as they are; the
    // others are bound here, and removed at exit.
    let mut take = |name: &str| passed.iter().position(|p| p.name == name).map(|i| passed.remove(i).fd);
    let mut bound = Vec::new();
    let mut unix = |fd: Option<std::os::fd::OwnedFd>, name: &str, path: &Path, mode: u32| {
        if let Some(fd) = fd {
            tracing::info!(socket = name, "using the socket systemd passed");
            return passed_unix(fd, name);
        }
        bound.push(path.to_owned());
        bind_unix(path, (mode, config.unix_sock_group))
    };
    let rw = unix(take("rvirt-sock"), "rvirt-sock", &config.socket, config.unix_sock_rw_perms)?;
    let ro = unix(take("rvirt-sock-ro"), "rvirt-sock-ro", &config.socket_ro, config.unix_sock_ro_perms)?;
    let native_rw =
        unix(take("libvirt-sock"), "libvirt-sock", &config.native_socket, config.unix_sock_rw_perms)?;
    let native_ro = unix(
        take("libvirt-sock-ro"),
        "libvirt-sock-ro",
        &config.native_socket_ro,
        config.unix_sock_ro_perms,
    )?;
    let mut listeners = vec![
        Listener::Unix(rw, Access::ReadWrite),
        Listener::Unix(ro, Access::ReadOnly),
        Listener::Native(native_rw, Access::ReadWrite),
        Listener::Native(native_ro, Access::ReadOnly),
    ];
    if let Some(fd) = take("rvirt-tcp") {
        let listener = passed_tcp(fd, "rvirt-tcp")?;
        let address = listener.local_addr()?;
        if !address.ip().is_loopback() {
            anyhow::bail!(
                "refusing the plain TCP socket systemd passed on {address}: plain TCP is for loopback only"
            );
        }
        listeners.push(Listener::Tcp(listener));
    } else if let Some(address) = config.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        listeners.push(Listener::Tcp(listener));
    }
    let tls = config.tls.clone().map(rvirtd::tls::TlsServer::new);
    match (&config.tls, &tls, take("rvirt-tls")) {
        (Some(files), Some(tls), Some(fd)) => {
            let listener = passed_tcp(fd, "rvirt-tls")?;
            let address = listener.local_addr()?;
            // As Config::resolve checks tls.listen: without client certificates, loopback only.
            if files.client_ca.is_none() && !address.ip().is_loopback() {
                anyhow::bail!(
                    "refusing the TLS socket systemd passed on {address} without client certificates: \
                     anyone who can reach it could manage domains; set tls.client_ca (mutual TLS)"
                );
            }
            listeners.push(Listener::Tls(listener, tls.clone()));
        }
        (Some(files), Some(tls), None) => {
            let listener = tokio::net::TcpListener::bind(files.listen)
                .await
                .with_context(|| format!("cannot listen on {} (TLS)", files.listen))?;
            listeners.push(Listener::Tls(listener, tls.clone()));
        }
        (_, _, Some(_)) => anyhow::bail!(
            "systemd passed a TLS socket (rvirt-tls) but the config has no [tls] table with the certificates"
        ),
        _ => {}
    }
    for unknown in passed {
        tracing::warn!(
            name = unknown.name,
            "ignoring a socket systemd passed under a name rvirtd does not know"
        );
    }
    let authority = rvirtd::access::Authority::load(config.policy.as_deref());

    let shutdown = CancellationToken::new();
    let reloadable =
        Reloadable { filter, config_path, policy: config.policy.clone(), authority: authority.clone(), tls };
    tokio::spawn(handle_signals(shutdown.clone(), reloadable));
    let sockets = bound;
    let (sink, pump) = rvirtd::driver::events();
    let driver = rvirtd::driver::open(&config, sink)?;
    let result = rvirtd::serve(listeners, config, (driver, authority), pump, shutdown).await;
    for socket in sockets {
        let _ = std::fs::remove_file(&socket);
    }
    if let Err(error) = &result {
        tracing::error!("{error:#}");
    }
    result
}

type FilterHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

fn init_tracing(config: &Config) -> anyhow::Result<FilterHandle> {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = reload::Layer::new(EnvFilter::try_new(&config.log_filter)?);
    let registry = tracing_subscriber::registry().with(filter);
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match config.log_format {
        // Colour only for a terminal: a file, a pipe or journald gets plain text.
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_ansi(colour)).init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().with_ansi(false).with_current_span(true))
            .init(),
    }
    Ok(handle)
}

/// Binds a unix socket, with its configured mode and group: a stale socket left by a daemon
/// that died is replaced; a live one, or anything that is not a socket, is refused.
fn bind_unix(path: &Path, (mode, group): (u32, Option<u32>)) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        rvirtd::folders::ensure_private_dir(dir, "socket folder")?;
    }
    if rvirtd::folders::check_socket_path(path)? == rvirtd::folders::SocketPath::Stale {
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    // The umask (0077, see restrict_umask) keeps the socket closed until its mode is set.
    let listener = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("cannot listen on {}", path.display()))?;
    rvirtd::folders::set_socket_access(path, mode, group)?;
    Ok(listener)
}

/// A unix listening socket systemd passed under `name`.
fn passed_unix(fd: std::os::fd::OwnedFd, name: &str) -> anyhow::Result<tokio::net::UnixListener> {
    let listener = std::os::unix::net::UnixListener::from(fd);
    listener
        .local_addr()
        .with_context(|| format!("the socket systemd passed as {name} is not a unix socket"))?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::UnixListener::from_std(listener)?)
}

/// A TCP listening socket systemd passed under `name`.
fn passed_tcp(fd: std::os::fd::OwnedFd, name: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::from(fd);
    listener
        .local_addr()
        .with_context(|| format!("the socket systemd passed as {name} is not a TCP socket"))?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(listener)?)
}

/// Raises the soft limit on open descriptors to the hard one (systemd's LimitNOFILE, or the
/// shell's): every connection is a descriptor, and the default soft 1,024 would cap max_clients.
#[allow(unsafe_code)]
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the one struct passed, owned here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 || limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let soft = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    // SAFETY: setrlimit reads the one struct passed.
    match unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } {
        0 => tracing::info!(from = soft, to = limit.rlim_cur, "raised the open-file limit"),
        _ => tracing::warn!(soft, "cannot raise the open-file limit; connections are capped by it"),
    }
}

/// Whatever rvirtd creates starts closed to group and others; modes that should be wider (the
/// socket's `unix_sock_rw_perms`) are set explicitly afterwards. Called first, before any thread.
#[allow(unsafe_code)]
fn restrict_umask() {
    // SAFETY: umask only swaps the process's file-creation mask; no memory is involved.
    unsafe { libc::umask(0o077) };
}

/// What SIGHUP reloads.
struct Reloadable {
    filter: FilterHandle,
    config_path: Option<PathBuf>,
    policy: Option<PathBuf>,
    authority: Arc<rvirtd::access::Authority>,
    tls: Option<Arc<rvirtd::tls::TlsServer>>,
}

/// SIGTERM/SIGINT: stop. SIGHUP: reload what can be reloaded and say so.
async fn handle_signals(shutdown: CancellationToken, reloadable: Reloadable) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM: stopping"); break }
            _ = int.recv() => { tracing::info!("SIGINT: stopping"); break }
            _ = hup.recv() => reloadable.reload(),
        }
    }
    shutdown.cancel();
}

impl Reloadable {
    /// The log filter, the access policy and the TLS files; each one that cannot be used keeps
    /// what was in force, and says why.
    fn reload(&self) {
        reload_filter(&self.filter, self.config_path.as_deref());
        if let Some(path) = &self.policy {
            match self.authority.reload(path) {
                Ok(grants) => {
                    tracing::info!(policy = %path.display(), grants, "SIGHUP: reloaded the access policy")
                }
                Err(error) => tracing::error!("SIGHUP: kept the old access policy: {error}"),
            }
        }
        if let Some(tls) = &self.tls {
            match tls.reload() {
                Ok(()) => {
                    tracing::info!("SIGHUP: reloaded the TLS certificates; open connections keep theirs")
                }
                Err(error) => tracing::error!("SIGHUP: kept the old TLS certificates: {error:#}"),
            }
        }
    }
}

fn reload_filter(filter: &FilterHandle, config_path: Option<&Path>) {
    let Some(path) = config_path else {
        tracing::info!("SIGHUP: no config file, so the log filter stays");
        return;
    };
    let new_filter = RawConfig::read(path).and_then(|raw| {
        let text = raw.log_filter.unwrap_or_else(|| "info".into());
        Ok((EnvFilter::try_new(&text)?, text))
    });
    match new_filter {
        Ok((new, text)) => match filter.reload(new) {
            Ok(()) => {
                tracing::info!(log_filter = %text, "SIGHUP: reloaded the log filter; settings other than it, the policy and the TLS files need a restart")
            }
            Err(error) => tracing::error!(%error, "SIGHUP: cannot swap the log filter"),
        },
        Err(error) => tracing::error!("SIGHUP: kept the old settings: {error:#}"),
    }
}
