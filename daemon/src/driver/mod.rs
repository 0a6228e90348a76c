//! `Driver`: the hypervisor behind the registry. The registry and the lifecycle table decide
//! *whether* an operation happens and what state it leaves; the driver makes it happen.
//!
//! Shaped for a real hypervisor (QEMU over QMP): every action is async and may take seconds, so
//! it runs outside the registry lock under the domain's job lock; a guest that changes state on
//! its own (powers off, crashes) is reported through the `DriverEvent` channel the driver is
//! given at start, and the daemon applies it as a change of its own.

pub mod test;

use crate::domain::{Domain, DomainState};
use crate::error::Result;
use crate::lifecycle::{Change, Op};
use crate::xml::{DomainDef, ParseDefaults};
use uuid::Uuid;

/// A hypervisor.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug + 'static {
    /// The URI scheme-like name of the driver ("test").
    fn name(&self) -> &'static str;

    /// Defaults for what domain XML leaves out (e.g. the guest architecture).
    fn parse_defaults(&self) -> ParseDefaults;

    /// What virDomainGetOSType answers for this definition.
    fn os_type(&self, def: &DomainDef) -> String;

    /// CPU time the guest has used, in nanoseconds.
    fn cpu_time_ns(&self, domain: &Domain) -> u64;

    /// Carries out `op` on `domain` (as it is before), which the lifecycle table allowed and
    /// which will leave `change` behind once this returns Ok. An error leaves the domain as it was.
    async fn execute(&self, domain: &Domain, op: &Op, change: &Change) -> Result<()>;

    /// Boots a new domain from CreateXML (it is not in the registry yet).
    async fn create(&self, domain: &Domain) -> Result<()>;
}

/// A state change the hypervisor made on its own (a guest powered off or crashed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverEvent {
    /// The domain.
    pub uuid: Uuid,
    /// Its new state.
    pub state: DomainState,
    /// The reason number for `state`.
    pub reason: i32,
}
