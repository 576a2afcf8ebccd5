//! The keyword side of a search: the records the table's keyword index finds for the query's
//! words (`shared::keywords`), each with its exact vector score, so that a match only this
//! side found is classified as every other is (`shared::ranking`).

use std::collections::HashMap;

use shared::keywords;
use shared::ranking::Found;
use shared::topk::{dot, normalized};
use shared::vector::decode_hex;
use shared::ApiError;
use worker_kit::embedder::Embedder;
use worker_kit::Fault;

use super::{store_down, Ask};
use crate::ports::{App, KeywordQuery, KeywordRow, Store, VectorIndexes};

/// How many records the index is asked for when a filter may reject some: the filter reads
/// each record's metadata as its vector row holds it, which the index's SQL does not
/// evaluate. A filtered keyword search ranks the records that pass among the best this many.
pub(crate) const FILTERED_CANDIDATES: usize = 1_000;

/// The `ask.limit` best records of the table the keyword index finds for `text` in the
/// organization, among those with a live vector in the active set that pass the filter, each
/// with its BM25 score and its vector score against `ask.vector`. None when the text has no
/// word. The ask's floor is not applied here: matches are ranked first (`shared::ranking`).
pub(super) async fn keyword_nearest<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    text: &str,
) -> Result<Vec<(Found, f32)>, ApiError> {
    let Ask {
        organization_id,
        table,
        active,
        vector,
        limit,
        filter,
        ..
    } = *ask;
    let Some(words) = keywords::match_query(text) else {
        return Ok(Vec::new());
    };
    let depth = usize::try_from(limit).unwrap_or(usize::MAX);
    let query = normalized(vector);
    if filter.is_empty() {
        let rows = matches(app, ask, &words, depth, true).await?;
        return rows
            .into_iter()
            .filter_map(|mut row| {
                let hex = row.vector_hex.take()?;
                Some(scored(row, &hex, &query, ask))
            })
            .collect();
    }
    // A filter may reject most of what the index ranks first: the ids and metadata of many, then
    // the vectors of the few that pass.
    let passed: Vec<KeywordRow> = matches(app, ask, &words, FILTERED_CANDIDATES.max(depth), false)
        .await?
        .into_iter()
        .filter(|row| filter.matches(&row.metadata))
        .take(depth)
        .collect();
    if passed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = passed.iter().map(|row| row.record_id.as_str()).collect();
    let vectors: HashMap<String, String> = app
        .store
        .exact_vectors(organization_id, &table.name, &active.set, &ids)
        .await
        .map_err(|fault| store_down(&fault, table))?
        .into_iter()
        .filter_map(|row| Some((row.record_id, row.vector_hex?)))
        .collect();
    // A record deleted between the two reads has no vector left, and is left out.
    passed
        .into_iter()
        .filter_map(|row| {
            let hex = vectors.get(&row.record_id)?.clone();
            Some(scored(row, &hex, &query, ask))
        })
        .collect()
}

async fn matches<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    ask: &Ask<'_>,
    words: &str,
    limit: usize,
    with_vectors: bool,
) -> Result<Vec<KeywordRow>, ApiError> {
    let asked = KeywordQuery {
        organization_id: ask.organization_id,
        table: ask.table,
        set: &ask.active.set,
        query: words,
        limit,
        with_vectors,
    };
    app.store
        .keyword_matches(&asked)
        .await
        .map_err(|fault| store_down(&fault, ask.table))
}

/// A record the index found, with its vector score against `query` (unit length).
fn scored(
    row: KeywordRow,
    hex: &str,
    query: &[f32],
    ask: &Ask<'_>,
) -> Result<(Found, f32), ApiError> {
    let vector = decode_hex(hex).map_err(|e| store_down(&Fault(e.to_string()), ask.table))?;
    let found = Found {
        score: dot(query, &normalized(&vector)),
        id: row.record_id,
        metadata: row.metadata,
    };
    Ok((found, row.keyword_score))
}
