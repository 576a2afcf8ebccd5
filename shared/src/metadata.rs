//! The bound on a vector's metadata: the one rule the gateway, the consumer and D1 apply.
//!
//! A table's `metadata` fields are copied from its records into each vector's metadata, which
//! Vectorize caps at 10 KiB per vector, and which search-worker holds in memory for every row
//! of a D1-backed table. Without a bound of its own, one record with a 20,000-character `topic`
//! made Vectorize refuse an upsert that carried other organizations' vectors, and one tenant's
//! large metadata crowded the others out of the isolate.
//!
//! So each value is bounded in bytes, as JSON writes it (a string's UTF-8 bytes with its quotes
//! and escapes; a number's digits): [`DEFAULT_VALUE_BYTES`] unless the table's
//! `metadata_max_bytes` names another bound for the field. The config is refused when the
//! bounds of a table's fields, beside what the product adds itself ([`RESERVED_BYTES`]), could
//! pass Vectorize's cap, so a vector that keeps its bounds always fits.
//!
//! Who checks:
//! - the gateway refuses a create or update whose metadata value is over its bound (400, the
//!   field named: [`check`] through `record::RecordInput::parse`);
//! - the SQL that copies a record's metadata into its vector rows, in the consumer and the
//!   gateway alike, leaves out a value over its bound (`TableConfig::metadata_sql`), so no
//!   vector ever carries one, whoever wrote the record: an app may write its D1 rows itself,
//!   and the consumer logs such a record when it embeds it. Its job goes on as any other: a
//!   job that died for it would leave a model change unable to cover the record, for ever.

use std::fmt;

use serde_json::{Map, Value};

use crate::config::TableConfig;
use crate::error::ApiError;

/// What one metadata value may take, as JSON, unless the config says otherwise (or the table
/// has so many metadata fields that less is their share: [`default_value_bytes`]).
pub const DEFAULT_VALUE_BYTES: usize = 1024;
/// Vectorize's cap on one vector's metadata.
pub const VECTORIZE_METADATA_BYTES: usize = 10 * 1024;
/// What the product adds to every vector's metadata beside the configured fields: `table`,
/// `recordId` (at most 64 bytes) and `organizationId`, their keys and the JSON around them.
pub const RESERVED_BYTES: usize = 1024;

/// A metadata value over its bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub field: String,
    pub bytes: usize,
    pub max: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "metadata field `{}` is {} bytes as JSON, over its bound of {} (embeddings.toml: \
             `metadata_max_bytes`)",
            self.field, self.bytes, self.max
        )
    }
}

impl From<TooLarge> for ApiError {
    fn from(e: TooLarge) -> Self {
        ApiError::invalid(e.to_string())
    }
}

/// The bound of a field the config gives none: [`DEFAULT_VALUE_BYTES`], or each field's equal
/// share of what Vectorize takes beside [`RESERVED_BYTES`] and the keys, when that is less
/// (a table of nine or ten metadata fields): a config that names no bound always fits.
pub fn default_value_bytes(table: &TableConfig) -> usize {
    let fields = &table.embeddings.metadata;
    let keys: usize = fields.iter().map(|field| field.len() + 4).sum();
    let share =
        VECTORIZE_METADATA_BYTES.saturating_sub(RESERVED_BYTES + keys) / fields.len().max(1);
    share.min(DEFAULT_VALUE_BYTES)
}

/// The bytes `value` takes as JSON.
pub fn value_bytes(value: &Value) -> usize {
    match value {
        Value::String(s) => json_string_bytes(s),
        other => other.to_string().len(),
    }
}

