//! `rvirt::Uri::parse` on any text: it never panics; a unix URI names an absolute path, a
//! TCP or TLS one a host and a port from 1 to 65535; and what it names, written back as a URI,
//! parses to the same thing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirt::Uri;

/// `uri` written as text again.
fn format(uri: &Uri) -> String {
    match uri {
        Uri::Unix { path, read_only } => {
            let path = path.to_str().expect("parsed from text");
            format!("unix://{path}{}", if *read_only { "?readonly" } else { "" })
        }
        Uri::Tcp { address } => format!("tcp://{address}"),
        Uri::Tls { host, port } if host.contains(':') => format!("tls://[{host}]:{port}"),
        Uri::Tls { host, port } => format!("tls://{host}:{port}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let uri = match Uri::parse(text) {
        Ok(uri) => uri,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    match &uri {
        Uri::Unix { path, .. } => assert!(path.is_absolute(), "{text:?} gave a relative path {path:?}"),
        Uri::Tcp { address } => {
            let (host, port) = address.rsplit_once(':').expect("host:port");
            assert!(!host.is_empty() && port.parse::<u16>().is_ok_and(|port| port != 0), "{address:?}");
        }
        Uri::Tls { host, port } => assert!(!host.is_empty() && *port != 0, "{text:?}"),
    }
    let again = format(&uri);
    assert_eq!(Uri::parse(&again).ok().as_ref(), Some(&uri), "{text:?} written back as {again:?}");
});
