//! The read operations of an index, answered from its visible state in the shapes the REST API
//! and the binding return: query matches, vectors by id, `info`, and the stand-in's `/stats`.

use serde_json::{json, Map, Value};

use crate::error::{Error, Kind, Result};
use crate::index::Index;
use crate::metadata::as_metadata;
use crate::query::{QueryRequest, ReturnMetadata, Target};
use crate::search::{search, Scan};
use crate::store::Row;
use crate::vector::Namespace;

/// A result, with notes for the envelope's `messages`.
#[derive(Debug)]
pub struct Answer {
    pub result: Value,
    pub notices: Vec<String>,
}

pub fn query(index: &Index, request: &QueryRequest) -> Result<Answer> {
    let state = index.read();
    let store = &state.store;
    let mut notices = Vec::new();
    let vector: Vec<f32> = match &request.target {
        Target::Vector(vector) => {
            if vector.len() != store.dimensions() {
                return Err(Error::new(
                    Kind::InvalidQueryVector,
                    format!(
                        "invalid query vector, expected {} dimensions, and got {} dimensions",
                        store.dimensions(),
                        vector.len()
                    ),
                ));
            }
            vector.clone()
        }
        Target::Id(id) => {
            let Some(row) = store.find(id) else {
                notices.push(format!("no vector of id `{id}`: nothing to query by"));
                return Ok(Answer {
                    result: json!({"count": 0, "matches": []}),
                    notices,
                });
            };
            row.values.to_vec()
        }
    };
    if let Some(filter) = &request.filter {
        let indexed = store.metadata_indexes();
        for property in filter.properties() {
            if !indexed.iter().any(|i| i.property_name == property) {
                // Vectorize filters only on metadata indexes: the clause matches no vector.
                tracing::warn!(
                    index = index.name(),
                    property,
                    "filter on a property with no metadata index"
                );
                notices.push(format!(
                    "`{property}` has no metadata index: the filter matches no vector (create one with metadata_index/create, then write the vectors again)"
                ));
            }
        }
    }
    let scan = Scan {
        vector: &vector,
        top_k: request.top_k,
        namespace: request.namespace.as_ref().map(Namespace::as_str),
        filter: request.filter.as_ref(),
    };
    let matches: Vec<Value> = search(store, index.record.config.metric, &scan)
        .into_iter()
        .map(|hit| render_match(store.row(hit.row), hit.score, request))
        .collect();
    Ok(Answer {
        result: json!({"count": matches.len(), "matches": matches}),
        notices,
    })
}

fn render_match(row: Row<'_>, score: f32, request: &QueryRequest) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), row.record.id.clone().into());
    out.insert("score".into(), f64::from(score).into());
    if request.return_values {
        out.insert("values".into(), values(row.values));
    }
    let metadata = match request.return_metadata {
        ReturnMetadata::None => None,
        ReturnMetadata::All => row.record.metadata.clone(),
        ReturnMetadata::Indexed => Some(as_metadata(&row.record.indexed)).filter(|m| !m.is_empty()),
    };
    if let Some(metadata) = metadata {
        out.insert("metadata".into(), Value::Object(metadata));
    }
    if let Some(namespace) = &row.record.namespace {
        out.insert("namespace".into(), namespace.clone().into());
    }
    Value::Object(out)
}

/// Values as the service returns them: each float32 widened to a JSON double.
fn values(values: &[f32]) -> Value {
    values.iter().map(|&v| f64::from(v)).collect()
}

/// The vectors of these ids that the index holds, in the order asked, each once.
pub fn get_by_ids(index: &Index, ids: &[String]) -> Value {
    let state = index.read();
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .filter_map(|id| state.store.find(id))
        .map(|row| {
            let mut out = Map::new();
            out.insert("id".into(), row.record.id.clone().into());
            out.insert("values".into(), values(row.values));
            if let Some(metadata) = &row.record.metadata {
                out.insert("metadata".into(), Value::Object(metadata.clone()));
            }
            if let Some(namespace) = &row.record.namespace {
                out.insert("namespace".into(), namespace.clone().into());
            }
            Value::Object(out)
        })
        .collect()
}

/// `info`, which the binding's `describe()` returns as it is.
pub fn info(index: &Index) -> Value {
    let state = index.read();
    json!({
        "dimensions": state.store.dimensions(),
        "vectorCount": state.store.len(),
        "processedUpToDatetime": state.processed_up_to_datetime(),
        "processedUpToMutation": state.processed_up_to_mutation(),
    })
}

/// An index's line in `/stats`.
pub fn stats(index: &Index) -> Value {
    let state = index.read();
    json!({
        "vectors": state.store.len(),
        "pendingMutations": state.pending(),
        "lastMutation": state.last_accepted(),
        "processedUpToMutation": state.processed_up_to_mutation(),
    })
}
