//! What the three workers share on the Workers side. `shared` holds the pure rules; this crate
//! holds the little that touches the runtime and is the same in every worker:
//!
//! - [`config`]: the project's `embeddings.toml`, embedded at build time (and validated by the
//!   build script, so a worker never starts with a bad config).
//! - [`d1`]: bound values and the health ping for D1 statements.
//! - [`embedder`]: text embedding through the `AI` binding or the Workers AI REST API.
//! - [`http`]: a plain request/response pair that handlers take and return, so each worker's
//!   routing runs under test with fake bindings; conversion from and to `worker` types.
//! - [`vectorize`]: a hand-written binding to Vectorize indexes.
//! - [`index_sync`]: brings a Vectorize index in line with D1 after a write, whatever the order
//!   in which concurrent writers reach it.
//! - [`search_client`]: search-worker's RPC methods, typed: the gateway's client, and an
//!   application Worker's.
//! - [`sets`]: the statements that read a table's vector sets and apply what a starter of
//!   model changes decided for them (`shared::sets::plan`), and the coverage a switch waits for.
//! - [`vector_rows`]: every statement on `embedding_vectors`, built from named fragments.
//! - [`telemetry`]: structured JSON logs through `tracing`, one line per event.
//! - [`Fault`]: a failed call to a binding (D1, a queue, a service), kept for the logs.

pub mod config;
pub mod d1;
pub mod embedder;
pub mod http;
pub mod index_sync;
pub mod search_client;
pub mod sets;
pub mod telemetry;
pub mod vector_rows;
pub mod vectorize;

use std::fmt;

/// A binding call that failed: D1, a queue send, a service fetch. Its text goes to the logs;
/// clients see only a generic error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault(pub String);

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fault {}

impl From<worker::Error> for Fault {
    fn from(e: worker::Error) -> Self {
        Fault(e.to_string())
    }
}

impl From<serde_json::Error> for Fault {
    fn from(e: serde_json::Error) -> Self {
        Fault(format!("JSON: {e}"))
    }
}

/// The binding `name` of `env`, whatever its type: a service, a Vectorize index.
pub fn binding(env: &worker::Env, name: &str) -> Result<wasm_bindgen::JsValue, Fault> {
    worker::js_sys::Reflect::get(env, &wasm_bindgen::JsValue::from_str(name))
        .ok()
        .filter(|value| !value.is_undefined())
        .ok_or_else(|| Fault(format!("binding `{name}` is missing")))
}

/// `value` as the plain JS value `JSON.parse` makes of it: what crosses Workers RPC. A number is a
/// JS number, so an integer beyond 2^53 becomes the nearest double, as it does for every JS
/// reader of the HTTP API (serde-wasm-bindgen refuses it instead).
pub fn to_plain(value: &serde_json::Value) -> Result<wasm_bindgen::JsValue, Fault> {
    worker::js_sys::JSON::parse(&value.to_string())
        .map_err(|_| Fault("JSON.parse refused serde_json's output".into()))
}

/// Milliseconds since the Unix epoch, from the runtime's clock.
pub fn now_ms() -> i64 {
    i64::try_from(worker::Date::now().as_millis()).unwrap_or(i64::MAX)
}
