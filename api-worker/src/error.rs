//! The gateway's error type, and the one function that turns any error into a response.

use shared::ApiError;
use worker_kit::http::HttpResponse;
use worker_kit::Fault;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// Refused with the status and message the client should see.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// A binding failed; the client sees a generic 500, the logs see why.
    #[error("dependency failed: {0}")]
    Fault(#[from] Fault),
}

impl Error {
    pub(crate) fn into_response(self) -> HttpResponse {
        match self {
            Error::Api(e) => HttpResponse::error(&e),
            Error::Fault(fault) => {
                tracing::error!(error = %fault, "request failed on a dependency");
                HttpResponse::error(&ApiError::internal())
            }
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;
