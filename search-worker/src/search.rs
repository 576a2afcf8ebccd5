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

use std::collections::HashMap;

use futures_util::future::join;
use serde_json::{Map, Value};
use shared::config::TableConfig;
use shared::filter::Filter;
use shared::search::{
    GrayZoneRequest, GrayZoneResponse, Match, Plan, QueryAnswer, QueryMatch, QueryRequest,
    SearchRequest,
};
use shared::sets::D1_LOCATION;
use shared::topk::{best, dot, normalized};
use shared::vector::decode_hex;
use shared::{models, ApiError, ErrorCode};
use worker_kit::embedder::Embedder;
use worker_kit::vectorize::{QueryOptions, MAX_TOP_K};
use worker_kit::Fault;

use crate::answers::{Nearest, Question};
use crate::cache::{snapshot_key, Refused, Shortlisted, Snapshot, TableTooLarge};
use crate::embed::vector_of;
use crate::ports::{ActiveSet, App, ExactRow, Pending, Room, Store, VectorIndexes, VectorRow};

/// What a look at the snapshot found: the answer it kept for the question, or the shortlist to
/// score, with the `max_seq` the snapshot was at; or that D1 holds more of the table than it
/// sent (a page of it), to read first.
enum Found {
    Answer(Vec<Nearest>),
    Shortlist(i64, Vec<Shortlisted>),
    More,
}

/// Reads of a table one search makes at most: its pages (a table within its bound is about six
/// of them), and reads again after an eviction or a write in between.
const MAX_READS: usize = 64;
/// Reads one search makes again at most after its copy was evicted, or a shortlisted row
/// rewritten, while it read.
const MAX_REREADS: usize = 4;

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

/// A table of the D1 backend past the bound one isolate keeps of a table: no retry will do,
/// the table has to move (`conflict`: the request is fine, the table's state does not fit).
fn too_large(
    organization_id: &str,
    table: &TableConfig,
    active: &ActiveSet,
    refused: TableTooLarge,
) -> ApiError {
    tracing::warn!(
        organization_id,
        table = %table.name,
        model = %active.set.model,
        bytes = refused.bytes,
        bound = refused.bound,
        "table too large for the D1 backend: search refused"
    );
    let dimensions = models::model(&active.set.model).map_or(0, |m| m.dimensions);
    ApiError::new(
        ErrorCode::Conflict,
        format!(
            "table `{}` is too large for the D1 backend in one isolate: its vectors and metadata \
             take more than the {} MB one table may take there; move it to Vectorize \
             (`vector_index = {{ backend = \"vectorize\", binding = \"…\" }}` in its config, \
             the binding an index of {dimensions} dimensions)",
            table.name,
            refused.bound.div_ceil(1 << 20)
        ),
    )
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

/// The rows of an organization's table written after the cache's last look (`since`), read
/// before the query vector is at hand: what D1 holds since, the room the read had, the rows
/// that came (all, a page or none), and the chunk of exact vectors read from `fill`.
struct CaughtUp {
    since: i64,
    pending: Pending,
    room: Room,
    rows: Vec<VectorRow>,
    fill: Option<i64>,
    exact: Vec<ExactRow>,
}

/// The active set, and what `set`'s snapshot lacks: the rows written since its last look (as
/// many as its room lets in; a page of them when `paged`), and a chunk of its exact layer while
/// that is short.
async fn read_since<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
    set: &ActiveSet,
    paged: bool,
) -> Result<(Option<ActiveSet>, CaughtUp), Fault> {
    let key = snapshot_key(&table.name, set);
    let cache = &app.caches.vectors;
    let since = cache.max_seq(organization_id, &key);
    // Not beside a page: a chunk would reach rows of the pages still to come, and count them
    // as filled before the snapshot has them.
    let fill = cache.fill_from(organization_id, &key).filter(|_| !paged);
    let room = cache.room(organization_id, &key, dims_of(set)?, paged);
    let read = app
        .store
        .catch_up(organization_id, &table.name, &set.set, since, room, fill)
        .await?;
    Ok((
        read.active,
        CaughtUp {
            since,
            pending: read.pending,
            room,
            rows: read.rows,
            fill,
            exact: read.exact,
        },
    ))
}

