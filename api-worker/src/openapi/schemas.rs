//! The document's shared schemas: the error, the enums the config fixes, and the request and
//! answer bodies. Each request schema says exactly what the gateway accepts: a body it calls
//! valid is taken, and one it calls invalid is refused (schemathesis checks both ways).

use serde_json::{json, Map, Value};
use shared::config::TableConfig;
use shared::filter::MAX_FILTER_JSON_BYTES;
use shared::guard::{not_blank_pattern, MAX_TEXT_CHARS};
use shared::job::JobStatus;
use shared::record::MAX_CURSOR_CHARS;
use shared::Config;

use super::{nullable, record_id_schema, reference};

/// Every shared schema, by name.
pub(super) fn components(config: &Config) -> Map<String, Value> {
    let mut schemas = Map::new();
    for (name, schema) in enums(config)
        .into_iter()
        .chain(job_schemas(config))
        .chain(search_schemas(config))
    {
        schemas.insert(name, schema);
    }
    schemas
}

/// Text to embed or search with: not blank, at most [`MAX_TEXT_CHARS`] characters.
pub(super) fn text() -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": MAX_TEXT_CHARS, "pattern": not_blank_pattern() })
}

/// A cursor of a record list or a backfill: the last id of the page before, any string.
pub(super) fn record_cursor() -> Value {
    json!({ "type": "string", "maxLength": MAX_CURSOR_CHARS })
}

fn vector() -> Value {
    json!({ "type": "array", "items": { "type": "number" } })
}

/// A query vector of `dimensions` numbers, each within what a 32-bit float holds.
fn query_vector(dimensions: usize) -> Value {
    json!({ "type": "array", "minItems": dimensions, "maxItems": dimensions,
            "items": { "type": "number", "minimum": -f64::from(f32::MAX), "maximum": f64::from(f32::MAX) } })
}

fn count(max: u32) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": max })
}

fn score() -> Value {
    json!({ "type": "number", "minimum": -1, "maximum": 1 })
}

