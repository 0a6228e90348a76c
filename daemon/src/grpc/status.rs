//! `Error` -> `tonic::Status`: the gRPC code for each kind of failure, and libvirt's error name in
//! a google.rpc.ErrorInfo detail. The one place this mapping lives.

use crate::error::Error;
use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The gRPC code for each kind of failure.
pub fn code(error: &Error) -> Code {
    match error {
        Error::NoDomain(_) | Error::NoSnapshot(_) | Error::NoCheckpoint(_) => Code::NotFound,
        Error::NameTaken { .. } | Error::UuidTaken { .. } | Error::MomentExists(_) => Code::AlreadyExists,
        Error::InvalidArg(_)
        | Error::ApiArg(_)
        | Error::UnsupportedFlags { .. }
        | Error::Xml(_)
        | Error::DefUnsupported(_) => Code::InvalidArgument,
        Error::OperationInvalid { .. }
        | Error::OperationUnsupported(_)
        | Error::ConfigUnsupported(_)
        | Error::PageExpired(_)
        | Error::OtherIncarnation(_)
        | Error::PolicyChanged(_)
        | Error::StoreUnusable(_)
        | Error::OperationFailed(_) => Code::FailedPrecondition,
        Error::Timeout(_) => Code::DeadlineExceeded,
        Error::ReadOnly(_) | Error::AccessDenied(_) => Code::PermissionDenied,
        Error::HistoryTooOld(_) => Code::OutOfRange,
        Error::Persist { source, .. } if crate::error::is_out_of_space(source) => Code::ResourceExhausted,
        Error::Busy(_) => Code::ResourceExhausted,
        Error::NoRelatedSnapshot(_) | Error::NoRelatedCheckpoint(_) => Code::NotFound,
        Error::Persist { .. } | Error::Driver(_) => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        let code = code(&error);
        if code == Code::Internal || matches!(error, Error::Persist { .. } | Error::StoreUnusable(_)) {
            // The whole chain goes to the log; the caller gets the top-level message only.
            tracing::error!(error = ?error, "internal error");
        } else {
            tracing::debug!(%error, "request refused");
        }
        let message = error.to_string();
        let details =
            ErrorDetails::with_error_info(error.libvirt_name(), rvirt_proto::ERROR_DOMAIN, HashMap::new());
        Status::with_error_details(code, message, details)
    }
}
