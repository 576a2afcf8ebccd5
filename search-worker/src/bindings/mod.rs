//! The real implementations of the ports, over the worker's bindings, and the isolate's caches:
//! [`app`] turns the `Env` into them in one place.
//!
//! - [`d1`]: the store, over D1; [`embedding_vectors`]: every statement it runs on the vector
//!   rows.
//! - [`vectorize`]: the Vectorize indexes, by binding.
//! - [`queue`]: `embeddings-queue`, for `enqueue`.

mod d1;
mod embedding_vectors;
mod queue;
mod vectorize;

use worker::Env;
use worker_kit::d1::DB;
use worker_kit::embedder::AnyEmbedder;
use worker_kit::Fault;

use crate::cache::budget::DEFAULT_VECTOR_BUDGET;
use crate::cache::queries::DEFAULT_QUERY_BUDGET;
use crate::cache::snapshot::DEFAULT_TABLE_BOUND;
use crate::cache::Caches;
use crate::ports::App;
pub(crate) use d1::D1Store;
pub(crate) use queue::EnvQueue;
pub(crate) use vectorize::EnvIndexes;

thread_local! {
    /// One isolate, one thread: the caches live as long as the isolate does.
    static CACHES: &'static Caches = Box::leak(Box::default());
}

/// The vector cache's budget in MB (`cache::budget::DEFAULT_VECTOR_BUDGET` when unset).
pub(crate) const SEARCH_VECTOR_CACHE_MB: &str = "SEARCH_VECTOR_CACHE_MB";
/// The query cache's budget in MB (`cache::queries::DEFAULT_QUERY_BUDGET` when unset).
pub(crate) const SEARCH_QUERY_CACHE_MB: &str = "SEARCH_QUERY_CACHE_MB";
/// The most one organization's table may take in the isolate, in MB
/// (`cache::snapshot::DEFAULT_TABLE_BOUND` when unset).
pub(crate) const SEARCH_TABLE_MB: &str = "SEARCH_TABLE_MB";

/// The app over the Worker's bindings, with the isolate's caches set to the budgets and the
/// bound the environment names.
pub(crate) fn app(env: &Env) -> Result<App<'static, D1Store, AnyEmbedder, EnvIndexes>, Fault> {
    let caches = CACHES.with(|caches| *caches);
    let megabytes = |name: &str| {
        env.var(name)
            .ok()
            .and_then(|v| v.to_string().parse::<usize>().ok())
            .map(|mb| mb << 20)
    };
    caches
        .vectors
        .set_budget(megabytes(SEARCH_VECTOR_CACHE_MB).unwrap_or(DEFAULT_VECTOR_BUDGET));
    caches
        .queries
        .set_budget(megabytes(SEARCH_QUERY_CACHE_MB).unwrap_or(DEFAULT_QUERY_BUDGET));
    caches
        .vectors
        .set_table_bound(megabytes(SEARCH_TABLE_MB).unwrap_or(DEFAULT_TABLE_BOUND));
    Ok(App {
        store: D1Store(
            env.d1(DB)
                .map_err(|e| Fault(format!("binding `{DB}` is missing: {e}")))?,
        ),
        embedder: AnyEmbedder::from_env(env)?,
        indexes: EnvIndexes(env.clone()),
        config: worker_kit::config::config(),
        caches,
        now_ms: worker_kit::now_ms(),
    })
}
