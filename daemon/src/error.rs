//! `Error`: every way a daemon operation fails, one variant per kind, named after libvirt's
//! error numbers. The gRPC status mapping lives in `grpc/status.rs`, not here.

use crate::domain::DomainState;
use std::io;
use uuid::Uuid;

/// How a request named a domain, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainRef {
    /// By UUID.
    Uuid(Uuid),
    /// By name.
    Name(String),
    /// By id (active domains only).
    Id(i32),
    /// By a client's handle: its UUID, and the name the client knows it by (libvirt's protocol).
    Handle(Uuid, String),
}

impl std::fmt::Display for DomainRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DomainRef::Uuid(uuid) => write!(f, "no domain with matching uuid '{uuid}'"),
            DomainRef::Name(name) => write!(f, "no domain with matching name '{name}'"),
            DomainRef::Id(id) => write!(f, "no domain with matching id {id}"),
            DomainRef::Handle(uuid, name) => write!(f, "no domain with matching uuid '{uuid}' ({name})"),
        }
    }
}

/// A failed daemon operation. A failure changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// VIR_ERR_NO_DOMAIN.
    #[error("Domain not found: {0}")]
    NoDomain(DomainRef),
    /// VIR_ERR_NO_DOMAIN_SNAPSHOT.
    #[error("Domain snapshot not found: no domain snapshot with matching name '{0}'")]
    NoSnapshot(String),
    /// VIR_ERR_NO_DOMAIN_CHECKPOINT.
    #[error("Domain checkpoint not found: no domain checkpoint with matching name '{0}'")]
    NoCheckpoint(String),
    /// VIR_ERR_NO_DOMAIN_SNAPSHOT for a snapshot asked for by its relation, not its name: the
    /// domain has no current snapshot, a root snapshot has no parent. Carries libvirt's wording.
    #[error("domain snapshot not found: {0}")]
    NoRelatedSnapshot(String),
    /// VIR_ERR_NO_DOMAIN_CHECKPOINT for a checkpoint asked for by its relation (a root's parent).
    #[error("domain checkpoint not found: {0}")]
    NoRelatedCheckpoint(String),
    /// Name or UUID already taken by another domain (libvirt reports VIR_ERR_OPERATION_FAILED).
    #[error("domain '{name}' already exists with uuid {uuid}")]
    NameTaken {
        /// The contested name.
        name: String,
        /// The UUID of the domain that holds it.
        uuid: Uuid,
    },
    /// The UUID belongs to a domain of another name (libvirt: VIR_ERR_OPERATION_FAILED).
    #[error("domain '{name}' is already defined with uuid {uuid}")]
    UuidTaken {
        /// The name of the domain that holds the UUID.
        name: String,
        /// The contested UUID.
        uuid: Uuid,
    },
    /// A snapshot or checkpoint of that name exists (libvirt: VIR_ERR_OPERATION_FAILED).
    #[error("domain moment {0} already exists")]
    MomentExists(String),
    /// VIR_ERR_INVALID_ARG: a bad argument, named with what is wrong with it.
    #[error("invalid argument: {0}")]
    InvalidArg(String),
    /// VIR_ERR_INVALID_ARG as libvirt's public API reports it, before any driver is asked
    /// (virCheckNonNegativeArg, virCheckExclusiveFlags, VIR_REQUIRE_FLAG): in its domain API's
    /// error domain on libvirt's protocol, otherwise as `InvalidArg`; its message is libvirt's
    /// whole (virReportInvalidArg adds no "invalid argument: ").
    #[error("{0}")]
    ApiArg(String),
    /// VIR_ERR_INVALID_ARG from virCheckFlags: bits this call does not know.
    #[error("invalid argument: unsupported flags ({bits:#x}) in function {function}")]
    UnsupportedFlags {
        /// Only the unknown bits, as libvirt reports them.
        bits: u32,
        /// The libvirt function the RPC mirrors.
        function: &'static str,
    },
    /// VIR_ERR_XML_ERROR: the document could not be parsed or lacks what it must have.
    #[error("XML error: {0}")]
    Xml(String),
    /// VIR_ERR_OPERATION_INVALID: the domain is not in a state that allows the operation.
    #[error("requested operation is not valid: {reason}")]
    OperationInvalid {
        /// libvirt's wording of what is wrong.
        reason: String,
        /// The state the domain was in.
        state: DomainState,
    },
    /// VIR_ERR_OPERATION_UNSUPPORTED: the operation cannot be done on this domain as it is
    /// configured or populated (e.g. a snapshot while checkpoints exist).
    #[error("operation not supported: {0}")]
    OperationUnsupported(String),
    /// VIR_ERR_CONFIG_UNSUPPORTED: the domain's definition lacks what the operation needs.
    #[error("unsupported configuration: {0}")]
    ConfigUnsupported(String),
    /// VIR_ERR_CONFIG_UNSUPPORTED at define time: the definition asks for what this driver
    /// cannot honour (an element, a device kind); refused as a bad argument, never ignored.
    #[error("unsupported configuration: {0}")]
    DefUnsupported(String),
    /// A watch from a generation the history no longer holds: list again.
    #[error("{0}")]
    HistoryTooOld(String),
    /// A watch from a generation of another daemon incarnation: list again.
    #[error("{0}")]
    OtherIncarnation(String),
    /// A call a read-only connection may not make (VIR_ERR_OPERATION_DENIED): libvirt's words
    /// after "operation forbidden: " (`Error::read_only` for a change).
    #[error("operation forbidden: {0}")]
    ReadOnly(String),
    /// The access policy does not grant the caller this on a domain it may see
    /// (VIR_ERR_ACCESS_DENIED).
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// A watch that started under another access policy: list again.
    #[error("{0}")]
    PolicyChanged(String),
    /// A page token whose snapshot is no longer retained: the listing must start again.
    #[error("page token expired: {0}")]
    PageExpired(String),
    /// Writing the state folder failed (VIR_ERR_SYSTEM_ERROR); the message names the file and
    /// what the OS said ("no space left on device", ...).
    #[error("failed to persist {what}: {}: {}", .path.display(), describe_io(.source))]
    Persist {
        /// What was being written.
        what: String,
        /// The file or folder the failed operation was on.
        path: std::path::PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The state folder can take no more changes until rvirtd restarts: it was removed or
    /// replaced under the running daemon, or a failed change could not be undone.
    #[error("operation failed: {0}")]
    StoreUnusable(String),
    /// A resource limit of the daemon was reached (too many heavy requests waiting, the budget
    /// for unread answers spent); retrying later can succeed (VIR_ERR_RESOURCE_BUSY).
    #[error("resource busy: {0}")]
    Busy(String),
    /// The hypervisor failed (VIR_ERR_INTERNAL_ERROR). The chain says why, down to the cause:
    /// the QMP error class and description, QEMU's exit status and the last lines of its log.
    #[error("internal error: {0:#}")]
    Driver(anyhow::Error),
    /// The hypervisor refused or could not do what was asked, for a reason the caller can fix
    /// (a disk image missing, the emulator not installed) (VIR_ERR_OPERATION_FAILED).
    #[error("operation failed: {0:#}")]
    OperationFailed(anyhow::Error),
    /// The hypervisor did not answer in time (a hung or stopped QEMU); only its own domain waits
    /// (VIR_ERR_OPERATION_TIMEOUT).
    #[error("Timed out during operation: {0}")]
    Timeout(String),
}

