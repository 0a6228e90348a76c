//! libvirt's lifecycle events (virDomainEventType and its detail enums, with libvirt's numbers and
//! virsh's words for them) and the bits of `DomainEvent.changed`: the one definition the daemon
//! and the client share.

/// virDomainEventType.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum EventType {
    /// A persistent definition was added or changed.
    Defined = 0,
    /// The persistent definition was removed.
    Undefined = 1,
    /// The domain started.
    Started = 2,
    /// The domain was paused.
    Suspended = 3,
    /// The domain was unpaused.
    Resumed = 4,
    /// The domain stopped.
    Stopped = 5,
    /// The guest shut down (before it stops).
    Shutdown = 6,
    /// The guest suspended itself (power management).
    PmSuspended = 7,
    /// The guest crashed.
    Crashed = 8,
}

impl EventType {
    const ALL: [EventType; 9] = [
        EventType::Defined,
        EventType::Undefined,
        EventType::Started,
        EventType::Suspended,
        EventType::Resumed,
        EventType::Stopped,
        EventType::Shutdown,
        EventType::PmSuspended,
        EventType::Crashed,
    ];

    /// The event type with libvirt's number.
    pub fn from_i32(value: i32) -> Option<Self> {
        Self::ALL.get(usize::try_from(value).ok()?).copied()
    }

    /// virsh's word for the event (`virsh event`'s virshDomainEventToString).
    pub fn virsh_name(self) -> &'static str {
        [
            "Defined",
            "Undefined",
            "Started",
            "Suspended",
            "Resumed",
            "Stopped",
            "Shutdown",
            "PMSuspended",
            "Crashed",
        ][self as usize]
    }

    /// virsh's words for a detail number of this event type ("unknown" for one it does not know).
    pub fn detail_name(self, detail: i32) -> &'static str {
        let names: &[&str] = match self {
            EventType::Defined => &["Added", "Updated", "Renamed", "Snapshot"],
            EventType::Undefined => &["Removed", "Renamed"],
            EventType::Started => &["Booted", "Migrated", "Restored", "Snapshot", "Event wakeup"],
            EventType::Suspended => &[
                "Paused",
                "Migrated",
                "I/O Error",
                "Watchdog",
                "Restored",
                "Snapshot",
                "API error",
                "Post-copy",
                "Post-copy Error",
            ],
            EventType::Resumed => &["Unpaused", "Migrated", "Snapshot", "Post-copy", "Post-copy Error"],
            EventType::Stopped => {
                &["Shutdown", "Destroyed", "Crashed", "Migrated", "Saved", "Failed", "Snapshot"]
            }
            EventType::Shutdown => {
                &["Finished", "Finished after guest request", "Finished after host request"]
            }
            EventType::PmSuspended => &["Memory", "Disk"],
            EventType::Crashed => &["Panicked", "Crashloaded"],
        };
        usize::try_from(detail).ok().and_then(|i| names.get(i)).copied().unwrap_or("unknown")
    }
}

