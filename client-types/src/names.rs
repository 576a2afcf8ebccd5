//! How the config's names are written in TypeScript: a metadata field's shorthand option, and a
//! name as an object key or a string.

/// The options of `search` and `findWithGrayZone`: a shorthand may not take one's name.
pub const OPTION_NAMES: &[&str] = &["filters", "limit", "threshold", "min", "max"];

/// A metadata field's camelCase alias: `story_id` is `storyId`. Leading underscores stay; every
/// other `_` goes and the character after it is capitalized (`a__b` is `aB`, `year_2` is `year2`).
pub fn camel_case(field: &str) -> String {
    let rest = field.trim_start_matches('_');
    let mut alias = field[..field.len() - rest.len()].to_owned();
    for (i, part) in rest.split('_').filter(|p| !p.is_empty()).enumerate() {
        let mut chars = part.chars();
        if i > 0 {
            alias.extend(chars.next().map(|c| c.to_ascii_uppercase()));
        }
        alias.push_str(chars.as_str());
    }
    alias
}

/// The shorthand options of a table's metadata fields, as `(alias, field)` in the fields' order.
/// A field whose alias is an option's name, or another field's alias too, has none: a shorthand
/// must stand for one field and nothing else.
pub fn shorthands(fields: &[String]) -> Vec<(String, &str)> {
    let aliases: Vec<String> = fields.iter().map(|f| camel_case(f)).collect();
    fields
        .iter()
        .zip(&aliases)
        .filter(|(_, alias)| {
            !OPTION_NAMES.contains(&alias.as_str())
                && aliases.iter().filter(|a| a == alias).count() == 1
        })
        .map(|(field, alias)| (alias.clone(), field.as_str()))
        .collect()
}

/// `name` as the key of an object literal or a type: bare when it is an identifier, quoted
/// otherwise; `__proto__` is computed, since a plain `__proto__:` key sets an object's
/// prototype instead of a property.
pub fn key(name: &str) -> String {
    if name == "__proto__" {
        format!("[{}]", string(name))
    } else if is_identifier(name) {
        name.to_owned()
    } else {
        string(name)
    }
}

/// `text` as a string literal: JSON's, which JavaScript reads alike.
pub fn string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

/// An ASCII JavaScript identifier. Reserved words are allowed: they are valid property names.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fields_alias_is_its_camel_case() {
        for (field, alias) in [
            ("story_id", "storyId"),
            ("topic", "topic"),
            ("published_at_utc", "publishedAtUtc"),
            ("year_2", "year2"),
            ("a__b", "aB"),
            ("trailing_", "trailing"),
            ("_private", "_private"),
            ("__x_y", "__xY"),
            ("___", "___"),
            ("storyId", "storyId"),
        ] {
            assert_eq!(camel_case(field), alias, "{field}");
        }
    }

    #[test]
    fn a_shorthand_stands_for_one_field_and_is_no_options_name() {
        let fields: Vec<String> = ["story_id", "storyId", "limit", "max_", "topic"]
            .map(String::from)
            .into();
        assert_eq!(
            shorthands(&fields),
            vec![("topic".to_owned(), "topic")],
            "`story_id` and `storyId` share an alias; `limit` and `max_` are options"
        );
        assert!(shorthands(&[]).is_empty());
    }

    #[test]
    fn keys_are_quoted_only_when_they_must_be() {
        assert_eq!(key("claimSimilarity"), "claimSimilarity");
        assert_eq!(key("class"), "class");
        assert_eq!(key("$x_1"), "$x_1");
        assert_eq!(key("claim-similarity"), "\"claim-similarity\"");
        assert_eq!(key("2024"), "\"2024\"");
        assert_eq!(
            key("@cf/baai/bge-base-en-v1.5"),
            "\"@cf/baai/bge-base-en-v1.5\""
        );
        assert_eq!(key("__proto__"), "[\"__proto__\"]");
        assert_eq!(string("a\"b"), "\"a\\\"b\"");
    }
}
