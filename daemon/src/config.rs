//! `Config`: what one rvirtd serves and where it keeps state. `RawConfig` is the `rvirtd.toml`
//! file as written (every key optional); `Config::resolve` lays flags over the file over the
//! defaults and checks the result.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A daemon's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent state: domain configs, metadata, counters.
    pub state_dir: PathBuf,
    /// Runtime status of active domains; emptied by a host reboot (a tmpfs such as /run).
    pub runtime_dir: PathBuf,
    /// The unix socket the API is served on.
    pub socket: PathBuf,
    /// The socket's mode (libvirtd's `unix_sock_rw_perms`).
    pub unix_sock_rw_perms: u32,
    /// The socket's group, as a gid (libvirtd's `unix_sock_group`); `None` keeps the daemon's.
    pub unix_sock_group: Option<u32>,
    /// The read-only unix socket (libvirtd's `libvirt-sock-ro`): reads only, whoever connects.
    pub socket_ro: PathBuf,
    /// Its mode (libvirtd's `unix_sock_ro_perms`).
    pub unix_sock_ro_perms: u32,
    /// libvirt's own protocol, read-write (libvirtd's `libvirt-sock`), with the mode and group of
    /// `socket`, for unmodified virsh and libvirt clients.
    pub native_socket: PathBuf,
    /// libvirt's protocol, read-only (libvirtd's `libvirt-sock-ro`), with the mode of `socket_ro`.
    pub native_socket_ro: PathBuf,
    /// Also serve on this TCP address (loopback only, no TLS).
    pub listen: Option<SocketAddr>,
    /// TCP over TLS, reachable from other machines.
    pub tls: Option<TlsConfig>,
    /// The access policy file (see `policy`); `None`: the read-write socket grants everything.
    pub policy: Option<PathBuf>,
    /// The tracing filter (RUST_LOG syntax); reloaded on SIGHUP.
    pub log_filter: String,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// The largest gRPC message accepted or sent, both ways.
    pub max_message_bytes: usize,
    /// How long a stopping daemon waits for in-flight calls.
    pub shutdown_timeout: Duration,
    /// What one daemon lets its clients use.
    pub limits: Limits,
    /// The hypervisor driver (one per daemon, as libvirt's `test:///` and `qemu:///` are apart).
    pub driver: DriverKind,
    /// The `qemu` driver's settings.
    pub qemu: QemuConfig,
    /// The change history and its watchers.
    pub watch: WatchConfig,
}

/// The `[watch]` table: the history of recent changes WatchDomainEvents resumes from, and what
/// one watcher may hold.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchConfig {
    /// Changes kept in memory; a watch from an older generation is refused (list again).
    pub history_max_changes: usize,
    /// Changes older than this are dropped from the history at the next change.
    pub history_max_age_secs: u64,
    /// A watcher that saw no event this long gets a bookmark (a request may ask for another).
    pub bookmark_interval_ms: u64,
    /// Open watch streams, daemon-wide; more are refused (RESOURCE_EXHAUSTED).
    pub max_watchers: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            history_max_changes: 50_000,
            history_max_age_secs: 600,
            bookmark_interval_ms: 10_000,
            max_watchers: 1_000,
        }
    }
}

impl WatchConfig {
    fn check(&self) -> anyhow::Result<()> {
        if self.history_max_changes == 0 || self.history_max_age_secs == 0 || self.max_watchers == 0 {
            bail!(
                "watch.history_max_changes, watch.history_max_age_secs and watch.max_watchers must be at least 1"
            );
        }
        if self.history_max_changes > 10_000_000 {
            bail!("watch.history_max_changes must be at most 10,000,000, not {}", self.history_max_changes);
        }
        if self.bookmark_interval_ms < 100 {
            bail!("watch.bookmark_interval_ms must be at least 100");
        }
        Ok(())
    }
}

/// The `[tls]` table: TCP over TLS, with client certificates when `client_ca` is set. The
/// files are read again on SIGHUP; open connections keep the certificate they started with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Address to serve on, e.g. "0.0.0.0:16514" (libvirtd's TLS port).
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// Clients must present a certificate this CA (PEM) signed: mutual TLS. Required unless
    /// `listen` is a loopback address.
    pub client_ca: Option<PathBuf>,
}

