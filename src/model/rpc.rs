//! What a refused publish or unpublish returns: a gRPC status code ([`Code`]) and the exact
//! message of `docs/lifecycle.md` ([`RpcError`]). With the cargo feature `tonic`, an [`RpcError`]
//! converts into a `tonic::Status` carrying the same code and message.
//!
//! ```
//! use csi_events::model::{Code, RpcError};
//! let error = RpcError::new(Code::NotFound, "node node-x not found");
//! assert_eq!(error.to_string(), "NotFound: node node-x not found");
//! assert_eq!("FailedPrecondition".parse::<Code>(), Ok(Code::FailedPrecondition));
//! ```

use std::fmt;
use std::str::FromStr;

/// gRPC status codes the model returns, named as gRPC names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// `InvalidArgument`: the request itself is malformed.
    InvalidArgument,
    /// `NotFound`: e.g. the node is unknown to the cluster.
    NotFound,
    /// `AlreadyExists`.
    AlreadyExists,
    /// `FailedPrecondition`: e.g. an RWO volume is held by another node.
    FailedPrecondition,
    /// `Aborted`.
    Aborted,
    /// `Internal`.
    Internal,
    /// `Unavailable`.
    Unavailable,
}

impl Code {
    /// Every code, in declaration order.
    pub const ALL: [Code; 7] = [
        Code::InvalidArgument,
        Code::NotFound,
        Code::AlreadyExists,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::Internal,
        Code::Unavailable,
    ];

    /// The gRPC name, e.g. `"FailedPrecondition"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidArgument => "InvalidArgument",
            Code::NotFound => "NotFound",
            Code::AlreadyExists => "AlreadyExists",
            Code::FailedPrecondition => "FailedPrecondition",
            Code::Aborted => "Aborted",
            Code::Internal => "Internal",
            Code::Unavailable => "Unavailable",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no gRPC code the model uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a gRPC code the model returns: use one of InvalidArgument, NotFound, AlreadyExists, FailedPrecondition, Aborted, Internal, Unavailable"
)]
pub struct UnknownCode(String);

impl FromStr for Code {
    type Err = UnknownCode;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .into_iter()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| UnknownCode(text.to_owned()))
    }
}

/// A refused publish or unpublish: the code and the exact message of `docs/lifecycle.md`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RpcError {
    /// The gRPC status code.
    pub code: Code,
    /// The message, byte-exact as `docs/lifecycle.md` gives it.
    pub message: String,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[cfg(feature = "tonic")]
impl From<Code> for tonic::Code {
    fn from(code: Code) -> Self {
        match code {
            Code::InvalidArgument => tonic::Code::InvalidArgument,
            Code::NotFound => tonic::Code::NotFound,
            Code::AlreadyExists => tonic::Code::AlreadyExists,
            Code::FailedPrecondition => tonic::Code::FailedPrecondition,
            Code::Aborted => tonic::Code::Aborted,
            Code::Internal => tonic::Code::Internal,
            Code::Unavailable => tonic::Code::Unavailable,
        }
    }
}

/// A tonic-based driver returns the model's refusal as it is: same code, same message.
#[cfg(feature = "tonic")]
impl From<RpcError> for tonic::Status {
    fn from(error: RpcError) -> Self {
        tonic::Status::new(error.code.into(), error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_names() {
        for code in Code::ALL {
            assert_eq!(code.as_str().parse::<Code>(), Ok(code));
            assert_eq!(code.to_string(), code.as_str());
        }
        let error = "Notfound".parse::<Code>().expect_err("case matters");
        assert!(error.to_string().contains("`Notfound`"), "{error}");
    }

    #[cfg(feature = "tonic")]
    #[test]
    fn rpc_error_becomes_tonic_status_with_the_same_code_and_message() {
        let cases = [
            (Code::InvalidArgument, tonic::Code::InvalidArgument),
            (Code::NotFound, tonic::Code::NotFound),
            (Code::AlreadyExists, tonic::Code::AlreadyExists),
            (Code::FailedPrecondition, tonic::Code::FailedPrecondition),
            (Code::Aborted, tonic::Code::Aborted),
            (Code::Internal, tonic::Code::Internal),
            (Code::Unavailable, tonic::Code::Unavailable),
        ];
        for (code, want) in cases {
            let status: tonic::Status = RpcError::new(code, "node n1 not found").into();
            assert_eq!(status.code(), want);
            assert_eq!(status.message(), "node n1 not found");
        }
    }
}
