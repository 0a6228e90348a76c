//! `Policy::parse` on any text: it never panics; an accepted policy answers for any caller and
//! domain, never with a right but not `read`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::caller::Identity;
use rvirtd::policy::{Policy, Rights};
use std::sync::OnceLock;
use uuid::Uuid;

/// One caller of each kind.
fn identities() -> &'static [Identity] {
    static IDENTITIES: OnceLock<Vec<Identity>> = OnceLock::new();
    IDENTITIES.get_or_init(|| {
        let address = "127.0.0.1:40000".parse().expect("an address");
        vec![
            Identity::Unix { uid: 1000, gid: 1000, pid: 1 },
            Identity::Unix { uid: 0, gid: 0, pid: 1 },
            Identity::Certificate {
                subject: "CN=alice,O=example".into(),
                sans: vec!["alice.example".into()],
                address,
            },
            Identity::Anonymous { address },
            Identity::Daemon,
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(policy) = Policy::parse(text) else { return };
    assert_eq!(policy.is_empty(), policy.len() == 0);
    let uuid = Uuid::from_u128(0x5254_0000_0000_4000_8000_0000_0000_0001);
    for identity in identities() {
        for name in ["web-1", "db-a", "x", "[", "*"] {
            let rights = policy.rights(identity, name, uuid);
            assert!(rights.is_empty() || rights.contains(Rights::READ), "{rights:?} without read");
            let _ = rights.words();
        }
    }
});
