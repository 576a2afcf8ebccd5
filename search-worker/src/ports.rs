//! What search-worker needs from the outside world, and the app that bundles it.

use shared::Config;
use worker_kit::Fault;

/// D1, as search-worker uses it.
pub(crate) trait Store {
    async fn ping(&self) -> Result<(), Fault>;
}

/// Everything a route may use. The embedder is `worker_kit::embedder::Embedder`.
#[derive(Debug)]
pub(crate) struct App<S, E> {
    pub store: S,
    pub embedder: E,
    pub config: &'static Config,
}
