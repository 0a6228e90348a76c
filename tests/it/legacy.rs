//! The legacy enumeration's races, each forced deterministically by one change placed between two
//! of its calls; and the same changes around ListAllDomains, which shows none of them.

use rvirt::{Connection, DomainState, LegacyStep, ListFlags, legacy_list_all_with};
use rvirt_tests::{TestDaemon, domain_xml, start_daemon};
use std::collections::BTreeMap;

/// Three persistent domains: `run` running (id 1), `off` and `spare` shut off; plus a transient
/// `temp` running (id 2).
async fn fixture() -> TestDaemon {
    let daemon = start_daemon().await;
    let conn = &daemon.client;
    for (i, name) in ["run", "off", "spare"].into_iter().enumerate() {
        conn.define_xml(&domain_xml(name, i as u32), 0).await.unwrap();
    }
    conn.lookup_by_name("run").await.unwrap().create().await.unwrap();
    conn.create_xml(&domain_xml("temp", 9), 0).await.unwrap();
    daemon
}

fn names(listing: &rvirt::LegacyListing) -> Vec<String> {
    let mut names: Vec<String> = listing.domains.iter().map(|e| e.domain.name.clone()).collect();
    names.sort();
    names
}

/// Runs `change` once, just before the legacy enumeration makes the call `at`.
async fn legacy_with_change<F, Fut>(conn: &Connection, at: LegacyStep, change: F) -> rvirt::LegacyListing
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut change = Some(change);
    legacy_list_all_with(conn, |step| {
        let run = if step == at { change.take() } else { None };
        async move {
            if let Some(change) = run {
                change().await;
            }
        }
    })
    .await
    .unwrap()
}

/// The atomic listing as (name -> state), asserting no name appears twice.
async fn atomic(conn: &Connection) -> (BTreeMap<String, DomainState>, u64) {
    let listing = conn.list_all_domains(ListFlags::empty()).await.unwrap();
    let map: BTreeMap<String, DomainState> =
        listing.domains.iter().map(|d| (d.domain.name.clone(), d.state)).collect();
    assert_eq!(map.len(), listing.domains.len(), "a domain listed twice");
    (map, listing.generation)
}

