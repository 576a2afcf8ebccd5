//! [`EnvIndexes`]: the vector index port over the Vectorize bindings the config names.

use shared::search::QueryMatch;
use worker::Env;
use worker_kit::vectorize::{QueryOptions, Vectorize};
use worker_kit::Fault;

use crate::ports::VectorIndexes;

/// The Vectorize indexes the config names, looked up by binding when used.
#[derive(Debug)]
pub(crate) struct EnvIndexes(pub(super) Env);

impl VectorIndexes for EnvIndexes {
    async fn query(
        &self,
        binding: &str,
        vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault> {
        let matches = Vectorize::from_env(&self.0, binding)?
            .query(vector, options)
            .await?;
        Ok(matches
            .into_iter()
            .map(|m| QueryMatch {
                id: m.id,
                score: m.score,
                metadata: m.metadata,
            })
            .collect())
    }
}
