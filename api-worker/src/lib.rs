//! api-worker: the gateway, and the only public door. Nothing reaches the queue, D1 or
//! search-worker without passing authentication, the organization firewall and the guards.
//!
//! - [`routes`]: the route table; each handler lives in its own module: [`health`],
//!   [`embeddings`] (enqueue, tables, and the way every route hands jobs to the queue),
//!   [`jobs`] (status, list, replay), [`records`] (CRUD of the embedding tables),
//!   [`backfill`], [`keys`] (organization API keys), [`search`] (checked, then forwarded to
//!   search-worker), [`status`] (each table's embedding health, and the command that starts a
//!   model change), [`openapi`] (the API's `OpenAPI` 3.1 document, made from the config).
//! - [`auth`]: an API key or a better-auth session to a [`auth::Caller`] scoped to one
//!   organization, and the role check.
//! - [`ports`]: the traits the handlers use, one per thing a handler needs, and the app that
//!   bundles them; [`store`] (one module per port) and [`sets_store`] implement D1's, taking
//!   every statement on `embedding_vectors` from `worker_kit::vector_rows`; [`bindings`] the rest
//!   over the Queue, `SEARCH` and Vectorize.
//! - [`job_row`]: a job's row as it is written and as the job routes show it.
//! - [`error`]: the one mapping from errors to status and JSON body.

mod auth;
mod backfill;
mod bindings;
mod embeddings;
mod error;
mod health;
mod job_row;
mod jobs;
mod keys;
mod openapi;
mod ports;
mod records;
mod routes;
mod search;
mod sets_store;
mod status;
mod store;
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
