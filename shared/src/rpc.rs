//! search-worker's RPC interface, as its callers and search-worker both see it.
//!
//! Workers RPC carries an exception's message and nothing else: a code set on an `Error` is
//! lost on the way. So every method answers with an [`Outcome`], the value or the error as
//! data, and a caller tells bad input, not found and unavailable apart by
//! [`ErrorCode`](crate::ErrorCode), never by parsing a message:
//!
//! ```json
//! { "ok": true, "value": [ … ] }
//! { "ok": false, "error": { "code": "not_found", "status": 404, "message": "no search service `x`" } }
//! ```
//!
//! The methods, each taking the organization first (search-worker trusts it: binding to it is
//! a privileged act):
//! `search(organizationId, service, SearchRequest)`, `grayZone(organizationId, service,
//! GrayZoneRequest)`, `embed(organizationId, EmbedRequest)`, `query(organizationId,
//! QueryRequest)`, `enqueue(organizationId, EnqueueRequest)` and `health()`. The requests and
//! answers are those of the HTTP API ([`crate::search`]).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::enqueue;
use crate::error::{ApiError, ErrorCode};

/// The names of search-worker's RPC methods.
pub mod method {
    pub const SEARCH: &str = "search";
    pub const GRAY_ZONE: &str = "grayZone";
    pub const EMBED: &str = "embed";
    pub const QUERY: &str = "query";
    pub const ENQUEUE: &str = "enqueue";
    pub const HEALTH: &str = "health";
}

/// `enqueue(organizationId, request)`: an embedding job for `text`, by a service's model, a
/// named model or the default one, optionally for a record (`table` and `id` together), as
/// [`crate::enqueue`] rules. The job goes to the queue as a custom pipeline's would: the
/// consumer creates its row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

impl EnqueueRequest {
    /// The request as the enqueue rule reads it.
    pub fn asked(&self) -> enqueue::Request<'_> {
        enqueue::Request {
            text_field: "text",
            text: &self.text,
            service: self.service.as_deref(),
            model: self.model.as_deref(),
            table: self.table.as_deref(),
            id: self.id.as_deref(),
        }
    }
}

/// The answer to `enqueue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Enqueued {
    pub job_id: uuid::Uuid,
    pub model: String,
}

/// A method's answer as it crosses RPC: `{ ok: true, value }` or `{ ok: false, error }`.
pub fn outcome<T: Serialize>(result: Result<T, ApiError>) -> Value {
    match result.and_then(|value| serde_json::to_value(value).map_err(|_| ApiError::internal())) {
        Ok(value) => json!({ "ok": true, "value": value }),
        Err(error) => json!({
            "ok": false,
            "error": { "code": error.code, "status": error.status(), "message": error.message },
        }),
    }
}

/// Reads an [`outcome`] back: the value, or the error it carries. Anything else (a method that
/// does not exist, an answer of another shape) is an internal error.
pub fn from_outcome<T: DeserializeOwned>(answer: Value) -> Result<T, ApiError> {
    #[derive(Deserialize)]
    struct Envelope {
        ok: bool,
        #[serde(default)]
        value: Option<Value>,
        #[serde(default)]
        error: Option<WireError>,
    }
    #[derive(Deserialize)]
    struct WireError {
        code: ErrorCode,
        message: String,
    }
    let unexpected = || ApiError::internal();
    let envelope: Envelope = serde_json::from_value(answer).map_err(|_| unexpected())?;
    match (envelope.ok, envelope.value, envelope.error) {
        (true, Some(value), _) => serde_json::from_value(value).map_err(|_| unexpected()),
        (false, _, Some(error)) => Err(ApiError::new(error.code, error.message)),
        _ => Err(unexpected()),
    }
}

/// A method's argument, read the way the HTTP API reads its body: a value of the wrong shape is
/// a 400 that says what is wrong.
pub fn argument<T: DeserializeOwned>(name: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::invalid(format!("invalid `{name}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::SearchRequest;

    #[test]
    fn a_value_and_an_error_survive_the_round_trip() {
        let answer = outcome(Ok(vec![1, 2]));
        assert_eq!(answer, json!({"ok": true, "value": [1, 2]}));
        assert_eq!(from_outcome::<Vec<u8>>(answer), Ok(vec![1, 2]));

        let error = ApiError::not_found("no search service `x`");
        let answer = outcome::<()>(Err(error.clone()));
        assert_eq!(
            answer,
            json!({"ok": false, "error": {"code": "not_found", "status": 404, "message": "no search service `x`"}})
        );
        assert_eq!(from_outcome::<()>(answer), Err(error));
        let unavailable = outcome::<()>(Err(ApiError::unavailable("retry")));
        assert_eq!(unavailable["error"]["status"], 503);
    }

    #[test]
    fn anything_but_an_outcome_is_an_internal_error() {
        for answer in [
            json!(null),
            json!({"ok": true}),
            json!({"ok": false}),
            json!({"ok": false, "error": {"code": "no_such_code", "message": "x"}}),
            json!([1]),
        ] {
            assert_eq!(
                from_outcome::<Value>(answer.clone()).map_err(|e| e.code),
                Err(ErrorCode::Internal),
                "{answer}"
            );
        }
        assert_eq!(
            from_outcome::<u8>(json!({"ok": true, "value": "not a number"})).map_err(|e| e.code),
            Err(ErrorCode::Internal)
        );
    }

    #[test]
    fn an_argument_of_the_wrong_shape_is_bad_input_naming_it() {
        let ok: SearchRequest = argument("request", json!({"text": "x", "limit": 3.0})).unwrap();
        assert_eq!(ok.limit, Some(3));
        let error = argument::<SearchRequest>("request", json!({"text": 5})).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvalidRequest);
        assert!(error.message.starts_with("invalid `request`"), "{error}");
        let error =
            argument::<SearchRequest>("request", json!({"text": "x", "nope": 1})).unwrap_err();
        assert!(error.message.contains("nope"), "{error}");
    }
}
