//! What search-worker needs from the outside world.

use worker_kit::Fault;

/// D1, as search-worker uses it.
pub(crate) trait Store {
    async fn ping(&self) -> Result<(), Fault>;
}
