//! `Config`: what one rvirtd serves and where it keeps state, resolved from flags and defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A daemon's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Persistent state (domain configs and metadata).
    pub state_dir: PathBuf,
    /// The unix socket the API is served on.
    pub socket: PathBuf,
    /// Also serve on this TCP address.
    pub listen: Option<SocketAddr>,
    /// The largest gRPC message accepted or sent, both ways.
    pub max_message_bytes: usize,
}

impl Config {
    /// The largest gRPC message, set explicitly on both ends (tonic's default is 4 MiB).
    pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 << 20;

    /// libvirt's split: as root, `/var/lib/rvirt` and `/run/rvirt/rvirt-sock`; otherwise
    /// `$XDG_STATE_HOME/rvirt` (else `~/.local/state/rvirt`) and the per-user runtime socket.
    pub fn defaults() -> Self {
        let state_dir = if rvirt_proto::effective_uid() == 0 {
            PathBuf::from("/var/lib/rvirt")
        } else {
            let xdg = std::env::var_os("XDG_STATE_HOME")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from);
            let home =
                std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state"));
            xdg.or(home)
                .unwrap_or_else(|| PathBuf::from("."))
                .join("rvirt")
        };
        Config {
            state_dir,
            socket: rvirt_proto::default_socket_path(),
            listen: None,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// A configuration for tests: everything under `dir`.
    pub fn for_test(dir: &Path) -> Self {
        Config {
            state_dir: dir.join("state"),
            socket: dir.join("rvirt-sock"),
            listen: None,
            max_message_bytes: Self::DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}
