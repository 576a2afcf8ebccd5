//! The keyword side of a search: the records the table's keyword index finds for the query's
//! words (`shared::keywords`), each with its exact vector score, so that a match only this
//! side found is classified as every other is (`shared::ranking`).

use shared::keywords;
use shared::ranking::Found;
use shared::topk::{dot, normalized};
use shared::vector::decode_hex;
use shared::ApiError;
use worker_kit::embedder::Embedder;
use worker_kit::Fault;

use super::{store_down, Ask};
use crate::ports::{App, Store, VectorIndexes};

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
    let asked = if filter.is_empty() {
        depth
    } else {
        FILTERED_CANDIDATES.max(depth)
    };
    let rows = app
        .store
        .keyword_matches(organization_id, table, &active.set, &words, asked)
        .await
        .map_err(|fault| store_down(&fault, table))?;
    rows.into_iter()
        .filter(|row| filter.is_empty() || filter.matches(&row.metadata))
        .take(depth)
        .map(|row| {
            let vector = decode_hex(&row.vector_hex)
                .map_err(|e| store_down(&Fault(e.to_string()), table))?;
            let found = Found {
                score: dot(&query, &normalized(&vector)),
                id: row.record_id,
                metadata: row.metadata,
            };
            Ok((found, row.keyword_score))
        })
        .collect()
}
