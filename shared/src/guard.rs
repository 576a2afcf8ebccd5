//! Guards on what a request may carry, applied once at the boundary.

use crate::error::{ApiError, ErrorCode};
use crate::models::{self, ModelSpec};

/// Longest text accepted in one field, in characters (Unicode scalar values, as JSON Schema's
/// `maxLength` counts them). The model reads at most 512 tokens; the rest is truncated by the
/// consumer, so a longer text would only be carried to be dropped.
pub const MAX_TEXT_CHARS: usize = 65_536;

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

/// Text to embed, in the request field `field`: not blank, at most [`MAX_TEXT_CHARS`].
pub fn text<'a>(field: &str, text: &'a str) -> Result<&'a str, ApiError> {
    if text.trim().is_empty() {
        return Err(ApiError::invalid(format!("`{field}` must not be empty")));
    }
    length(field, text)?;
    Ok(text)
}

/// What `str::trim` takes for whitespace (Unicode's `White_Space`), as inclusive ranges: a text
/// of nothing else is blank.
pub const WHITESPACE: &[(char, char)] = &[
    ('\t', '\r'),
    (' ', ' '),
    ('\u{85}', '\u{85}'),
    ('\u{a0}', '\u{a0}'),
    ('\u{1680}', '\u{1680}'),
    ('\u{2000}', '\u{200a}'),
    ('\u{2028}', '\u{2029}'),
    ('\u{202f}', '\u{202f}'),
    ('\u{205f}', '\u{205f}'),
    ('\u{3000}', '\u{3000}'),
];

/// A regular expression that a text passes when it is not blank, for the API document: one
/// character outside [`WHITESPACE`], written out so that every regex engine reads it alike.
pub fn not_blank_pattern() -> String {
    use std::fmt::Write as _;
    let mut class = String::from("[^");
    for (first, last) in WHITESPACE {
        let _ = write!(class, "\\u{:04x}", u32::from(*first));
        if first != last {
            let _ = write!(class, "-\\u{:04x}", u32::from(*last));
        }
    }
    class.push(']');
    class
}

/// Any string field: at most [`MAX_TEXT_CHARS`] characters.
pub fn length(field: &str, text: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::invalid(format!(
            "`{field}` is over {MAX_TEXT_CHARS} characters"
        )));
    }
    Ok(())
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
        let big = "x".repeat(MAX_TEXT_CHARS + 1);
        let err = text("text", &big).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (ErrorCode::InvalidRequest, "`text` is over 65536 characters")
        );
        assert!(text("text", &"x".repeat(MAX_TEXT_CHARS)).is_ok());
        // 4 bytes each: over the limit in bytes, within it in characters.
        assert!(text("text", &"\u{1f600}".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(text("text", &"\u{e9}".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }

    #[test]
    fn the_documented_whitespace_is_what_trim_takes() {
        let listed = |c: char| WHITESPACE.iter().any(|(a, b)| (*a..=*b).contains(&c));
        for c in (0..=0x10_ffff).filter_map(char::from_u32) {
            assert_eq!(listed(c), c.is_whitespace(), "{c:?}");
        }
        assert!(not_blank_pattern().starts_with("[^\\u0009-\\u000d\\u0020"));
    }

    #[test]
    fn models_must_be_known() {
        assert_eq!(model(models::DEFAULT_MODEL).unwrap().dimensions, 768);
        let err = model("@cf/meta/llama").unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownModel);
        assert!(err.message.contains("@cf/baai/bge-small-en-v1.5"));
    }
}