/// The detail numbers rvirt sends (virDomainEvent<Type>DetailType in libvirt).
pub mod detail {
    /// VIR_DOMAIN_EVENT_DEFINED_ADDED.
    pub const DEFINED_ADDED: i32 = 0;
    /// VIR_DOMAIN_EVENT_DEFINED_UPDATED.
    pub const DEFINED_UPDATED: i32 = 1;
    /// VIR_DOMAIN_EVENT_DEFINED_FROM_SNAPSHOT.
    pub const DEFINED_FROM_SNAPSHOT: i32 = 3;
    /// VIR_DOMAIN_EVENT_UNDEFINED_REMOVED.
    pub const UNDEFINED_REMOVED: i32 = 0;
    /// VIR_DOMAIN_EVENT_STARTED_BOOTED.
    pub const STARTED_BOOTED: i32 = 0;
    /// VIR_DOMAIN_EVENT_STARTED_RESTORED.
    pub const STARTED_RESTORED: i32 = 2;
    /// VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT.
    pub const STARTED_FROM_SNAPSHOT: i32 = 3;
    /// VIR_DOMAIN_EVENT_STARTED_WAKEUP.
    pub const STARTED_WAKEUP: i32 = 4;
    /// VIR_DOMAIN_EVENT_SUSPENDED_PAUSED.
    pub const SUSPENDED_PAUSED: i32 = 0;
    /// VIR_DOMAIN_EVENT_SUSPENDED_IOERROR.
    pub const SUSPENDED_IOERROR: i32 = 2;
    /// VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG.
    pub const SUSPENDED_WATCHDOG: i32 = 3;
    /// VIR_DOMAIN_EVENT_SUSPENDED_RESTORED.
    pub const SUSPENDED_RESTORED: i32 = 4;
    /// VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT.
    pub const SUSPENDED_FROM_SNAPSHOT: i32 = 5;
    /// VIR_DOMAIN_EVENT_RESUMED_UNPAUSED.
    pub const RESUMED_UNPAUSED: i32 = 0;
    /// VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT.
    pub const RESUMED_FROM_SNAPSHOT: i32 = 2;
    /// VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN.
    pub const STOPPED_SHUTDOWN: i32 = 0;
    /// VIR_DOMAIN_EVENT_STOPPED_DESTROYED.
    pub const STOPPED_DESTROYED: i32 = 1;
    /// VIR_DOMAIN_EVENT_STOPPED_CRASHED.
    pub const STOPPED_CRASHED: i32 = 2;
    /// VIR_DOMAIN_EVENT_STOPPED_SAVED.
    pub const STOPPED_SAVED: i32 = 4;
    /// VIR_DOMAIN_EVENT_STOPPED_FAILED.
    pub const STOPPED_FAILED: i32 = 5;
    /// VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT.
    pub const STOPPED_FROM_SNAPSHOT: i32 = 6;
    /// VIR_DOMAIN_EVENT_PMSUSPENDED_MEMORY.
    pub const PMSUSPENDED_MEMORY: i32 = 0;
    /// VIR_DOMAIN_EVENT_CRASHED_PANICKED.
    pub const CRASHED_PANICKED: i32 = 0;
}

/// The bits of `DomainEvent.changed`: which fields of the domain's `DomainSummary` a change
/// altered, so a watcher can follow each of them (libvirt has events only for lifecycle).
pub mod changed {
    /// `state` or `reason`.
    pub const STATE: u32 = 1;
    /// `id` (started or stopped).
    pub const ID: u32 = 1 << 1;
    /// `persistent`.
    pub const PERSISTENT: u32 = 1 << 2;
    /// `autostart`.
    pub const AUTOSTART: u32 = 1 << 3;
    /// `has_managed_save`.
    pub const MANAGED_SAVE: u32 = 1 << 4;
    /// `snapshot_count`, or any snapshot's metadata (also the current snapshot).
    pub const SNAPSHOTS: u32 = 1 << 5;
    /// `checkpoint_count`, or any checkpoint's metadata.
    pub const CHECKPOINTS: u32 = 1 << 6;
    /// The definition in effect (`name`, `title` and the XML), or the one kept for the next start.
    pub const DEFINITION: u32 = 1 << 7;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_words_are_libvirts() {
        assert_eq!(EventType::from_i32(5), Some(EventType::Stopped));
        assert_eq!(EventType::from_i32(9), None);
        assert_eq!(EventType::Stopped.virsh_name(), "Stopped");
        assert_eq!(EventType::Stopped.detail_name(detail::STOPPED_DESTROYED), "Destroyed");
        assert_eq!(EventType::Started.detail_name(detail::STARTED_WAKEUP), "Event wakeup");
        assert_eq!(EventType::PmSuspended.virsh_name(), "PMSuspended");
        assert_eq!(EventType::Defined.detail_name(7), "unknown");
    }
}
