//! local-vectorize: a native stand-in for Cloudflare Vectorize (v2), since wrangler has none. It
//! answers Vectorize's REST API and enforces Vectorize's rules from Cloudflare's documentation
//! (each limit in [`limits`] names its page), so that the product's own mistakes fail here as
//! they would against Cloudflare. Writes are mutations, accepted at once and visible after a
//! configurable delay; an optional data directory keeps indexes across restarts. The Workers
//! side is `binding/worker.js`, a Worker with the binding's methods that calls this server.
//!
//! Parsing and rules, pure:
//! - [`limits`]: the documented limits, each with its source.
//! - [`error`]: every refusal, with its Cloudflare code and HTTP status, in one table.
//! - [`config`]: index names, dimensions, metrics and presets.
//! - [`vector`]: a vector as written (id, values, namespace, metadata), checked once.
//! - [`ndjson`] and [`multipart`]: the bodies of inserts and upserts.
//! - [`metadata`]: metadata indexes and what a vector holds in them.
//! - [`filter`]: metadata filters, parsed and tested.
//! - [`query`]: a query request and its options.
//!
//! State and its application:
//! - [`store`]: an index's vectors as contiguous f32 with their norms.
//! - [`search`]: the exact scan and the top-k.
//! - [`mutation`]: the changes a write becomes, applied in order.
//! - [`index`]: one index: its store, its pending mutations, their visibility.
//! - [`answers`]: the read operations, in the API's shapes.
//! - [`catalog`]: the account's indexes, and the settings of a run.
//! - [`persist`]: the data directory: per index a record, a mutation log and a snapshot.
//! - [`clock`]: timestamps as the API shows them.
//!
//! Serving:
//! - [`api`]: the routes, the envelope, and the one place refusals become responses.
//! - [`server`]: the router and the visibility ticker on a listener.

pub mod answers;
pub mod api;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod error;
pub mod filter;
pub mod index;
pub mod limits;
pub mod metadata;
pub mod multipart;
pub mod mutation;
pub mod ndjson;
pub mod persist;
pub mod query;
pub mod search;
pub mod server;
pub mod store;
pub mod vector;

pub use catalog::Settings;
pub use server::serve;