/// Which driver a daemon runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// In-memory domains, as libvirt's `test:///default`.
    #[default]
    Test,
    /// Real guests, one QEMU process each.
    Qemu,
}

/// The `[qemu]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QemuConfig {
    /// The emulator: a path, or a name looked up in PATH.
    pub binary: PathBuf,
    /// Allow `<domain type='kvm'>` (KVM acceleration). Off by default: every guest runs under
    /// TCG (`-accel tcg`) unless KVM is configured here and known to work on the host.
    pub kvm: bool,
    /// Seconds a QEMU may take to start and answer its monitor.
    pub start_timeout_secs: u64,
    /// Seconds one monitor command may take; a QEMU that does not answer in time (hung,
    /// stopped) fails that call with DEADLINE_EXCEEDED, and only its own domain waits.
    pub monitor_timeout_secs: u64,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            binary: PathBuf::from("qemu-system-x86_64"),
            kvm: false,
            start_timeout_secs: 30,
            monitor_timeout_secs: 10,
        }
    }
}

/// Every resource bound, with its default (README's table and `dist/rvirtd.toml` document them).
/// A request over a limit is refused at once (RESOURCE_EXHAUSTED, or UNAVAILABLE for a refused
/// stream), never queued without bound.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Open connections in all (libvirtd's `max_clients`).
    pub max_clients: usize,
    /// Open connections from one peer: one uid on the unix socket, one IP address on TCP.
    pub max_clients_per_peer: usize,
    /// Concurrent calls (HTTP/2 streams) on one connection (libvirtd's `max_client_requests`).
    pub max_client_requests: u32,
    /// Bytes of answers built but not yet read by their clients, daemon-wide.
    pub answer_budget_bytes: usize,
    /// Bytes of requests received but not yet decoded, daemon-wide.
    pub request_budget_bytes: usize,
    /// Low-priority threads for heavy work (large listing pages, large XML); 0: one per core.
    pub work_threads: usize,
    /// Heavy requests that may wait for a work thread; more are refused.
    pub work_queue: usize,
    /// A connection that has sent nothing this long after it was accepted is closed.
    pub handshake_timeout_secs: u64,
    /// A connection with no call in flight for this long is closed.
    pub idle_timeout_secs: u64,
    /// HTTP/2 pings every this many seconds of silence find dead peers...
    pub keepalive_interval_secs: u64,
    /// ...which are dropped when a ping is not answered within this many seconds.
    pub keepalive_timeout_secs: u64,
    /// The longest one call may take (a client's own deadline applies when shorter).
    pub request_timeout_secs: u64,
    /// A client that reads nothing for this long while answers wait for it is cut off: its
    /// connection is closed when its socket takes nothing, and a watch stream it stopped reading
    /// ends (RESOURCE_EXHAUSTED) when it reads again.
    pub stall_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 5000,
            max_clients_per_peer: 1000,
            max_client_requests: 100,
            answer_budget_bytes: 256 << 20,
            request_budget_bytes: 256 << 20,
            work_threads: 0,
            work_queue: 256,
            handshake_timeout_secs: 10,
            idle_timeout_secs: 600,
            keepalive_interval_secs: 30,
            keepalive_timeout_secs: 20,
            request_timeout_secs: 120,
            stall_timeout_ms: 3_000,
        }
    }
}

