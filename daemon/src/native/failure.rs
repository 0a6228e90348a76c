//! A failed call as libvirt's `remote_error`: libvirt's error number, error domain, level and
//! message. The one place `Error` kinds get libvirt's numbers.

use super::protocol::RemoteError;
use crate::error::Error;

/// VIR_FROM_NONE.
pub const FROM_NONE: i32 = 0;
/// VIR_FROM_DOMAIN: libvirt's public domain API (`libvirt-domain.c`: a read-only connection's
/// refusals, its argument checks).
pub const FROM_DOMAIN: i32 = 20;
/// VIR_FROM_RPC: the RPC layer's own errors.
pub const FROM_RPC: i32 = 7;
/// VIR_FROM_QEMU.
pub const FROM_QEMU: i32 = 10;
/// VIR_FROM_TEST.
pub const FROM_TEST: i32 = 12;

/// VIR_ERR_ERROR, the level of every error libvirtd sends.
const LEVEL_ERROR: i32 = 2;

/// libvirt's virErrorNumber values rvirtd sends.
pub mod code {
    /// VIR_ERR_INTERNAL_ERROR.
    pub const INTERNAL_ERROR: i32 = 1;
    /// VIR_ERR_NO_SUPPORT.
    pub const NO_SUPPORT: i32 = 3;
    /// VIR_ERR_NO_CONNECT.
    pub const NO_CONNECT: i32 = 5;
    /// VIR_ERR_INVALID_ARG.
    pub const INVALID_ARG: i32 = 8;
    /// VIR_ERR_OPERATION_FAILED.
    pub const OPERATION_FAILED: i32 = 9;
    /// VIR_ERR_XML_ERROR.
    pub const XML_ERROR: i32 = 27;
    /// VIR_ERR_DOM_EXIST.
    pub const DOM_EXIST: i32 = 28;
    /// VIR_ERR_OPERATION_DENIED.
    pub const OPERATION_DENIED: i32 = 29;
    /// VIR_ERR_SYSTEM_ERROR.
    pub const SYSTEM_ERROR: i32 = 38;
    /// VIR_ERR_RPC.
    pub const RPC: i32 = 39;
    /// VIR_ERR_NO_DOMAIN.
    pub const NO_DOMAIN: i32 = 42;
    /// VIR_ERR_AUTH_FAILED.
    pub const AUTH_FAILED: i32 = 45;
    /// VIR_ERR_OPERATION_INVALID.
    pub const OPERATION_INVALID: i32 = 55;
    /// VIR_ERR_CONFIG_UNSUPPORTED.
    pub const CONFIG_UNSUPPORTED: i32 = 67;
    /// VIR_ERR_OPERATION_TIMEOUT.
    pub const OPERATION_TIMEOUT: i32 = 68;
    /// VIR_ERR_NO_DOMAIN_SNAPSHOT.
    pub const NO_DOMAIN_SNAPSHOT: i32 = 72;
    /// VIR_ERR_NO_DOMAIN_METADATA.
    pub const NO_DOMAIN_METADATA: i32 = 80;
    /// VIR_ERR_OPERATION_UNSUPPORTED.
    pub const OPERATION_UNSUPPORTED: i32 = 84;
    /// VIR_ERR_RESOURCE_BUSY.
    pub const RESOURCE_BUSY: i32 = 87;
    /// VIR_ERR_ACCESS_DENIED.
    pub const ACCESS_DENIED: i32 = 88;
    /// VIR_ERR_NO_DOMAIN_CHECKPOINT.
    pub const NO_DOMAIN_CHECKPOINT: i32 = 103;
}

/// Why a call failed: a daemon `Error` (told in the driver's error domain) or an error of the
/// protocol layer itself, already in libvirt's terms.
#[derive(Debug)]
pub enum Failure {
    /// What `Domains`, `api` or the access checks refused.
    Daemon(Error),
    /// An RPC-level error: code, domain and message.
    Remote(i32, i32, String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Daemon(error)
    }
}

impl Failure {
    /// VIR_ERR_RPC from the RPC layer, as libvirtd words its own protocol errors.
    pub fn rpc(message: impl Into<String>) -> Self {
        Failure::Remote(code::RPC, FROM_RPC, message.into())
    }

