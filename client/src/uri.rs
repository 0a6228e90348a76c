//! `Uri`: where rvirtd is and how to reach it.
//!
//! - `unix:///run/rvirt/rvirt-sock`: the read-write socket;
//! - `unix:///run/rvirt/rvirt-sock?readonly`: the read-only socket beside it (`rvirt-sock-ro`),
//!   as libvirt's `?readonly` / `virsh -r`;
//! - `tcp://127.0.0.1:16510`: plain TCP (the daemon serves it on loopback only);
//! - `tls://host[:16514]`: TCP over TLS. The CA, the client certificate and its key come from
//!   `TlsFiles`: given explicitly, else `$RVIRT_TLS_CA`, `$RVIRT_TLS_CERT`, `$RVIRT_TLS_KEY`, else
//!   libvirt's conventional places under rvirt's name: `~/.pki/rvirt/{cacert,clientcert,clientkey}.pem`
//!   (as root `/etc/pki/rvirt/cacert.pem`, `/etc/pki/rvirt/clientcert.pem`,
//!   `/etc/pki/rvirt/private/clientkey.pem`).

use crate::error::{Error, ErrorKind, Result};
use std::path::PathBuf;

/// The longest URI accepted.
const MAX_URI_CHARS: usize = 4096;
/// libvirtd's TLS port, rvirtd's default for `tls://`.
pub const DEFAULT_TLS_PORT: u16 = 16514;

/// A parsed rvirt URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// A unix socket (already the read-only one when `?readonly` was asked for).
    Unix {
        /// The socket's absolute path.
        path: PathBuf,
        /// Whether the read-only socket was asked for.
        read_only: bool,
    },
    /// Plain TCP.
    Tcp {
        /// `host:port`.
        address: String,
    },
    /// TCP over TLS.
    Tls {
        /// The host name the server's certificate must name.
        host: String,
        /// The port.
        port: u16,
    },
}

fn invalid(uri: &str, why: impl std::fmt::Display) -> Error {
    Error::local(ErrorKind::InvalidArg, format!("bad URI '{uri}': {why}"))
}

impl Uri {
    /// Parses `text`; the error says what is wrong and what is accepted.
    pub fn parse(text: &str) -> Result<Uri> {
        if text.len() > MAX_URI_CHARS {
            let start: String = text.chars().take(64).collect();
            return Err(invalid(&format!("{start}..."), format!("longer than {MAX_URI_CHARS} characters")));
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            invalid(text, "use unix:///path/to/socket[?readonly], tcp://host:port or tls://host[:port]")
        })?;
        let (rest, query) = match rest.split_once('?') {
            Some((rest, query)) => (rest, Some(query)),
            None => (rest, None),
        };
        let read_only = match query {
            None => false,
            Some("readonly") | Some("readonly=1") => true,
            Some(other) => {
                return Err(invalid(text, format!("unknown parameter '{other}' (known: readonly)")));
            }
        };
        match scheme {
            "unix" => {
                if !rest.starts_with('/') {
                    return Err(invalid(text, "a unix URI needs an absolute path: unix:///path/to/socket"));
                }
                let mut path = PathBuf::from(rest);
                if read_only && !rest.ends_with("-ro") {
                    let mut ro = path.into_os_string();
                    ro.push("-ro");
                    path = PathBuf::from(ro);
                }
                Ok(Uri::Unix { path, read_only })
            }
            "tcp" | "tls" if read_only => {
                Err(invalid(text, "readonly is for unix sockets; over TCP the daemon's policy decides"))
            }
            "tcp" => {
                let address = rest.trim_end_matches('/');
                let (host, port) = split_host_port(text, address)?;
                let port = port.ok_or_else(|| invalid(text, "a tcp URI needs a port: tcp://host:port"))?;
                Ok(Uri::Tcp { address: format!("{host}:{port}") })
            }
            "tls" => {
                let (host, port) = split_host_port(text, rest.trim_end_matches('/'))?;
                Ok(Uri::Tls { host: host.to_owned(), port: port.unwrap_or(DEFAULT_TLS_PORT) })
            }
            other => Err(invalid(text, format!("unsupported scheme '{other}' (use unix, tcp or tls)"))),
        }
    }
}

