//! The API's own paths: health, this document, the embeddings routes and API keys.

use serde_json::{json, Value};

use shared::record::JOB_CURSOR_PATTERN;
use shared::Config;

use super::schemas::record_cursor;
use super::{
    answer, body, links, nullable, operation, path_parameter, query_parameter, reference, responses,
};

/// Health, the document, enqueueing and jobs.
pub(super) fn core_paths() -> Vec<(&'static str, Value)> {
    let job_id = path_parameter("jobId", json!({ "type": "string", "format": "uuid" }));
    let mut queued = answer("queued", reference("Queued"));
    queued["links"] = links(&[
        ("get_job", "jobId", "/jobId"),
        ("retry_job", "jobId", "/jobId"),
    ]);
    let page = answer(
        "a page",
        json!({ "type": "object",
        "required": ["jobs", "nextCursor"], "properties": {
            "jobs": { "type": "array", "items": reference("Job") },
            "nextCursor": { "type": ["string", "null"] } } }),
    );
    vec![
        (
            "/api/v1/health",
            json!({ "get": {
                "operationId": "health", "summary": "The gateway, D1 and search-worker", "security": [],
                "responses": { "200": answer("healthy", json!({ "type": "object" })),
                               "503": answer("degraded", json!({ "type": "object" })) },
            }}),
        ),
        (
            "/api/v1/openapi.json",
            json!({ "get": {
                "operationId": "openapi", "summary": "This document", "security": [],
                "responses": { "200": answer("OpenAPI 3.1", json!({ "type": "object" })) },
            }}),
        ),
        (
            "/api/v1/embeddings",
            json!({ "post": operation("enqueue",
            "Enqueue an embedding job for any content", Some(body(reference("Enqueue"))),
            &[("202", queued.clone())]) }),
        ),
        (
            "/api/v1/embeddings/tables",
            json!({ "get": operation("tables", "The embedding tables", None,
            &[("200", answer("tables", json!({ "type": "object", "required": ["tables"], "properties": {
                "tables": { "type": "array", "items": { "type": "object",
                    "required": ["name", "embeddingColumn", "model"] } } } })))]) }),
        ),
        (
            "/api/v1/embeddings/jobs",
            json!({ "get": {
                "operationId": "list_jobs",
                "summary": "Jobs, newest first",
                "parameters": [
                    query_parameter("status", reference("JobStatus")),
                    query_parameter("backfillId", json!({ "type": "string", "format": "uuid" })),
                    query_parameter("table", json!({ "type": "string" })),
                    query_parameter("limit", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
                    query_parameter("cursor", json!({ "type": "string", "pattern": JOB_CURSOR_PATTERN })),
                ],
                "responses": responses(&[("200", page)]),
            }}),
        ),
        (
            "/api/v1/embeddings/jobs/{jobId}",
            json!({ "parameters": [job_id.clone()],
            "get": operation("get_job", "One job", None, &[("200", answer("the job", reference("Job")))]) }),
        ),
        (
            "/api/v1/embeddings/jobs/{jobId}/retry",
            json!({ "parameters": [job_id],
            "post": operation("retry_job", "Replay a dead or failed job", None,
                &[("202", answer("queued again", reference("Queued")))]) }),
        ),
    ]
}

/// Backfill, search (a path per service, each with its table's filter), vectors and API keys.
pub(super) fn service_paths(config: &Config) -> Vec<(String, Value)> {
    let mut created_key = answer("the key", reference("ApiKey"));
    created_key["links"] = links(&[("revoke_api_key", "id", "/id")]);
    let mut paths = vec![
        (
            "/api/v1/embeddings/backfill".to_owned(),
            json!({ "post": operation("backfill",
            "Enqueue the records that lack a current embedding", Some(body(reference("Backfill"))),
            &[("202", answer("queued", json!({ "type": "object",
                "required": ["backfillId", "table", "count", "failed", "nextCursor"],
                "properties": { "nextCursor": nullable(record_cursor()) } })))]) }),
        ),
        (
            "/api/v1/embeddings/embed".to_owned(),
            json!({ "post": operation("embed", "The raw vector of a text",
            Some(body(reference("Embed"))), &[("200", answer("the vector", json!({ "type": "object",
                "required": ["model", "dimensions", "vector"] })))]) }),
        ),
        (
            "/api/v1/embeddings/query".to_owned(),
            json!({ "post": operation("query", "A filtered vector query",
            Some(body(reference("Query"))), &[("200", answer("matches", json!({ "type": "object",
                "required": ["count", "matches"], "properties": { "matches": { "type": "array",
                    "items": { "type": "object", "required": ["id", "score"] } } } })))]) }),
        ),
        (
            "/api/v1/api-keys".to_owned(),
            json!({
                "get": operation("list_api_keys", "The organization's API keys", None, &[("200", answer("keys", json!({
                    "type": "object", "required": ["keys"], "properties": {
                        "keys": { "type": "array", "items": reference("ApiKey") } } })))]),
                "post": operation("create_api_key", "Create an API key (shown once); its role is at most its creator's", Some(body(json!({
                    "type": "object", "required": ["name"], "additionalProperties": false,
                    "properties": { "name": { "type": "string", "minLength": 1, "maxLength": 100,
                                              "pattern": shared::guard::not_blank_pattern() },
                                    "role": nullable(reference("Role")) } }))),
                    &[("201", created_key)]),
            }),
        ),
        (
            "/api/v1/api-keys/{id}".to_owned(),
            json!({
                "parameters": [path_parameter("id", json!({ "type": "string" }))],
                "delete": operation("revoke_api_key", "Revoke an API key", None, &[("204", json!({ "description": "revoked" }))]),
            }),
        ),
    ];
    for service in &config.services {
        let name = &service.name;
        paths.push((
            format!("/api/v1/embeddings/search/{name}"),
            json!({ "post": operation(&format!("search_{name}"), &format!("Classified similarity search of {name}"),
                Some(body(reference(&format!("Search_{name}")))),
                &[("200", answer("matches, best first", json!({ "type": "array", "items": reference("Match") })))]) }),
        ));
        paths.push((
            format!("/api/v1/embeddings/gray-zone/{name}"),
            json!({ "post": operation(&format!("gray_zone_{name}"),
                &format!("Matches of {name} split into high confidence and the gray zone"),
                Some(body(reference(&format!("GrayZone_{name}")))), &[("200", answer("the split", json!({
                    "type": "object", "required": ["high_confidence", "gray_zone"], "properties": {
                        "high_confidence": { "type": "array", "items": reference("Match") },
                        "gray_zone": { "type": "array", "items": reference("Match") } } })))]) }),
        ));
    }
    paths.extend(status_paths(config));
    paths
}

/// Each table's embedding health, and the command that starts its model change.
fn status_paths(config: &Config) -> Vec<(String, Value)> {
    let set = json!({ "type": "object", "required": ["model", "backend"], "properties": {
        "model": { "type": "string" }, "backend": { "enum": ["d1", "vectorize"] },
        "binding": { "type": "string" } } });
    let status = json!({ "type": "object",
        "required": ["table", "active", "configured", "migration", "removing", "blocked",
                     "records", "embedded", "jobs", "lastError"],
        "properties": {
            "table": { "type": "string" },
            "active": nullable(set.clone()),
            "configured": set.clone(),
            "migration": nullable(json!({ "type": "object",
                "required": ["to", "covered", "of", "progress"], "properties": {
                    "to": set.clone(), "covered": { "type": "integer" },
                    "of": { "type": "integer" }, "progress": { "type": "number" } } })),
            "removing": { "type": "array", "items": set },
            "blocked": { "type": ["string", "null"] },
            "records": { "type": "integer" },
            "embedded": { "type": "integer" },
            "jobs": { "type": "object",
                "required": ["pending", "failed", "dead", "oldestPendingAgeMs", "deadJobs"] },
            "lastError": { "type": ["object", "null"] } } });
    let mut paths = vec![(
        "/api/v1/embeddings/status".to_owned(),
        json!({ "get": operation("status", "Every readable table's embedding health", None,
            &[("200", answer("tables", json!({ "type": "object", "required": ["tables"],
                "properties": { "tables": { "type": "array", "items": status.clone() } } })))]) }),
    )];
    for table in &config.tables {
        let name = &table.name;
        paths.push((
            format!("/api/v1/embeddings/status/{name}"),
            json!({ "get": operation(&format!("status_{name}"),
                &format!("The embedding health of {name}"), None,
                &[("200", answer("its status", status.clone()))]) }),
        ));
        paths.push((
            format!("/api/v1/embeddings/tables/{name}/migration"),
            json!({ "post": operation(&format!("migrate_{name}"),
                &format!("Start or resume the model change of {name}"), None,
                &[("200", answer("nothing to change", status.clone())),
                  ("202", answer("a model change runs", status.clone()))]) }),
        ));
    }
    paths
}