impl Limits {
    /// Refuses values that would disable a bound or make the daemon unusable.
    fn check(&self) -> anyhow::Result<()> {
        let positive = [
            ("max_clients", self.max_clients as u64),
            ("max_clients_per_peer", self.max_clients_per_peer as u64),
            ("max_client_requests", u64::from(self.max_client_requests)),
            ("work_queue", self.work_queue as u64),
            ("handshake_timeout_secs", self.handshake_timeout_secs),
            ("idle_timeout_secs", self.idle_timeout_secs),
            ("keepalive_interval_secs", self.keepalive_interval_secs),
            ("keepalive_timeout_secs", self.keepalive_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("stall_timeout_ms", self.stall_timeout_ms),
        ];
        for (key, value) in positive {
            if value == 0 {
                bail!("limits.{key} must be at least 1");
            }
        }
        for (key, value) in [
            ("answer_budget_bytes", self.answer_budget_bytes),
            ("request_budget_bytes", self.request_budget_bytes),
        ] {
            if value < 1 << 20 {
                bail!("limits.{key} must be at least 1 MiB, not {value}");
            }
        }
        Ok(())
    }

    /// Work threads, 0 resolved to the number of cores.
    pub fn work_threads(&self) -> usize {
        match self.work_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `path` with `suffix` added to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut path = path.to_owned().into_os_string();
    path.push(suffix);
    PathBuf::from(path)
}

/// `rvirtd.toml` as written. Every key is optional; see `Config` for their meaning and README.md
/// for the defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// See `Config::state_dir`.
    pub state_dir: Option<PathBuf>,
    /// See `Config::runtime_dir`.
    pub runtime_dir: Option<PathBuf>,
    /// See `Config::socket`.
    pub socket: Option<PathBuf>,
    /// See `Config::unix_sock_rw_perms`: octal, as a string ("0600"), as libvirtd.conf writes it.
    pub unix_sock_rw_perms: Option<String>,
    /// See `Config::unix_sock_group`: a group name or a numeric gid.
    pub unix_sock_group: Option<String>,
    /// See `Config::socket_ro` [default: the socket's path with "-ro"].
    pub socket_ro: Option<PathBuf>,
    /// See `Config::unix_sock_ro_perms`: octal, as a string [default: "0666"].
    pub unix_sock_ro_perms: Option<String>,
    /// See `Config::native_socket` [default: `libvirt-sock` beside the socket].
    pub native_socket: Option<PathBuf>,
    /// See `Config::native_socket_ro` [default: the native socket's path with "-ro"].
    pub native_socket_ro: Option<PathBuf>,
    /// See `Config::listen`.
    pub listen: Option<SocketAddr>,
    /// The `[tls]` table; see `TlsConfig`.
    pub tls: Option<TlsConfig>,
    /// See `Config::policy`.
    pub policy: Option<PathBuf>,
    /// See `Config::log_filter`.
    pub log_filter: Option<String>,
    /// See `Config::log_format`.
    pub log_format: Option<LogFormat>,
    /// See `Config::max_message_bytes`.
    pub max_message_bytes: Option<usize>,
    /// See `Config::shutdown_timeout`, in seconds.
    pub shutdown_timeout_secs: Option<u64>,
    /// The `[limits]` table; see `Limits`.
    pub limits: Option<Limits>,
    /// See `Config::driver`.
    pub driver: Option<DriverKind>,
    /// The `[qemu]` table; see `QemuConfig`.
    pub qemu: Option<QemuConfig>,
    /// The `[watch]` table; see `WatchConfig`.
    pub watch: Option<WatchConfig>,
}

impl RawConfig {
    /// Reads and parses a config file.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// The config file read when `--config` is not given, if it exists: `/etc/rvirt/rvirtd.toml`
    /// as root, else `$XDG_CONFIG_HOME/rvirt/rvirtd.toml` (or `~/.config/...`).
    pub fn default_path() -> Option<PathBuf> {
        let path = if rvirt_proto::effective_uid() == 0 {
            PathBuf::from("/etc/rvirt/rvirtd.toml")
        } else {
            let xdg = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()).map(PathBuf::from);
            let home = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config"));
            xdg.or(home)?.join("rvirt/rvirtd.toml")
        };
        path.exists().then_some(path)
    }

