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
    /// Also serve on this TCP address.
    pub listen: Option<SocketAddr>,
    /// The tracing filter (RUST_LOG syntax); reloaded on SIGHUP.
    pub log_filter: String,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    /// The largest gRPC message accepted or sent, both ways.
    pub max_message_bytes: usize,
    /// How long a stopping daemon waits for in-flight calls.
    pub shutdown_timeout: Duration,
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
    /// See `Config::listen`.
    pub listen: Option<SocketAddr>,
    /// See `Config::log_filter`.
    pub log_filter: Option<String>,
    /// See `Config::log_format`.
    pub log_format: Option<LogFormat>,
    /// See `Config::max_message_bytes`.
    pub max_message_bytes: Option<usize>,
    /// See `Config::shutdown_timeout`, in seconds.
    pub shutdown_timeout_secs: Option<u64>,
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
            listen: other.listen.or(self.listen),
            log_filter: other.log_filter.or(self.log_filter),
            log_format: other.log_format.or(self.log_format),
            max_message_bytes: other.max_message_bytes.or(self.max_message_bytes),
            shutdown_timeout_secs: other.shutdown_timeout_secs.or(self.shutdown_timeout_secs),
        }
    }
}

impl Config {
    /// The largest gRPC message, set explicitly on both ends (tonic's default is 4 MiB).
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

    /// Defaults filled in and checked. libvirt's split: as root, `/var/lib/rvirt`, `/run/rvirt`
    /// and `/run/rvirt/rvirt-sock`; otherwise `$XDG_STATE_HOME/rvirt` (else
    /// `~/.local/state/rvirt`), `$XDG_RUNTIME_DIR/rvirt` (else `/tmp/rvirt-$UID`) and the socket
    /// in it.
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
        let socket = raw.socket.unwrap_or_else(rvirt_proto::default_socket_path);
        let runtime_dir = raw.runtime_dir.unwrap_or_else(|| {
            socket.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/run/rvirt"))
        });
        let max_message_bytes = raw.max_message_bytes.unwrap_or(Self::DEFAULT_MAX_MESSAGE_BYTES);
        if !(64 << 10..=1 << 30).contains(&max_message_bytes) {
            bail!("max_message_bytes must be between 64 KiB and 1 GiB, not {max_message_bytes}");
        }
        let log_filter = raw.log_filter.unwrap_or_else(|| "info".into());
        tracing_subscriber::EnvFilter::try_new(&log_filter)
            .with_context(|| format!("invalid log_filter {log_filter:?}"))?;
        Ok(Config {
            state_dir,
            runtime_dir,
            socket,
            listen: raw.listen,
            log_filter,
            log_format: raw.log_format.unwrap_or(LogFormat::Text),
            max_message_bytes,
            shutdown_timeout: Duration::from_secs(raw.shutdown_timeout_secs.unwrap_or(10)),
        })
    }

    /// A configuration for tests: everything under `dir`.
    pub fn for_test(dir: &Path) -> Self {
        Config {
            state_dir: dir.join("state"),
            runtime_dir: dir.join("run"),
            socket: dir.join("rvirt-sock"),
            listen: None,
            log_filter: "info".into(),
            log_format: LogFormat::Text,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
            shutdown_timeout: Duration::from_secs(5),
        }
    }
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
        assert_eq!(config.runtime_dir, PathBuf::from("/run/x"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(toml::from_str::<RawConfig>("stat_dir = '/a'").is_err());
        let bad = RawConfig { log_filter: Some("[[[".into()), ..RawConfig::default() };
        assert!(Config::resolve(bad).is_err());
    }
}
