//! `search`, `grayZone` and `query`: the nearest records of one organization, from the table's
//! vector backend.
//!
//! The organization is applied by the worker before any filter: on the D1 backend only its own
//! rows are ever loaded; on Vectorize it is the query's namespace. A service's thresholds
//! classify every match the same way through every route.
//!
//! A table is searched in its active vector set (`shared::sets`), whatever the config names
//! meanwhile: while a model change builds the new set, searches keep reading the old one whole,
//! and from the switch on, the new one. The query text is embedded with the active set's model;
//! one search never reads two sets.
//!
//! - this module: the methods, and what a search asks ([`Ask`]) of the backend its set is on;
//! - [`active`]: which set a search reads, and the switch a search may meet while it runs;
//! - [`d1`]: the D1 backend, an exact search of the isolate's copy, caught up on every search;
//! - [`vectorize`]: the Vectorize backend, its answers checked against D1.

mod active;
mod d1;
mod vectorize;

use futures_util::future::join;
use shared::config::TableConfig;
use shared::filter::Filter;
use shared::search::{
    GrayZoneRequest, GrayZoneResponse, Match, Plan, QueryAnswer, QueryMatch, QueryRequest,
    SearchRequest,
};
use shared::ApiError;
use worker_kit::embedder::Embedder;
use worker_kit::Fault;

use crate::answers::Nearest;
use crate::embed::vector_of;
use crate::ports::{ActiveSet, App, Store, VectorIndexes};
use active::{read_active, set_model, switched};
use d1::{d1_nearest, CaughtUp};
use vectorize::vectorize_nearest;

pub(crate) async fn search<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    service: &str,
    request: &SearchRequest,
) -> Result<Vec<Match>, ApiError> {
    let plan = request.plan(app.config, service)?;
    classified(app, organization_id, &plan, &request.text).await
}

pub(crate) async fn gray_zone<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    service: &str,
    request: &GrayZoneRequest,
) -> Result<GrayZoneResponse, ApiError> {
    let (plan, zone) = request.plan(app.config, service)?;
    let matches = classified(app, organization_id, &plan, &request.text).await?;
    let (high_confidence, gray_zone) = zone.split(matches, |m| m.score);
    Ok(GrayZoneResponse {
        high_confidence,
        gray_zone,
    })
}

/// The plan's nearest records to `text`, each classified by the service's thresholds. The text
/// is embedded while D1 says which set is active (and, on the D1 backend, what was written
/// since the cache's last look): two round trips in the time of the longer one. Only the
/// first search after a switch guesses the set wrong, and embeds again.
async fn classified<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    plan: &Plan<'_>,
    text: &str,
) -> Result<Vec<Match>, ApiError> {
    let table = plan.table;
    let guess = app.caches.active_guess(organization_id, table);
    let (vector, active) = join(
        vector_of(app, organization_id, set_model(&guess)?, text),
        read_active(app, organization_id, table, &guess),
    )
    .await;
    let (mut active, mut caught_up) = active.map_err(|fault| store_down(&fault, table))?;
    let mut vector = if active.set.model == guess.set.model {
        vector?
    } else {
        vector_of(app, organization_id, set_model(&active)?, text).await?
    };
    let mut attempts = 0;
    let nearest = loop {
        let ask = Ask {
            organization_id,
            table,
            active: &active,
            vector: &vector,
            limit: plan.limit,
            min_score: plan.min_score,
            filter: &plan.filter,
        };
        if let Some(found) = nearest(app, &ask, caught_up.take()).await? {
            break found;
        }
        // The set switched while the search ran: the one active now, by its own model.
        attempts += 1;
        let before = active.set.model.clone();
        (active, caught_up) = switched(app, organization_id, table, &active, attempts).await?;
        if active.set.model != before {
            vector = vector_of(app, organization_id, set_model(&active)?, text).await?;
        }
    };
    let thresholds = plan.service.thresholds;
    Ok(nearest
        .into_iter()
        .map(|(id, score, metadata)| Match {
            id,
            score,
            classification: thresholds.classify(score),
            metadata,
        })
        .collect())
}

/// What a search answers while the vector store is down: retry later.
fn store_down(fault: &Fault, table: &TableConfig) -> ApiError {
    tracing::error!(error = %fault, table = %table.name, "reading vectors failed");
    ApiError::unavailable("the vector store is unavailable; retry later")
}

pub(crate) async fn query<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    request: &QueryRequest,
) -> Result<QueryAnswer, ApiError> {
    let (table, filter) = request.plan(app.config)?;
    let guess = app.caches.active_guess(organization_id, table);
    let (mut active, mut caught_up) = read_active(app, organization_id, table, &guess)
        .await
        .map_err(|fault| store_down(&fault, table))?;
    let mut attempts = 0;
    let nearest = loop {
        // The vector must be of the set searched now: the old model's until a model change
        // switches.
        QueryRequest::check_dimensions(table, set_model(&active)?, request.vector.len())?;
        let ask = Ask {
            organization_id,
            table,
            active: &active,
            vector: &request.vector,
            limit: request.top_k,
            min_score: -1.0,
            filter: &filter,
        };
        if let Some(found) = nearest(app, &ask, caught_up.take()).await? {
            break found;
        }
        attempts += 1;
        (active, caught_up) = switched(app, organization_id, table, &active, attempts).await?;
    };
    let with_metadata = request.return_metadata;
    let matches: Vec<QueryMatch> = nearest
        .into_iter()
        .map(|(id, score, metadata)| QueryMatch {
            id,
            score,
            metadata: with_metadata.then_some(metadata),
        })
        .collect();
    Ok(QueryAnswer::new(matches))
}

/// What a nearest-records query asks: the `limit` records of `table` nearest to `vector` in one
/// organization's active set, best first, none scoring below `min_score`, all passing `filter`.
struct Ask<'a> {
    organization_id: &'a str,
    table: &'a TableConfig,
    active: &'a ActiveSet,
    vector: &'a [f32],
    limit: u32,
    min_score: f32,
    filter: &'a Filter,
}

/// The nearest records of `ask`; on the D1 backend from `caught_up` when it was read already,
/// and `None` should the set switch before the search could read it whole.
async fn nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    caught_up: Option<CaughtUp>,
) -> Result<Option<Vec<Nearest>>, ApiError> {
    match ask.active.set.binding() {
        None => d1_nearest(app, ask, caught_up).await,
        Some(binding) => vectorize_nearest(app, binding, ask).await.map(Some),
    }
}
