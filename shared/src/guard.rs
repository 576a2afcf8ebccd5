//! Guards on what a request may carry, applied once at the boundary.

use crate::error::{ApiError, ErrorCode};
use crate::models::{self, ModelSpec};

/// Longest content accepted for one embedding job. The model reads at most 512 tokens; the rest
/// is truncated by the consumer, so a larger body would only be carried to be dropped.
pub const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// Longest record id: Vectorize caps vector ids at 64 bytes and the id is used as one.
pub const MAX_RECORD_ID_BYTES: usize = 64;

/// A record id: 1 to 64 bytes of ASCII letters, digits, `_`, `-`, `.` or `:`.
pub fn record_id(id: &str) -> Result<&str, ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_RECORD_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    if ok {
        Ok(id)
    } else {
        Err(ApiError::invalid(format!(
            "`id` must be 1 to {MAX_RECORD_ID_BYTES} characters of letters, digits, `_`, `-`, `.` or `:`"
        )))
    }
}

/// Text to embed, in the request field `field`: not blank, at most [`MAX_CONTENT_BYTES`].
pub fn text<'a>(field: &str, text: &'a str) -> Result<&'a str, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid(format!("`{field}` must not be empty")));
    }
    if text.len() > MAX_CONTENT_BYTES {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("`{field}` is over {MAX_CONTENT_BYTES} bytes"),
        ));
    }
    Ok(text)
}

/// A model named by a caller: it must be in the catalogue.
pub fn model(name: &str) -> Result<&'static ModelSpec, ApiError> {
    models::model(name).ok_or_else(|| {
        let known: Vec<_> = models::MODELS.iter().map(|m| m.name).collect();
        ApiError::new(
            ErrorCode::UnknownModel,
            format!(
                "model `{name}` is not supported (supported: {})",
                known.join(", ")
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_ids() {
        assert!(record_id("clm_123").is_ok());
        assert!(record_id("a:b.c-d_e").is_ok());
        assert!(record_id(&"x".repeat(64)).is_ok());
        for bad in [
            "",
            "has space",
            "quote'",
            "semi;colon",
            "ünï",
            &"x".repeat(65),
        ] {
            assert_eq!(
                record_id(bad).unwrap_err().code,
                ErrorCode::InvalidRequest,
                "{bad}"
            );
        }
    }

    #[test]
    fn text_limits() {
        assert!(text("content", "hello").is_ok());
        let blank = text("content", "  \n").unwrap_err();
        assert_eq!(
            (blank.code, blank.message.as_str()),
            (ErrorCode::InvalidRequest, "`content` must not be empty")
        );
        let big = "x".repeat(MAX_CONTENT_BYTES + 1);
        assert_eq!(
            text("text", &big).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn models_must_be_known() {
        assert_eq!(model(models::DEFAULT_MODEL).unwrap().dimensions, 768);
        let err = model("@cf/meta/llama").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownModel);
        assert!(err.message.contains("@cf/baai/bge-small-en-v1.5"));
    }
}
