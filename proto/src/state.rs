//! `DomainState` and the reason numbers: libvirt's virDomainState and vir<State>Reason values
//! with virsh's words for them, the one definition the daemon and the client share (the wire
//! carries the numbers; `v1::DomainState` is the generated enum of the same values).

/// virDomainState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum DomainState {
    /// No state.
    NoState = 0,
    /// Running.
    Running = 1,
    /// Blocked ("idle").
    Blocked = 2,
    /// Paused.
    Paused = 3,
    /// Shutting down.
    Shutdown = 4,
    /// Shut off.
    Shutoff = 5,
    /// Crashed.
    Crashed = 6,
    /// Suspended by guest power management.
    PmSuspended = 7,
}

impl DomainState {
    /// Every state, in libvirt's order.
    pub const ALL: [DomainState; 8] = [
        DomainState::NoState,
        DomainState::Running,
        DomainState::Blocked,
        DomainState::Paused,
        DomainState::Shutdown,
        DomainState::Shutoff,
        DomainState::Crashed,
        DomainState::PmSuspended,
    ];

    /// The state with libvirt's number.
    pub fn from_i32(value: i32) -> Option<Self> {
        Self::ALL.get(usize::try_from(value).ok()?).copied()
    }

    /// virsh's words for the state.
    pub fn virsh_name(self) -> &'static str {
        match self {
            DomainState::NoState => "no state",
            DomainState::Running => "running",
            DomainState::Blocked => "idle",
            DomainState::Paused => "paused",
            DomainState::Shutdown => "in shutdown",
            DomainState::Shutoff => "shut off",
            DomainState::Crashed => "crashed",
            DomainState::PmSuspended => "pmsuspended",
        }
    }

    /// virsh's words for a reason number of this state (`domstate --reason`).
    pub fn reason_name(self, reason: i32) -> &'static str {
        let names: &[&str] = match self {
            DomainState::NoState | DomainState::Blocked | DomainState::PmSuspended => &["unknown"],
            DomainState::Running => &[
                "unknown",
                "booted",
                "migrated",
                "restored",
                "from snapshot",
                "unpaused",
                "migration canceled",
                "save canceled",
                "event wakeup",
                "crashed",
                "post-copy",
                "post-copy failed",
            ],
            DomainState::Paused => &[
                "unknown",
                "user",
                "migrating",
                "saving",
                "dumping",
                "I/O error",
                "watchdog",
                "from snapshot",
                "shutting down",
                "creating snapshot",
                "crashed",
                "starting up",
                "post-copy",
                "post-copy failed",
                "api error",
            ],
            DomainState::Shutdown => &["unknown", "user"],
            DomainState::Shutoff => &[
                "unknown",
                "shutdown",
                "destroyed",
                "crashed",
                "migrated",
                "saved",
                "failed",
                "from snapshot",
                "daemon",
            ],
            DomainState::Crashed => &["unknown", "panicked"],
        };
        usize::try_from(reason).ok().and_then(|i| names.get(i)).copied().unwrap_or("unknown")
    }
}

impl std::fmt::Display for DomainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.virsh_name())
    }
}

/// The reason numbers rvirt sets (vir<State>Reason in libvirt); `DomainState::reason_name` says them as virsh does.
pub mod reason {
    /// Any state: VIR_DOMAIN_*_UNKNOWN.
    pub const UNKNOWN: i32 = 0;
    /// VIR_DOMAIN_RUNNING_BOOTED.
    pub const RUNNING_BOOTED: i32 = 1;
    /// VIR_DOMAIN_RUNNING_RESTORED.
    pub const RUNNING_RESTORED: i32 = 3;
    /// VIR_DOMAIN_RUNNING_FROM_SNAPSHOT.
    pub const RUNNING_FROM_SNAPSHOT: i32 = 4;
    /// VIR_DOMAIN_RUNNING_UNPAUSED.
    pub const RUNNING_UNPAUSED: i32 = 5;
    /// VIR_DOMAIN_RUNNING_WAKEUP.
    pub const RUNNING_WAKEUP: i32 = 8;
    /// VIR_DOMAIN_PAUSED_USER.
    pub const PAUSED_USER: i32 = 1;
    /// VIR_DOMAIN_PAUSED_IOERROR.
    pub const PAUSED_IOERROR: i32 = 5;
    /// VIR_DOMAIN_PAUSED_WATCHDOG.
    pub const PAUSED_WATCHDOG: i32 = 6;
    /// VIR_DOMAIN_PAUSED_FROM_SNAPSHOT.
    pub const PAUSED_FROM_SNAPSHOT: i32 = 7;
    /// VIR_DOMAIN_SHUTOFF_SHUTDOWN.
    pub const SHUTOFF_SHUTDOWN: i32 = 1;
    /// VIR_DOMAIN_SHUTOFF_DESTROYED.
    pub const SHUTOFF_DESTROYED: i32 = 2;
    /// VIR_DOMAIN_SHUTOFF_CRASHED.
    pub const SHUTOFF_CRASHED: i32 = 3;
    /// VIR_DOMAIN_SHUTOFF_SAVED.
    pub const SHUTOFF_SAVED: i32 = 5;
    /// VIR_DOMAIN_SHUTOFF_FAILED.
    pub const SHUTOFF_FAILED: i32 = 6;
    /// VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT.
    pub const SHUTOFF_FROM_SNAPSHOT: i32 = 7;
}
