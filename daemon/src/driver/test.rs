//! The `test` driver: like libvirt's `test:///default`, domains live in memory and every
//! transition takes effect at once. No guest runs; there is nothing to fail. What a real
//! hypervisor reports on its own, tests inject with `TestDriver::inject`, through the same event
//! pump a real driver's events take.

use super::{Driver, DriverEvent, EventSink, Gone, Outcome, Reattached, Usage};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::lifecycle::{Change, Op};
use crate::xml::{DomainDef, ParseDefaults};

/// The in-memory driver.
#[derive(Debug)]
pub struct TestDriver {
    events: EventSink,
}

impl TestDriver {
    /// A test driver whose injected events go to `events`.
    pub fn new(events: EventSink) -> Self {
        TestDriver { events }
    }

    /// Reports `event` as if the hypervisor had made the change on its own (a guest powered
    /// off, crashed). The daemon applies it asynchronously, as one generation.
    pub async fn inject(&self, event: DriverEvent) -> Result<()> {
        self.events.send(event).await.map_err(|_| Error::driver("the daemon's event pump has stopped"))
    }
}

#[async_trait::async_trait]
impl Driver for TestDriver {
    fn name(&self) -> &'static str {
        "test"
    }

    fn parse_defaults(&self) -> ParseDefaults {
        // libvirt's test driver advertises i686 guests first, so that is its default arch.
        ParseDefaults { arch: "i686" }
    }

    fn os_type(&self, _def: &DomainDef) -> String {
        // libvirt's testDomainGetOSType answers "linux" for every domain.
        "linux".to_owned()
    }

    fn usage(&self, _domain: &Domain) -> Usage {
        // Differs from libvirt: its test driver reports the wall clock as CPU time; no guest runs
        // here, so rvirt reports none.
        Usage::default()
    }

    async fn execute(&self, _domain: &Domain, _op: &Op, _change: &Change) -> Result<Outcome> {
        Ok(Outcome::default())
    }

    async fn reattach(&self, domain: &Domain) -> std::result::Result<Reattached, Gone> {
        // Differs from libvirt: its test driver keeps nothing across restarts; rvirt's keeps
        // running domains running, as a real hypervisor's guests outlive the daemon.
        Ok(Reattached { state: domain.state, reason: domain.reason, runtime: None })
    }
}