fn enums(config: &Config) -> Vec<(String, Value)> {
    let services: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
    let tables: Vec<&str> = config.tables.iter().map(|t| t.name.as_str()).collect();
    let statuses: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
    let models: Vec<&str> = shared::models::MODELS.iter().map(|m| m.name).collect();
    vec![
        (
            "Error".into(),
            json!({
                "type": "object", "required": ["error"],
                "properties": { "error": { "type": "object", "required": ["code", "message"],
                    "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } },
            }),
        ),
        (
            "Service".into(),
            json!({ "type": "string", "enum": services }),
        ),
        ("Table".into(), json!({ "type": "string", "enum": tables })),
        ("Model".into(), json!({ "type": "string", "enum": models })),
        (
            "JobStatus".into(),
            json!({ "type": "string", "enum": statuses }),
        ),
        (
            "Role".into(),
            json!({ "type": "string", "enum": config.roles() }),
        ),
    ]
}

/// `POST /embeddings`: free content (with a model or the default), or a record's, which needs
/// its table and id together and is embedded with the table's own model.
fn enqueue(config: &Config) -> Value {
    let mut variants = vec![json!({
        "type": "object", "required": ["content"], "additionalProperties": false,
        "properties": { "content": text(), "model": nullable(reference("Model")),
                        "table": { "type": "null" }, "id": { "type": "null" } },
    })];
    for table in &config.tables {
        variants.push(json!({
            "type": "object", "required": ["content", "table", "id"], "additionalProperties": false,
            "properties": { "content": text(), "table": { "const": table.name }, "id": record_id_schema(),
                            "model": nullable(json!({ "const": table.model().name })) },
        }));
    }
    json!({ "anyOf": variants })
}

fn job_schemas(config: &Config) -> Vec<(String, Value)> {
    let vector = vector();
    vec![
        ("Enqueue".into(), enqueue(config)),
        (
            "Queued".into(),
            json!({
                "type": "object", "required": ["queued", "jobId", "table", "id", "model"],
                "properties": { "queued": { "type": "boolean" }, "jobId": { "type": "string", "format": "uuid" },
                                "table": { "type": ["string", "null"] }, "id": { "type": ["string", "null"] },
                                "model": { "type": "string" } },
            }),
        ),
        (
            "Job".into(),
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
            "StartedJob".into(),
            json!({
                "type": "object", "required": ["jobId", "status"],
                "properties": { "jobId": { "type": "string" }, "status": reference("JobStatus") },
            }),
        ),
        (
            "Backfill".into(),
            json!({
                "type": "object", "required": ["table"], "additionalProperties": false,
                "properties": { "table": reference("Table"), "all": { "type": "boolean" },
                                "cursor": nullable(record_cursor()) },
            }),
        ),
        (
            "ApiKey".into(),
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

/// A table's metadata filter, in Vectorize's operators and under its rules, on the table's
/// metadata fields only.
fn filter(table: &TableConfig) -> Value {
    let scalar = json!({ "type": ["string", "number", "boolean"] });
    let ordered = json!({ "type": ["string", "number"] });
    let list = json!({ "type": "array", "items": scalar });
    let alone = |op: &str, operand: &Value| {
        json!({ "type": "object", "required": [op], "additionalProperties": false,
                "properties": { op: operand } })
    };
    let range = json!({
        "type": "object", "minProperties": 1, "additionalProperties": false,
        "properties": { "$gt": ordered, "$gte": ordered, "$lt": ordered, "$lte": ordered },
        "not": { "anyOf": [{ "required": ["$gt", "$gte"] }, { "required": ["$lt", "$lte"] }] },
    });
    let condition = json!({ "anyOf": [
        scalar, alone("$eq", &scalar), alone("$ne", &scalar), alone("$in", &list),
        alone("$nin", &list), range,
    ] });
    let fields: Map<String, Value> = table
        .embeddings
        .metadata
        .iter()
        .map(|field| (field.clone(), condition.clone()))
        .collect();
    nullable(json!({
        "type": "object", "additionalProperties": false, "properties": fields,
        "description": format!("Under {MAX_FILTER_JSON_BYTES} bytes as compact JSON, Vectorize's bound, whatever the backend."),
    }))
}

/// A match's place in one search's ranking.
fn rank() -> Value {
    json!({ "type": "integer", "minimum": 1 })
}

/// The name of a table's filter schema.
fn filter_name(table: &TableConfig) -> String {
    format!("Filter_{}", table.name)
}

fn search_schemas(config: &Config) -> Vec<(String, Value)> {
    let classification =
        json!({ "type": "string", "enum": ["DUPLICATE", "CONFIRMS", "RELATED", "NEW"] });
    let mut schemas = vec![
        (
            "Match".into(),
            json!({
                "type": "object",
                "required": ["id", "score", "classification", "metadata"],
                "description": "`score` is the vector score (cosine) in every mode, and what \
                    `classification` reads; the ranks and scores after it say where each search \
                    placed the match, absent where a search did not run or did not find it.",
                "properties": { "id": { "type": "string" }, "score": { "type": "number" },
                                "classification": classification, "metadata": { "type": "object" },
                                "vector_rank": rank(), "keyword_rank": rank(),
                                "keyword_score": { "type": "number", "description": "BM25, higher is better" },
                                "fused_score": { "type": "number", "description": "reciprocal rank fusion (hybrid)" } },
            }),
        ),
        (
            "SearchMode".into(),
            json!({ "type": "string", "enum": ["semantic", "keyword", "hybrid"],
                    "description": "semantic (the default): by meaning; keyword: by words (BM25); \
                        hybrid: both, fused by reciprocal rank fusion" }),
        ),
        (
            "Embed".into(),
            json!({
                "type": "object", "required": ["text"], "additionalProperties": false,
                "properties": { "text": text(), "service": nullable(reference("Service")),
                                "model": nullable(reference("Model")) },
                // A service decides the model: naming both is refused.
                "not": { "required": ["service", "model"],
                         "properties": { "service": { "type": "string" }, "model": { "type": "string" } } },
            }),
        ),
        ("Query".into(), query(config)),
    ];
    for table in &config.tables {
        schemas.push((filter_name(table), filter(table)));
    }
    for service in &config.services {
        let table = config
            .table(&service.table)
            .expect("validated config: a service's table exists");
        let filters = reference(&filter_name(table));
        schemas.push((
            format!("Search_{}", service.name),
            json!({
                "type": "object", "required": ["text"], "additionalProperties": false,
                "properties": { "text": text(), "filters": filters, "limit": nullable(count(100)),
                                "threshold": nullable(score()),
                                "mode": nullable(reference("SearchMode")) },
            }),
        ));
        schemas.push((
            format!("GrayZone_{}", service.name),
            json!({
                "type": "object", "required": ["text"], "additionalProperties": false,
                "description": "`min` above `max` is an empty gray zone: what is kept is at or above `max`.",
                "properties": { "text": text(), "filters": filters, "min": nullable(score()),
                                "max": nullable(score()), "limit": nullable(count(100)),
                                "mode": nullable(reference("SearchMode")) },
            }),
        ));
    }
    schemas
}

/// `POST /embeddings/query`: a vector of a table's dimension, filtered on its fields; without
/// `table`, the dimension must be that of exactly one table.
fn query(config: &Config) -> Value {
    let variant = |table: &TableConfig, name: Value| {
        let mut required = vec!["vector"];
        if name["const"].is_string() {
            required.push("table");
        }
        json!({
            "type": "object", "required": required, "additionalProperties": false,
            "properties": { "vector": query_vector(table.model().dimensions), "table": name,
                            "topK": count(100), "filter": reference(&filter_name(table)),
                            "returnMetadata": { "type": "boolean" } },
        })
    };
    let mut variants = Vec::new();
    for table in &config.tables {
        variants.push(variant(table, json!({ "const": table.name })));
        let dimensions = table.model().dimensions;
        if config
            .tables
            .iter()
            .filter(|t| t.model().dimensions == dimensions)
            .count()
            == 1
        {
            variants.push(variant(table, json!({ "type": "null" })));
        }
    }
    json!({ "anyOf": variants })
}
