//! The D1 backend: an exact search of the isolate's copy of the organization's table
//! (`crate::cache`), caught up on what was written since its last look, a page at a time while
//! D1 holds more than a page, refused past the table's bound.

use std::collections::HashMap;

use shared::config::TableConfig;
use shared::models;
use shared::topk::{best, dot, normalized};
use shared::vector::decode_hex;
use shared::{ApiError, ErrorCode};
use worker_kit::embedder::Embedder;
use worker_kit::Fault;

use super::active::dims_of;
use super::{store_down, Ask};
use crate::answers::{Nearest, Question};
use crate::cache::active::snapshot_key;
use crate::cache::snapshot::{Refused, Shortlisted, Snapshot, TableTooLarge};
use crate::ports::{ActiveSet, App, ExactRow, Pending, Room, Store, VectorIndexes, VectorRow};

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

/// The rows of an organization's table written after the cache's last look (`since`), read
/// before the query vector is at hand: what D1 holds since, the room the read had, the rows
/// that came (all, a page or none), and the chunk of exact vectors read from `fill`.
pub(super) struct CaughtUp {
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
pub(super) async fn read_since<S: Store, E: Embedder, V: VectorIndexes>(
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

/// Exact search over the isolate's copy of the organization's table, brought up to date first:
/// the codes of every row give a shortlist that holds the exact top `limit`, and the exact
/// vectors of the shortlist (the snapshot's own, else D1's) rank it. The answer is an exact
/// scan's of the snapshot as the catch-up left it, to the bit; the same question again of a
/// snapshot that has not moved since is given that answer (`crate::answers`). `None` when the
/// set is no longer active as the search reads again (a switch, whose clean-up may take the
/// exact vectors). A table past its bound (`cache::snapshot::DEFAULT_TABLE_BOUND`) is refused, as soon
/// as D1 or the isolate finds it so.
pub(super) async fn d1_nearest<S: Store, E: Embedder, V: VectorIndexes>(
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