/// `host[:port]`, `[v6]:port`.
fn split_host_port<'a>(uri: &str, address: &'a str) -> Result<(&'a str, Option<u16>)> {
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| invalid(uri, "unclosed '[' in the host"))?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':').ok_or_else(|| invalid(uri, "expected ':' after ']'"))?)),
        }
    } else {
        match address.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    let valid_host = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_');
    if host.is_empty() || !host.chars().all(valid_host) {
        return Err(invalid(uri, "the host must be a name or an address"));
    }
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .ok()
                .filter(|port| *port != 0)
                .ok_or_else(|| invalid(uri, "the port must be 1 to 65535"))
        })
        .transpose()?;
    Ok((host, port))
}

/// The files a TLS client uses; `None` fields are looked for in the environment, then in the
/// conventional places.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate that signed the server's certificate.
    pub ca: Option<PathBuf>,
    /// The client's certificate, for mutual TLS.
    pub cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    /// Each file: as given, else from its environment variable, else its conventional place
    /// (the client certificate and key only if both are there: without them the connection
    /// offers no certificate).
    pub fn resolve(&self) -> TlsFiles {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = rvirt_proto::effective_uid() == 0;
        let home = std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pki/rvirt"));
        let conventional = |root_path: &str, user_file: &str| -> Option<PathBuf> {
            let path = if root {
                Some(PathBuf::from(root_path))
            } else {
                home.as_ref().map(|dir| dir.join(user_file))
            };
            path.filter(|path| path.exists())
        };
        let ca = self
            .ca
            .clone()
            .or_else(|| env("RVIRT_TLS_CA"))
            .or_else(|| conventional("/etc/pki/rvirt/cacert.pem", "cacert.pem"));
        let cert = self.cert.clone().or_else(|| env("RVIRT_TLS_CERT"));
        let key = self.key.clone().or_else(|| env("RVIRT_TLS_KEY"));
        let (cert, key) = match (cert, key) {
            (None, None) => {
                let cert = conventional("/etc/pki/rvirt/clientcert.pem", "clientcert.pem");
                let key = conventional("/etc/pki/rvirt/private/clientkey.pem", "clientkey.pem");
                if cert.is_some() && key.is_some() { (cert, key) } else { (None, None) }
            }
            given => given,
        };
        TlsFiles { ca, cert, key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses_and_bad_ones_say_why() {
        assert_eq!(
            Uri::parse("unix:///run/rvirt/rvirt-sock?readonly").unwrap(),
            Uri::Unix { path: "/run/rvirt/rvirt-sock-ro".into(), read_only: true }
        );
        assert_eq!(
            Uri::parse("unix:///run/x-ro?readonly").unwrap(),
            Uri::Unix { path: "/run/x-ro".into(), read_only: true }
        );
        assert_eq!(
            Uri::parse("tcp://127.0.0.1:16510/").unwrap(),
            Uri::Tcp { address: "127.0.0.1:16510".into() }
        );
        assert_eq!(
            Uri::parse("tls://h.example").unwrap(),
            Uri::Tls { host: "h.example".into(), port: 16514 }
        );
        assert_eq!(Uri::parse("tls://[::1]:7").unwrap(), Uri::Tls { host: "::1".into(), port: 7 });
        let error = |text: &str| Uri::parse(text).unwrap_err().to_string();
        assert!(error("unix://rel").contains("absolute path"));
        assert!(error("tcp://host").contains("needs a port"));
        assert!(error("tls://h:0").contains("1 to 65535"));
        assert!(error("tls://h:x").contains("1 to 65535"));
        assert!(error("qemu:///system").contains("unsupported scheme"));
        assert!(error("unix:///s?nope").contains("unknown parameter"));
        assert!(error("tcp://h:1?readonly").contains("unix sockets"));
        assert!(error("tls://a b:1").contains("name or an address"));
        assert!(error(&"x".repeat(5000)).contains("longer than"));
        assert!(error("nothing").contains("use unix"));
    }
}
