//! The one table of error codes. Every worker renders an error the same way: the status from
//! [`ErrorCode::status`] and the body `{ "error": { "code": "...", "message": "..." } }`.

use serde::{Deserialize, Serialize};

/// Every error a client can see, with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// A field is missing, unknown or has the wrong type or value.
    InvalidRequest,
    /// The model is not in the catalogue.
    UnknownModel,
    /// No credentials, or credentials that do not verify.
    Unauthenticated,
    /// Authenticated, but without an active organization or the right membership.
    Forbidden,
    /// No such route, table, record, service or job in the caller's organization.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// The request does not fit the resource's state (replaying a job that is not dead).
    Conflict,
    /// The body exceeds the size limit.
    PayloadTooLarge,
    /// The organization made more requests of this kind than its rate allows; retry after the
    /// `Retry-After` header's seconds.
    RateLimited,
    /// A dependency (queue, database, search, the model) cannot take the request now.
    Unavailable,
    /// The embedding model refused a request that passed our checks.
    ModelFailed,
    /// A fault on our side; the message says no more than that.
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::InvalidRequest | ErrorCode::UnknownModel => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::ModelFailed => 502,
            ErrorCode::Unavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownModel => "unknown_model",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ModelFailed => "model_failed",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unavailable, message)
    }

    /// A fault whose details stay in the logs: the client learns only that it happened.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "internal error")
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body every worker sends for this error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": { "code": self.code.as_str(), "message": self.message } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_code_and_message() {
        let err = ApiError::new(ErrorCode::UnknownModel, "model `x` is not supported");
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.body(),
            serde_json::json!({"error": {"code": "unknown_model", "message": "model `x` is not supported"}})
        );
    }

    #[test]
    fn serde_name_matches_rendered_code() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::InvalidRequest,
            ErrorCode::UnknownModel,
            ErrorCode::Unauthenticated,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::Conflict,
            ErrorCode::PayloadTooLarge,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::ModelFailed,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::from(code.as_str()));
            assert!((400..600).contains(&code.status()));
        }
    }
}
