//! Queries, by vector or by the id of a stored vector. The scan runs on a blocking thread: at
//! tens of thousands of vectors it takes milliseconds of CPU.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::envelope::with_messages;
use super::{body, AppState};
use crate::answers;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::query::QueryRequest;

/// `POST query` `{vector | vectorId, topK?, returnValues?, returnMetadata?, namespace?, filter?}`.
pub async fn query(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    request: Body,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let request = QueryRequest::parse(&body::json(request).await?)?;
    answer(index, request).await
}

/// `POST query_by_id` `{vectorId, ...}`: `query` by a stored vector's id.
pub async fn query_by_id(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    request: Body,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let body = body::json(request).await?;
    if !body.get("vectorId").is_some_and(Value::is_string) {
        return Err(Error::unparsable("missing field `vectorId`"));
    }
    answer(index, QueryRequest::parse(&body)?).await
}

async fn answer(index: Arc<Index>, request: QueryRequest) -> Result<Response> {
    let answer = tokio::task::spawn_blocking(move || answers::query(&index, &request))
        .await
        .map_err(|e| Error::internal(format!("the query task failed: {e}")))??;
    Ok(with_messages(StatusCode::OK, answer.result, answer.notices))
}
