//! Records of embedding tables as the CRUD routes take them: bodies parsed against the table's
//! config, the change that decides re-embedding, and list cursors.
//!
//! A body may set only the table's `writable` columns (and, on create, `id`); every value is a
//! string, number, boolean or null. The organization column, timestamps and the embedding
//! column are the gateway's to set, never the caller's.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::config::TableConfig;
use crate::error::ApiError;
use crate::guard;

/// A record's columns by name.
pub type Record = Map<String, Value>;

/// Columns the gateway stamps with the time, in Unix milliseconds, when the table has them.
pub const CREATED_AT: &str = "created_at";
pub const UPDATED_AT: &str = "updated_at";

/// Records a list returns when the caller does not say, and at most.
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;

/// Whether a body creates a record or updates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Create,
    Update,
}

/// The writable columns a body sets, checked; on create, also the id it asks for (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordInput {
    pub id: Option<String>,
    pub values: Record,
}

impl RecordInput {
    pub fn parse(table: &TableConfig, body: &Value, write: Write) -> Result<Self, ApiError> {
        let Value::Object(fields) = body else {
            return Err(ApiError::invalid(
                "the body must be a JSON object of columns",
            ));
        };
        let mut input = RecordInput {
            id: None,
            values: Map::new(),
        };
        for (name, value) in fields {
            if name == "id" && write == Write::Create {
                let id = value
                    .as_str()
                    .ok_or_else(|| ApiError::invalid("`id` must be a string"))?;
                input.id = Some(guard::record_id(id)?.to_owned());
                continue;
            }
            if !table.is_writable(name) {
                return Err(ApiError::invalid(format!(
                    "`{name}` is not a writable field of `{}` (writable: {})",
                    table.name,
                    table.writable.join(", ")
                )));
            }
            match value {
                Value::String(s) if s.len() > guard::MAX_CONTENT_BYTES => {
                    guard::text(name, s)?;
                }
                Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
                Value::Array(_) | Value::Object(_) => {
                    return Err(ApiError::invalid(format!(
                        "`{name}` must be a string, number, boolean or null"
                    )))
                }
            }
            input.values.insert(name.clone(), value.clone());
        }
        if write == Write::Update && input.values.is_empty() {
            return Err(ApiError::invalid(format!(
                "name at least one writable field of `{}` to update ({})",
                table.name,
                table.writable.join(", ")
            )));
        }
        Ok(input)
    }
}

/// Whether updating `before` with `changes` changes a watched field, so the record must be
/// embedded again. A field set to the value it had is no change.
pub fn changes_watched(table: &TableConfig, before: &Record, changes: &Record) -> bool {
    changes.iter().any(|(name, value)| {
        table.watches(name) && before.get(name).unwrap_or(&Value::Null) != value
    })
}

/// An opaque cursor for the next page: the sort key of the last item returned.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// Reads a cursor made by [`encode_cursor`].
pub fn decode_cursor(cursor: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::invalid("`cursor` is not one this API returned"))
}

/// A page size asked for in `limit`, within 1..=[`MAX_PAGE`].
pub fn page_size(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::invalid(format!("`limit` must be 1 to {MAX_PAGE}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use serde_json::json;

    fn claims() -> TableConfig {
        Config::parse(include_str!("../../embeddings.toml"))
            .unwrap()
            .table("claims")
            .unwrap()
            .clone()
    }

    #[test]
    fn only_writable_scalar_fields_pass_and_the_error_names_the_field() {
        let table = claims();
        let input = RecordInput::parse(
            &table,
            &json!({"id": "clm_9", "content": "text", "story_id": null}),
            Write::Create,
        )
        .unwrap();
        assert_eq!(input.id.as_deref(), Some("clm_9"));
        assert_eq!(input.values.len(), 2);

        for (body, needle) in [
            (json!({"organization_id": "org_b"}), "`organization_id`"),
            (json!({"embedding": "[1,2]"}), "`embedding`"),
            (json!({"colour": "red"}), "`colour`"),
            (json!({"content": ["a"]}), "`content` must be"),
            (json!({"id": "bad id"}), "`id`"),
            (json!("text"), "JSON object"),
        ] {
            let err = RecordInput::parse(&table, &body, Write::Create).unwrap_err();
            assert!(err.message.contains(needle), "{body}: {}", err.message);
        }
        let err = RecordInput::parse(&table, &json!({"id": "x"}), Write::Update).unwrap_err();
        assert!(
            err.message.contains("`id`"),
            "an id cannot be changed: {}",
            err.message
        );
        assert!(RecordInput::parse(&table, &json!({}), Write::Update).is_err());
        let huge = "x".repeat(guard::MAX_CONTENT_BYTES + 1);
        let err = RecordInput::parse(&table, &json!({"content": huge}), Write::Create).unwrap_err();
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn only_a_real_change_of_a_watched_field_re_embeds() {
        let table = claims();
        let before = json!({"id": "c", "content": "old", "story_id": "s1"});
        let before = before.as_object().unwrap();
        let change = |v: Value| v.as_object().unwrap().clone();
        assert!(changes_watched(
            &table,
            before,
            &change(json!({"content": "new"}))
        ));
        assert!(!changes_watched(
            &table,
            before,
            &change(json!({"content": "old"}))
        ));
        assert!(!changes_watched(
            &table,
            before,
            &change(json!({"story_id": "s2"}))
        ));
    }

    #[test]
    fn cursors_round_trip_and_limits_are_bounded() {
        assert_eq!(decode_cursor(&encode_cursor("clm_10")).unwrap(), "clm_10");
        assert!(decode_cursor("***").is_err());
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some("100")).unwrap(), 100);
        assert!(page_size(Some("0")).is_err());
        assert!(page_size(Some("101")).is_err());
        assert!(page_size(Some("ten")).is_err());
    }
}