    /// `other`'s keys win over this one's.
    pub fn overlay(self, other: RawConfig) -> RawConfig {
        RawConfig {
            state_dir: other.state_dir.or(self.state_dir),
            runtime_dir: other.runtime_dir.or(self.runtime_dir),
            socket: other.socket.or(self.socket),
            unix_sock_rw_perms: other.unix_sock_rw_perms.or(self.unix_sock_rw_perms),
            unix_sock_group: other.unix_sock_group.or(self.unix_sock_group),
            socket_ro: other.socket_ro.or(self.socket_ro),
            unix_sock_ro_perms: other.unix_sock_ro_perms.or(self.unix_sock_ro_perms),
            native_socket: other.native_socket.or(self.native_socket),
            native_socket_ro: other.native_socket_ro.or(self.native_socket_ro),
            listen: other.listen.or(self.listen),
            tls: other.tls.or(self.tls),
            policy: other.policy.or(self.policy),
            log_filter: other.log_filter.or(self.log_filter),
            log_format: other.log_format.or(self.log_format),
            max_message_bytes: other.max_message_bytes.or(self.max_message_bytes),
            shutdown_timeout_secs: other.shutdown_timeout_secs.or(self.shutdown_timeout_secs),
            limits: other.limits.or(self.limits),
            driver: other.driver.or(self.driver),
            qemu: other.qemu.or(self.qemu),
            watch: other.watch.or(self.watch),
        }
    }
}

impl Config {
    /// The largest gRPC message, set explicitly on both ends (tonic's default is 4 MiB).
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

    /// Defaults filled in and checked. libvirt's split: as root, `/var/lib/rvirt`, `/run/rvirt`
    /// and `/run/rvirt/rvirt-sock`; otherwise `$XDG_STATE_HOME/rvirt` (else
    /// `~/.local/state/rvirt`), `$XDG_RUNTIME_DIR/rvirt` (else `/tmp/rvirt-$UID`) and the socket
    /// in it. The runtime folder is always rvirtd's own, never whatever folder `--socket` names.
    pub fn resolve(raw: RawConfig) -> anyhow::Result<Self> {
        let root = rvirt_proto::effective_uid() == 0;
        let state_dir = raw.state_dir.unwrap_or_else(|| {
            if root {
                return PathBuf::from("/var/lib/rvirt");
            }
            let xdg = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from);
            let home = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"));
            xdg.or(home).unwrap_or_else(|| PathBuf::from(".")).join("rvirt")
        });
        let runtime_dir = raw.runtime_dir.unwrap_or_else(rvirt_proto::default_runtime_dir);
        let socket = raw.socket.unwrap_or_else(rvirt_proto::default_socket_path);
        if let Some(address) = raw.listen
            && !address.ip().is_loopback()
        {
            bail!(
                "refusing to listen on {address}: plain TCP has no authentication or encryption, so \
                 rvirtd serves it on loopback only (127.0.0.0/8, ::1); reach it from elsewhere \
                 through an SSH tunnel to the unix socket"
            );
        }
        let perms = raw.unix_sock_rw_perms.as_deref().unwrap_or("0600");
        let unix_sock_rw_perms = mode("unix_sock_rw_perms", perms)?;
        // Differs from libvirt: libvirtd lets anyone connect to a 0666 socket and asks polkit;
        // without a policy file rvirtd grants everything on it, so others may use it only
        // when a policy says what they may do.
        if unix_sock_rw_perms & 0o007 != 0 && raw.policy.is_none() {
            bail!(
                "unix_sock_rw_perms {perms} lets every local user manage every domain; give access to \
                 a group instead (unix_sock_group, with 0660), or set a policy file"
            );
        }
        let socket_ro = raw.socket_ro.unwrap_or_else(|| with_suffix(&socket, "-ro"));
        if socket_ro == socket {
            bail!("socket_ro and socket must be different paths");
        }
        let native_socket = raw.native_socket.unwrap_or_else(|| socket.with_file_name("libvirt-sock"));
        let native_socket_ro = raw.native_socket_ro.unwrap_or_else(|| with_suffix(&native_socket, "-ro"));
        let paths = [&socket, &socket_ro, &native_socket, &native_socket_ro];
        if paths.iter().enumerate().any(|(i, a)| paths[..i].contains(a)) {
            bail!("socket, socket_ro, native_socket and native_socket_ro must be four different paths");
        }
        let unix_sock_ro_perms =
            mode("unix_sock_ro_perms", raw.unix_sock_ro_perms.as_deref().unwrap_or("0666"))?;
        if let Some(tls) = &raw.tls
            && tls.client_ca.is_none()
            && !tls.listen.ip().is_loopback()
        {
            bail!(
                "refusing to serve TLS on {} without client certificates: anyone who can reach it \
                 could manage domains; set tls.client_ca (mutual TLS)",
                tls.listen
            );
        }
        let unix_sock_group = raw.unix_sock_group.as_deref().map(group_id).transpose()?;
        let max_message_bytes = raw.max_message_bytes.unwrap_or(Self::DEFAULT_MAX_MESSAGE_BYTES);
        if !(64 << 10..=1 << 30).contains(&max_message_bytes) {
            bail!("max_message_bytes must be between 64 KiB and 1 GiB, not {max_message_bytes}");
        }
        let log_filter = raw.log_filter.unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .with_context(|| format!("invalid log_filter {log_filter:?}"))?;
        let shutdown_timeout_secs = raw.shutdown_timeout_secs.unwrap_or(10);
        if shutdown_timeout_secs > 300 {
            bail!("shutdown_timeout_secs must be at most 300, not {shutdown_timeout_secs}");
        }
        let limits = raw.limits.unwrap_or_default();
        limits.check()?;
        let qemu = raw.qemu.unwrap_or_default();
        if qemu.start_timeout_secs == 0 || qemu.monitor_timeout_secs == 0 {
            bail!("qemu.start_timeout_secs and qemu.monitor_timeout_secs must be at least 1");
        }
        let watch = raw.watch.unwrap_or_default();
        watch.check()?;
        Ok(Config {
            state_dir,
            runtime_dir,
            socket,
            unix_sock_rw_perms,
            unix_sock_group,
            socket_ro,
            unix_sock_ro_perms,
            native_socket,
            native_socket_ro,
            listen: raw.listen,
            tls: raw.tls,
            policy: raw.policy,
            log_filter,
            log_format: raw.log_format.unwrap_or(LogFormat::Text),
            max_message_bytes,
            shutdown_timeout: Duration::from_secs(shutdown_timeout_secs),
            limits,
            driver: raw.driver.unwrap_or_default(),
            qemu,
            watch,
        })
    }

    /// A configuration for tests: everything under `dir`.
    pub fn for_test(dir: &Path) -> Self {
        Config {
            state_dir: dir.join("state"),
            runtime_dir: dir.join("run"),
            socket: dir.join("rvirt-sock"),
            unix_sock_rw_perms: 0o600,
            unix_sock_group: None,
            socket_ro: dir.join("rvirt-sock-ro"),
            unix_sock_ro_perms: 0o666,
            native_socket: dir.join("libvirt-sock"),
            native_socket_ro: dir.join("libvirt-sock-ro"),
            listen: None,
            tls: None,
            policy: None,
            log_filter: "info".into(),
            log_format: LogFormat::Text,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_timeout: Duration::from_secs(5),
            limits: Limits::default(),
            driver: DriverKind::Test,
            qemu: QemuConfig::default(),
            watch: WatchConfig::default(),
        }
    }
}

