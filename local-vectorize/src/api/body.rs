//! Reading a request body: whole, within the upload limit, and as JSON where one is expected.

use axum::body::Body;
use axum::http::HeaderMap;
use serde_json::Value;

use crate::error::{Error, Kind, Result};
use crate::limits::MAX_UPLOAD_BYTES;

/// The body's bytes; over 100 MB is refused ("limits": maximum vectors upload size).
pub async fn bytes(body: Body) -> Result<axum::body::Bytes> {
    axum::body::to_bytes(body, MAX_UPLOAD_BYTES)
        .await
        .map_err(|_| {
            Error::new(
                Kind::BodyTooLarge,
                format!("request body too large; max is {MAX_UPLOAD_BYTES} bytes"),
            )
        })
}

/// The body as JSON, whatever its content type says (wrangler sends
/// `application/json; charset=utf-8;`).
pub async fn json(body: Body) -> Result<Value> {
    let bytes = bytes(body).await?;
    serde_json::from_slice(&bytes).map_err(Error::unparsable)
}

pub fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}
