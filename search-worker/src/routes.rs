//! search-worker's routes. Only the gateway calls them.

use serde_json::json;
use shared::{ApiError, ErrorCode};
use worker_kit::embedder::Embedder;
use worker_kit::http::{HttpRequest, HttpResponse, Method};

use crate::embed::embed;
use crate::ports::{App, Store};

pub(crate) async fn handle<S: Store, E: Embedder>(
    app: &App<S, E>,
    request: &HttpRequest,
) -> HttpResponse {
    let response = match (request.method, request.segments().as_slice()) {
        (Method::Get, ["health"]) => health(&app.store).await,
        (Method::Post, ["embed"]) => embed(app, request)
            .await
            .unwrap_or_else(|e| HttpResponse::error(&e)),
        (_, ["health" | "embed"]) => HttpResponse::error(&ApiError::new(
            ErrorCode::MethodNotAllowed,
            "wrong method for this route",
        )),
        _ => HttpResponse::error(&ApiError::not_found("no such route")),
    };
    response.log(request);
    response
}

async fn health(store: &impl Store) -> HttpResponse {
    match store.ping().await {
        Ok(()) => HttpResponse::ok(&json!({ "worker": "search-worker", "ok": true, "d1": true })),
        Err(fault) => {
            tracing::warn!(error = %fault, "D1 unreachable");
            HttpResponse::json(
                503,
                &json!({ "worker": "search-worker", "ok": false, "d1": false }),
            )
        }
    }
}
