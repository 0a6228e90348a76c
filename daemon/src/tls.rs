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

/// Who the peer of an established TLS connection is: its certificate's subject and names when
/// it sent one (the verifier accepted it), else anonymous.
pub fn identity(connection: &rustls::ServerConnection, address: SocketAddr) -> Identity {
    let Some(cert) = connection.peer_certificates().and_then(|certs| certs.first()) else {
        return Identity::Anonymous { address };
    };
    match x509_parser::parse_x509_certificate(cert) {
        Ok((_, cert)) => {
            let subject = cert.subject().to_string();
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

fn general_name(name: &x509_parser::extensions::GeneralName<'_>) -> Option<String> {
    use x509_parser::extensions::GeneralName;
    match name {
        GeneralName::DNSName(dns) => Some((*dns).to_owned()),
        GeneralName::RFC822Name(mail) => Some((*mail).to_owned()),
        GeneralName::URI(uri) => Some((*uri).to_owned()),
        GeneralName::IPAddress(bytes) => match bytes.len() {
            4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
            16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
            _ => None,
        },
        _ => None,
    }
}
