//! The gateway's request handling, run in wasm against in-memory fakes of its ports
//! ([`fakes`]), from the one seeded app of [`fixtures`]; a module per feature.

mod auth;
mod backfill;
mod embeddings;
mod fakes;
mod fixtures;
mod health;
mod jobs;
mod keys;
mod records;
mod routes;
mod search;
mod status;
