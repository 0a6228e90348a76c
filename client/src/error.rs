//! `Error`: a failed call, with its `ErrorKind` rebuilt from the gRPC status and the libvirt
//! error name the daemon put in its ErrorInfo detail. The one place that reverse mapping lives.

use tonic::Code;
use tonic_types::StatusExt;

/// What kind of failure, after libvirt's error numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// VIR_ERR_NO_DOMAIN.
    NoDomain,
    /// VIR_ERR_NO_DOMAIN_SNAPSHOT.
    NoSnapshot,
    /// VIR_ERR_NO_DOMAIN_CHECKPOINT.
    NoCheckpoint,
    /// A name, UUID, snapshot or checkpoint already taken.
    Exists,
    /// VIR_ERR_INVALID_ARG.
    InvalidArg,
    /// VIR_ERR_XML_ERROR.
    Xml,
    /// VIR_ERR_OPERATION_INVALID: wrong state.
    OperationInvalid,
    /// VIR_ERR_OPERATION_UNSUPPORTED.
    OperationUnsupported,
    /// VIR_ERR_CONFIG_UNSUPPORTED.
    ConfigUnsupported,
    /// VIR_ERR_OPERATION_DENIED.
    OperationDenied,
    /// The daemon could not be reached or went away.
    Connection,
    /// Anything else (internal errors, unexpected codes).
    Internal,
}

/// A failed call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// The kind of failure.
    pub kind: ErrorKind,
    /// The gRPC code.
    pub code: Code,
    /// libvirt's error name, as the daemon sent it (empty when it sent none).
    pub libvirt_name: String,
    /// The daemon's message.
    pub message: String,
}

impl Error {
    /// An error raised on this side (bad URI, connection refused, malformed answer).
    pub fn local(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, code: Code::Unknown, libvirt_name: String::new(), message: message.into() }
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        let libvirt_name =
            status.get_error_details().error_info().map(|info| info.reason.clone()).unwrap_or_default();
        let kind = match libvirt_name.as_str() {
            "VIR_ERR_NO_DOMAIN" => ErrorKind::NoDomain,
            "VIR_ERR_NO_DOMAIN_SNAPSHOT" => ErrorKind::NoSnapshot,
            "VIR_ERR_NO_DOMAIN_CHECKPOINT" => ErrorKind::NoCheckpoint,
            "VIR_ERR_DOM_EXIST" => ErrorKind::Exists,
            "VIR_ERR_INVALID_ARG" => ErrorKind::InvalidArg,
            "VIR_ERR_XML_ERROR" => ErrorKind::Xml,
            "VIR_ERR_OPERATION_INVALID" => ErrorKind::OperationInvalid,
            "VIR_ERR_OPERATION_UNSUPPORTED" => ErrorKind::OperationUnsupported,
            "VIR_ERR_CONFIG_UNSUPPORTED" => ErrorKind::ConfigUnsupported,
            "VIR_ERR_OPERATION_DENIED" => ErrorKind::OperationDenied,
            _ => match status.code() {
                Code::NotFound => ErrorKind::NoDomain,
                Code::AlreadyExists => ErrorKind::Exists,
                Code::InvalidArgument => ErrorKind::InvalidArg,
                Code::FailedPrecondition => ErrorKind::OperationInvalid,
                Code::PermissionDenied => ErrorKind::OperationDenied,
                Code::Unavailable => ErrorKind::Connection,
                _ => ErrorKind::Internal,
            },
        };
        Error { kind, code: status.code(), libvirt_name, message: status.message().to_owned() }
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
