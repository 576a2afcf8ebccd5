//! The stand-in's own routes, outside Cloudflare's prefix: `/health`, and `/stats`, which tests
//! read to wait until every accepted mutation is visible.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::answers;

pub async fn health() -> Json<Value> {
    Json(json!({"ok": true}))
}

/// `{"indexes": {"<name>": {vectors, pendingMutations, lastMutation, processedUpToMutation}}}`.
pub async fn stats(State(catalog): State<AppState>) -> Json<Value> {
    let indexes: Map<String, Value> = catalog
        .all()
        .iter()
        .map(|index| (index.name().to_owned(), answers::stats(index)))
        .collect();
    Json(json!({"indexes": indexes}))
}