/// The set active after `before` switched while a search ran (its `attempts`th time), and what
/// was written to it since the cache's last look.
async fn switched<S: Store, E: Embedder, V: VectorIndexes>(
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

/// The rows of the active set written since the cache's last look (a page of them when
/// `paged`); `None` when the set is no longer the active one.
async fn catch_up<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    table: &TableConfig,
    active: &ActiveSet,
    paged: bool,
) -> Result<Option<CaughtUp>, Fault> {
    let (now, caught_up) = read_since(app, organization_id, table, active, paged).await?;
    let still = now.unwrap_or_else(|| ActiveSet::configured(table)) == *active;
    Ok(still.then_some(caught_up))
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

/// Exact search over the isolate's copy of the organization's table, brought up to date first:
/// the codes of every row give a shortlist that holds the exact top `limit`, and the exact
/// vectors of the shortlist (the snapshot's own, else D1's) rank it. The answer is an exact
/// scan's of the snapshot as the catch-up left it, to the bit; the same question again of a
/// snapshot that has not moved since is given that answer (`crate::answers`). `None` when the
/// set is no longer active as the search reads again (a switch, whose clean-up may take the
/// exact vectors). A table past its bound (`cache::DEFAULT_TABLE_BOUND`) is refused, as soon
/// as D1 or the isolate finds it so.
async fn d1_nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    mut caught_up: Option<CaughtUp>,
) -> Result<Option<Vec<Nearest>>, ApiError> {
    let Ask {
        organization_id,
        table,
        active,
        vector,
        limit,
        min_score,
        filter,
    } = *ask;
    let down = |fault: Fault| store_down(&fault, table);
    let dims = dims_of(active).map_err(down)?;
    let key = snapshot_key(&table.name, active);
    let cache = &app.caches.vectors;
    let question = Question {
        query: normalized(vector),
        filter: filter.clone(),
        limit: limit as usize,
        min_score,
    };
    // Rows written since the copy's last look, applied to it, a page at a time while D1 holds
    // more than a page of them. Should the copy be evicted while they were read (another
    // request's search went over the budget), they are not all it lacks; should a shortlisted
    // row change before its exact vector is read, that version is gone: either way, read
    // again, from what the copy has.
    let (mut paged, mut rereads) = (false, 0);
    for _ in 0..MAX_READS {
        if rereads >= MAX_REREADS {
            break;
        }
        let read = match caught_up.take() {
            Some(read) => read,
            None => match catch_up(app, organization_id, table, active, paged)
                .await
                .map_err(down)?
            {
                Some(read) => read,
                None => return Ok(None),
            },
        };
        if read.pending.bytes > read.room.bytes {
            if read.since == 0 {
                let refused = TableTooLarge {
                    bytes: read.pending.bytes,
                    bound: cache.table_bound(),
                };
                return Err(too_large(organization_id, table, active, refused));
            }
            // D1 counts a row a catch-up rewrites as a new one: near its bound, a table that did
            // not grow may seem to. Its copy goes, and is read anew, each row counted once.
            cache.forget(organization_id, &key);
            rereads += 1;
            continue;
        }
        let more = read.rows.len() < read.pending.rows;
        let found = cache.with(organization_id, &key, dims, |snapshot| {
            look(snapshot, read, more, &question)
        });
        let (at, mut shortlisted) = match found {
            Err(Refused::TooLarge(refused)) => {
                return Err(too_large(organization_id, table, active, refused))
            }
            Err(Refused::Fault(fault)) => return Err(down(fault)),
            Ok(None) => {
                rereads += 1;
                continue;
            }
            Ok(Some(Found::More)) => {
                paged = true;
                continue;
            }
            Ok(Some(Found::Answer(answer))) => {
                cache.note_answered();
                return Ok(Some(answer));
            }
            Ok(Some(Found::Shortlist(at, shortlisted))) => (at, shortlisted),
        };
        if !score_exactly(app, ask, &key, &question.query, &mut shortlisted)
            .await
            .map_err(down)?
        {
            rereads += 1;
            continue;
        }
        let answer = ranked(shortlisted, limit as usize, min_score);
        cache.keep_answer(organization_id, &key, question, at, answer.clone());
        return Ok(Some(answer));
    }
    Err(down(Fault(format!(
        "the vector cache of `{}` kept being evicted, its shortlist rewritten or its table \
         written while it was read",
        table.name
    ))))
}

