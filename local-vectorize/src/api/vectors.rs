//! Writing and reading vectors by id: `insert`, `upsert`, `get_by_ids`, `delete_by_ids`.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};

use super::envelope::ok;
use super::{body, AppState, CALLER_HEADER};
use crate::answers;
use crate::error::{Error, Kind, Result};
use crate::limits::{
    MAX_BATCH_FROM_HTTP, MAX_BATCH_FROM_WORKER, MAX_IDS_PER_DELETE, MAX_IDS_PER_GET,
};
use crate::mutation::Change;
use crate::ndjson::{ndjson_of, parse_vectors, Unparsable};
use crate::vector::VectorId;

#[derive(Debug, Deserialize)]
pub struct WriteParams {
    #[serde(rename = "unparsable-behavior")]
    unparsable_behavior: Option<String>,
}

pub async fn insert(
    state: State<AppState>,
    path: Path<(String, String)>,
    params: Query<WriteParams>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response> {
    write(state, path, params, headers, request, "insert").await
}

pub async fn upsert(
    state: State<AppState>,
    path: Path<(String, String)>,
    params: Query<WriteParams>,
    headers: HeaderMap,
    request: Body,
) -> Result<Response> {
    write(state, path, params, headers, request, "upsert").await
}

/// An insert or upsert: NDJSON in, `{mutationId}` out. A Worker binding may send 1000 vectors
/// at once, the HTTP API 5000 ("limits").
async fn write(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    Query(params): Query<WriteParams>,
    headers: HeaderMap,
    request: Body,
    operation: &'static str,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let unparsable = Unparsable::parse(params.unparsable_behavior.as_deref())?;
    let bytes = body::bytes(request).await?;
    let ndjson = ndjson_of(&bytes, body::content_type(&headers))?;
    let vectors = parse_vectors(
        ndjson,
        index.record.config.dimensions,
        unparsable,
        operation,
    )?;
    let from_worker = headers
        .get(CALLER_HEADER)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"worker"));
    let (limit, caller) = if from_worker {
        (MAX_BATCH_FROM_WORKER, "a Worker binding")
    } else {
        (MAX_BATCH_FROM_HTTP, "the HTTP API")
    };
    if vectors.len() > limit {
        return Err(Error::new(
            Kind::TooManyVectors,
            format!(
                "too many vectors in one {operation}; max is {limit} from {caller}, got {}",
                vectors.len()
            ),
        ));
    }
    let change = if operation == "insert" {
        Change::Insert(vectors)
    } else {
        Change::Upsert(vectors)
    };
    let mutation = index.accept(change)?;
    Ok(ok(json!({"mutationId": mutation})))
}

/// The `ids` of a body, each a possible vector id, at most `max` of them (observed limits:
/// "too many ids in payload; max id count is N, got M", code 40007).
fn ids(request: &Value, max: usize) -> Result<Vec<String>> {
    let ids: Vec<String> = request
        .get("ids")
        .cloned()
        .and_then(|ids| serde_json::from_value(ids).ok())
        .ok_or_else(|| Error::unparsable("ids: expected an array of strings"))?;
    if ids.len() > max {
        return Err(Error::new(
            Kind::TooManyIds,
            format!(
                "too many ids in payload; max id count is {max}, got {}",
                ids.len()
            ),
        ));
    }
    ids.into_iter()
        .map(|id| VectorId::parse(id).map(VectorId::into_string))
        .collect()
}

/// `POST get_by_ids` `{ids}` → the vectors found, `[{id, values, metadata?, namespace?}]`.
pub async fn get_by_ids(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    request: Body,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let ids = ids(&body::json(request).await?, MAX_IDS_PER_GET)?;
    Ok(ok(answers::get_by_ids(&index, &ids)))
}

/// `POST delete_by_ids` `{ids}` → `{mutationId}`.
pub async fn delete_by_ids(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    request: Body,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let ids = ids(&body::json(request).await?, MAX_IDS_PER_DELETE)?;
    let mutation = index.accept(Change::Delete(ids))?;
    Ok(ok(json!({"mutationId": mutation})))
}
