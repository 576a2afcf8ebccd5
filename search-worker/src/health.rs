//! `health(organizationId?)`: D1 answers, and, for an organization, what its own tables and
//! query vectors take in the isolate's caches against their budgets.
//!
//! The caches are the isolate's, shared by every organization it serves, so a figure of the
//! whole would show one tenant each search another makes (an owner of a brand-new
//! organization watched other tenants' query vectors and tables come and go). Only what can be
//! attributed to the organization asking is answered: its snapshots ([`VectorCache::usage`])
//! and its query vectors, keyed by organization as they are ([`QueryCache::usage`]). The
//! budgets are configuration, the same for everyone. Hit and miss counts, evictions and
//! answers given are the isolate's and are never answered.
//!
//! [`VectorCache::usage`]: crate::cache::budget::VectorCache::usage
//! [`QueryCache::usage`]: crate::cache::queries::QueryCache::usage

use serde_json::{json, Value};
use shared::ApiError;

use crate::ports::{App, Store};

/// D1's answer, and the caches of `organization_id` when given (a caller that may administer
/// it: the gateway asks for its administrators only). The caches are named with the
/// organization they are of, so that a caller can tell them from an older search-worker's
/// figures of the whole isolate.
pub(crate) async fn health<S: Store, E, V>(
    app: &App<'_, S, E, V>,
    organization_id: Option<&str>,
) -> Result<Value, ApiError> {
    app.store.ping().await.map_err(|fault| {
        tracing::warn!(error = %fault, "D1 unreachable");
        ApiError::unavailable("D1 is unreachable")
    })?;
    let mut answer = json!({ "worker": "search-worker", "d1": true });
    if let Some(organization_id) = organization_id {
        answer["caches"] = json!({
            "organizationId": organization_id,
            "vectors": app.caches.vectors.usage(organization_id),
            "queries": app.caches.queries.usage(organization_id, app.now_ms),
        });
    }
    Ok(answer)
}