/// A string's JSON length without writing it: two quotes, and each character as `serde_json`
/// escapes it (`\"`, `\\`, the short escapes, `\u00XX` for other control characters).
fn json_string_bytes(s: &str) -> usize {
    2 + s
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if c < ' ' => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// The first metadata value of `record` over its bound. Fields the record does not carry, and
/// columns that are not metadata, are not looked at.
pub fn check(table: &TableConfig, record: &Map<String, Value>) -> Result<(), TooLarge> {
    for field in &table.embeddings.metadata {
        let Some(value) = record.get(field) else {
            continue;
        };
        let (bytes, max) = (value_bytes(value), table.metadata_max_bytes(field));
        if bytes > max {
            return Err(TooLarge {
                field: field.clone(),
                bytes,
                max,
            });
        }
    }
    Ok(())
}

/// The most a vector's metadata can take when every value keeps its bound: what the config's
/// validation holds within [`VECTORIZE_METADATA_BYTES`].
pub fn worst_case_bytes(table: &TableConfig) -> usize {
    RESERVED_BYTES
        + table
            .embeddings
            .metadata
            .iter()
            // The key, its quotes, a colon and a comma beside the value.
            .map(|field| field.len() + 4 + table.metadata_max_bytes(field))
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn notes(max: Option<usize>) -> TableConfig {
        let bound = max.map_or(String::new(), |m| {
            format!("metadata_max_bytes = {{ topic = {m} }}\n")
        });
        let toml = format!(
            "[[table]]\nname = \"notes\"\ncolumns = [\"id\", \"organization_id\", \"topic\", \
             \"body\", \"embedding\"]\nwritable = [\"topic\", \"body\"]\n[table.embeddings]\n\
             fields = [\"body\"]\nmetadata = [\"topic\"]\n{bound}"
        );
        crate::Config::parse(&toml).unwrap().tables.remove(0)
    }

    #[test]
    fn a_value_is_measured_as_json_writes_it() {
        for value in [
            json!("plain"),
            json!("quote \" and \\ and \n and \u{1} and é and 😀"),
            json!(12.5),
            json!(-3),
            json!(true),
            json!(false),
            json!(null),
        ] {
            assert_eq!(value_bytes(&value), value.to_string().len(), "{value}");
        }
    }

    #[test]
    fn a_value_at_its_bound_passes_and_one_byte_more_is_refused_by_name() {
        let table = notes(None);
        // The quotes count: a string of n - 2 ASCII characters is n bytes.
        let at = json!({ "topic": "x".repeat(DEFAULT_VALUE_BYTES - 2), "body": "y".repeat(9_000) });
        assert_eq!(check(&table, at.as_object().unwrap()), Ok(()));
        let over = json!({ "topic": "x".repeat(DEFAULT_VALUE_BYTES - 1) });
        let refused = check(&table, over.as_object().unwrap()).unwrap_err();
        assert_eq!(
            refused,
            TooLarge {
                field: "topic".into(),
                bytes: DEFAULT_VALUE_BYTES + 1,
                max: DEFAULT_VALUE_BYTES
            }
        );
        assert!(refused.to_string().contains("`topic`"), "{refused}");
        assert!(ApiError::from(refused).status() == 400);
    }

    #[test]
    fn without_bounds_in_the_config_any_number_of_fields_fits_vectorize() {
        for n in [1, 8, 9, 10] {
            let fields: Vec<String> = (0..n).map(|i| format!("field_{i}")).collect();
            let quoted: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
            let toml = format!(
                "[[table]]\nname = \"wide\"\ncolumns = [\"id\", \"organization_id\", \"body\", \
                 \"embedding\", {q}]\n[table.embeddings]\nfields = [\"body\"]\nmetadata = [{q}]\n",
                q = quoted.join(", ")
            );
            let config = crate::Config::parse(&toml).unwrap_or_else(|e| panic!("{n}: {e}"));
            let table = &config.tables[0];
            assert!(
                worst_case_bytes(table) <= VECTORIZE_METADATA_BYTES,
                "{n} fields"
            );
            let bound = table.metadata_max_bytes("field_0");
            if n <= 8 {
                assert_eq!(bound, DEFAULT_VALUE_BYTES, "{n} fields");
            } else {
                assert!(
                    bound < DEFAULT_VALUE_BYTES && bound > 800,
                    "{n} fields: {bound}"
                );
            }
        }
    }

    #[test]
    fn a_field_may_have_its_own_bound() {
        let table = notes(Some(64));
        assert_eq!(table.metadata_max_bytes("topic"), 64);
        let over = json!({ "topic": "x".repeat(63) });
        assert_eq!(
            check(&table, over.as_object().unwrap()).unwrap_err().max,
            64
        );
        assert_eq!(
            worst_case_bytes(&table),
            RESERVED_BYTES + "topic".len() + 4 + 64
        );
    }
}
