//! `deploy-plan [CONFIG]`: what `scripts/deploy` must create for a config (the project's
//! `embeddings.toml` by default), as one JSON document:
//!
//! ```json
//! {"vectorize": [{"binding": "VECTORIZE_768", "index": "embeddings-768", "dimensions": 768,
//!                 "metadata": ["table", "story_id"]}]}
//! ```
//!
//! One Vectorize index per model dimension, shared by every table of that dimension; its
//! metadata indexes cover what searches filter on: the table and each table's configured
//! metadata fields (the organization is the namespace; records are found through D1 by vector
//! id). They must exist before the first vector is written, or the vectors written before them
//! are not filterable, and an index takes at most ten.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::json;
use shared::config::VectorIndex;
use shared::Config;

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../embeddings.toml").to_owned());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("deploy-plan: cannot read {path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = match Config::parse(&text) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    match plan(&config) {
        Ok(plan) => {
            println!("{plan}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("deploy-plan: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Vectorize's limit of metadata indexes per index.
const MAX_METADATA_INDEXES: usize = 10;

/// The Vectorize indexes the config needs, by binding.
fn plan(config: &Config) -> Result<serde_json::Value, String> {
    let mut indexes: BTreeMap<&str, (usize, Vec<String>)> = BTreeMap::new();
    for table in &config.tables {
        let VectorIndex::Vectorize { binding } = &table.embeddings.vector_index else {
            continue;
        };
        let dimensions = table.model().dimensions;
        let entry = indexes
            .entry(binding)
            .or_insert_with(|| (dimensions, vec!["table".into()]));
        if entry.0 != dimensions {
            return Err(format!(
                "binding `{binding}` serves {} and {dimensions} dimensions; one index has one",
                entry.0
            ));
        }
        for field in &table.embeddings.metadata {
            if !entry.1.contains(field) {
                entry.1.push(field.clone());
            }
        }
        if entry.1.len() > MAX_METADATA_INDEXES {
            return Err(format!(
                "binding `{binding}` needs {} metadata indexes ({}); Vectorize allows {MAX_METADATA_INDEXES} per index",
                entry.1.len(),
                entry.1.join(", ")
            ));
        }
    }
    // An index kept bound for a model change still in progress: no table writes to it any
    // more, so it needs no new metadata index (it already has those its tables needed).
    for kept in &config.kept_indexes {
        let dimensions = shared::models::model(&kept.model)
            .map(|m| m.dimensions)
            .ok_or_else(|| format!("unknown model `{}`", kept.model))?;
        indexes
            .entry(&kept.binding)
            .or_insert_with(|| (dimensions, vec!["table".into()]));
    }
    let vectorize: Vec<serde_json::Value> = indexes
        .into_iter()
        .map(|(binding, (dimensions, metadata))| {
            json!({
                "binding": binding,
                "index": format!("embeddings-{dimensions}"),
                "dimensions": dimensions,
                "metadata": metadata,
            })
        })
        .collect();
    Ok(json!({ "vectorize": vectorize }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_index_stays_bound_beside_the_tables_indexes() {
        let config = Config::parse(
            r#"
[[table]]
name = "evidence"
columns = ["id", "organization_id", "content", "embedding"]
[table.embeddings]
fields = ["content"]
model = "@cf/baai/bge-small-en-v1.5"
vector_index = { backend = "vectorize", binding = "VECTORIZE_384" }

[[vectorize]]
binding = "VECTORIZE_768"
model = "@cf/baai/bge-base-en-v1.5"
"#,
        )
        .unwrap();
        let plan = plan(&config).unwrap();
        let bindings: Vec<(&str, u64)> = plan["vectorize"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["binding"].as_str().unwrap(),
                    i["dimensions"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            bindings,
            vec![("VECTORIZE_384", 384), ("VECTORIZE_768", 768)]
        );
    }

    #[test]
    fn one_index_per_dimension_with_the_filterable_fields() {
        let config = Config::parse(
            r#"
[[table]]
name = "claims"
columns = ["id", "organization_id", "story_id", "content", "embedding"]
[table.embeddings]
fields = ["content"]
metadata = ["story_id"]
vector_index = { backend = "vectorize", binding = "VECTORIZE_768" }

[[table]]
name = "notes"
columns = ["id", "organization_id", "body", "embedding"]
[table.embeddings]
fields = ["body"]
"#,
        )
        .unwrap();
        assert_eq!(
            plan(&config).unwrap(),
            json!({"vectorize": [{
                "binding": "VECTORIZE_768",
                "index": "embeddings-768",
                "dimensions": 768,
                "metadata": ["table", "story_id"],
            }]})
        );
        let project = Config::parse(include_str!("../../embeddings.toml")).unwrap();
        assert_eq!(
            plan(&project).unwrap(),
            json!({"vectorize": [{
                "binding": "VECTORIZE_768",
                "index": "embeddings-768",
                "dimensions": 768,
                "metadata": ["table", "story_id"],
            }]}),
            "evidence is kept in Vectorize"
        );
    }

    #[test]
    fn more_metadata_fields_than_an_index_takes_are_refused() {
        let fields: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let config = Config::parse(&format!(
            r#"
[[table]]
name = "wide"
columns = ["id", "organization_id", "body", "embedding", {columns}]
[table.embeddings]
fields = ["body"]
metadata = [{columns}]
vector_index = {{ backend = "vectorize", binding = "VECTORIZE_768" }}
"#,
            columns = fields
                .iter()
                .map(|f| format!("\"{f}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .unwrap();
        let error = plan(&config).unwrap_err();
        assert!(error.contains("needs 11 metadata indexes"), "{error}");
    }
}
