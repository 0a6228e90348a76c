//! TLS for the TCP listener (rustls): the server's certificate and key, and with `client_ca`
//! mutual TLS, where the client's certificate is its identity. The whole rustls configuration is
//! swapped on reload (SIGHUP): new handshakes use the new files, open connections keep theirs.
//! Files that cannot be loaded never stop the daemon: at start the listener refuses handshakes
//! until a reload succeeds; on reload the old configuration stays.

use crate::caller::Identity;
use crate::config::TlsConfig;
use anyhow::Context;
use arc_swap::ArcSwapOption;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

/// The largest certificate, key or CA file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The TLS side of one listener.
#[derive(Debug)]
pub struct TlsServer {
    files: TlsConfig,
    config: ArcSwapOption<rustls::ServerConfig>,
}

impl TlsServer {
    /// Loads the files `files` names; when they cannot be loaded, says why in the log and
    /// refuses handshakes until `reload` succeeds.
    pub fn new(files: TlsConfig) -> Arc<Self> {
        let server = Arc::new(TlsServer { files, config: ArcSwapOption::empty() });
        match server.reload() {
            Ok(()) => {
                tracing::info!(cert = %server.files.cert.display(), mutual = server.files.client_ca.is_some(), "TLS certificates loaded")
            }
            Err(error) => tracing::error!(
                "TLS certificates not loaded, so TLS clients are refused until they are (fix the files, then send SIGHUP): {error:#}"
            ),
        }
        server
    }

    /// Reads the files again and uses them for new connections; on failure nothing changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        self.config.store(Some(Arc::new(build(&self.files)?)));
        Ok(())
    }

    /// The configuration for the next handshake, if one is loaded.
    pub fn current(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.config.load_full()
    }
}

fn read_pem(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open the {what} {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if bytes.len() as u64 > MAX_PEM_BYTES {
        anyhow::bail!("the {what} {} is larger than {MAX_PEM_BYTES} bytes", path.display());
    }
    Ok(bytes)
}

fn certificates(path: &Path, what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = read_pem(path, what)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("the {what} {} is not valid PEM", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("the {what} {} holds no certificate", path.display());
    }
    Ok(certs)
}

fn build(files: &TlsConfig) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.cert, "certificate")?;
    let key = PrivateKeyDer::from_pem_slice(&read_pem(&files.key, "key")?)
        .with_context(|| format!("the key {} holds no usable private key", files.key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(path, "client CA")? {
                roots
                    .add(cert)
                    .with_context(|| format!("the client CA {} is not a usable CA", path.display()))?;
            }
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .context("client certificate verification")?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).with_context(|| {
        format!("the certificate {} and key {} do not go together", files.cert.display(), files.key.display())
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Who the peer of an established TLS connection is: its certificate's subject and names (typed,
/// as OpenSSL prints them: "DNS:host.example", "email:a@example", "IP:192.0.2.7", "URI:...") when
/// it sent one (the verifier accepted it), else anonymous.
pub fn identity(connection: &rustls::ServerConnection, address: SocketAddr) -> Identity {
    let Some(cert) = connection.peer_certificates().and_then(|certs| certs.first()) else {
        return Identity::Anonymous { address };
    };
    match x509_parser::parse_x509_certificate(cert) {
        Ok((_, cert)) => {
            let subject = subject(cert.subject());
            let sans = cert
                .subject_alternative_name()
                .ok()
                .flatten()
                .map(|san| san.value.general_names.iter().filter_map(general_name).collect())
                .unwrap_or_default();
            Identity::Certificate { subject, sans, address }
        }
        // The verifier parsed it already; a certificate it took but this parser cannot read
        // proves nothing here.
        Err(_) => Identity::Anonymous { address },
    }
}

/// A certificate's subject as "CN=alice, O=example": its attributes in the certificate's order,
/// joined by ", " (and "+" within one RDN), each value escaped as RFC 4514 says, so no value can
/// pass for more attributes (a CN of "alice, O=example" reads "CN=alice\\, O=example").
fn subject(name: &x509_parser::x509::X509Name<'_>) -> String {
    let registry = x509_parser::objects::oid_registry();
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            let attributes: Vec<String> = rdn
                .iter()
                .map(|attribute| {
                    let oid = attribute.attr_type();
                    let key = x509_parser::objects::oid2abbrev(oid, registry)
                        .map_or_else(|_| oid.to_id_string(), str::to_owned);
                    let value = match attribute.as_str() {
                        Ok(text) => escape_value(text),
                        // Not a string: its DER bytes in hex, as RFC 4514 writes them.
                        Err(_) => {
                            let hex: String =
                                attribute.attr_value().data.iter().map(|b| format!("{b:02x}")).collect();
                            format!("#{hex}")
                        }
                    };
                    format!("{key}={value}")
                })
                .collect();
            attributes.join("+")
        })
        .collect();
    rdns.join(", ")
}

/// RFC 4514's escaping of an attribute value.
fn escape_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let last = text.chars().count().saturating_sub(1);
    for (index, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (index == 0 && matches!(c, ' ' | '#'))
            || (index == last && c == ' ');
        if c.is_control() {
            out.push_str(&format!("\\{:02x}", c as u32));
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn general_name(name: &x509_parser::extensions::GeneralName<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    match name {
        GeneralName::DNSName(dns) => Some(format!("DNS:{dns}")),
        GeneralName::RFC822Name(mail) => Some(format!("email:{mail}")),
        GeneralName::URI(uri) => Some(format!("URI:{uri}")),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Some(format!("IP:{}", std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?))),
            16 => Some(format!("IP:{}", std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?))),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn subject_values_cannot_pass_for_more_attributes() {
        assert_eq!(super::escape_value("alice, O=example"), "alice\\, O\\=example");
        assert_eq!(super::escape_value(" #x "), "\\ #x\\ ");
        assert_eq!(super::escape_value("#x"), "\\#x");
        assert_eq!(super::escape_value("a\nb"), "a\\0ab");
        assert_eq!(super::escape_value("plain name"), "plain name");
    }
}
