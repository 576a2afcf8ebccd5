//! search-worker: similarity search behind the gateway. It has no public route
//! (`workers_dev = false`): only api-worker reaches it, over the `SEARCH` service binding, and it
//! trusts the organization the gateway passes.
//!
//! - [`routes`]: the route table (`GET /health` so far; the search routes come with their issue).
//! - [`ports`]: the store trait; [`bindings`] implements it over D1.

mod bindings;
mod ports;
mod routes;
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
        Ok(request) => routes::handle(&bindings::store(&env)?, &request).await,
        Err(e) => HttpResponse::error(&e),
    };
    response.into_worker()
}
