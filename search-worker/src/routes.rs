//! search-worker's routes. Only the gateway calls them, with the organization attached.

use serde_json::json;
use shared::{ApiError, ErrorCode};
use worker_kit::embedder::Embedder;
use worker_kit::http::{HttpRequest, HttpResponse, Method};

use crate::embed::embed;
use crate::ports::{App, Store, VectorIndexes};
use crate::search::{gray_zone, query, search};

pub(crate) async fn handle<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    request: &HttpRequest,
) -> HttpResponse {
    let segments = request.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let result = match (request.method, segments.as_slice()) {
        (Method::Get, ["health"]) => Ok(health(app).await),
        (Method::Post, ["embed"]) => embed(app, request).await,
        (Method::Post, ["search", service]) => search(app, service, request).await,
        (Method::Post, ["gray-zone", service]) => gray_zone(app, service, request).await,
        (Method::Post, ["query"]) => query(app, request).await,
        (_, ["health" | "embed" | "query"] | ["search" | "gray-zone", _]) => Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            "wrong method for this route",
        )),
        _ => Err(ApiError::not_found("no such route")),
    };
    let response = result.unwrap_or_else(|e| HttpResponse::error(&e));
    response.log(request);
    response
}

async fn health<S: Store, E, V>(app: &App<'_, S, E, V>) -> HttpResponse {
    // Reached only through the binding; the gateway's public health passes none of this on.
    let (vector_cache, query_cache) = (app.caches.vectors.stats(), app.caches.queries.stats());
    match app.store.ping().await {
        Ok(()) => HttpResponse::ok(&json!({
            "worker": "search-worker", "ok": true, "d1": true,
            "vectorCache": vector_cache, "queryCache": query_cache,
        })),
        Err(fault) => {
            tracing::warn!(error = %fault, "D1 unreachable");
            HttpResponse::json(
                503,
                &json!({ "worker": "search-worker", "ok": false, "d1": false }),
            )
        }
    }
}
