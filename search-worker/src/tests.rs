//! search-worker's RPC methods, run in wasm with a fake store, embedder, index and queue
//! ([`fakes`]), from the cases [`fixtures`] builds; one module a feature.

mod bound;
mod caches;
mod embed;
mod enqueue;
mod exact;
mod fakes;
mod fixtures;
mod health;
mod modes;
mod rpc;
mod search;
mod sets;
mod simd;
