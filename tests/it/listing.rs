//! ListAllDomains over a fixture holding every reachable combination of attributes, checked for
//! all 65,536 flag values against an oracle written here, independently of the daemon's filter;
//! unknown bits refused with nothing changed.

use rvirt::{Connection, DomainState, ListFlags};
use rvirt_tests::{domain_xml, start_daemon, start_daemon_tcp};
use std::collections::BTreeSet;
use tonic::Code;

/// What a fixture domain is meant to be: the oracle's only input.
#[derive(Debug, Clone, Copy)]
struct Attrs {
    active: bool,
    persistent: bool,
    state: DomainState,
    managed_save: bool,
    autostart: bool,
    snapshot: bool,
    checkpoint: bool,
}

/// Every combination the API can reach: snapshots and checkpoints exclude each other, transient
/// domains are always active, active domains never have a managed-save image (starting discards
/// it), inactive domains are always shut off.
fn combinations() -> Vec<Attrs> {
    let mut all = Vec::new();
    for persistent in [true, false] {
        for active in [true, false] {
            if !active && !persistent {
                continue;
            }
            let states: &[DomainState] = if active {
                &[DomainState::Running, DomainState::Paused, DomainState::PmSuspended]
            } else {
                &[DomainState::Shutoff]
            };
            for &state in states {
                for managed_save in [false, true] {
                    if managed_save && active {
                        continue;
                    }
                    for autostart in [false, true] {
                        for (snapshot, checkpoint) in [(false, false), (true, false), (false, true)] {
                            all.push(Attrs {
                                active,
                                persistent,
                                state,
                                managed_save,
                                autostart,
                                snapshot,
                                checkpoint,
                            });
                        }
                    }
                }
            }
        }
    }
    all
}

/// Builds one domain with `attrs` through the public API.
async fn build(conn: &Connection, name: &str, n: u32, attrs: Attrs) {
    let xml = domain_xml(name, n);
    let change = if attrs.persistent {
        conn.define_xml(&xml, 0).await.unwrap()
    } else {
        conn.create_xml(&xml, 0).await.unwrap()
    };
    let dom = conn.domain(change.domain.unwrap().domain);
    if attrs.persistent && (attrs.active || attrs.checkpoint || attrs.managed_save) {
        dom.create().await.unwrap();
    }
    if attrs.checkpoint {
        dom.checkpoint_create_xml("<domaincheckpoint><name>cp</name></domaincheckpoint>", 0).await.unwrap();
    }
    if attrs.snapshot {
        dom.snapshot_create_xml("<domainsnapshot><name>snap</name></domainsnapshot>", 0).await.unwrap();
    }
    if !attrs.active && dom.is_active().await.unwrap() {
        if attrs.managed_save {
            dom.managed_save().await.unwrap();
        } else {
            dom.destroy().await.unwrap();
        }
    }
    match attrs.state {
        DomainState::Paused => drop(dom.suspend().await.unwrap()),
        DomainState::PmSuspended => drop(dom.pm_suspend_for_duration(0, 0).await.unwrap()),
        _ => {}
    }
    if attrs.autostart {
        dom.set_autostart(true).await.unwrap();
    }
}

