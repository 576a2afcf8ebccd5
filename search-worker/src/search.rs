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

use futures_util::future::join;
use serde_json::{Map, Value};
use shared::config::TableConfig;
use shared::filter::Filter;
use shared::search::{
    GrayZoneRequest, GrayZoneResponse, Match, Plan, QueryAnswer, QueryMatch, QueryRequest,
    SearchRequest,
};
use shared::sets::D1_LOCATION;
use shared::topk::{normalized, top_k};
use shared::{models, ApiError};
use worker_kit::embedder::Embedder;
use worker_kit::vectorize::{QueryOptions, MAX_TOP_K};
use worker_kit::Fault;

use crate::cache::snapshot_key;
use crate::embed::vector_of;
use crate::ports::{ActiveSet, App, Store, VectorIndexes, VectorRow};

/// A nearest record: its id, score and metadata.
type Nearest = (String, f32, Map<String, Value>);

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
    let (active, caught_up) = active.map_err(|fault| store_down(&fault, table))?;
    let vector = if active.set.model == guess.set.model {
        vector?
    } else {
        vector_of(app, organization_id, set_model(&active)?, text).await?
    };
    let ask = Ask {
        organization_id,
        table,
        active: &active,
        vector: &vector,
        limit: plan.limit,
        min_score: plan.min_score,
        filter: &plan.filter,
    };
    let nearest = nearest(app, &ask, caught_up).await?;
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

/// The model a set's vectors are of.
fn set_model(active: &ActiveSet) -> Result<&'static models::ModelSpec, ApiError> {
    models::model(&active.set.model).ok_or_else(|| {
        tracing::error!(model = %active.set.model, "a vector set names a model the catalogue lacks");
        ApiError::internal()
    })
}

fn store_down(fault: &Fault, table: &TableConfig) -> ApiError {
    tracing::error!(error = %fault, table = %table.name, "reading vectors failed");
    ApiError::unavailable("the vector store is unavailable; retry later")
}

/// The table's active set (the configured one while it has none), remembered as the next
/// search's guess; on the D1 backend, with the rows written since the cache's last look when
/// the guess was right.
async fn read_active<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
    guess: &ActiveSet,
) -> Result<(ActiveSet, Option<CaughtUp>), Fault> {
    let (active, caught_up) = if guess.set.location == D1_LOCATION {
        let since = app
            .caches
            .vectors
            .max_seq(organization_id, &snapshot_key(&table.name, guess));
        let (active, rows) = app
            .store
            .catch_up(organization_id, &table.name, &guess.set, since)
            .await?;
        let active = active.unwrap_or_else(|| ActiveSet::configured(table));
        let caught_up = (active == *guess).then_some(CaughtUp { since, rows });
        (active, caught_up)
    } else {
        let active = app.store.active_set(organization_id, &table.name).await?;
        (active.unwrap_or_else(|| ActiveSet::configured(table)), None)
    };
    app.caches
        .remember_active(organization_id, &table.name, &active);
    Ok((active, caught_up))
}

fn dims_of(active: &ActiveSet) -> Result<usize, Fault> {
    models::model(&active.set.model)
        .map(|m| m.dimensions)
        .ok_or_else(|| Fault(format!("the set's model `{}` is unknown", active.set.model)))
}

pub(crate) async fn query<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    request: &QueryRequest,
) -> Result<QueryAnswer, ApiError> {
    let (table, filter) = request.plan(app.config)?;
    let guess = app.caches.active_guess(organization_id, table);
    let (active, caught_up) = read_active(app, organization_id, table, &guess)
        .await
        .map_err(|fault| store_down(&fault, table))?;
    // The vector must be of the set searched now: the old model's until a model change switches.
    QueryRequest::check_dimensions(table, set_model(&active)?, request.vector.len())?;
    let with_metadata = request.return_metadata;
    let ask = Ask {
        organization_id,
        table,
        active: &active,
        vector: &request.vector,
        limit: request.top_k,
        min_score: -1.0,
        filter: &filter,
    };
    let nearest = nearest(app, &ask, caught_up).await?;
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

/// The rows of an organization's table written after the cache's last look (`since`), read
/// before the query vector is at hand.
struct CaughtUp {
    since: i64,
    rows: Vec<VectorRow>,
}

/// The rows of the active set written since the cache's last look.
async fn catch_up<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
    active: &ActiveSet,
) -> Result<CaughtUp, Fault> {
    let since = app
        .caches
        .vectors
        .max_seq(organization_id, &snapshot_key(&table.name, active));
    let rows = app
        .store
        .vectors_since(organization_id, &table.name, &active.set, since)
        .await?;
    Ok(CaughtUp { since, rows })
}

