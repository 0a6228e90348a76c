//! Flag validation: `ListFilter::from_flags` on the input's first 4 bytes accepts exactly the
//! defined bits and gives them back, and its predicate never panics; `api::snapshot_create` and
//! `api::checkpoint_create` accept exactly their known flags, in the combinations libvirt allows.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rvirtd::domain::{Domain, DomainState};
use rvirtd::api;
use rvirtd::filter::{ListFilter, flags};
use rvirtd::lifecycle::flags::{
    CHECKPOINT_CREATE_QUIESCE, SNAPSHOT_CREATE_ALL, SNAPSHOT_CREATE_CURRENT, SNAPSHOT_CREATE_HALT,
    SNAPSHOT_CREATE_NO_METADATA, SNAPSHOT_CREATE_REDEFINE,
};
use rvirtd::xml::{DomainDef, ParseDefaults};
use std::sync::{Arc, OnceLock};

const DOMAIN: &str = "<domain type='test'><name>d</name><memory>1</memory><os><type>hvm</type></os></domain>";

/// A domain in each state, persistent or not.
fn domains() -> &'static [Domain] {
    static DOMAINS: OnceLock<Vec<Domain>> = OnceLock::new();
    DOMAINS.get_or_init(|| {
        let def = Arc::new(DomainDef::parse(DOMAIN, &ParseDefaults { arch: "i686" }).expect("valid"));
        let states = [DomainState::Running, DomainState::Paused, DomainState::Shutoff, DomainState::Crashed];
        let mut all = Vec::new();
        for (index, state) in states.into_iter().enumerate() {
            for persistent in [true, false] {
                let mut domain = Domain::new(def.clone(), persistent);
                domain.state = state;
                domain.id = if state == DomainState::Shutoff { -1 } else { index as i32 + 1 };
                domain.autostart = persistent && index % 2 == 0;
                domain.has_managed_save = index == 2;
                all.push(domain);
            }
        }
        all
    })
}

fuzz_target!(|data: &[u8]| {
    let mut word = [0u8; 4];
    let n = data.len().min(4);
    word[..n].copy_from_slice(&data[..n]);
    let bits = u32::from_le_bytes(word);
    match ListFilter::from_flags(bits) {
        Ok(filter) => {
            assert_eq!(bits & !flags::ALL, 0, "undefined bits {bits:#x} accepted");
            assert_eq!(filter.flags(), bits);
            for domain in domains() {
                let _ = filter.matches(domain);
            }
        }
        Err(_) => assert_ne!(bits & !flags::ALL, 0, "defined bits {bits:#x} refused"),
    }
    let snapshot = api::snapshot_create("<domainsnapshot><name>s</name></domainsnapshot>", bits);
    let (redefine, current) = (SNAPSHOT_CREATE_REDEFINE, SNAPSHOT_CREATE_CURRENT);
    let allowed = if bits & (redefine | current) == 0 {
        bits & !SNAPSHOT_CREATE_ALL == 0
    } else {
        bits & redefine != 0
            && bits & (SNAPSHOT_CREATE_NO_METADATA | SNAPSHOT_CREATE_HALT) == 0
            && bits & !(SNAPSHOT_CREATE_ALL | redefine | current) == 0
    };
    assert_eq!(snapshot.is_ok(), allowed, "snapshot flags {bits:#x}");
    let checkpoint = api::checkpoint_create("<domaincheckpoint/>", bits);
    assert_eq!(checkpoint.is_ok(), bits & !CHECKPOINT_CREATE_QUIESCE == 0, "checkpoint flags {bits:#x}");
});
