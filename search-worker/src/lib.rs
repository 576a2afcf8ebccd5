//! search-worker: similarity search for the gateway and for any application Worker bound to
//! it. It has no public route (`workers_dev = false`) and no HTTP API: it is called over Workers
//! RPC, each method taking the organization it serves, which it trusts (binding to it is a
//! privileged act). The methods and their answers are [`shared::rpc`]'s; `worker_kit`'s
//! `search_client` and `clients/typescript` call them.
//!
//! - [`rpc`]: the methods, each answering with an outcome; `methods` exports them to the
//!   entrypoint.
//! - [`search`]: `search`, `grayZone` and `query`; [`embed`]: `embed` and every query vector.
//! - [`cache`]: the isolate's copy of each organization's vectors (caught up on every search,
//!   within a bound per table) and its cache of query vectors; [`answers`]: each copy's last
//!   answers, given again while the copy has not moved.
//! - [`health`]: D1's answer, and what one organization's own tables and query vectors take
//!   in the caches.
//! - [`ports`]: the store, vector index and app; [`bindings`] implements them over D1,
//!   Vectorize, the queue and the embedder `worker_kit` chooses (the `AI` binding, or the REST
//!   API when `AI_REST_URL` is set).
//!
//! workers-rs hands an exported function no `Env`: the methods reach the bindings through the
//! runtime's module-level `env` (`import { env } from "cloudflare:workers"`), the same object
//! an entrypoint's `this.env` is. That keeps the entrypoint worker-build generates (every
//! export becomes a method of it) rather than a hand-written JS class to keep in step.

// Natively the crate has no tests (they run in wasm), so its native test build uses nothing.
#![cfg_attr(all(test, not(target_arch = "wasm32")), allow(dead_code))]

// The bindings and the exported methods over them are the Worker's alone: the tests run in
// Node, where the runtime's `cloudflare:workers` module does not exist, and call `rpc::call`
// with fakes.
mod answers;
#[cfg(not(test))]
mod bindings;
mod cache;
mod embed;
mod health;
#[cfg(not(test))]
mod methods;
mod ports;
mod rpc;
mod search;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use shared::{ApiError, ErrorCode};
use worker::{event, Context, Env, Request, Response, Result};

#[event(start)]
fn start() {
    worker_kit::telemetry::init("search-worker");
}

/// Not an HTTP API: every request is told so, as JSON.
#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let error = ApiError::new(
        ErrorCode::NotFound,
        "search-worker has no HTTP routes: bind it and call its RPC methods",
    );
    Ok(Response::from_json(&error.body())?.with_status(error.status()))
}
