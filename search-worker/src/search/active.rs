//! Which set a search reads: the table's active set (the configured one while it has none),
//! read beside the query's embedding and remembered as the next search's guess, and the set
//! active after a switch met while the search ran.

use shared::config::TableConfig;
use shared::models;
use shared::sets::D1_LOCATION;
use shared::ApiError;
use worker_kit::embedder::Embedder;
use worker_kit::Fault;

use super::d1::{read_since, CaughtUp};
use super::store_down;
use crate::ports::{ActiveSet, App, Store, VectorIndexes};

/// The model a set's vectors are of.
pub(super) fn set_model(active: &ActiveSet) -> Result<&'static models::ModelSpec, ApiError> {
    models::model(&active.set.model).ok_or_else(|| {
        tracing::error!(model = %active.set.model, "a vector set names a model the catalogue lacks");
        ApiError::internal()
    })
}

/// The table's active set (the configured one while it has none), remembered as the next
/// search's guess; on the D1 backend, with the rows written since the cache's last look when
/// the guess was right.
pub(super) async fn read_active<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
    guess: &ActiveSet,
) -> Result<(ActiveSet, Option<CaughtUp>), Fault> {
    let (active, caught_up) = if guess.set.location == D1_LOCATION {
        let (read, caught_up) = read_since(app, organization_id, table, guess, false).await?;
        let active = read.unwrap_or_else(|| ActiveSet::configured(table));
        let caught_up = (active == *guess).then_some(caught_up);
        (active, caught_up)
    } else {
        let active = app.store.active_set(organization_id, &table.name).await?;
        (active.unwrap_or_else(|| ActiveSet::configured(table)), None)
    };
    app.caches
        .remember_active(organization_id, &table.name, &active);
    Ok((active, caught_up))
}

/// The dimensions of a set's vectors.
pub(super) fn dims_of(active: &ActiveSet) -> Result<usize, Fault> {
    models::model(&active.set.model)
        .map(|m| m.dimensions)
        .ok_or_else(|| Fault(format!("the set's model `{}` is unknown", active.set.model)))
}

/// The set active after `before` switched while a search ran (its `attempts`th time), and what
/// was written to it since the cache's last look.
pub(super) async fn switched<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
    before: &ActiveSet,
    attempts: u32,
) -> Result<(ActiveSet, Option<CaughtUp>), ApiError> {
    if attempts > 2 {
        tracing::error!(table = %table.name, "the table's set kept switching while it was searched");
        return Err(ApiError::unavailable(
            "the table's vectors are being switched; retry later",
        ));
    }
    tracing::info!(table = %table.name, "the table's set switched while it was searched");
    read_active(app, organization_id, table, before)
        .await
        .map_err(|fault| store_down(&fault, table))
}
