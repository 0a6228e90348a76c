//! The one event path: what a hypervisor does on its own (here injected through the test
//! driver, exactly where a real driver sends its events) becomes one generation each, visible to
//! every listing; reports about an earlier run or that change nothing commit nothing.

use rvirt::{DomainState, ListFlags};
use rvirt_tests::{domain_xml, start_daemon};
use rvirtd::domain::{DomainState as State, reason};
use rvirtd::driver::DriverEvent;
use std::time::{Duration, Instant};

/// Polls the listing until `done` holds, within 5 s; returns the listing's generation.
async fn until(conn: &rvirt::Connection, done: impl Fn(&rvirt::Listing) -> bool) -> rvirt::Listing {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let listing = conn.list_all_domains(ListFlags::empty()).await.unwrap();
        if done(&listing) {
            return listing;
        }
        assert!(Instant::now() < deadline, "the event was not applied: {listing:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_guest_that_stops_on_its_own_is_one_generation_and_stale_reports_change_nothing() {
    let daemon = start_daemon().await;
    let (conn, driver) = (&daemon.client, daemon.test_driver.clone().unwrap());
    let persistent = conn.define_xml(&domain_xml("p", 1), 0).await.unwrap().domain.unwrap();
    let started = conn.domain(persistent.domain.clone()).create().await.unwrap();
    let running = started.domain.unwrap();
    let transient = conn.create_xml(&domain_xml("t", 2), 0).await.unwrap();
    let transient = transient.domain.unwrap();
    let before = conn.list_all_domains(ListFlags::empty()).await.unwrap().generation;

    // About an earlier run of `p` (its id was another): dropped.
    let uuid = running.domain.uuid;
    // (It says crashed where the real one says shutdown, so applying it would show.)
    let stale = DriverEvent {
        uuid,
        id: running.domain.id + 7,
        state: State::Shutoff,
        reason: reason::SHUTOFF_CRASHED,
    };
    driver.inject(stale).await.unwrap();
    // A report of the state it is already in: nothing to commit either.
    let same =
        DriverEvent { uuid, id: running.domain.id, state: State::Running, reason: reason::RUNNING_BOOTED };
    driver.inject(same).await.unwrap();
    // The guest powers off by itself.
    let off =
        DriverEvent { uuid, id: running.domain.id, state: State::Shutoff, reason: reason::SHUTOFF_SHUTDOWN };
    driver.inject(off).await.unwrap();
    let listing =
        until(conn, |l| l.domains.iter().any(|d| d.domain.uuid == uuid && d.state == DomainState::Shutoff))
            .await;
    assert_eq!(
        listing.generation,
        before + 1,
        "exactly one generation for the power-off, none for the others"
    );
    let p = listing.domains.iter().find(|d| d.domain.uuid == uuid).unwrap();
    assert_eq!((p.reason, p.domain.id), (reason::SHUTOFF_SHUTDOWN, -1), "shut off, reason shutdown, no id");

    // The transient one crashes and stays (preserved), then stops: it is gone.
    let t = transient.domain.clone();
    let crash = DriverEvent { uuid: t.uuid, id: t.id, state: State::Crashed, reason: 1 };
    driver.inject(crash.clone()).await.unwrap();
    driver.inject(DriverEvent { state: State::Shutoff, reason: 3, ..crash }).await.unwrap();
    let listing = until(conn, |l| l.domains.iter().all(|d| d.domain.uuid != t.uuid)).await;
    assert_eq!(listing.generation, before + 3, "crashed, then removed: two generations");
    let (state, _) = conn.domain(persistent.domain).get_state().await.unwrap();
    assert_eq!(state, DomainState::Shutoff);
    daemon.stop().await;
}
