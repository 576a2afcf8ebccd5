//! search-worker: similarity search behind the gateway. It has no public route
//! (`workers_dev = false`): only api-worker reaches it, over the `SEARCH` service binding, and it
//! trusts the organization the gateway passes.
//!
//! - [`routes`]: the route table: `GET /health`, `POST /embed` ([`embed`]),
//!   `POST /search/{service}`, `/gray-zone/{service}` and `/query` ([`search`]).
//! - [`cache`]: the isolate's copy of each organization's vectors (caught up on every search)
//!   and its cache of query vectors.
//! - [`ports`]: the store, vector index and app; [`bindings`] implements them over D1,
//!   Vectorize and the embedder `worker_kit` chooses (the `AI` binding, or the REST API when
//!   `AI_REST_URL` is set).

mod bindings;
mod cache;
mod embed;
mod ports;
mod routes;
mod search;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use worker::{event, Context, Env, Request, Response, Result};
use worker_kit::http::{HttpRequest, HttpResponse};

#[event(start)]
fn start() {
    worker_kit::telemetry::init("search-worker");
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let response = match HttpRequest::from_worker(req).await {
        Ok(request) => match bindings::app(&env) {
            Ok(app) => routes::handle(&app, &request).await,
            Err(fault) => {
                tracing::error!(error = %fault, "bindings unavailable");
                HttpResponse::error(&shared::ApiError::internal())
            }
        },
        Err(e) => HttpResponse::error(&e),
    };
    response.into_worker()
}
