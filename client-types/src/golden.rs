//! The enqueue rule's golden cases: inputs of the TypeScript client's `embeddingJob`, each with
//! what [`shared::enqueue::resolve`] makes of it under the config (the model and record, or the
//! error's code and message). The client's tests run every case and expect the same, so its
//! check cannot drift from the workers'.
//!
//! The inputs are the client's: content, a model, a table and an id (it names no search
//! service). Each step of the rule has cases, and so has its order (two faults in one input).

use serde_json::{json, Map, Value};
use shared::enqueue::{self, Request};
use shared::{guard, models, Config};

/// The golden file's `about`, since JSON has no comments.
const ABOUT: &str = "Generated from embeddings.toml and shared::enqueue::resolve by \
`cargo run -p client-types`: do not edit it by hand. The client's tests expect each outcome.";

/// A table name that no config can hold: table names are identifiers.
const NO_TABLE: &str = "no-such-table";

/// The golden cases for `config`, as the JSON file the client's tests read.
pub fn render(config: &Config) -> String {
    let cases: Vec<String> = inputs(config)
        .iter()
        .map(|input| ascii(&case(config, input).to_string()))
        .collect();
    format!(
        "{{\n  \"about\": {},\n  \"cases\": [\n    {}\n  ]\n}}\n",
        json!(ABOUT),
        cases.join(",\n    ")
    )
}

/// One input of `embeddingJob`: content, then the optional model, table and id.
type Input = (String, Option<&'static str>, Option<String>, Option<String>);

fn inputs(config: &Config) -> Vec<Input> {
    let text = |content: &str| (content.to_owned(), None, None, None);
    let bound = |table: &str, id: &str| {
        (
            "x".to_owned(),
            None,
            Some(table.to_owned()),
            Some(id.to_owned()),
        )
    };
    let mut inputs = vec![
        text("Police arrested three suspects"),
        // Blank to Rust's `trim`, in every whitespace class; U+FEFF is not whitespace to Rust.
        text(""),
        text(" \n\t\u{3000}\u{85}\u{a0} "),
        text("\u{feff}"),
        ("x".to_owned(), Some("@cf/baai/bge-huge"), None, None),
        bound(NO_TABLE, "r_1"),
        ("x".to_owned(), None, Some(NO_TABLE.to_owned()), None),
        ("x".to_owned(), None, None, Some("r_1".to_owned())),
    ];
    inputs.extend(
        models::MODELS
            .iter()
            .map(|model| ("x".to_owned(), Some(model.name), None, None)),
    );
    for table in &config.tables {
        inputs.push(bound(&table.name, "r_1"));
        for model in models::MODELS {
            inputs.push((
                "x".to_owned(),
                Some(model.name),
                Some(table.name.clone()),
                Some("r_1".to_owned()),
            ));
        }
    }
    if let Some(table) = config.tables.first() {
        let name = &table.name;
        let longest = "x".repeat(guard::MAX_RECORD_ID_BYTES);
        let over = "x".repeat(guard::MAX_RECORD_ID_BYTES + 1);
        for id in ["a:b.c-d_e", &longest, "", "bad id'", "\u{fc}n\u{ef}", &over] {
            inputs.push(bound(name, id));
        }
        let other = models::MODELS
            .iter()
            .find(|m| m.name != table.model().name)
            .map(|m| m.name);
        // Two faults: the first in the rule's order is the one told.
        inputs.extend([
            ("  ".to_owned(), None, Some(name.clone()), None),
            (
                "x".to_owned(),
                Some("@cf/baai/bge-huge"),
                Some(name.clone()),
                None,
            ),
            bound(NO_TABLE, "bad id"),
            (
                "x".to_owned(),
                other,
                Some(name.clone()),
                Some("bad id".to_owned()),
            ),
        ]);
    }
    inputs
}

/// An input and its outcome under `config`.
fn case(config: &Config, (content, model, table, id): &Input) -> Value {
    let mut input = Map::new();
    input.insert("content".into(), json!(content));
    let optional = [
        ("model", model.map(str::to_owned)),
        ("table", table.clone()),
        ("id", id.clone()),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            input.insert(field.into(), json!(value));
        }
    }
    let request = Request {
        text_field: "content",
        text: content,
        service: None,
        model: *model,
        table: table.as_deref(),
        id: id.as_deref(),
    };
    match enqueue::resolve(config, request, enqueue::trusted) {
        Ok(resolved) => {
            let mut ok = Map::new();
            ok.insert("model".into(), json!(resolved.model.name));
            if let Some(target) = resolved.target {
                ok.insert("table".into(), json!(target.table().name));
                ok.insert("id".into(), json!(target.id()));
            }
            json!({ "input": input, "ok": ok })
        }
        Err(error) => json!({
            "input": input,
            "error": { "code": error.code, "message": error.message },
        }),
    }
}

/// `json` with every character outside printable ASCII escaped, so that the file shows what
/// each case holds (U+0085 and U+3000 are invisible as they are). JSON's own punctuation is
/// ASCII: whatever is escaped sits inside a string.
fn ascii(json: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Config {
        Config::parse(include_str!("../../embeddings.toml")).unwrap()
    }

    #[test]
    fn every_case_is_valid_json_with_one_outcome() {
        let file: Value = serde_json::from_str(&render(&project())).unwrap();
        let cases = file["cases"].as_array().unwrap();
        assert!(cases.len() > 20);
        for case in cases {
            assert!(
                case["ok"].is_object() != case["error"].is_object(),
                "{case}"
            );
            assert!(case["input"]["content"].is_string(), "{case}");
        }
    }

    #[test]
    fn each_step_of_the_rule_has_a_case() {
        let rendered = render(&project());
        let file: Value = serde_json::from_str(&rendered).unwrap();
        let notes = json!({"model": "@cf/baai/bge-small-en-v1.5", "table": "notes", "id": "r_1"});
        assert!(file["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|case| case["ok"] == notes));
        for expected in [
            "`content` must not be empty",
            "give `table` and `id` together, or neither",
            "is not an embedding table",
            "\"code\":\"not_found\"",
            "\"code\":\"unknown_model\"",
            "`id` must be 1 to 64 characters",
            "its vectors cannot mix models",
        ] {
            assert!(rendered.contains(expected), "{expected}");
        }
    }

    #[test]
    fn only_printable_ascii_is_written() {
        assert_eq!(
            ascii("a\u{85}\u{3000}\u{1f600}\""),
            "a\\u0085\\u3000\\ud83d\\ude00\""
        );
        let rendered = render(&project());
        assert!(rendered
            .chars()
            .all(|c| c == '\n' || (' '..='~').contains(&c)));
        let file: Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(
            file["cases"][2]["input"]["content"],
            " \n\t\u{3000}\u{85}\u{a0} "
        );
    }

    #[test]
    fn a_config_without_tables_has_only_the_free_cases() {
        let file: Value = serde_json::from_str(&render(&Config::parse("").unwrap())).unwrap();
        let cases = file["cases"].as_array().unwrap();
        assert!(cases.iter().all(|case| case["ok"]["table"].is_null()));
    }
}