    /// libvirtd's answer to a procedure it does not know; the client turns it into
    /// VIR_ERR_NO_SUPPORT and takes its fallback.
    pub fn unknown_procedure(procedure: i32) -> Self {
        Self::rpc(format!("unknown procedure: {procedure}"))
    }

    /// libvirtd's refusal of a reply list longer than the protocol carries (`what`: "domains",
    /// "snapshots"; rvirt's gRPC API pages instead).
    pub fn too_many(what: &str, count: usize, max: u32) -> Self {
        Self::rpc_internal(&format!("Too many {what} '{count}' for limit '{max}'"))
    }

    /// VIR_ERR_INTERNAL_ERROR from the RPC layer ("hypervisor connection not open").
    pub fn rpc_internal(message: &str) -> Self {
        Failure::Remote(code::INTERNAL_ERROR, FROM_RPC, format!("internal error: {message}"))
    }

    /// The `remote_error` sent for it; daemon errors are in `driver_domain`.
    pub fn remote(self, driver_domain: i32) -> RemoteError {
        let (code, domain, message) = match self {
            Failure::Remote(code, domain, message) => (code, domain, message),
            Failure::Daemon(error) => {
                if matches!(error, Error::Driver(_) | Error::Persist { .. } | Error::StoreUnusable(_)) {
                    tracing::error!(error = ?error, "internal error");
                }
                // libvirt refuses these in its public API, before any driver is asked.
                let domain = if matches!(error, Error::ReadOnly(_) | Error::ApiArg(_)) {
                    FROM_DOMAIN
                } else {
                    driver_domain
                };
                (daemon_code(&error), domain, error.to_string())
            }
        };
        RemoteError {
            code,
            domain,
            message: Some(message.clone()),
            level: LEVEL_ERROR,
            dom: None,
            str1: Some(message),
            str2: None,
            str3: None,
            int1: -1,
            int2: -1,
            net: None,
        }
    }
}

/// libvirt's number for each kind of daemon error (`Error::libvirt_name` names the same).
fn daemon_code(error: &Error) -> i32 {
    match error {
        Error::NoDomain(_) => code::NO_DOMAIN,
        Error::NoSnapshot(_) | Error::NoRelatedSnapshot(_) => code::NO_DOMAIN_SNAPSHOT,
        Error::NoCheckpoint(_) | Error::NoRelatedCheckpoint(_) => code::NO_DOMAIN_CHECKPOINT,
        Error::NameTaken { .. } | Error::UuidTaken { .. } | Error::MomentExists(_) => code::DOM_EXIST,
        Error::InvalidArg(_) | Error::ApiArg(_) | Error::UnsupportedFlags { .. } => code::INVALID_ARG,
        Error::Xml(_) => code::XML_ERROR,
        Error::OperationInvalid { .. }
        | Error::PageExpired(_)
        | Error::HistoryTooOld(_)
        | Error::OtherIncarnation(_)
        | Error::PolicyChanged(_) => code::OPERATION_INVALID,
        Error::ReadOnly(_) => code::OPERATION_DENIED,
        Error::AccessDenied(_) => code::ACCESS_DENIED,
        Error::OperationUnsupported(_) => code::OPERATION_UNSUPPORTED,
        Error::ConfigUnsupported(_) | Error::DefUnsupported(_) => code::CONFIG_UNSUPPORTED,
        Error::Persist { .. } => code::SYSTEM_ERROR,
        Error::StoreUnusable(_) | Error::OperationFailed(_) => code::OPERATION_FAILED,
        Error::Busy(_) => code::RESOURCE_BUSY,
        Error::Driver(_) => code::INTERNAL_ERROR,
        Error::Timeout(_) => code::OPERATION_TIMEOUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_procedures_are_answered_as_libvirtd_does() {
        // The client rewrites exactly this into VIR_ERR_NO_SUPPORT (NOTES §2).
        let error = Failure::unknown_procedure(9999).remote(FROM_TEST);
        assert_eq!((error.code, error.domain, error.level), (39, 7, 2));
        assert_eq!(error.message.as_deref(), Some("unknown procedure: 9999"));
    }

    #[test]
    fn daemon_errors_are_in_the_driver_domain() {
        let error = Failure::from(Error::NoSnapshot("s".into())).remote(FROM_TEST);
        assert_eq!((error.code, error.domain), (code::NO_DOMAIN_SNAPSHOT, FROM_TEST));
    }
}