fn expect(pairs: &[(&str, DomainState)]) -> BTreeMap<String, DomainState> {
    pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

#[tokio::test]
async fn legacy_skips_a_domain_that_starts_between_the_two_halves() {
    let daemon = fixture().await;
    let conn = daemon.client.clone();
    let legacy = legacy_with_change(&daemon.client, LegacyStep::NumOfDefinedDomains, || async move {
        conn.lookup_by_name("off").await.unwrap().create().await.unwrap();
    })
    .await;
    // `off` existed throughout, but was inactive for the first half and active for the second.
    assert_eq!(names(&legacy), ["run", "spare", "temp"]);

    // The same change around ListAllDomains: before it, `off` is shut off; after it, running.
    let daemon = fixture().await;
    let (before, g0) = atomic(&daemon.client).await;
    use DomainState::*;
    assert_eq!(before, expect(&[("off", Shutoff), ("run", Running), ("spare", Shutoff), ("temp", Running)]));
    let change = daemon.client.lookup_by_name("off").await.unwrap().create().await.unwrap();
    let (after, g1) = atomic(&daemon.client).await;
    assert_eq!(after, expect(&[("off", Running), ("run", Running), ("spare", Shutoff), ("temp", Running)]));
    assert_eq!((change.generation, g1), (g0 + 1, g0 + 1));
}

#[tokio::test]
async fn legacy_lists_a_domain_twice_when_it_stops_between_the_two_halves() {
    let daemon = fixture().await;
    let conn = daemon.client.clone();
    let legacy = legacy_with_change(&daemon.client, LegacyStep::NumOfDefinedDomains, || async move {
        conn.lookup_by_name("run").await.unwrap().destroy().await.unwrap();
    })
    .await;
    assert_eq!(names(&legacy), ["off", "run", "run", "spare", "temp"]);
    let states: Vec<DomainState> =
        legacy.domains.iter().filter(|e| e.domain.name == "run").map(|e| e.state).collect();
    assert_eq!(states, [DomainState::Running, DomainState::Shutoff]);

    let daemon = fixture().await;
    daemon.client.lookup_by_name("run").await.unwrap().destroy().await.unwrap();
    let (after, _) = atomic(&daemon.client).await;
    assert_eq!(after.len(), 4);
    assert_eq!(after["run"], DomainState::Shutoff);
}

#[tokio::test]
async fn legacy_lookup_fails_when_the_domain_vanishes_between_list_and_lookup() {
    let daemon = fixture().await;
    let temp = daemon.client.lookup_by_name("temp").await.unwrap();
    let temp_id = temp.id.id;
    let legacy = legacy_with_change(&daemon.client, LegacyStep::LookupById(temp_id), || async move {
        temp.destroy().await.unwrap();
    })
    .await;
    assert!(legacy.ids.contains(&temp_id));
    assert_eq!(legacy.vanished, [LegacyStep::LookupById(temp_id)]);
    assert_eq!(names(&legacy), ["off", "run", "spare"]);

    // ListAllDomains needs no lookup: each answer holds every domain it names.
    let daemon = fixture().await;
    let (before, _) = atomic(&daemon.client).await;
    assert!(before.contains_key("temp"));
    daemon.client.lookup_by_name("temp").await.unwrap().destroy().await.unwrap();
    let (after, _) = atomic(&daemon.client).await;
    assert!(!after.contains_key("temp") && after.len() == 3);
}

#[tokio::test]
async fn legacy_list_is_truncated_when_the_count_grows_before_the_list() {
    let daemon = fixture().await;
    let conn = daemon.client.clone();
    let legacy = legacy_with_change(&daemon.client, LegacyStep::ListDomains, || async move {
        conn.lookup_by_name("spare").await.unwrap().create().await.unwrap();
    })
    .await;
    // NumOfDomains said 2; three were active when ListDomains(2) ran, so one was cut off, and
    // `spare` is no longer inactive either: it is missing from the enumeration.
    assert_eq!((legacy.num_active, legacy.ids.len()), (2, 2));
    assert_eq!(daemon.client.num_of_domains().await.unwrap(), 3);
    assert!(!names(&legacy).contains(&"spare".to_string()));

    let daemon = fixture().await;
    daemon.client.lookup_by_name("spare").await.unwrap().create().await.unwrap();
    let (after, _) = atomic(&daemon.client).await;
    assert_eq!(after.values().filter(|s| **s == DomainState::Running).count(), 3);
    assert_eq!(after.len(), 4);
}

#[tokio::test]
async fn legacy_calls_keep_libvirt_semantics() {
    let daemon = fixture().await;
    let conn = &daemon.client;
    assert_eq!(conn.num_of_domains().await.unwrap(), 2);
    assert_eq!(conn.list_domains(1).await.unwrap().len(), 1);
    assert_eq!(conn.list_domains(0).await.unwrap(), Vec::<i32>::new());
    assert_eq!(conn.num_of_defined_domains().await.unwrap(), 2);
    assert_eq!(conn.list_defined_domains(1).await.unwrap().len(), 1);
    for err in [conn.list_domains(-1).await.unwrap_err(), conn.list_defined_domains(-1).await.unwrap_err()] {
        assert_eq!(err.code, tonic::Code::InvalidArgument);
    }
    assert_eq!(conn.lookup_by_id(-1).await.unwrap_err().code, tonic::Code::InvalidArgument);
    for id in [0, 999] {
        assert_eq!(conn.lookup_by_id(id).await.unwrap_err().kind, rvirt::ErrorKind::NoDomain);
    }
    // Only active domains have ids; names are case-sensitive.
    assert_eq!(conn.lookup_by_id(1).await.unwrap().name(), "run");
    assert_eq!(conn.lookup_by_name("RUN").await.unwrap_err().kind, rvirt::ErrorKind::NoDomain);
    let run = conn.lookup_by_name("run").await.unwrap();
    let upper = run.id.uuid.simple().to_string().to_uppercase();
    assert_eq!(conn.lookup_by_uuid_string(&upper).await.unwrap().id, run.id);
    daemon.stop().await;
}
