//! Throwaway certificate authorities for TLS tests and demos (`cargo xtask certs DIR`): a CA, a
//! server certificate for `localhost`/127.0.0.1/::1 and client certificates it signs, as PEM
//! files with libvirt's names. Keys are written 0600; none of this is for production use.

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// A CA that can sign certificates.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM.
pub struct Issued {
    /// The certificate.
    pub cert: String,
    /// Its private key.
    pub key: String,
}

fn dn(params: &mut CertificateParams, common_name: &str) {
    params.distinguished_name.push(DnType::OrganizationName, "rvirt test");
    params.distinguished_name.push(DnType::CommonName, common_name);
}

impl Ca {
    /// A new self-signed CA named `name`, valid from yesterday for ten years.
    pub fn new(name: &str) -> anyhow::Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        dn(&mut params, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = (now - Duration::days(1), now + Duration::days(3650));
        Ok(Ca { issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)? })
    }

    /// The CA's certificate.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost`, 127.0.0.1 and ::1.
    pub fn server(&self) -> anyhow::Result<Issued> {
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
        self.issue("localhost", names, 365)
    }

    /// A client certificate with subject `CN=<common_name>, O=rvirt test`, valid for `days`
    /// from yesterday (a negative `days`: expired since).
    pub fn client(&self, common_name: &str, days: i64) -> anyhow::Result<Issued> {
        self.issue(common_name, Vec::new(), days)
    }

    fn issue(&self, common_name: &str, names: Vec<String>, days: i64) -> anyhow::Result<Issued> {
        let mut params = CertificateParams::new(names)?;
        dn(&mut params, common_name);
        let now = OffsetDateTime::now_utc();
        let not_after = now + Duration::days(days);
        params.not_before = not_after.min(now) - Duration::days(1);
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert: cert.pem(), key: key.serialize_pem() })
    }
}

/// The subject rvirtd sees for a client certificate `Ca::client` made (what a policy's
/// `subject` names).
pub fn client_subject(common_name: &str) -> String {
    format!("CN={common_name}, O=rvirt test")
}

/// Writes `contents` to `path`, with `mode`, replacing what was there.
pub fn write(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes()).with_context(|| format!("cannot write {}", path.display()))
}

/// What `make` wrote, and the CA that signed it.
pub struct Made {
    /// The CA, to sign more certificates with.
    pub authority: Ca,
    /// The CA certificate (give it to clients and to rvirtd's `tls.client_ca`).
    pub ca: PathBuf,
    /// The server's certificate and key (rvirtd's `tls.cert`, `tls.key`).
    pub server: (PathBuf, PathBuf),
    /// The client's certificate and key (`--tls-cert`, `--tls-key`).
    pub client: (PathBuf, PathBuf),
}

/// A CA, a server certificate and a client certificate (subject `client_subject(client)`) in
/// `dir`: `cacert.pem`, `servercert.pem`, `serverkey.pem`, `clientcert.pem`, `clientkey.pem`
/// (libvirt's names; keys 0600).
pub fn make(dir: &Path, client: &str) -> anyhow::Result<Made> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca = Ca::new("rvirt test CA")?;
    let (server, issued) = (ca.server()?, ca.client(client, 365)?);
    let path = |name: &str| dir.join(name);
    write(&path("cacert.pem"), &ca.cert_pem(), 0o644)?;
    write(&path("servercert.pem"), &server.cert, 0o644)?;
    write(&path("serverkey.pem"), &server.key, 0o600)?;
    write(&path("clientcert.pem"), &issued.cert, 0o644)?;
    write(&path("clientkey.pem"), &issued.key, 0o600)?;
    Ok(Made {
        authority: ca,
        ca: path("cacert.pem"),
        server: (path("servercert.pem"), path("serverkey.pem")),
        client: (path("clientcert.pem"), path("clientkey.pem")),
    })
}
