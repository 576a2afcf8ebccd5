//! The consumer's handling of its queues, run in wasm over the fakes of [`fixtures`], one module
//! a feature:
//!
//! - [`batches`]: a batch of jobs end to end, from decoding to each message's settle;
//! - [`vectorize`]: the Vectorize indexes brought in line with D1 after a batch;
//! - [`queues`]: the dead-letter queue, the sweep, and what travels on the queues;
//! - [`model_change`]: a model change's steps and their resumption;
//! - [`cleanup`]: a retiring set's clean-up, and the switch that hands a chain to it;
//! - [`fake_sets`]: the fake of `embedding_sets` both run over.

mod batches;
mod cleanup;
mod fake_sets;
mod fixtures;
mod model_change;
mod queues;
mod vectorize;

// What `model_change` takes from its parent.
use fixtures::{body, config, delivery, unbound, FakeIndexes, FakeQueues, FakeStore};
