//! The API's own paths: health, this document, the embeddings routes and API keys.

use serde_json::{json, Value};

use super::{answer, body, operation, path_parameter, query_parameter, reference, responses};

/// Health, the document, enqueueing and jobs.
pub(super) fn core_paths() -> Vec<(&'static str, Value)> {
    let job_id = path_parameter("jobId", json!({ "type": "string", "format": "uuid" }));
    vec![
        (
            "/api/v1/health",
            json!({ "get": {
                "summary": "The gateway, D1 and search-worker", "security": [],
                "responses": { "200": answer("healthy", json!({ "type": "object" })),
                               "503": answer("degraded", json!({ "type": "object" })) },
            }}),
        ),
        (
            "/api/v1/openapi.json",
            json!({ "get": {
                "summary": "This document", "security": [],
                "responses": { "200": answer("OpenAPI 3.1", json!({ "type": "object" })) },
            }}),
        ),
        (
            "/api/v1/embeddings",
            json!({ "post": operation(
            "Enqueue an embedding job for any content", Some(body(reference("Enqueue"))),
            &[("202", answer("queued", reference("Queued")))]) }),
        ),
        (
            "/api/v1/embeddings/tables",
            json!({ "get": operation("The embedding tables", None,
            &[("200", answer("tables", json!({ "type": "object", "required": ["tables"], "properties": {
                "tables": { "type": "array", "items": { "type": "object",
                    "required": ["name", "embeddingColumn", "model"] } } } })))]) }),
        ),
        (
            "/api/v1/embeddings/jobs",
            json!({ "get": {
                "summary": "Jobs, newest first",
                "parameters": [
                    query_parameter("status", reference("JobStatus")),
                    query_parameter("backfillId", json!({ "type": "string", "format": "uuid" })),
                    query_parameter("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
                    query_parameter("cursor", json!({ "type": "string" })),
                ],
                "responses": responses(&[("200", answer("a page", json!({ "type": "object",
                    "required": ["jobs", "nextCursor"], "properties": {
                        "jobs": { "type": "array", "items": reference("Job") },
                        "nextCursor": { "type": ["string", "null"] } } })))]),
            }}),
        ),
        (
            "/api/v1/embeddings/jobs/{jobId}",
            json!({ "parameters": [job_id.clone()],
            "get": operation("One job", None, &[("200", answer("the job", reference("Job")))]) }),
        ),
        (
            "/api/v1/embeddings/jobs/{jobId}/retry",
            json!({ "parameters": [job_id],
            "post": operation("Replay a dead or failed job", None,
                &[("202", answer("queued again", reference("Queued")))]) }),
        ),
    ]
}

/// Backfill, search, vectors and API keys.
pub(super) fn service_paths() -> Vec<(&'static str, Value)> {
    let service = path_parameter("service", reference("Service"));
    vec![
        (
            "/api/v1/embeddings/backfill",
            json!({ "post": operation(
            "Enqueue the records that lack a current embedding", Some(body(reference("Backfill"))),
            &[("202", answer("queued", json!({ "type": "object",
                "required": ["backfillId", "table", "count", "failed", "nextCursor"] })))]) }),
        ),
        (
            "/api/v1/embeddings/embed",
            json!({ "post": operation("The raw vector of a text",
            Some(body(reference("Embed"))), &[("200", answer("the vector", json!({ "type": "object",
                "required": ["model", "dimensions", "vector"] })))]) }),
        ),
        (
            "/api/v1/embeddings/query",
            json!({ "post": operation("A filtered vector query",
            Some(body(reference("Query"))), &[("200", answer("matches", json!({ "type": "object",
                "required": ["count", "matches"], "properties": { "matches": { "type": "array",
                    "items": { "type": "object", "required": ["id", "score"] } } } })))]) }),
        ),
        (
            "/api/v1/embeddings/search/{service}",
            json!({ "parameters": [service.clone()],
            "post": operation("Classified similarity search", Some(body(reference("Search"))),
                &[("200", answer("matches, best first", json!({ "type": "array", "items": reference("Match") })))]) }),
        ),
        (
            "/api/v1/embeddings/gray-zone/{service}",
            json!({ "parameters": [service],
            "post": operation("Matches split into high confidence and the gray zone",
                Some(body(reference("GrayZone"))), &[("200", answer("the split", json!({
                    "type": "object", "required": ["high_confidence", "gray_zone"], "properties": {
                        "high_confidence": { "type": "array", "items": reference("Match") },
                        "gray_zone": { "type": "array", "items": reference("Match") } } })))]) }),
        ),
        (
            "/api/v1/api-keys",
            json!({
                "get": operation("The organization's API keys", None, &[("200", answer("keys", json!({
                    "type": "object", "required": ["keys"], "properties": {
                        "keys": { "type": "array", "items": reference("ApiKey") } } })))]),
                "post": operation("Create an API key (shown once)", Some(body(json!({
                    "type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 100 },
                                    "role": { "type": "string" } } }))),
                    &[("201", answer("the key", reference("ApiKey")))]),
            }),
        ),
        (
            "/api/v1/api-keys/{id}",
            json!({
                "parameters": [path_parameter("id", json!({ "type": "string" }))],
                "delete": operation("Revoke an API key", None, &[("204", json!({ "description": "revoked" }))]),
            }),
        ),
    ]
}