/// The oracle: libvirt's rule spelled out bit by bit. For each group, the bits set in `flags`
/// and whether any of them holds for the domain.
fn oracle(flags: u32, a: &Attrs) -> bool {
    let bit = |n: u32| flags & (1 << n) != 0;
    let other = !matches!(a.state, DomainState::Running | DomainState::Paused | DomainState::Shutoff);
    let groups: [&[(bool, bool)]; 7] = [
        &[(bit(0), a.active), (bit(1), !a.active)],
        &[(bit(2), a.persistent), (bit(3), !a.persistent)],
        &[
            (bit(4), a.state == DomainState::Running),
            (bit(5), a.state == DomainState::Paused),
            (bit(6), a.state == DomainState::Shutoff),
            (bit(7), other),
        ],
        &[(bit(8), a.managed_save), (bit(9), !a.managed_save)],
        &[(bit(10), a.autostart), (bit(11), !a.autostart)],
        &[(bit(12), a.snapshot), (bit(13), !a.snapshot)],
        &[(bit(14), a.checkpoint), (bit(15), !a.checkpoint)],
    ];
    groups.iter().all(|group| {
        let requested: Vec<bool> = group.iter().filter(|(set, _)| *set).map(|(_, holds)| *holds).collect();
        requested.is_empty() || requested.contains(&true)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flag_value_matches_the_oracle() {
    let daemon = start_daemon().await;
    let fixture: Vec<(String, Attrs)> =
        combinations().into_iter().enumerate().map(|(i, attrs)| (format!("dom{i:02}"), attrs)).collect();
    assert_eq!(fixture.len(), 48);
    for (i, (name, attrs)) in fixture.iter().enumerate() {
        build(&daemon.client, name, i as u32, *attrs).await;
    }
    // The fixture is what it was meant to be, attribute by attribute.
    let all = daemon.client.list_all_domains(ListFlags::empty()).await.unwrap();
    assert_eq!(all.domains.len(), fixture.len());
    for (name, a) in &fixture {
        let d = all.domains.iter().find(|d| d.domain.name == *name).unwrap();
        let seen = (d.domain.id != -1, d.persistent, d.state, d.has_managed_save, d.autostart);
        assert_eq!(seen, (a.active, a.persistent, a.state, a.managed_save, a.autostart), "{name}");
        assert_eq!((d.snapshot_count > 0, d.checkpoint_count > 0), (a.snapshot, a.checkpoint), "{name}");
    }
    let generation = all.generation;

    let fixture = std::sync::Arc::new(fixture);
    let workers = 4u32;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let (conn, fixture) = (daemon.client.clone(), fixture.clone());
        tasks.push(tokio::spawn(async move {
            let mut checked = 0u32;
            for flags in (worker..=0xFFFF).step_by(workers as usize) {
                let request = rvirt::proto::ListAllDomainsRequest { flags, ..Default::default() };
                let listing = conn.list_all_domains_raw(request).await.unwrap();
                assert_eq!(listing.generation, generation, "listing changed nothing");
                let got: Vec<&str> = listing.domains.iter().map(|d| d.domain.name.as_str()).collect();
                let unique: BTreeSet<&str> = got.iter().copied().collect();
                assert_eq!(unique.len(), got.len(), "flags {flags:#06x}: a domain listed twice");
                let want: BTreeSet<&str> =
                    fixture.iter().filter(|(_, a)| oracle(flags, a)).map(|(n, _)| n.as_str()).collect();
                assert_eq!(unique, want, "flags {flags:#06x}");
                if flags % 16 == 0 {
                    let (count, _) =
                        conn.count_all_domains(ListFlags::from_bits_retain(flags)).await.unwrap();
                    assert_eq!(count, want.len() as u64, "count-only, flags {flags:#06x}");
                }
                checked += 1;
            }
            checked
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 65_536);
    daemon.stop().await;
}

#[tokio::test]
async fn unknown_bits_are_invalid_argument_and_change_nothing() {
    let daemon = start_daemon_tcp().await;
    daemon.client.define_xml(&domain_xml("a", 1), 0).await.unwrap();
    let before = daemon.client.list_all_domains(ListFlags::empty()).await.unwrap();
    let mut bad: Vec<u32> = (16..32).map(|bit| 1u32 << bit).collect();
    bad.extend([0x1_0003, 0xFFFF_FFFF, 0x8000_0001]);
    for flags in bad {
        for count_only in [false, true] {
            let request = rvirt::proto::ListAllDomainsRequest { flags, count_only, ..Default::default() };
            let err = daemon.client.list_all_domains_raw(request).await.unwrap_err();
            assert_eq!(err.code, Code::InvalidArgument, "{flags:#x}");
            assert_eq!(err.libvirt_name, "VIR_ERR_INVALID_ARG");
            let unknown = flags & !0xFFFF;
            assert!(err.message.contains(&format!("{unknown:#x}")), "{}", err.message);
        }
    }
    assert_eq!(daemon.client.list_all_domains(ListFlags::empty()).await.unwrap(), before);
    daemon.stop().await;
}

#[tokio::test]
async fn impossible_combinations_are_empty_not_errors() {
    let daemon = start_daemon().await;
    let dom = daemon.client.define_xml(&domain_xml("a", 1), 0).await.unwrap();
    daemon.client.domain(dom.domain.unwrap().domain).create().await.unwrap();
    daemon.client.define_xml(&domain_xml("b", 2), 0).await.unwrap();
    for flags in [
        ListFlags::INACTIVE | ListFlags::TRANSIENT,
        ListFlags::ACTIVE | ListFlags::SHUTOFF,
        ListFlags::INACTIVE | ListFlags::OTHER,
    ] {
        assert!(daemon.client.list_all_domains(flags).await.unwrap().domains.is_empty(), "{flags:?}");
    }
    daemon.stop().await;
}
