//! Indexes: create, list, get, delete, and `info`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::envelope::{ok, with_messages};
use super::{body, AppState};
use crate::answers;
use crate::config::{IndexConfig, IndexName, IndexRecord};
use crate::error::{Error, Result};

/// `POST /indexes` `{name, description?, config}`: 201 with the index ("Create indexes": the
/// response has status code 201).
pub async fn create(State(catalog): State<AppState>, request: Body) -> Result<Response> {
    let request = body::json(request).await?;
    let name = request
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::unparsable("missing field `name`"))?;
    let name = IndexName::parse(name)?;
    let description = match request.get("description") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(d)) => d.clone(),
        Some(_) => return Err(Error::unparsable("description: expected a string")),
    };
    let config = IndexConfig::parse(request.get("config"))?;
    let record = catalog.create(&name, description, config)?;
    Ok(with_messages(StatusCode::CREATED, record, Vec::new()))
}

pub async fn list(State(catalog): State<AppState>) -> Response {
    let records: Vec<IndexRecord> = catalog.all().iter().map(|i| i.record.clone()).collect();
    ok(records)
}

pub async fn get(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
) -> Result<Response> {
    Ok(ok(catalog.get(&name)?.record.clone()))
}

pub async fn delete(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
) -> Result<Response> {
    catalog.delete(&name)?;
    Ok(ok(Value::Null))
}

/// `GET /indexes/{name}/info`: what the binding's `describe()` returns.
pub async fn info(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    Ok(ok(answers::info(&index)))
}
