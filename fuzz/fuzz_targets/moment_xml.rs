//! `MomentDef::parse` on any text, as a snapshot and as a checkpoint: it never panics, no
//! document is both, and an accepted name passes the name check.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::xml::{MomentDef, check_name};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let snapshot = MomentDef::parse(text, "domainsnapshot");
    let checkpoint = MomentDef::parse(text, "domaincheckpoint");
    assert!(snapshot.is_err() || checkpoint.is_err(), "one root, two kinds");
    for moment in [snapshot, checkpoint].into_iter().flatten() {
        if let Some(name) = &moment.name {
            assert!(check_name(name).is_ok(), "accepted name {name:?} fails the name check");
        }
    }
});
