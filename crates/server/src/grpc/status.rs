//! The one mapping from domain errors to gRPC statuses. Each status carries
//! the machine code REST and the WebSocket use, in the `palaver-error-code`
//! metadata, and with `rate_limited` / `overloaded` the wait in
//! `retry-after-ms`.

use palaver_domain::Error;
use tonic::{Code, Status};

pub const ERROR_CODE_KEY: &str = "palaver-error-code";
pub const RETRY_AFTER_KEY: &str = "retry-after-ms";

pub fn code_of(err: &Error) -> Code {
    match err {
        Error::Invalid { .. } => Code::InvalidArgument,
        Error::Unauthorized(_) => Code::Unauthenticated,
        Error::Forbidden(_) | Error::Suspended { .. } => Code::PermissionDenied,
        Error::NotFound(_) => Code::NotFound,
        Error::Conflict(_) | Error::LastOwner(_) => Code::FailedPrecondition,
        Error::RateLimited { .. } => Code::ResourceExhausted,
        Error::Overloaded { .. } | Error::Unavailable => Code::Unavailable,
        Error::Internal => Code::Internal,
        Error::TooLarge(_) => Code::ResourceExhausted,
    }
}

pub fn status(err: &Error) -> Status {
    let mut status = with_code(code_of(err), err.code(), err.to_string());
    if let Some(wait) = err.retry_after() {
        let millis = (wait.as_millis() as u64).max(1);
        status
            .metadata_mut()
            .insert(RETRY_AFTER_KEY, millis.to_string().parse().expect("digits"));
    }
    status
}

/// A status of `code` whose machine code is `machine` (a snake_case word).
pub fn with_code(code: Code, machine: &'static str, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    status.metadata_mut().insert(
        ERROR_CODE_KEY,
        tonic::metadata::MetadataValue::from_static(machine),
    );
    status
}

/// Input refused before it reached the domain (`invalid_input`).
pub fn invalid(message: impl Into<String>) -> Status {
    with_code(Code::InvalidArgument, "invalid_input", message)
}

impl From<ErrorStatus> for Status {
    fn from(err: ErrorStatus) -> Self {
        status(&err.0)
    }
}

/// A domain error on its way to being a status (`?` in the services).
pub struct ErrorStatus(pub Error);

impl From<Error> for ErrorStatus {
    fn from(err: Error) -> Self {
        ErrorStatus(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_carries_the_machine_code_and_the_wait() {
        let err = Error::RateLimited {
            retry_after: std::time::Duration::from_millis(1500),
        };
        let status = status(&err);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status.metadata().get(ERROR_CODE_KEY).unwrap(),
            "rate_limited"
        );
        assert_eq!(status.metadata().get(RETRY_AFTER_KEY).unwrap(), "1500");
    }
}
