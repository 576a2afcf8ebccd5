//! Metadata indexes: create and delete (both mutations, as in Vectorize) and list.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_json::{json, Value};

use super::envelope::ok;
use super::{body, AppState};
use crate::error::{Error, Kind, Result};
use crate::metadata::{check_property, MetadataIndex};
use crate::mutation::Change;

fn property_name(request: &Value) -> Result<String> {
    let name = request
        .get("propertyName")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::unparsable("missing field `propertyName`"))?;
    check_property(name).map_err(|why| Error::new(Kind::InvalidMetadataIndex, why))?;
    Ok(name.to_owned())
}

/// `POST metadata_index/create` `{propertyName, indexType}` → `{mutationId}`.
pub async fn create(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    request: Body,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let request = body::json(request).await?;
    let property_name = property_name(&request)?;
    let index_type = request
        .get("indexType")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .ok_or_else(|| {
            Error::new(
                Kind::InvalidMetadataIndex,
                "indexType must be one of string, number, boolean",
            )
        })?;
    let mutation = index.accept(Change::CreateMetadataIndex(MetadataIndex {
        property_name,
        index_type,
    }))?;
    Ok(ok(json!({"mutationId": mutation})))
}

/// `GET metadata_index/list` → `{metadataIndexes: [{propertyName, indexType}]}`, as applied.
pub async fn list(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let state = index.read();
    Ok(ok(
        json!({"metadataIndexes": state.store.metadata_indexes()}),
    ))
}

/// `POST metadata_index/delete` `{propertyName}` → `{mutationId}`.
pub async fn delete(
    State(catalog): State<AppState>,
    Path((_account, name)): Path<(String, String)>,
    request: Body,
) -> Result<Response> {
    let index = catalog.get(&name)?;
    let property_name = property_name(&body::json(request).await?)?;
    let mutation = index.accept(Change::DeleteMetadataIndex(property_name))?;
    Ok(ok(json!({"mutationId": mutation})))
}