/// The nearest records of `ask`; on the D1 backend from `caught_up` when it was read already.
async fn nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    caught_up: Option<CaughtUp>,
) -> Result<Vec<Nearest>, ApiError> {
    match ask.active.set.binding() {
        None => d1_nearest(app, ask, caught_up)
            .await
            .map_err(|fault| store_down(&fault, ask.table)),
        Some(binding) => vectorize_nearest(app, binding, ask).await,
    }
}

/// Exact search over the isolate's copy of the organization's vectors, brought up to date first.
async fn d1_nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    mut caught_up: Option<CaughtUp>,
) -> Result<Vec<Nearest>, Fault> {
    let Ask {
        organization_id,
        table,
        active,
        vector,
        limit,
        min_score,
        filter,
    } = *ask;
    let dims = dims_of(active)?;
    let key = snapshot_key(&table.name, active);
    let cache = &app.caches.vectors;
    let query = normalized(vector);
    // Rows written since the copy's last look, applied to it. Should the copy be evicted while
    // they were read (another request's search went over the budget), they are not all it
    // lacks: read again, from what the new copy has.
    for _ in 0..3 {
        let CaughtUp { since, rows } = match caught_up.take() {
            Some(read) => read,
            None => catch_up(app, organization_id, table, active).await?,
        };
        let answer = cache.with(organization_id, &key, dims, |snapshot| {
            if snapshot.max_seq < since {
                return Ok(None);
            }
            snapshot.apply(rows)?;
            let candidates = (0..snapshot.len())
                .filter(|&i| filter.is_empty() || filter.matches(&snapshot.metadata[i]))
                .map(|i| (i, snapshot.vector(i)));
            Ok::<_, Fault>(Some(
                top_k(&query, candidates, limit as usize, min_score)
                    .into_iter()
                    .map(|(i, score)| {
                        (snapshot.ids[i].clone(), score, snapshot.metadata[i].clone())
                    })
                    .collect(),
            ))
        })?;
        if let Some(answer) = answer {
            return Ok(answer);
        }
    }
    Err(Fault(format!(
        "the vector cache of `{}` kept being evicted while it was read; the budget is too small for the isolate's load",
        table.name
    )))
}

/// Vectorize: the organization is the namespace, the table a metadata filter. Matches come back
/// without metadata, so a query may ask for as many as the D1 backend gives (100): D1 maps each
/// vector id to its record and current metadata.
async fn vectorize_nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    binding: &str,
    ask: &Ask<'_>,
) -> Result<Vec<Nearest>, ApiError> {
    let Ask {
        organization_id,
        table,
        active,
        vector,
        limit,
        min_score,
        filter,
    } = *ask;
    let mut conditions = match filter.to_json() {
        Value::Object(conditions) => conditions,
        _ => Map::new(),
    };
    conditions.insert("table".into(), Value::String(table.name.clone()));
    let options = QueryOptions {
        top_k: limit.min(MAX_TOP_K),
        namespace: organization_id.to_owned(),
        return_metadata: "none",
        return_values: false,
        filter: Some(Value::Object(conditions)),
    };
    let matches = app
        .indexes
        .query(binding, vector, &options)
        .await
        .map_err(|fault| {
            tracing::error!(error = %fault, binding, "Vectorize query failed");
            ApiError::unavailable("the vector index is unavailable; retry later")
        })?;
    let found: Vec<(String, f32)> = matches
        .into_iter()
        .filter(|m| m.score >= min_score)
        .map(|m| (m.id, m.score))
        .collect();
    // Vectorize's writes show up seconds later; D1 is current. A match D1 no longer holds (a
    // deleted record) is left out, and each match carries D1's metadata, checked again against
    // the filter: an answer never shows what the caller has already changed.
    let vector_ids: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
    let live = app
        .store
        .live_records(
            organization_id,
            &table.name,
            &active.set.location,
            &vector_ids,
        )
        .await
        .map_err(|fault| {
            tracing::error!(error = %fault, table = %table.name, "reading current records failed");
            ApiError::unavailable("the vector store is unavailable; retry later")
        })?;
    let current: Vec<Nearest> = found
        .into_iter()
        .filter_map(|(vector_id, score)| {
            let (record_id, metadata) = live.get(&vector_id)?;
            (filter.is_empty() || filter.matches(metadata))
                .then(|| (record_id.clone(), score, metadata.clone()))
        })
        .collect();
    if current.len() < vector_ids.len() {
        tracing::info!(
            table = %table.name,
            left_out = vector_ids.len() - current.len(),
            "Vectorize matches that D1 no longer holds as they are were left out"
        );
    }
    Ok(current)
}
