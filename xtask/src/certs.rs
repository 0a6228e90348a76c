//! `cargo xtask certs DIR [--client NAME]`: a throwaway CA, a server certificate for localhost
//! and a client certificate, for trying mutual TLS (see README, "Remote clients over mutual TLS").

use anyhow::{Context, bail};
use std::path::PathBuf;

pub(crate) const USAGE: &str = "usage: cargo xtask certs DIR [--client NAME]

Writes a new throwaway CA and the certificates it signs to DIR (created if missing), with
libvirt's file names: cacert.pem, servercert.pem and serverkey.pem (for rvirtd's [tls] table),
clientcert.pem and clientkey.pem (for rvirsh --tls-cert/--tls-key, or ~/.pki/rvirt/).
The server certificate names localhost, 127.0.0.1 and ::1. Keys are written 0600.
  --client NAME  the client certificate's common name [default: $USER, else rvirt-client]
Not for production: use your own CA there.";

pub(crate) fn run_task(args: &[String]) -> anyhow::Result<()> {
    let mut dir = None;
    let mut client =
        std::env::var("USER").ok().filter(|user| !user.is_empty()).unwrap_or_else(|| "rvirt-client".into());
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--client" => client = args.next().context("--client needs a name")?.clone(),
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n\n{USAGE}"),
            path if dir.is_none() => dir = Some(PathBuf::from(path)),
            extra => bail!("unexpected argument {extra}\n\n{USAGE}"),
        }
    }
    let dir = dir.with_context(|| format!("give the folder to write to\n\n{USAGE}"))?;
    let made = rvirt_tests::certs::make(&dir, &client)?;
    println!("wrote to {}:", dir.display());
    println!("  CA           {}", made.ca.display());
    println!("  server       {} (key {})", made.server.0.display(), made.server.1.display());
    println!(
        "  client       {} (key {}), subject \"{}\"",
        made.client.0.display(),
        made.client.1.display(),
        rvirt_tests::certs::client_subject(&client)
    );
    println!(
        "\nrvirtd.toml:\n  [tls]\n  listen = \"127.0.0.1:16514\"\n  cert = \"{}\"\n  key = \"{}\"\n  client_ca = \"{}\"",
        made.server.0.display(),
        made.server.1.display(),
        made.ca.display()
    );
    println!(
        "\nclient:\n  rvirsh -c tls://localhost --tls-ca {} --tls-cert {} --tls-key {} list --all",
        made.ca.display(),
        made.client.0.display(),
        made.client.1.display()
    );
    Ok(())
}