impl Error {
    /// A change refused on a read-only connection: "read only access prevents `what`".
    pub fn read_only(what: impl std::fmt::Display) -> Error {
        Error::ReadOnly(format!("read only access prevents {what}"))
    }

    /// libvirt's name for this kind of error, sent in every status's ErrorInfo.
    pub fn libvirt_name(&self) -> &'static str {
        match self {
            Error::NoDomain(_) => "VIR_ERR_NO_DOMAIN",
            Error::NoSnapshot(_) | Error::NoRelatedSnapshot(_) => "VIR_ERR_NO_DOMAIN_SNAPSHOT",
            Error::NoCheckpoint(_) | Error::NoRelatedCheckpoint(_) => "VIR_ERR_NO_DOMAIN_CHECKPOINT",
            Error::NameTaken { .. } | Error::UuidTaken { .. } | Error::MomentExists(_) => "VIR_ERR_DOM_EXIST",
            Error::InvalidArg(_) | Error::ApiArg(_) | Error::UnsupportedFlags { .. } => "VIR_ERR_INVALID_ARG",
            Error::Xml(_) => "VIR_ERR_XML_ERROR",
            Error::OperationInvalid { .. }
            | Error::PageExpired(_)
            | Error::HistoryTooOld(_)
            | Error::OtherIncarnation(_)
            | Error::PolicyChanged(_) => "VIR_ERR_OPERATION_INVALID",
            Error::ReadOnly(_) => "VIR_ERR_OPERATION_DENIED",
            Error::AccessDenied(_) => "VIR_ERR_ACCESS_DENIED",
            Error::OperationUnsupported(_) => "VIR_ERR_OPERATION_UNSUPPORTED",
            Error::ConfigUnsupported(_) | Error::DefUnsupported(_) => "VIR_ERR_CONFIG_UNSUPPORTED",
            Error::Persist { .. } => "VIR_ERR_SYSTEM_ERROR",
            Error::StoreUnusable(_) => "VIR_ERR_OPERATION_FAILED",
            Error::Busy(_) => "VIR_ERR_RESOURCE_BUSY",
            Error::Driver(_) => "VIR_ERR_INTERNAL_ERROR",
            Error::OperationFailed(_) => "VIR_ERR_OPERATION_FAILED",
            Error::Timeout(_) => "VIR_ERR_OPERATION_TIMEOUT",
        }
    }

    /// A hypervisor failure described by `message` alone.
    pub(crate) fn driver(message: impl std::fmt::Display) -> Self {
        Error::Driver(anyhow::anyhow!("{message}"))
    }

    /// A wrong-state refusal, with libvirt's wording.
    pub(crate) fn invalid(state: DomainState, reason: impl Into<String>) -> Self {
        Error::OperationInvalid { reason: reason.into(), state }
    }

    /// virCheckFlags: refuse any bit outside `known`.
    pub(crate) fn check_flags(flags: u32, known: u32, function: &'static str) -> Result<(), Self> {
        match flags & !known {
            0 => Ok(()),
            bits => Err(Error::UnsupportedFlags { bits, function }),
        }
    }
}

/// An I/O error as the messages say it: "no space left on device (os error 28)", the OS's words
/// with a lower-case first letter.
pub fn describe_io(error: &io::Error) -> String {
    let text = error.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Whether an I/O error means the disk (or the quota) is full.
pub fn is_out_of_space(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// The daemon's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
