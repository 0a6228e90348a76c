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

/// VIR_DOMAIN_SNAPSHOT_CREATE_HALT: stop the domain once the snapshot is taken.
pub const SNAPSHOT_CREATE_HALT: u32 = 8;
/// VIR_DOMAIN_XML_INACTIVE: the next-boot definition.
pub const XML_INACTIVE: u32 = 2;
