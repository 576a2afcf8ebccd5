//! The document's shared schemas: the error, the enums the config fixes, and the request and
//! answer bodies.

use serde_json::{json, Map, Value};
use shared::job::JobStatus;
use shared::Config;

use super::{record_id_schema, reference};

/// Every shared schema, by name.
pub(super) fn components(config: &Config) -> Map<String, Value> {
    let mut schemas = Map::new();
    for (name, schema) in enums(config)
        .into_iter()
        .chain(job_schemas())
        .chain(search_schemas())
    {
        schemas.insert(name.to_owned(), schema);
    }
    schemas
}

fn text() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": 65536 })
}

fn vector() -> Value {
    json!({ "type": "array", "items": { "type": "number" } })
}

fn enums(config: &Config) -> Vec<(&'static str, Value)> {
    let services: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    let tables: Vec<&str> = config.tables.iter().map(|t| t.name.as_str()).collect();
    let statuses: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
    let models: Vec<&str> = shared::models::MODELS.iter().map(|m| m.name).collect();
    vec![
        (
            "Error",
            json!({
                "type": "object", "required": ["error"],
                "properties": { "error": { "type": "object", "required": ["code", "message"],
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } },
            }),
        ),
        ("Service", json!({ "type": "string", "enum": services })),
        ("Table", json!({ "type": "string", "enum": tables })),
        ("Model", json!({ "type": "string", "enum": models })),
        ("JobStatus", json!({ "type": "string", "enum": statuses })),
    ]
}

fn job_schemas() -> Vec<(&'static str, Value)> {
    let (text, vector) = (text(), vector());
    vec![
        (
            "Enqueue",
            json!({
                "type": "object", "required": ["content"], "additionalProperties": false,
                "properties": { "content": text, "model": reference("Model"), "table": reference("Table"),
                                "id": record_id_schema() },
            }),
        ),
        (
            "Queued",
            json!({
                "type": "object", "required": ["queued", "jobId", "table", "id", "model"],
                "properties": { "queued": { "type": "boolean" }, "jobId": { "type": "string", "format": "uuid" },
                                "table": { "type": ["string", "null"] }, "id": { "type": ["string", "null"] },
                                "model": { "type": "string" } },
            }),
        ),
        (
            "Job",
            json!({
                "type": "object",
                "required": ["jobId", "status", "model", "table", "id", "attempts", "lastError", "truncated",
                             "createdAt", "updatedAt", "completedAt"],
                "properties": {
                    "jobId": { "type": "string" }, "status": reference("JobStatus"), "model": { "type": "string" },
                    "table": { "type": ["string", "null"] }, "id": { "type": ["string", "null"] },
                    "attempts": { "type": "integer" }, "lastError": { "type": ["string", "null"] },
                    "truncated": { "type": "boolean" }, "embedding": vector, "backfillId": { "type": "string" },
                    "createdAt": { "type": "string" }, "updatedAt": { "type": "string" },
                    "completedAt": { "type": ["string", "null"] },
                },
            }),
        ),
        (
            "StartedJob",
            json!({
                "type": "object", "required": ["jobId", "status"],
                "properties": { "jobId": { "type": "string" }, "status": reference("JobStatus") },
            }),
        ),
        (
            "Backfill",
            json!({
                "type": "object", "required": ["table"], "additionalProperties": false,
                "properties": { "table": reference("Table"), "all": { "type": "boolean" },
                                "cursor": { "type": ["string", "null"] } },
            }),
        ),
        (
            "ApiKey",
            json!({
                "type": "object", "required": ["id", "name", "role", "createdBy", "createdAt", "lastUsedAt", "revokedAt"],
                "properties": { "id": { "type": "string" }, "name": { "type": "string" }, "role": { "type": "string" },
                                "createdBy": { "type": "string" }, "createdAt": { "type": "string" },
                                "lastUsedAt": { "type": ["string", "null"] }, "revokedAt": { "type": ["string", "null"] },
                                "key": { "type": "string" } },
            }),
        ),
    ]
}

fn search_schemas() -> Vec<(&'static str, Value)> {
    let (text, vector) = (text(), vector());
    let classification =
        json!({ "type": "string", "enum": ["DUPLICATE", "CONFIRMS", "RELATED", "NEW"] });
    let a_match = json!({
        "type": "object",
        "required": ["id", "score", "classification", "metadata"],
        "properties": { "id": { "type": "string" }, "score": { "type": "number" },
                        "classification": classification, "metadata": { "type": "object" } },
    });
    vec![
        ("Match", a_match),
        (
            "Search",
            json!({
                "type": "object", "required": ["text"], "additionalProperties": false,
                "properties": { "text": text, "filters": { "type": "object" },
                                "limit": { "type": "integer", "minimum": 1, "maximum": 100 },
                                "threshold": { "type": "number", "minimum": -1, "maximum": 1 } },
            }),
        ),
        (
            "GrayZone",
            json!({
                "type": "object", "required": ["text"], "additionalProperties": false,
                "properties": { "text": text, "filters": { "type": "object" },
                                "min": { "type": "number", "minimum": -1, "maximum": 1 },
                                "max": { "type": "number", "minimum": -1, "maximum": 1 },
                                "limit": { "type": "integer", "minimum": 1, "maximum": 100 } },
            }),
        ),
        (
            "Embed",
            json!({
                "type": "object", "required": ["text"], "additionalProperties": false,
                "properties": { "text": text, "service": reference("Service"), "model": reference("Model") },
            }),
        ),
        (
            "Query",
            json!({
                "type": "object", "required": ["vector"], "additionalProperties": false,
                "properties": { "vector": vector, "topK": { "type": "integer", "minimum": 1, "maximum": 100 },
                                "filter": { "type": "object" }, "table": reference("Table"),
                                "returnMetadata": { "type": "boolean" } },
            }),
        ),
    ]
}
