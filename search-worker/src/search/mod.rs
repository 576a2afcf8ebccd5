//! `search`, `grayZone` and `query`: the nearest records of one organization, from the table's
//! vector backend, and for a `keyword` or `hybrid` search from its keyword index too.
//!
//! The organization is applied by the worker before any filter: on the D1 backend only its own
//! rows are ever loaded; on Vectorize it is the query's namespace; of the keyword index's hits
//! only its own rows are kept. A service's thresholds classify every match the same way
//! through every route, in every mode.
//!
//! A table is searched in its active vector set (`shared::sets`), whatever the config names
//! meanwhile: while a model change builds the new set, searches keep reading the old one whole,
//! and from the switch on, the new one. The query text is embedded with the active set's model;
//! one search never reads two sets.
//!
//! - this module: the methods, and what a search asks ([`Ask`]) of the backend its set is on;
//! - [`active`]: which set a search reads, and the switch a search may meet while it runs;
//! - [`d1`]: the D1 backend, an exact search of the isolate's copy, caught up on every search;
//! - [`keyword`]: the keyword side of a `keyword` or `hybrid` search, on either backend;
//! - [`vectorize`]: the Vectorize backend, its answers checked against D1.

mod active;
mod d1;
pub(crate) mod keyword;
mod vectorize;

use futures_util::future::join;
use shared::config::TableConfig;
use shared::filter::Filter;
use shared::ranking::{matches, Found};
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
use keyword::keyword_nearest;
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

/// The plan's matches for `text`, found and ordered by its mode (`shared::ranking`), each
/// classified by the service's thresholds. The text is embedded in every mode (a match's score
/// is always its vector score) while D1 says which set is active (and, on the D1 backend, what
/// was written since the cache's last look): two round trips in the time of the longer one.
/// Only the first search after a switch guesses the set wrong, and embeds again. A hybrid
/// search asks the keyword index while the vector search runs.
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
    let (active, caught_up) = active.map_err(|fault| store_down(&fault, table))?;
    let vector = if active.set.model == guess.set.model {
        vector?
    } else {
        vector_of(app, organization_id, set_model(&active)?, text).await?
    };
    let mode = plan.mode;
    let depth = mode.depth(plan.limit);
    let words = |active: ActiveSet, vector: Vec<f32>| async move {
        if !mode.uses_keywords() {
            return Ok(Vec::new());
        }
        let ask = Ask {
            organization_id,
            table,
            active: &active,
            vector: &vector,
            limit: depth,
            min_score: -1.0,
            filter: &plan.filter,
        };
        keyword_nearest(app, &ask, text).await
    };
    if !mode.uses_vectors() {
        let keyword = words(active, vector).await?;
        return Ok(matches(plan, Vec::new(), keyword));
    }
    // The vector search's floor is the plan's only when it alone ranks: fusion ranks what each
    // search found, and the floor applies to the fused matches.
    let floor = if mode.uses_keywords() {
        -1.0
    } else {
        plan.min_score
    };
    let (nearest, keyword) = if mode.uses_keywords() {
        let searched = Searched {
            active: active.clone(),
            vector: vector.clone(),
        };
        let (nearest, keyword) = join(
            vector_search(
                app,
                organization_id,
                plan,
                text,
                searched,
                caught_up,
                depth,
                floor,
            ),
            words(active.clone(), vector),
        )
        .await;
        let (nearest, searched) = nearest?;
        // A switch met by the vector search: the keyword side reads the set it ended in.
        let keyword = if searched.active == active {
            keyword?
        } else {
            words(searched.active, searched.vector).await?
        };
        (nearest, keyword)
    } else {
        // Semantic: the vector search alone, with nothing copied for a keyword side.
        let searched = Searched { active, vector };
        let (nearest, _) = vector_search(
            app,
            organization_id,
            plan,
            text,
            searched,
            caught_up,
            depth,
            floor,
        )
        .await?;
        (nearest, Vec::new())
    };
    let vector_side = nearest
        .into_iter()
        .map(|(id, score, metadata)| Found {
            id,
            score,
            metadata,
        })
        .collect();
    Ok(matches(plan, vector_side, keyword))
}

/// The set a search read, and the query's vector by that set's model.
struct Searched {
    active: ActiveSet,
    vector: Vec<f32>,
}

/// The `limit` nearest records to the query in the organization's active set, none below
/// `floor`; should the set switch while it reads, again in the set active then, by its own
/// model. Answers with the set it read.
#[allow(clippy::too_many_arguments)]
async fn vector_search<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    plan: &Plan<'_>,
    text: &str,
    mut searched: Searched,
    mut caught_up: Option<CaughtUp>,
    limit: u32,
    floor: f32,
) -> Result<(Vec<Nearest>, Searched), ApiError> {
    let table = plan.table;
    let mut attempts = 0;
    loop {
        let ask = Ask {
            organization_id,
            table,
            active: &searched.active,
            vector: &searched.vector,
            limit,
            min_score: floor,
            filter: &plan.filter,
        };
        if let Some(found) = nearest(app, &ask, caught_up.take()).await? {
            return Ok((found, searched));
        }
        // The set switched while the search ran: the one active now, by its own model.
        attempts += 1;
        let before = searched.active.set.model.clone();
        (searched.active, caught_up) =
            switched(app, organization_id, table, &searched.active, attempts).await?;
        if searched.active.set.model != before {
            searched.vector =
                vector_of(app, organization_id, set_model(&searched.active)?, text).await?;
        }
    }
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
