//! Metadata indexes: which properties a filter may test, and what each vector holds in them.
//!
//! A vector's indexed values are taken when the vector is written, from the metadata indexes
//! that exist then ("Metadata filtering": vectors upserted before a metadata index was created
//! are not in it). A value is indexed only when its JSON type is the index's type; a string
//! keeps its first 64 bytes, cut on a UTF-8 character boundary; a number keeps float64
//! precision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::limits::{INDEXED_STRING_BYTES, MAX_FILTER_KEY_CHARS};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IndexType {
    String,
    Number,
    Boolean,
}

/// A metadata index, as `metadata_index/list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataIndex {
    pub property_name: String,
    pub index_type: IndexType,
}

/// A value held in a metadata index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Indexed {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// What one vector holds in the metadata indexes, by property.
pub type IndexedValues = BTreeMap<String, Indexed>;

/// Checks a property name as a filter key is checked ("Metadata filtering": not empty, no `"`,
/// not starting with `$`, at most 512 characters); dots address nested properties. The error is
/// the reason, for the caller to file under its own kind.
pub fn check_property(name: &str) -> std::result::Result<(), String> {
    let bad = name.is_empty()
        || name.contains('"')
        || name.starts_with('$')
        || name.chars().count() > MAX_FILTER_KEY_CHARS
        || name.split('.').any(str::is_empty);
    if bad {
        return Err(format!(
            "invalid property name `{name}`: it may not be empty, hold `\"` or an empty segment \
             between dots, start with `$`, or be longer than {MAX_FILTER_KEY_CHARS} characters"
        ));
    }
    Ok(())
}

/// The first `max` bytes of `s`, cut back to a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The value at a dotted path: `a.b` is `{"a": {"b": ...}}`.
pub fn lookup<'a>(metadata: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut segments = path.split('.');
    let mut value = metadata.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    Some(value)
}

impl IndexType {
    /// What an index of this type holds for `value`: nothing when the types differ.
    pub fn index(self, value: &Value) -> Option<Indexed> {
        match (self, value) {
            (IndexType::String, Value::String(s)) => Some(Indexed::Str(
                truncate_utf8(s, INDEXED_STRING_BYTES).to_owned(),
            )),
            (IndexType::Number, Value::Number(n)) => n.as_f64().map(Indexed::Num),
            (IndexType::Boolean, Value::Bool(b)) => Some(Indexed::Bool(*b)),
            _ => None,
        }
    }
}

/// What a vector written now holds in `indexes`.
pub fn index_values(
    indexes: &[MetadataIndex],
    metadata: Option<&Map<String, Value>>,
) -> IndexedValues {
    let Some(metadata) = metadata else {
        return IndexedValues::new();
    };
    indexes
        .iter()
        .filter_map(|index| {
            let value = lookup(metadata, &index.property_name)?;
            Some((index.property_name.clone(), index.index_type.index(value)?))
        })
        .collect()
}

/// The indexed values as metadata (`returnMetadata: "indexed"`), nested back along their paths.
pub fn as_metadata(indexed: &IndexedValues) -> Map<String, Value> {
    let mut out = Map::new();
    for (path, value) in indexed {
        let value = match value {
            Indexed::Str(s) => Value::from(s.clone()),
            Indexed::Num(n) => Value::from(*n),
            Indexed::Bool(b) => Value::from(*b),
        };
        let mut segments: Vec<&str> = path.split('.').collect();
        let last = segments.pop().unwrap_or_default();
        let mut object = &mut out;
        for segment in segments {
            let entry = object
                .entry(segment)
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            let Value::Object(inner) = entry else {
                unreachable!("made an object just above")
            };
            object = inner;
        }
        object.insert(last.to_owned(), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_keep_64_bytes_cut_on_a_character_boundary() {
        let s = format!("{}é", "a".repeat(63));
        assert_eq!(truncate_utf8(&s, 64), "a".repeat(63));
        assert_eq!(truncate_utf8("short", 64), "short");
        let indexed = IndexType::String.index(&json!("b".repeat(100)));
        assert_eq!(indexed, Some(Indexed::Str("b".repeat(64))));
    }

    #[test]
    fn only_values_of_the_index_type_are_indexed() {
        assert_eq!(IndexType::Number.index(&json!("5")), None);
        assert_eq!(IndexType::String.index(&json!(5)), None);
        assert_eq!(IndexType::Boolean.index(&json!(null)), None);
        assert_eq!(IndexType::Number.index(&json!(5)), Some(Indexed::Num(5.0)));
    }

    #[test]
    fn dotted_paths_reach_nested_properties_both_ways() {
        let metadata = json!({"pandas": {"nice": 42}, "top": "x"});
        let metadata = metadata.as_object().unwrap();
        assert_eq!(lookup(metadata, "pandas.nice"), Some(&json!(42)));
        assert_eq!(lookup(metadata, "top.nice"), None);
        let indexes = [
            MetadataIndex {
                property_name: "pandas.nice".into(),
                index_type: IndexType::Number,
            },
            MetadataIndex {
                property_name: "top".into(),
                index_type: IndexType::String,
            },
        ];
        let held = index_values(&indexes, Some(metadata));
        assert_eq!(
            Value::Object(as_metadata(&held)),
            json!({"pandas": {"nice": 42.0}, "top": "x"})
        );
    }

    #[test]
    fn property_names_follow_the_filter_key_rules() {
        assert!(check_property("a.b").is_ok());
        for bad in ["", "$a", "a\"b", "a..b", ".a", &"k".repeat(513)] {
            assert!(check_property(bad).is_err(), "{bad}");
        }
    }
}
