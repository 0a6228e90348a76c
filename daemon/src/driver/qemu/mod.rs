//! The `qemu` driver (in progress).

use crate::config::Config;
use super::EventSink;

/// Real guests, one QEMU process each.
#[derive(Debug)]
pub struct QemuDriver;

impl QemuDriver {
    /// Opens the driver.
    pub fn open(_config: &Config, _events: EventSink) -> anyhow::Result<QemuDriver> {
        anyhow::bail!("the qemu driver is not built yet")
    }
}
