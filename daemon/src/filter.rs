//! `ListFilter`: virConnectListAllDomainsFlags turned into a predicate over `Domain`s.
//!
//! Seven groups of two (or four) bits; a group with no bit set does not filter, bits inside a
//! group OR, groups AND (libvirt's virDomainObjMatchFilter). Knows nothing of locks or prost.

use crate::domain::{Domain, DomainState};
use crate::error::{Error, Result};

/// libvirt's virConnectListAllDomainsFlags values.
pub mod flags {
    /// VIR_CONNECT_LIST_DOMAINS_ACTIVE.
    pub const ACTIVE: u32 = 1 << 0;
    /// VIR_CONNECT_LIST_DOMAINS_INACTIVE.
    pub const INACTIVE: u32 = 1 << 1;
    /// VIR_CONNECT_LIST_DOMAINS_PERSISTENT.
    pub const PERSISTENT: u32 = 1 << 2;
    /// VIR_CONNECT_LIST_DOMAINS_TRANSIENT.
    pub const TRANSIENT: u32 = 1 << 3;
    /// VIR_CONNECT_LIST_DOMAINS_RUNNING.
    pub const RUNNING: u32 = 1 << 4;
    /// VIR_CONNECT_LIST_DOMAINS_PAUSED.
    pub const PAUSED: u32 = 1 << 5;
    /// VIR_CONNECT_LIST_DOMAINS_SHUTOFF.
    pub const SHUTOFF: u32 = 1 << 6;
    /// VIR_CONNECT_LIST_DOMAINS_OTHER: every state but running, paused and shut off.
    pub const OTHER: u32 = 1 << 7;
    /// VIR_CONNECT_LIST_DOMAINS_MANAGEDSAVE.
    pub const MANAGEDSAVE: u32 = 1 << 8;
    /// VIR_CONNECT_LIST_DOMAINS_NO_MANAGEDSAVE.
    pub const NO_MANAGEDSAVE: u32 = 1 << 9;
    /// VIR_CONNECT_LIST_DOMAINS_AUTOSTART.
    pub const AUTOSTART: u32 = 1 << 10;
    /// VIR_CONNECT_LIST_DOMAINS_NO_AUTOSTART.
    pub const NO_AUTOSTART: u32 = 1 << 11;
    /// VIR_CONNECT_LIST_DOMAINS_HAS_SNAPSHOT.
    pub const HAS_SNAPSHOT: u32 = 1 << 12;
    /// VIR_CONNECT_LIST_DOMAINS_NO_SNAPSHOT.
    pub const NO_SNAPSHOT: u32 = 1 << 13;
    /// VIR_CONNECT_LIST_DOMAINS_HAS_CHECKPOINT.
    pub const HAS_CHECKPOINT: u32 = 1 << 14;
    /// VIR_CONNECT_LIST_DOMAINS_NO_CHECKPOINT.
    pub const NO_CHECKPOINT: u32 = 1 << 15;
    /// Every defined bit (VIR_CONNECT_LIST_DOMAINS_FILTERS_ALL).
    pub const ALL: u32 = 0xFFFF;
}

/// A validated flag set, ready to test domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListFilter {
    flags: u32,
}

impl ListFilter {
    /// Validates `flags`: any bit above NO_CHECKPOINT is refused, as libvirt's virCheckFlags.
    pub fn from_flags(flags: u32) -> Result<Self> {
        Error::check_flags(flags, flags::ALL, "virConnectListAllDomains")?;
        Ok(ListFilter { flags })
    }

    /// The flags it was built from.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether `domain` passes every group.
    pub fn matches(&self, domain: &Domain) -> bool {
        let flags = self.flags;
        // A group passes when none of its bits is set, or the bit the domain satisfies is.
        let group = |yes: u32, no: u32, holds: bool| {
            flags & (yes | no) == 0 || flags & if holds { yes } else { no } != 0
        };
        let state = match domain.state {
            DomainState::Running => flags::RUNNING,
            DomainState::Paused => flags::PAUSED,
            DomainState::Shutoff => flags::SHUTOFF,
            _ => flags::OTHER,
        };
        const STATES: u32 = flags::RUNNING | flags::PAUSED | flags::SHUTOFF | flags::OTHER;
        flags == 0
            || (group(flags::ACTIVE, flags::INACTIVE, domain.is_active())
                && group(flags::PERSISTENT, flags::TRANSIENT, domain.persistent)
                && (flags & STATES == 0 || flags & state != 0)
                && group(flags::MANAGEDSAVE, flags::NO_MANAGEDSAVE, domain.has_managed_save)
                && group(flags::AUTOSTART, flags::NO_AUTOSTART, domain.autostart)
                && group(flags::HAS_SNAPSHOT, flags::NO_SNAPSHOT, !domain.moments.snapshots.is_empty())
                && group(flags::HAS_CHECKPOINT, flags::NO_CHECKPOINT, !domain.moments.checkpoints.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{DomainDef, ParseDefaults};
    use std::sync::Arc;

    fn domain(state: DomainState, persistent: bool) -> Domain {
        let xml = "<domain type='test'><name>d</name><memory>1</memory><os><type>hvm</type></os></domain>";
        let def = DomainDef::parse(xml, &ParseDefaults { arch: "i686" }).unwrap();
        let mut domain = Domain::new(Arc::new(def), persistent);
        domain.state = state;
        domain.id = if state == DomainState::Shutoff { -1 } else { 1 };
        domain
    }

    #[test]
    fn unknown_bits_are_refused_with_only_those_bits_named() {
        let err = ListFilter::from_flags(0x10003).unwrap_err();
        assert!(matches!(err, Error::UnsupportedFlags { bits: 0x10000, .. }), "{err:?}");
        assert!(ListFilter::from_flags(1 << 31).is_err());
        assert!(ListFilter::from_flags(flags::ALL).is_ok());
    }

    #[test]
    fn groups_and_across_or_within() {
        let running_transient = domain(DomainState::Running, false);
        let paused = domain(DomainState::Paused, true);
        let off = domain(DomainState::Shutoff, true);
        let pm = domain(DomainState::PmSuspended, true);
        let f = |bits| ListFilter::from_flags(bits).unwrap();
        assert!(f(0).matches(&off) && f(flags::ALL).matches(&off));
        assert!(f(flags::RUNNING | flags::TRANSIENT).matches(&running_transient));
        assert!(!f(flags::RUNNING | flags::TRANSIENT).matches(&paused));
        assert!(f(flags::RUNNING | flags::PAUSED).matches(&paused));
        assert!(f(flags::OTHER).matches(&pm) && !f(flags::OTHER).matches(&off));
        assert!(!f(flags::ACTIVE | flags::SHUTOFF).matches(&off));
        assert!(f(flags::INACTIVE | flags::SHUTOFF | flags::NO_SNAPSHOT).matches(&off));
    }
}
