//! api-worker: the gateway, and the only public door. Nothing reaches the queue, D1 or
//! search-worker without passing authentication, the organization firewall and the guards.
//!
//! - [`routes`]: the route table; each handler lives in its own module:
//!   [`health`], [`embeddings`] (enqueue, job status, table list), [`search`] (validated, then
//!   forwarded to search-worker).
//! - [`auth`]: better-auth session cookies to a [`auth::Caller`] scoped to one organization.
//! - [`ports`]: the traits the handlers use (job store, queue, search service) and the app that
//!   bundles them; [`bindings`] implements them over D1, the Queue and the `SEARCH` binding.
//! - [`error`]: the one mapping from errors to status and JSON body.

mod auth;
mod bindings;
mod embeddings;
mod error;
mod health;
mod ports;
mod routes;
mod search;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use worker::{event, Context, Env, Request, Response, Result};
use worker_kit::http::{HttpRequest, HttpResponse};

#[event(start)]
fn start() {
    worker_kit::telemetry::init("api-worker");
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let response = match HttpRequest::from_worker(req).await {
        Ok(request) => match bindings::app(&env) {
            Ok(app) => routes::handle(&app, &request).await,
            Err(e) => e.into_response(),
        },
        Err(e) => HttpResponse::error(&e),
    };
    response.into_worker()
}
