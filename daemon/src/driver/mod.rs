//! `Driver`: the hypervisor behind the registry. `lifecycle` decides *whether* an operation
//! happens and what it leaves now; the driver makes it happen, and reports later what the
//! hypervisor did on its own.
//!
//! Every action is async and may take seconds: it runs under the domain's job lock, never under
//! the registry lock, in a task that finishes whatever its caller does. What happens later (a
//! guest powered off after an ACPI shutdown, QEMU died, the guest reset itself) comes back as a
//! `DriverEvent` through the one `EventSink` the driver was built with; the daemon's event pump
//! applies each as a generation of its own.

pub mod qemu;
pub mod test;

use crate::config::{Config, DriverKind};
use crate::domain::{Domain, DomainState};
use crate::error::Result;
use crate::lifecycle::{Change, Op, Settles};
use crate::xml::{DomainDef, ParseDefaults};
use std::sync::Arc;
use uuid::Uuid;

/// A hypervisor.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug + 'static {
    /// The URI scheme-like name of the driver ("test", "qemu").
    fn name(&self) -> &'static str;

    /// Defaults for what domain XML leaves out (e.g. the guest architecture).
    fn parse_defaults(&self) -> ParseDefaults;

    /// Refuses a definition the driver cannot honour (an element it cannot create), naming what.
    fn check_def(&self, _def: &DomainDef) -> Result<()> {
        Ok(())
    }

    /// When `op`'s outcome is known: at once (the test driver) or only once the hypervisor
    /// reports it (an ACPI shutdown only asks the guest).
    fn settles(&self, _op: &Op) -> Settles {
        Settles::AtOnce
    }

    /// What virDomainGetOSType answers for this definition.
    fn os_type(&self, def: &DomainDef) -> String;

    /// CPU time the guest has used, in nanoseconds, and the memory it holds, in KiB.
    fn usage(&self, domain: &Domain) -> Usage;

    /// Carries out `op` on `domain` (as it is before; for CreateXML the new domain, not yet in
    /// the registry), which the lifecycle table allowed and which leaves `change` behind once
    /// this returns Ok, as amended by the `Outcome`. An error leaves the guest as it was.
    async fn execute(&self, domain: &Domain, op: &Op, change: &Change) -> Result<Outcome>;

    /// At daemon start, for a domain the state folder records as active: finds its guest again
    /// and resumes watching it. `Err` when the guest is gone (the state it is to be recorded in).
    async fn reattach(&self, domain: &Domain) -> std::result::Result<Reattached, Gone>;

    /// At daemon start, after every `reattach`: removes what starts that were never recorded
    /// left behind (a guest the daemon was starting when it died). `active` is every domain
    /// recorded as running.
    async fn sweep(&self, _active: &[Uuid]) {}
}

/// What a driver learned carrying out an operation, beyond what the lifecycle table decided.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The runtime record of a guest this started.
    pub runtime: Option<Runtime>,
    /// The state and reason the guest is really in, where only the hypervisor knew (a guest
    /// restored from an image saved paused stays paused).
    pub state: Option<(DomainState, i32)>,
}

/// A running domain's driver-owned record (for QEMU: pid, process start time, monitor socket),
/// persisted in its status file so a restarted daemon can re-attach. Opaque to the daemon.
pub type Runtime = Arc<str>;

/// What `Driver::usage` reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU time used, in nanoseconds.
    pub cpu_time_ns: u64,
    /// Memory in use, in KiB; `None` where the driver cannot tell (the definition's is shown).
    pub memory_kib: Option<u64>,
}

/// A guest found again at start: its state now, and its runtime record (refreshed).
#[derive(Debug, Clone)]
pub struct Reattached {
    /// State and reason, as the hypervisor reports them now.
    pub state: DomainState,
    /// vir<State>Reason.
    pub reason: i32,
    /// The refreshed record.
    pub runtime: Option<Runtime>,
}

/// A guest that did not survive while the daemon was down: the state to record it in.
#[derive(Debug, Clone, Copy)]
pub struct Gone {
    /// Shut off, as a rule.
    pub state: DomainState,
    /// Why (crashed, shutdown, ...).
    pub reason: i32,
}

/// A state change the hypervisor made on its own (a guest powered off, crashed, reset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverEvent {
    /// The domain.
    pub uuid: Uuid,
    /// The id of the run the event is about: an event about an earlier run (the domain was
    /// destroyed and started again meanwhile) is stale and dropped.
    pub id: i32,
    /// Its new state.
    pub state: DomainState,
    /// The reason number for `state`.
    pub reason: i32,
}

/// Where a driver sends its events; the daemon's event pump reads the other end.
pub type EventSink = tokio::sync::mpsc::Sender<DriverEvent>;

/// The other end of an `EventSink`.
pub type EventPump = tokio::sync::mpsc::Receiver<DriverEvent>;

/// A channel for one driver's events. Bounded: a driver that outruns the pump waits (its monitor
/// reading pauses), it never grows the queue without limit.
pub fn events() -> (EventSink, EventPump) {
    tokio::sync::mpsc::channel(1024)
}

/// The driver `config` names, sending its events to `events`.
pub fn open(config: &Config, events: EventSink) -> anyhow::Result<Arc<dyn Driver>> {
    Ok(match config.driver {
        DriverKind::Test => Arc::new(test::TestDriver::new(events)),
        DriverKind::Qemu => Arc::new(qemu::QemuDriver::open(config, events)?),
    })
}
