//! The integration-test harness: `TestDaemon`, a real rvirtd serving on a real socket in this
//! process, and helpers to find the workspace's built binaries.

pub mod certs;
pub mod crash;
pub mod process;
pub mod qemu;
pub mod race;
pub mod soak;

use rvirtd::driver::{Driver, test::TestDriver};
use rvirtd::{Listener, config::Config, config::DriverKind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An rvirtd serving in this process on a fresh state folder. `stop()` shuts it down and joins it.
pub struct TestDaemon {
    /// A connection to it.
    pub client: rvirt::Connection,
    /// The URI it serves on.
    pub uri: String,
    /// Its TCP URI, when it also serves on TCP.
    pub tcp_uri: Option<String>,
    /// Its read-only socket's URI, when it serves one.
    pub ro_uri: Option<String>,
    /// Its TLS URI (`tls://127.0.0.1:PORT`), when the configuration has a `[tls]` table.
    pub tls_uri: Option<String>,
    /// Its libvirt-protocol sockets (read-write, read-only), when it serves them: for virsh
    /// `-c test+unix:///default?socket=PATH` and python3-libvirt.
    pub native: Option<(PathBuf, PathBuf)>,
    /// Its access policy, to replace as SIGHUP does.
    pub authority: Arc<rvirtd::access::Authority>,
    /// Its TLS certificates, to reload as SIGHUP does.
    pub tls: Option<Arc<rvirtd::tls::TlsServer>>,
    /// The test driver, to report what a hypervisor does on its own (`None` on another driver).
    pub test_driver: Option<Arc<TestDriver>>,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    _reaper: qemu::Reaper,
    dir: TempDir,
}

/// Starts a daemon on a unix socket in a temporary folder.
pub async fn start_daemon() -> TestDaemon {
    start_daemon_with(|_| {}).await
}

/// Starts a daemon on a read-write and a read-only unix socket in a temporary folder, and on
/// 127.0.0.1 too (its URI in `tcp_uri`), with the test configuration changed by `configure`; with
/// a `[tls]` table, on TLS too, on a port the kernel picks (`tls_uri`).
pub async fn start_daemon_with(configure: impl FnOnce(&mut Config)) -> TestDaemon {
    use rvirtd::caller::Access;
    let dir = tempfile::tempdir().expect("temporary folder");
    let mut config = Config::for_test(dir.path());
    configure(&mut config);
    // Bound before the spawn: the client can connect at once, no sleep needed.
    let listener = tokio::net::UnixListener::bind(&config.socket).expect("bind unix socket");
    let read_only = tokio::net::UnixListener::bind(&config.socket_ro).expect("bind read-only socket");
    let native = tokio::net::UnixListener::bind(&config.native_socket).expect("bind libvirt-protocol socket");
    let native_ro = tokio::net::UnixListener::bind(&config.native_socket_ro)
        .expect("bind read-only libvirt-protocol socket");
    let native_paths = (config.native_socket.clone(), config.native_socket_ro.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let tcp_uri = format!("tcp://{}", tcp.local_addr().expect("local address"));
    let uri = format!("unix://{}", config.socket.display());
    let ro_uri = format!("unix://{}?readonly", config.socket_ro.display());
    let mut listeners = vec![
        Listener::Unix(listener, Access::ReadWrite),
        Listener::Unix(read_only, Access::ReadOnly),
        Listener::Tcp(tcp),
        Listener::Native(native, Access::ReadWrite),
        Listener::Native(native_ro, Access::ReadOnly),
    ];
    let (mut tls, mut tls_uri) = (None, None);
    if let Some(files) = config.tls.clone() {
        let server = rvirtd::tls::TlsServer::new(files);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind tls");
        tls_uri = Some(format!("tls://localhost:{}", listener.local_addr().expect("local address").port()));
        listeners.push(Listener::Tls(listener, server.clone()));
        tls = Some(server);
    }
    let mut daemon = start(listeners, config, uri, dir).await;
    daemon.tcp_uri = Some(tcp_uri);
    daemon.ro_uri = Some(ro_uri);
    daemon.native = Some(native_paths);
    (daemon.tls, daemon.tls_uri) = (tls, tls_uri);
    daemon
}

/// Starts a daemon on 127.0.0.1 with a port the kernel picks.
pub async fn start_daemon_tcp() -> TestDaemon {
    let dir = tempfile::tempdir().expect("temporary folder");
    let config = Config::for_test(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let uri = format!("tcp://{}", listener.local_addr().expect("local address"));
    start(vec![Listener::Tcp(listener)], config, uri, dir).await
}

async fn start(listeners: Vec<Listener>, config: Config, uri: String, dir: TempDir) -> TestDaemon {
    let shutdown = CancellationToken::new();
    let (sink, pump) = rvirtd::driver::events();
    let (driver, test_driver): (Arc<dyn Driver>, _) = match config.driver {
        DriverKind::Test => {
            let driver = Arc::new(TestDriver::new(sink));
            (driver.clone(), Some(driver))
        }
        _ => (rvirtd::driver::open(&config, sink).expect("open the driver"), None),
    };
    let reaper = qemu::Reaper { runtime: config.runtime_dir.clone() };
    let authority = rvirtd::access::Authority::load(config.policy.as_deref());
    let server =
        tokio::spawn(rvirtd::serve(listeners, config, (driver, authority.clone()), pump, shutdown.clone()));
    let client = rvirt::Connection::open(&uri).await.expect("connect to the test daemon");
    TestDaemon {
        client,
        uri,
        tcp_uri: None,
        ro_uri: None,
        tls_uri: None,
        native: None,
        authority,
        tls: None,
        test_driver,
        shutdown,
        server,
        _reaper: reaper,
        dir,
    }
}

impl TestDaemon {
    /// Stops the daemon and waits until it has.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.server.await.expect("server task").expect("server result");
    }

    /// The libvirt URI of its libvirt-protocol socket (`read_only`: the read-only one), for virsh
    /// and python3-libvirt.
    pub fn native_uri(&self, read_only: bool) -> String {
        let (rw, ro) = self.native.as_ref().expect("this daemon serves no libvirt-protocol socket");
        format!("test+unix:///default?socket={}", if read_only { ro } else { rw }.display())
    }

    /// The daemon's temporary folder.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A binary of this workspace (`rvirsh`, `rvirtd`) built in the same target folder as the running
/// program: beside it (xtask) or one level up (test binaries live in `deps/`). `cargo test
/// --workspace` builds them; `cargo test -p rvirt-tests` alone does not.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("running program path");
    let dir = exe.parent().expect("program folder");
    let candidates = [dir.join(name), dir.parent().expect("target folder").join(name)];
    candidates.iter().find(|path| path.exists()).cloned().unwrap_or_else(|| {
        panic!("{name} is not built next to {}: run the tests with `cargo test --workspace`", exe.display())
    })
}

/// A minimal domain XML with a fixed UUID derived from `n`, so runs are reproducible.
pub fn domain_xml(name: &str, n: u32) -> String {
    format!(
        "<domain type='test'><name>{name}</name><uuid>{}</uuid><memory unit='MiB'>64</memory>\
         <os><type>hvm</type></os><devices><disk type='file' device='disk'>\
         <source file='/var/lib/rvirt/{name}.img'/><target dev='vda' bus='virtio'/></disk></devices></domain>",
        uuid_for(n)
    )
}

/// The UUID `domain_xml` gives domain number `n`.
pub fn uuid_for(n: u32) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x5254_0000_0000_4000_8000_0000_0000_0000 | u128::from(n))
}
