//! The store's unit tests: formats and loading on the real file system; failure atomicity and
//! power cuts on the model disk (`model.rs`).

use super::format::{diff, journal_text};
use super::fs::write_atomic;
use super::*;
use crate::domain::{Domain, DomainState};
use crate::xml::{DomainDef, ParseDefaults};
use std::fs;
use std::sync::Arc;
use uuid::Uuid;

use crate::lifecycle::{self, Op};
use crate::xml::MomentDef;

const DEFAULTS: ParseDefaults = ParseDefaults { arch: "i686" };

fn def(name: &str) -> DomainDef {
    let xml = format!(
        "<domain type='test'><name>{name}</name><memory>1</memory><os><type>hvm</type></os>\
         <devices><disk type='file'><source file='/x'/><target dev='vda'/></disk></devices></domain>"
    );
    DomainDef::parse(&xml, &DEFAULTS).unwrap()
}

/// Applies `op` and records it, returning the new domain.
fn step(store: &Store, domain: &Domain, op: Op, id: i32) -> Domain {
    let mut next = lifecycle::apply(domain, &op).unwrap().domain.unwrap();
    if next.is_active() || next.state == DomainState::Running {
        next.id = if domain.is_active() { domain.id } else { id };
    }
    store.record(domain.uuid(), Some(domain), Some(&next)).unwrap();
    next
}

#[test]
fn every_field_survives_a_reload() {
    let dir = tempfile::tempdir().unwrap();
    let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
    let store = Store::open(&state, &runtime).unwrap();
    let mut a = Domain::new(Arc::new(def("a&amp;'b")), true);
    store.record(a.uuid(), None, Some(&a)).unwrap();
    a = step(&store, &a, Op::Start, 4);
    a = step(&store, &a, Op::SetAutostart(true), 0);
    for name in ["s1", "../x", ".hidden"] {
        let moment = MomentDef { name: Some(name.into()), description: "d<".into() };
        a = step(&store, &a, Op::SnapshotCreate(moment, 0, 7), 0);
    }
    a = step(&store, &a, Op::Suspend, 0);
    let mut b = Domain::new(Arc::new(def("b")), true);
    store.record(b.uuid(), None, Some(&b)).unwrap();
    b = step(&store, &b, Op::Start, 5);
    let cp = MomentDef { name: Some("c".into()), description: String::new() };
    b = step(&store, &b, Op::CheckpointCreate(cp, 9), 0);
    b = step(&store, &b, Op::ManagedSave, 0);
    store.write_counters(Counters { generation: 40, next_id: 6 }).unwrap();
    drop(store);

    let store = Store::open(&state, &runtime).unwrap();
    let loaded = store.load(&DEFAULTS).unwrap();
    let mut expected = vec![a, b];
    expected.sort_by_key(|d| d.uuid());
    let mut got = loaded.domains;
    got.sort_by_key(|d| d.uuid());
    assert_eq!(got, expected);
    assert_eq!((loaded.generation, loaded.next_id, loaded.rebooted), (40, 6, true));
    // A second daemon on the same folder is refused.
    assert!(Store::open(&state, &runtime).is_err());
}

#[test]
fn a_reboot_keeps_persistent_domains_shut_off_and_drops_transient_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
    let store = Store::open(&state, &runtime).unwrap();
    store.load(&DEFAULTS).unwrap();
    let p = Domain::new(Arc::new(def("p")), true);
    store.record(p.uuid(), None, Some(&p)).unwrap();
    step(&store, &p, Op::Start, 1);
    let mut t = Domain::new(Arc::new(def("t")), false);
    t.id = 2;
    t.state = DomainState::Running;
    store.record(t.uuid(), None, Some(&t)).unwrap();
    step(&store, &t, Op::SnapshotCreate(MomentDef::default(), 0, 3), 0);
    drop(store);
    fs::remove_dir_all(&runtime).unwrap();
    let loaded = Store::open(&state, &runtime).unwrap().load(&DEFAULTS).unwrap();
    assert!(loaded.rebooted);
    assert_eq!(loaded.domains.len(), 1);
    assert_eq!((loaded.domains[0].name(), loaded.domains[0].state), ("p", DomainState::Shutoff));
    assert!(!state.join("snapshot").join(t.uuid().to_string()).exists());
}

#[test]
fn damaged_and_foreign_files_are_set_aside_and_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
    let store = Store::open(&state, &runtime).unwrap();
    let good = Domain::new(Arc::new(def("good")), true);
    store.record(good.uuid(), None, Some(&good)).unwrap();
    let bad_uuid = Uuid::new_v4();
    fs::write(state.join(format!("config/{bad_uuid}.xml")), "<domain type='test'><name>trunc").unwrap();
    fs::write(state.join("config/notes.txt"), "hello").unwrap();
    fs::write(state.join(format!("config/{}.xml", Uuid::new_v4())), good.def.to_xml(None)).unwrap();
    drop(store);
    let loaded = Store::open(&state, &runtime).unwrap().load(&DEFAULTS).unwrap();
    assert_eq!(loaded.domains.iter().map(Domain::name).collect::<Vec<_>>(), ["good"]);
    let aside = fs::read_dir(state.join("config"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".damaged"))
        .count();
    assert_eq!(aside, 3);
}

#[test]
fn an_interrupted_multi_file_change_is_finished_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (state, runtime) = (dir.path().join("state"), dir.path().join("run"));
    let store = Store::open(&state, &runtime).unwrap();
    store.load(&DEFAULTS).unwrap();
    let mut a = Domain::new(Arc::new(def("a")), true);
    store.record(a.uuid(), None, Some(&a)).unwrap();
    a = step(&store, &a, Op::Start, 1);
    // Managed save touches the status file and the save image: write only the journal, as
    // if the daemon died right after it.
    let saved = lifecycle::apply(&a, &Op::ManagedSave).unwrap().domain.unwrap();
    let ops = diff(a.uuid(), Some(&a), Some(&saved));
    assert_eq!(ops.len(), 2);
    write_atomic(&RealFs, &state.join("journal"), "1-00000000.xml", journal_text(&ops).as_bytes()).unwrap();
    drop(store);
    let loaded = Store::open(&state, &runtime).unwrap().load(&DEFAULTS).unwrap();
    assert_eq!(loaded.domains, vec![saved]);
    assert_eq!(fs::read_dir(state.join("journal")).unwrap().count(), 0);
}
