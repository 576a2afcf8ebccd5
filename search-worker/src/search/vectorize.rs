//! The Vectorize backend: the organization is the query's namespace, the table a metadata
//! filter, and every match is checked against D1, which is current where the index lags.

use serde_json::{Map, Value};
use shared::ApiError;
use worker_kit::embedder::Embedder;
use worker_kit::vectorize::{QueryOptions, MAX_TOP_K};

use super::Ask;
use crate::answers::Nearest;
use crate::ports::{App, Store, VectorIndexes};

/// Vectorize: the organization is the namespace, the table a metadata filter. Matches come back
/// without metadata, so a query may ask for as many as the D1 backend gives (100): D1 maps each
/// vector id to its record and current metadata.
pub(super) async fn vectorize_nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    binding: &str,
    ask: &Ask<'_>,
) -> Result<Vec<Nearest>, ApiError> {
    let Ask {
        organization_id,
        table,
        active,
        vector,
        limit,
        min_score,
        filter,
    } = *ask;
    let mut conditions = match filter.to_json() {
        Value::Object(conditions) => conditions,
        _ => Map::new(),
    };
    conditions.insert("table".into(), Value::String(table.name.clone()));
    let options = QueryOptions {
        top_k: limit.min(MAX_TOP_K),
        namespace: organization_id.to_owned(),
        return_metadata: "none",
        return_values: false,
        filter: Some(Value::Object(conditions)),
    };
    let matches = app
        .indexes
        .query(binding, vector, &options)
        .await
        .map_err(|fault| {
            tracing::error!(error = %fault, binding, "Vectorize query failed");
            ApiError::unavailable("the vector index is unavailable; retry later")
        })?;
    let found: Vec<(String, f32)> = matches
        .into_iter()
        .filter(|m| m.score >= min_score)
        .map(|m| (m.id, m.score))
        .collect();
    // Vectorize's writes show up seconds later; D1 is current. A match D1 no longer holds (a
    // deleted record) is left out, and each match carries D1's metadata, checked again against
    // the filter: an answer never shows what the caller has already changed.
    let vector_ids: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
    let live = app
        .store
        .live_records(
            organization_id,
            &table.name,
            &active.set.location,
            &vector_ids,
        )
        .await
        .map_err(|fault| {
            tracing::error!(error = %fault, table = %table.name, "reading current records failed");
            ApiError::unavailable("the vector store is unavailable; retry later")
        })?;
    let current: Vec<Nearest> = found
        .into_iter()
        .filter_map(|(vector_id, score)| {
            let (record_id, metadata) = live.get(&vector_id)?;
            (filter.is_empty() || filter.matches(metadata))
                .then(|| (record_id.clone(), score, metadata.clone()))
        })
        .collect();
    if current.len() < vector_ids.len() {
        tracing::info!(
            table = %table.name,
            left_out = vector_ids.len() - current.len(),
            "Vectorize matches that D1 no longer holds as they are were left out"
        );
    }
    Ok(current)
}