/// An octal mode given as a string ("0660"), as libvirtd.conf writes them.
fn mode(key: &str, text: &str) -> anyhow::Result<u32> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|mode| *mode <= 0o777)
        .with_context(|| format!("{key} must be an octal mode such as \"0660\", not {text:?}"))
}

/// A group name (looked up in the group database) or a numeric gid.
fn group_id(group: &str) -> anyhow::Result<u32> {
    if let Ok(gid) = group.parse() {
        return Ok(gid);
    }
    let name = std::ffi::CString::new(group).context("unix_sock_group holds a NUL byte")?;
    #[allow(unsafe_code)]
    // SAFETY: getgrnam reads a NUL-terminated name and returns null or a pointer to a static
    // entry, read at once; called while the config is resolved, before any other thread could
    // call it too.
    let gid = unsafe {
        let entry = libc::getgrnam(name.as_ptr());
        (!entry.is_null()).then(|| (*entry).gr_gid)
    };
    gid.with_context(|| format!("unix_sock_group {group:?}: no such group"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_unknown_keys_are_refused() {
        let file: RawConfig =
            toml::from_str("state_dir = '/a'\nsocket = '/run/x/sock'\nlog_format = 'json'").unwrap();
        let flags = RawConfig { state_dir: Some("/b".into()), ..RawConfig::default() };
        let config = Config::resolve(file.overlay(flags)).unwrap();
        assert_eq!(config.state_dir, PathBuf::from("/b"));
        assert_eq!(config.socket, PathBuf::from("/run/x/sock"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(toml::from_str::<RawConfig>("stat_dir = '/a'").is_err());
        let bad = RawConfig { log_filter: Some("[[[".into()), ..RawConfig::default() };
        assert!(Config::resolve(bad).is_err());
    }

    #[test]
    fn the_documented_default_config_is_valid() {
        let raw: RawConfig = toml::from_str(include_str!("../../dist/rvirtd.toml")).unwrap();
        Config::resolve(raw).unwrap();
    }

    #[test]
    fn the_runtime_folder_is_never_the_sockets_folder() {
        let raw = RawConfig { socket: Some("/tmp/x.sock".into()), ..RawConfig::default() };
        let config = Config::resolve(raw).unwrap();
        assert_eq!(config.runtime_dir, rvirt_proto::default_runtime_dir());
        assert_eq!(config.unix_sock_rw_perms, 0o600);
    }

    #[test]
    fn public_addresses_and_open_sockets_are_refused() {
        let resolve = |raw: RawConfig| Config::resolve(raw).map_err(|e| e.to_string());
        for address in ["0.0.0.0:16510", "[::]:16510", "192.0.2.1:16510"] {
            let raw = RawConfig { listen: Some(address.parse().unwrap()), ..RawConfig::default() };
            assert!(resolve(raw).unwrap_err().contains("loopback only"), "{address}");
        }
        for address in ["127.0.0.1:16510", "127.3.4.5:1", "[::1]:16510"] {
            let raw = RawConfig { listen: Some(address.parse().unwrap()), ..RawConfig::default() };
            assert!(resolve(raw).is_ok(), "{address}");
        }
        let perms = |p: &str| RawConfig { unix_sock_rw_perms: Some(p.into()), ..RawConfig::default() };
        assert!(resolve(perms("0666")).unwrap_err().contains("every local user"));
        assert!(resolve(perms("rw")).unwrap_err().contains("octal mode"));
        assert_eq!(Config::resolve(perms("0660")).unwrap().unix_sock_rw_perms, 0o660);
        let group = RawConfig { unix_sock_group: Some("root".into()), ..RawConfig::default() };
        assert_eq!(Config::resolve(group).unwrap().unix_sock_group, Some(0));
        let group = RawConfig { unix_sock_group: Some("no-such-group-here".into()), ..RawConfig::default() };
        assert!(resolve(group).unwrap_err().contains("no such group"));
        // With a policy, others may use the read-write socket: the policy decides what they may do.
        let shared = RawConfig { policy: Some("/etc/rvirt/policy.toml".into()), ..perms("0666") };
        assert_eq!(Config::resolve(shared).unwrap().unix_sock_rw_perms, 0o666);
    }

    #[test]
    fn tls_beyond_loopback_needs_client_certificates_and_the_read_only_socket_sits_beside() {
        let tls = |listen: &str, client_ca: Option<&str>| RawConfig {
            tls: Some(TlsConfig {
                listen: listen.parse().unwrap(),
                cert: "/c".into(),
                key: "/k".into(),
                client_ca: client_ca.map(PathBuf::from),
            }),
            ..RawConfig::default()
        };
        let error = Config::resolve(tls("0.0.0.0:16514", None)).unwrap_err().to_string();
        assert!(error.contains("without client certificates"), "{error}");
        assert!(Config::resolve(tls("0.0.0.0:16514", Some("/ca"))).is_ok());
        assert!(Config::resolve(tls("127.0.0.1:16514", None)).is_ok());
        let raw = RawConfig { socket: Some("/run/x/sock".into()), ..RawConfig::default() };
        assert_eq!(Config::resolve(raw).unwrap().socket_ro, PathBuf::from("/run/x/sock-ro"));
        let same =
            RawConfig { socket: Some("/s".into()), socket_ro: Some("/s".into()), ..RawConfig::default() };
        assert!(Config::resolve(same).is_err());
    }
}
