//! `Caller`: who a request comes from and what the listener it arrived on lets it do. Stamped
//! once, when the connection is accepted (`connections`), and carried by every request on it:
//! page tokens, logs and access decisions all read this one value.

use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};

/// How a caller proved who it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A local process on a unix socket, as the kernel vouches for it (SO_PEERCRED).
    Unix {
        /// The peer's user id.
        uid: u32,
        /// The peer's primary group id.
        gid: u32,
        /// The peer's process id when it connected.
        pid: i32,
    },
    /// A remote client over TLS with a certificate the configured CA signed.
    Certificate {
        /// The certificate's subject in its own order, values escaped as RFC 4514 says
        /// ("CN=alice, O=example"; see `tls::identity`).
        subject: String,
        /// Its subject alternative names, typed ("DNS:host.example", "IP:192.0.2.7",
        /// "email:a@example", "URI:...").
        sans: Vec<String>,
        /// Where it connects from.
        address: SocketAddr,
    },
    /// A TCP client that proved nothing: plain loopback TCP, or TLS without client certificates.
    Anonymous {
        /// Where it connects from.
        address: SocketAddr,
    },
    /// rvirtd itself (autostart, events the hypervisor reports): never limited.
    Daemon,
}

/// What the listener a connection arrived on allows, before any policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Every call (libvirtd's `libvirt-sock`).
    ReadWrite,
    /// Reads only: every mutating call is refused (libvirtd's `libvirt-sock-ro`).
    ReadOnly,
}

/// One request's caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// Who it is.
    pub identity: Identity,
    /// What its listener allows.
    pub access: Access,
}

impl Caller {
    /// rvirtd acting on its own behalf.
    pub fn daemon() -> Arc<Caller> {
        static DAEMON: LazyLock<Arc<Caller>> =
            LazyLock::new(|| Arc::new(Caller { identity: Identity::Daemon, access: Access::ReadWrite }));
        DAEMON.clone()
    }

    /// The key page tokens are bound to: a token is honoured only for the same identity on a
    /// listener with the same access (a pid or a port is not part of it: a client may reconnect).
    /// A digest, so a long certificate subject does not make tokens long.
    pub fn token_key(&self) -> String {
        let access = match self.access {
            Access::ReadWrite => "rw",
            Access::ReadOnly => "ro",
        };
        let key = match &self.identity {
            Identity::Unix { uid, gid, .. } => format!("{access} uid {uid} gid {gid}"),
            Identity::Certificate { subject, sans, .. } => format!("{access} cert {subject:?} {sans:?}"),
            Identity::Anonymous { address } => format!("{access} ip {}", address.ip()),
            Identity::Daemon => "daemon".to_owned(),
        };
        blake3::hash(key.as_bytes()).to_hex()[..32].to_owned()
    }

    /// Whether this caller may only read.
    pub fn read_only(&self) -> bool {
        self.access == Access::ReadOnly
    }
}

impl std::fmt::Display for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.identity {
            Identity::Unix { uid, gid, pid } => write!(f, "unix uid={uid} gid={gid} pid={pid}")?,
            Identity::Certificate { subject, address, .. } => write!(f, "tls {subject:?} from {address}")?,
            Identity::Anonymous { address } => write!(f, "tcp {address}")?,
            Identity::Daemon => f.write_str("rvirtd")?,
        }
        if self.read_only() {
            f.write_str(" (read-only)")?;
        }
        Ok(())
    }
}
