//! search-worker's routes. Only the gateway calls them.

use serde_json::json;
use shared::{ApiError, ErrorCode};
use worker_kit::http::{HttpRequest, HttpResponse, Method};

use crate::ports::Store;

pub(crate) async fn handle(store: &impl Store, request: &HttpRequest) -> HttpResponse {
    let response = match (request.method, request.segments().as_slice()) {
        (Method::Get, ["health"]) => health(store).await,
        (_, ["health"]) => HttpResponse::error(&ApiError::new(
            ErrorCode::MethodNotAllowed,
            "use GET on this route",
        )),
        _ => HttpResponse::error(&ApiError::not_found("no such route")),
    };
    tracing::info!(
        method = request.method.as_str(),
        path = %request.path,
        status = response.status,
        "request"
    );
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
