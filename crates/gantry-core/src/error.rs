//! An error any service answers, before the protocol gives it its shape.

use gantry_api::{ApiError, ErrorCode};
use std::borrow::Cow;

/// An error as a service reports it: the model's exception name, a message for people and the
/// HTTP status. The protocol decides how it is written ([`crate::protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ServiceError {
    /// The exception's name (`ClusterNotFoundException`, `NoSuchEntity`, ...).
    pub code: Cow<'static, str>,
    pub message: String,
    /// 4xx: the caller's fault (`Sender` in Query's terms); 5xx: the server's (`Receiver`).
    pub status: u16,
}

impl ServiceError {
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        status: u16,
        message: impl Into<String>,
    ) -> Self {
        ServiceError {
            code: code.into(),
            message: message.into(),
            status,
        }
    }

    /// An operation the service's model does not have: AWS's `UnknownOperationException`,
    /// naming `<target prefix>.<operation>`.
    pub fn unknown_operation(target_prefix: &str, operation: &str) -> Self {
        ServiceError::new(
            "UnknownOperationException",
            400,
            format!("Unknown operation {target_prefix}.{operation}"),
        )
    }

    /// An operation of the service's model that gantry does not serve, under the service's own
    /// name for a request it cannot take (`code`).
    pub fn not_served(code: &'static str, service: &str, operation: &str) -> Self {
        ServiceError::new(
            code,
            400,
            format!("gantry does not serve the {service} action {operation}; see the README for the ones it does."),
        )
    }

    /// Whether the server, not the caller, is at fault.
    pub fn is_server_fault(&self) -> bool {
        self.status >= 500
    }
}

impl From<ApiError> for ServiceError {
    fn from(e: ApiError) -> Self {
        ServiceError {
            code: Cow::Borrowed(e.code.as_str()),
            status: e.code.status(),
            message: e.message,
        }
    }
}

/// The front end's own failures (authentication, routing, body decoding), which each protocol
/// names in its own way: JSON services say `UnrecognizedClientException`, Query services
/// `InvalidClientTokenId`, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontEndFault {
    MissingAuthenticationToken,
    IncompleteSignature,
    InvalidSignature,
    UnrecognizedClient,
    ExpiredToken,
    Serialization,
    UnknownOperation,
    UnknownService,
}

impl FrontEndFault {
    /// The fault a gantry-auth or decoding error stands for, if it is one of the front end's.
    pub fn of(code: ErrorCode) -> Option<FrontEndFault> {
        Some(match code {
            ErrorCode::MissingAuthenticationTokenException => Self::MissingAuthenticationToken,
            ErrorCode::IncompleteSignatureException => Self::IncompleteSignature,
            ErrorCode::InvalidSignatureException => Self::InvalidSignature,
            ErrorCode::UnrecognizedClientException => Self::UnrecognizedClient,
            ErrorCode::ExpiredTokenException => Self::ExpiredToken,
            ErrorCode::SerializationException => Self::Serialization,
            ErrorCode::UnknownOperationException => Self::UnknownOperation,
            _ => return None,
        })
    }
}
