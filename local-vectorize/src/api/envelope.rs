//! Cloudflare's API envelope, `{result, success, errors, messages}`, around every answer; and the
//! one place where a refusal becomes a status and a body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::Error;

/// A success: 200 with the result.
pub fn ok(result: impl Serialize) -> Response {
    with_messages(StatusCode::OK, result, Vec::new())
}

/// A success with notes in `messages` (the stand-in's explanations; Vectorize sends none).
pub fn with_messages(
    status: StatusCode,
    result: impl Serialize,
    messages: Vec<String>,
) -> Response {
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|message| json!({"code": 0, "message": message}))
        .collect();
    let body = json!({"result": result, "success": true, "errors": [], "messages": messages});
    (status, Json(body)).into_response()
}

/// What a refusal was, kept on the response for the refusal log.
#[derive(Debug, Clone)]
pub struct Refused {
    pub code: u32,
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let code = self.kind.code();
        let body = json!({
            "result": null,
            "success": false,
            "errors": [{"code": code, "message": self.message}],
            "messages": [],
        });
        let mut response = (self.kind.status(), Json(body)).into_response();
        response.extensions_mut().insert(Refused {
            code,
            message: self.message,
        });
        response
    }
}
