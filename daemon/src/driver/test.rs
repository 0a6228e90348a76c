//! The `test` driver: like libvirt's `test:///default`, domains live in memory and every
//! transition takes effect at once. No guest runs; there is nothing to fail.

use super::Driver;
use crate::domain::Domain;
use crate::error::Result;
use crate::lifecycle::{Change, Op};
use crate::xml::{DomainDef, ParseDefaults};

/// The in-memory driver.
#[derive(Debug, Default)]
pub struct TestDriver;

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

    fn cpu_time_ns(&self, _domain: &Domain) -> u64 {
        // Differs from libvirt: its test driver reports the wall clock as CPU time; no guest runs
        // here, so rvirt reports none.
        0
    }

    async fn execute(&self, _domain: &Domain, _op: &Op, _change: &Change) -> Result<()> {
        Ok(())
    }

    async fn create(&self, _domain: &Domain) -> Result<()> {
        Ok(())
    }
}
