//! Flag types with libvirt's bit values.

bitflags::bitflags! {
    /// virConnectListAllDomainsFlags. Groups AND, bits inside a group OR; an empty group does not
    /// filter.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ListFlags: u32 {
        /// Domains with an id.
        const ACTIVE = 1 << 0;
        /// Domains without one.
        const INACTIVE = 1 << 1;
        /// Defined domains.
        const PERSISTENT = 1 << 2;
        /// Domains that vanish when they stop.
        const TRANSIENT = 1 << 3;
        /// State running.
        const RUNNING = 1 << 4;
        /// State paused.
        const PAUSED = 1 << 5;
        /// State shut off.
        const SHUTOFF = 1 << 6;
        /// Any other state.
        const OTHER = 1 << 7;
        /// With a managed-save image.
        const MANAGEDSAVE = 1 << 8;
        /// Without one.
        const NO_MANAGEDSAVE = 1 << 9;
        /// Marked for autostart.
        const AUTOSTART = 1 << 10;
        /// Not marked.
        const NO_AUTOSTART = 1 << 11;
        /// With at least one snapshot.
        const HAS_SNAPSHOT = 1 << 12;
        /// With none.
        const NO_SNAPSHOT = 1 << 13;
        /// With at least one checkpoint.
        const HAS_CHECKPOINT = 1 << 14;
        /// With none.
        const NO_CHECKPOINT = 1 << 15;
    }
}

bitflags::bitflags! {
    /// virDomainUndefineFlagsValues that rvirt accepts.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct UndefineFlags: u32 {
        /// Also remove the managed-save image.
        const MANAGED_SAVE = 1;
        /// Also remove snapshot metadata.
        const SNAPSHOTS_METADATA = 2;
    }
}

bitflags::bitflags! {
    /// virDomainSnapshotDeleteFlags / virDomainCheckpointDeleteFlags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MomentDeleteFlags: u32 {
        /// The moment and all its descendants.
        const CHILDREN = 1;
        /// Only the metadata.
        const METADATA_ONLY = 2;
        /// Only the descendants.
        const CHILDREN_ONLY = 4;
    }
}

bitflags::bitflags! {
    /// virDomainSnapshotListFlags: what ListAllSnapshots, SnapshotNum, SnapshotListAllChildren
    /// and SnapshotNumChildren select. LEAVES and NO_LEAVES must both hold; in each other group
    /// the bits OR, and a group with no bit set does not filter.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SnapshotListFlags: u32 {
        /// Whole-domain listings: only snapshots without a parent.
        const ROOTS = 1 << 0;
        /// Children listings: every descendant, not only the children (ROOTS' bit).
        const DESCENDANTS = 1 << 0;
        /// With metadata libvirt manages (every rvirt snapshot).
        const METADATA = 1 << 1;
        /// Without children.
        const LEAVES = 1 << 2;
        /// With children.
        const NO_LEAVES = 1 << 3;
        /// Without metadata (no rvirt snapshot).
        const NO_METADATA = 1 << 4;
        /// Taken while shut off.
        const INACTIVE = 1 << 5;
        /// Taken while active, memory included.
        const ACTIVE = 1 << 6;
        /// Disk-only (no rvirt snapshot).
        const DISK_ONLY = 1 << 7;
        /// Internal (every rvirt snapshot).
        const INTERNAL = 1 << 8;
        /// External (no rvirt snapshot).
        const EXTERNAL = 1 << 9;
        /// Parents before children, depth first, rather than creation order.
        const TOPOLOGICAL = 1 << 10;
    }
}

bitflags::bitflags! {
    /// virDomainSnapshotRevertFlags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SnapshotRevertFlags: u32 {
        /// Run the domain after reverting, whatever the snapshot's state.
        const RUNNING = 1;
        /// Leave it paused after reverting.
        const PAUSED = 2;
        /// Revert even when it is risky.
        const FORCE = 4;
        /// Re-initialise the NVRAM (refused by rvirtd, as by libvirt's test driver).
        const RESET_NVRAM = 8;
    }
}

bitflags::bitflags! {
    /// virDomainRebootFlagValues: how the guest is asked to reboot; empty lets the hypervisor
    /// choose.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct RebootFlags: u32 {
        /// The ACPI power button.
        const ACPI_POWER_BTN = 1;
        /// The guest agent.
        const GUEST_AGENT = 2;
        /// initctl.
        const INITCTL = 4;
        /// A signal.
        const SIGNAL = 8;
        /// Paravirtual reboot.
        const PARAVIRT = 16;
    }
}

/// VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE: redefine an existing snapshot's metadata.
pub const SNAPSHOT_CREATE_REDEFINE: u32 = 1;
/// VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT: with REDEFINE, make the snapshot the current one.
pub const SNAPSHOT_CREATE_CURRENT: u32 = 2;
/// VIR_DOMAIN_SNAPSHOT_XML_SECURE.
pub const SNAPSHOT_XML_SECURE: u32 = 1;
/// VIR_DOMAIN_SNAPSHOT_CREATE_HALT: stop the domain once the snapshot is taken.
pub const SNAPSHOT_CREATE_HALT: u32 = 8;
/// VIR_DOMAIN_XML_INACTIVE: the next-boot definition.
pub const XML_INACTIVE: u32 = 2;
