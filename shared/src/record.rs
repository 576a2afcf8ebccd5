//! Records of embedding tables as the CRUD routes take them: bodies parsed against the table's
//! config, the change that decides re-embedding, and list cursors.
//!
//! A body may set only the table's `writable` columns (and, on create, `id`); every value is a
//! string, number, boolean or null. The organization column, timestamps and the embedding
//! column are the gateway's to set, never the caller's.

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
                Value::String(s) => guard::length(name, s)?,
                Value::Null if !table.is_nullable(name) => {
                    return Err(ApiError::invalid(format!("`{name}` must not be null")))
                }
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
                Value::Array(_) | Value::Object(_) => {
                    return Err(ApiError::invalid(format!(
                        "`{name}` must be a string, number, boolean or null"
                    )))
                }
            }
            input.values.insert(name.clone(), value.clone());
        }
        crate::metadata::check(table, &input.values)?;
        if write == Write::Create {
            if let Some(missing) = table
                .required
                .iter()
                .find(|c| !input.values.contains_key(c.as_str()))
            {
                return Err(ApiError::invalid(format!(
                    "`{missing}` is required to create a record of `{}`",
                    table.name
                )));
            }
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

/// Longest cursor taken.
pub const MAX_CURSOR_CHARS: usize = 1024;

/// The cursor of a record list (and of a backfill) is the last id of the page before: the next
/// page starts after it, in the order D1 sorts text. It is plain so that any string is a place
/// to start from, as the API document says; there is no cursor to forge or to be refused.
pub fn record_cursor(cursor: &str) -> Result<&str, ApiError> {
    if cursor.chars().count() > MAX_CURSOR_CHARS {
        return Err(ApiError::invalid(format!(
            "`cursor` is over {MAX_CURSOR_CHARS} characters"
        )));
    }
    Ok(cursor)
}

/// The cursor of a job list, newest first: `{createdAt}:{jobId}` of the last job shown, the
/// creation time in milliseconds. Any string of that shape is a place to start from.
pub fn job_cursor(created_at: i64, job_id: &str) -> String {
    format!("{created_at}:{job_id}")
}

/// What [`job_cursor`] wrote: `JOB_CURSOR_PATTERN` and nothing else.
pub fn parse_job_cursor(cursor: &str) -> Result<(i64, &str), ApiError> {
    let refused = || {
        ApiError::invalid(
            "`cursor` must be `{createdAt}:{jobId}` as `nextCursor` gave it (digits, `:`, 1 to 36 of lowercase hex and `-`)",
        )
    };
    let (at, id) = cursor.split_once(':').ok_or_else(refused)?;
    let digits = (1..=15).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_digit());
    let id_ok = (1..=36).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
    if !(digits && id_ok) {
        return Err(refused());
    }
    Ok((at.parse().map_err(|_| refused())?, id))
}

/// [`parse_job_cursor`]'s rule as a regular expression, for the API document.
pub const JOB_CURSOR_PATTERN: &str = "^[0-9]{1,15}:[0-9a-f-]{1,36}$";

/// Cuts `rows`, read with a limit of `limit + 1`, to `limit`, and says whether one was past
/// them: a page reads one row more than it shows, so a full last page offers no next one.
pub fn cut_page<T>(rows: &mut Vec<T>, limit: u32) -> bool {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = rows.len() > limit;
    rows.truncate(limit);
    more
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

    #[test]
    fn a_page_is_cut_to_its_limit_and_knows_if_more_remain() {
        let mut full = vec![1, 2, 3];
        assert!(cut_page(&mut full, 2));
        assert_eq!(full, [1, 2]);
        let mut exact = vec![1, 2];
        assert!(!cut_page(&mut exact, 2), "exactly a page: no next one");
        assert_eq!(exact, [1, 2]);
        let mut short = vec![1];
        assert!(!cut_page(&mut short, 2));
        assert_eq!(short, [1]);
    }

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
        let huge = "x".repeat(guard::MAX_TEXT_CHARS + 1);
        let err = RecordInput::parse(&table, &json!({"content": huge}), Write::Create).unwrap_err();
        assert_eq!(
            (err.status(), err.message.as_str()),
            (400, "`content` is over 65536 characters")
        );
    }

    #[test]
    fn required_and_not_null_columns_hold_as_the_config_says() {
        let table = claims();
        assert_eq!(table.required, ["content"]);
        let create = |body: Value| RecordInput::parse(&table, &body, Write::Create);
        let update = |body: Value| RecordInput::parse(&table, &body, Write::Update);
        let err = create(json!({})).unwrap_err();
        assert_eq!(
            err.message,
            "`content` is required to create a record of `claims`"
        );
        assert!(create(json!({"story_id": "s1"})).is_err());
        for body in [
            json!({"content": null}),
            json!({"content": null, "story_id": "s"}),
        ] {
            assert_eq!(
                create(body.clone()).unwrap_err().message,
                "`content` must not be null"
            );
            assert_eq!(
                update(body).unwrap_err().message,
                "`content` must not be null"
            );
        }
        assert!(
            create(json!({"content": "c", "story_id": null})).is_ok(),
            "nullable"
        );
        assert!(
            update(json!({"story_id": null})).is_ok(),
            "an update need not name it"
        );
        let notes = Config::parse(include_str!("../../embeddings.toml")).unwrap();
        let notes = notes.table("notes").unwrap();
        assert!(
            RecordInput::parse(notes, &json!({}), Write::Create).is_ok(),
            "defaults"
        );
        let err = RecordInput::parse(notes, &json!({"title": null}), Write::Create).unwrap_err();
        assert_eq!(err.message, "`title` must not be null");
        // Characters, not bytes, as JSON Schema counts them.
        let wide = "\u{1f600}".repeat(guard::MAX_TEXT_CHARS);
        assert!(create(json!({"content": wide})).is_ok());
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
    fn cursors_are_any_place_of_their_shape_and_limits_are_bounded() {
        for any in ["clm_10", "", "\u{1f600} ~ anything"] {
            assert_eq!(record_cursor(any).unwrap(), any);
        }
        assert!(record_cursor(&"x".repeat(MAX_CURSOR_CHARS)).is_ok());
        assert!(record_cursor(&"x".repeat(MAX_CURSOR_CHARS + 1)).is_err());
        let id = "0b8f7d8e-5c4a-4c1e-9a55-2f7a7d3e9c10";
        let cursor = job_cursor(1_764_000_000_000, id);
        assert_eq!(parse_job_cursor(&cursor).unwrap(), (1_764_000_000_000, id));
        assert_eq!(parse_job_cursor("0:a").unwrap(), (0, "a"));
        assert_eq!(
            parse_job_cursor("999999999999999:abc-").unwrap(),
            (999_999_999_999_999, "abc-")
        );
        for bad in [
            "",
            ":",
            "1:",
            ":abc",
            "-1:abc",
            "+1:abc",
            "1:ABC",
            "1:abc:",
            "1000000000000000:abc",
            "1:g",
            "x1:abc",
        ] {
            assert!(parse_job_cursor(bad).is_err(), "{bad:?}");
        }
        assert!(parse_job_cursor(&format!("1:{}", "a".repeat(37))).is_err());
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some("100")).unwrap(), 100);
        assert!(page_size(Some("0")).is_err());
        assert!(page_size(Some("101")).is_err());
        assert!(page_size(Some("ten")).is_err());
    }
}
