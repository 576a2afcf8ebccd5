//! `GET /api/v1/openapi.json`: the public API as an `OpenAPI` 3.1 document, made from the config,
//! so each embedding table's CRUD paths and record schema, and each search service, are there by
//! name. A test checks it against the route table both ways.

// The builders take their parts by value, so the document reads like the JSON it makes.
#![allow(clippy::needless_pass_by_value)]

mod paths;
mod schemas;
mod tables;

use serde_json::{json, Map, Value};
use shared::Config;

pub(super) fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

pub(super) fn body(schema: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

pub(super) fn answer(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

/// `schema`, or null: an optional field that may also be sent as null, meaning absent.
pub(super) fn nullable(schema: Value) -> Value {
    json!({ "anyOf": [schema, { "type": "null" }] })
}

/// Links from an answer to the operations it gives a parameter to, for clients and for
/// stateful testing: `(operationId, parameter, where in the answer's body)`.
pub(super) fn links(to: &[(&str, &str, &str)]) -> Value {
    let mut links = Map::new();
    for (operation, parameter, pointer) in to {
        links.insert(
            (*operation).to_owned(),
            json!({ "operationId": operation, "parameters": { *parameter: format!("$response.body#{pointer}") } }),
        );
    }
    Value::Object(links)
}

/// The answers every authenticated operation may give besides its own.
pub(super) fn responses(own: &[(&str, Value)]) -> Value {
    let mut all = Map::new();
    for (status, response) in own {
        all.insert((*status).to_owned(), response.clone());
    }
    all.insert(
        "default".into(),
        answer(
            "an error: 400, 401, 403, 404, 405, 409, 413 (a body over 4 MiB), 429 (the organization's rate for the route's kind; \
             `Retry-After` says when to try again), 5xx",
            reference("Error"),
        ),
    );
    Value::Object(all)
}

pub(super) fn operation(
    id: &str,
    summary: &str,
    request: Option<Value>,
    own: &[(&str, Value)],
) -> Value {
    let mut op = json!({ "operationId": id, "summary": summary, "responses": responses(own) });
    if let Some(request) = request {
        op["requestBody"] = request;
    }
    op
}

pub(super) fn path_parameter(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "schema": schema })
}

pub(super) fn query_parameter(name: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema })
}

pub(super) fn record_id_schema() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$" })
}

/// The document for `config`.
pub(crate) fn document(config: &Config) -> Value {
    let mut schemas = schemas::components(config);
    let mut paths = Map::new();
    for (path, item) in paths::core_paths() {
        paths.insert(path.to_owned(), item);
    }
    for (path, item) in paths::service_paths(config) {
        paths.insert(path, item);
    }
    for table in &config.tables {
        tables::table_paths(table, &mut paths, &mut schemas);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "D1 embeddings",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Semantic search and automatic embeddings for D1 tables. Every route but health and this document needs a better-auth session cookie or an organization API key; everything is scoped to the caller's active organization.",
        },
        "servers": [{ "url": "/" }],
        "security": [{ "session": [] }, { "apiKey": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": { "type": "apiKey", "in": "cookie", "name": "better-auth.session_token" },
                "apiKey": { "type": "http", "scheme": "bearer" },
            },
        },
    })
}