/// Applies what a catch-up `read` to the snapshot, then looks for `question`'s answer in it:
/// the one kept, else the shortlist to score; `None` when the snapshot lacks rows older than
/// the read (it was evicted meanwhile), and [`Found::More`] while D1 holds `more` of the table.
fn look(
    snapshot: &mut Snapshot,
    read: CaughtUp,
    more: bool,
    question: &Question,
) -> Result<Option<Found>, Refused> {
    if snapshot.max_seq < read.since {
        return Ok(None);
    }
    let seen = read.rows.last().map_or(read.since, |row| row.seq);
    snapshot.apply(read.rows)?;
    if let Some(after) = read.fill {
        snapshot.fill(after, seen, read.exact)?;
    }
    if more {
        return Ok(Some(Found::More));
    }
    let at = snapshot.max_seq;
    Ok(Some(match snapshot.answers.get(question, at) {
        Some(answer) => Found::Answer(answer),
        None => Found::Shortlist(
            at,
            snapshot.shortlist(
                &question.query,
                &question.filter,
                question.limit,
                question.min_score,
            ),
        ),
    }))
}

/// The best `limit` of the shortlisted rows, by their exact scores, none below `min_score`.
fn ranked(mut shortlisted: Vec<Shortlisted>, limit: usize, min_score: f32) -> Vec<Nearest> {
    let ranked = best(
        shortlisted
            .iter()
            .enumerate()
            .filter_map(|(i, s)| Some((i, s.score?))),
        limit,
        min_score,
    );
    ranked
        .into_iter()
        .map(|(i, score)| {
            let row = &mut shortlisted[i];
            (
                std::mem::take(&mut row.id),
                score,
                std::mem::take(&mut row.metadata),
            )
        })
        .collect()
}

/// Scores the shortlisted rows the snapshot holds no exact vector of with D1's, and keeps those
/// vectors in the snapshot. False when one of the rows was written since the snapshot read it:
/// the version the shortlist holds is gone, and the search reads again.
async fn score_exactly<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    key: &str,
    query: &[f32],
    shortlisted: &mut [Shortlisted],
) -> Result<bool, Fault> {
    let missing: Vec<&str> = shortlisted
        .iter()
        .filter(|s| s.score.is_none())
        .map(|s| s.id.as_str())
        .collect();
    if missing.is_empty() {
        return Ok(true);
    }
    let dims = dims_of(ask.active)?;
    let mut rows: HashMap<String, ExactRow> = app
        .store
        .exact_vectors(
            ask.organization_id,
            &ask.table.name,
            &ask.active.set,
            &missing,
        )
        .await?
        .into_iter()
        .map(|row| (row.record_id.clone(), row))
        .collect();
    let mut read = Vec::with_capacity(missing.len());
    for row in shortlisted.iter_mut().filter(|s| s.score.is_none()) {
        let Some(hex) = rows
            .remove(&row.id)
            .filter(|exact| exact.seq == row.seq)
            .and_then(|exact| exact.vector_hex)
        else {
            tracing::info!(
                table = %ask.table.name,
                record_id = %row.id,
                "a shortlisted record was written while the search ran: reading again"
            );
            return Ok(false);
        };
        let exact = normalized(&decode_hex(&hex).map_err(|e| Fault(e.to_string()))?);
        if exact.len() != dims {
            return Err(Fault(format!(
                "record {} has a {}-dimension vector in a {dims}-dimension table",
                row.id,
                exact.len()
            )));
        }
        row.score = Some(dot(query, &exact));
        read.push((row.id.clone(), row.seq, exact));
    }
    app.caches
        .vectors
        .with(ask.organization_id, key, dims, |snapshot| {
            for (id, seq, exact) in read {
                snapshot.keep_exact(&id, seq, exact);
            }
        });
    Ok(true)
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
