//! Support for the end-to-end suite: [`Stack`] starts the real local stack and stops it when
//! dropped; [`Client`] speaks to it over HTTP as a tenant would.

mod client;
pub mod seed;
mod stack;
pub mod verdict;

pub use client::{Client, Reply};
pub use stack::{Floor, Options, Stack, Tenant, Variant, FLOOR_PIPELINE_LOG};
