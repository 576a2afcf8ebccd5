//! Support for the end-to-end suite: [`Stack`] starts the real local stack and stops it when
//! dropped; [`Client`] speaks to it over HTTP as a tenant would.
//!
//! - [`seed`]: rows written straight into D1, behind the API's back;
//! - [`verdict`]: a benchmark's figure against its target;
//! - [`bench`]: what the benchmark binaries share;
//! - [`concurrent`]: enqueueing from several threads at once.

pub mod bench;
mod client;
pub mod concurrent;
pub mod seed;
mod stack;
pub mod verdict;

pub use client::{Client, Reply};
pub use stack::{Floor, Options, Stack, Tenant, Variant, FLOOR_PIPELINE_LOG};
