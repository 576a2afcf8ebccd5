//! What search-worker needs from the outside world, and the app that bundles it. The embedder is
//! `worker_kit::embedder::Embedder`.

use std::collections::HashMap;

use serde::Deserialize;
use shared::message::EmbeddingJob;
use shared::search::QueryMatch;
use shared::Config;
use worker_kit::vectorize::QueryOptions;
use worker_kit::Fault;

use crate::cache::Caches;

/// A row of the D1 vector store, as the cache catches up on it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct VectorRow {
    pub seq: i64,
    pub record_id: String,
    /// SQL `hex()` of the compact vector; `None` for a deleted record's tombstone.
    pub vector_hex: Option<String>,
    /// The record's metadata fields, as a JSON object.
    pub metadata: String,
}

/// D1, as search-worker uses it.
pub(crate) trait Store {
    async fn ping(&self) -> Result<(), Fault>;
    /// The vector rows of an organization's table written after `after_seq`, in `seq` order.
    async fn vectors_since(
        &self,
        organization_id: &str,
        table: &str,
        after_seq: i64,
    ) -> Result<Vec<VectorRow>, Fault>;
    /// For those of `vector_ids` that D1 holds a live vector under: the record and its current
    /// metadata, by vector id. What Vectorize's answers are checked against.
    async fn live_records(
        &self,
        organization_id: &str,
        table: &str,
        vector_ids: &[String],
    ) -> Result<HashMap<String, (String, Metadata)>, Fault>;
}

/// A record's metadata fields.
pub(crate) type Metadata = serde_json::Map<String, serde_json::Value>;

/// Vectorize indexes, by binding.
pub(crate) trait VectorIndexes {
    async fn query(
        &self,
        binding: &str,
        vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault>;
}

/// `embeddings-queue`, for `enqueue`.
pub(crate) trait JobQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault>;
}

/// Everything a method may use.
pub(crate) struct App<'a, S, E, V> {
    pub store: S,
    pub embedder: E,
    pub indexes: V,
    pub config: &'static Config,
    /// Kept across requests by the isolate.
    pub caches: &'a Caches,
    pub now_ms: i64,
}
