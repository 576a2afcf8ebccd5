//! `search`, `grayZone` and `query`: the nearest records of one organization, from the table's
//! vector backend.
//!
//! The organization is applied by the worker before any filter: on the D1 backend only its own
//! rows are ever loaded; on Vectorize it is the query's namespace. A service's thresholds
//! classify every match the same way through every route.

use futures_util::future::join;
use serde_json::{Map, Value};
use shared::config::{TableConfig, VectorIndex};
use shared::filter::Filter;
use shared::search::{
    GrayZoneRequest, GrayZoneResponse, Match, Plan, QueryAnswer, QueryMatch, QueryRequest,
    SearchRequest,
};
use shared::topk::{normalized, top_k};
use shared::ApiError;
use worker_kit::embedder::Embedder;
use worker_kit::vectorize::{QueryOptions, MAX_TOP_K};
use worker_kit::Fault;

use crate::embed::vector_of;
use crate::ports::{App, Store, VectorIndexes, VectorRow};

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

/// The plan's nearest records to `text`, each classified by the service's thresholds. On the D1
/// backend the rows written since the cache's last look are read while the text is embedded:
/// two round trips in the time of the longer one.
async fn classified<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    plan: &Plan<'_>,
    text: &str,
) -> Result<Vec<Match>, ApiError> {
    let embedding = vector_of(app, organization_id, plan.table.model(), text);
    let (vector, caught_up) = match plan.table.embeddings.vector_index {
        VectorIndex::D1 => {
            let (vector, rows) = join(embedding, catch_up(app, organization_id, plan.table)).await;
            (vector?, Some(rows))
        }
        VectorIndex::Vectorize { .. } => (embedding.await?, None),
    };
    let ask = Ask {
        organization_id,
        table: plan.table,
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

pub(crate) async fn query<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    request: &QueryRequest,
) -> Result<QueryAnswer, ApiError> {
    let (table, filter) = request.plan(app.config)?;
    let with_metadata = request.return_metadata;
    let ask = Ask {
        organization_id,
        table,
        vector: &request.vector,
        limit: request.top_k,
        min_score: -1.0,
        filter: &filter,
    };
    let nearest = nearest(app, &ask, None).await?;
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
/// organization, best first, none scoring below `min_score`, all passing `filter`.
struct Ask<'a> {
    organization_id: &'a str,
    table: &'a TableConfig,
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

async fn catch_up<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
) -> Result<CaughtUp, Fault> {
    let since = app
        .caches
        .vectors
        .max_seq(organization_id, &table.name, table.model().dimensions);
    let rows = app
        .store
        .vectors_since(organization_id, &table.name, since)
        .await?;
    Ok(CaughtUp { since, rows })
}

/// The nearest records of `ask`; on the D1 backend from `caught_up` when it was read already.
async fn nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    caught_up: Option<Result<CaughtUp, Fault>>,
) -> Result<Vec<Nearest>, ApiError> {
    match &ask.table.embeddings.vector_index {
        VectorIndex::D1 => d1_nearest(app, ask, caught_up).await.map_err(|fault| {
            tracing::error!(error = %fault, table = %ask.table.name, "reading vectors failed");
            ApiError::unavailable("the vector store is unavailable; retry later")
        }),
        VectorIndex::Vectorize { binding } => vectorize_nearest(app, binding, ask).await,
    }
}

/// Exact search over the isolate's copy of the organization's vectors, brought up to date first.
async fn d1_nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    mut caught_up: Option<Result<CaughtUp, Fault>>,
) -> Result<Vec<Nearest>, Fault> {
    let Ask {
        organization_id,
        table,
        vector,
        limit,
        min_score,
        filter,
    } = *ask;
    let dims = table.model().dimensions;
    let cache = &app.caches.vectors;
    let query = normalized(vector);
    // Rows written since the copy's last look, applied to it. Should the copy be evicted while
    // they were read (another request's search went over the budget), they are not all it
    // lacks: read again, from what the new copy has.
    for _ in 0..3 {
        let CaughtUp { since, rows } = match caught_up.take() {
            Some(read) => read?,
            None => catch_up(app, organization_id, table).await?,
        };
        let answer = cache.with(organization_id, &table.name, dims, |snapshot| {
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
        .live_records(organization_id, &table.name, &vector_ids)
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
