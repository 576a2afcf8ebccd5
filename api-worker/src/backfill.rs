//! `POST /api/v1/embeddings/backfill`: enqueue, 100 messages to a `sendBatch`, every record of a
//! table in the caller's organization that lacks a current embedding (`"all": true`: every
//! record). One call takes up to [`MAX_RECORDS`] records in id order and answers with the count,
//! a `backfillId` (the jobs routes filter by it to show progress) and, when more records remain,
//! a `nextCursor` to pass to the next call.

use serde::Deserialize;
use shared::access::Action;
use shared::message::{content_hash, EmbeddingJob};
use shared::record::{cut_page, record_cursor};
use shared::ApiError;
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::Caller;
use crate::embeddings::submit_backfill;
use crate::error::Result;
use crate::ports::{App, Database, Ports, Records};

/// Records one backfill call looks at: its job rows go to D1 in one transaction.
pub(crate) const MAX_RECORDS: u32 = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackfillRequest {
    table: String,
    #[serde(default)]
    all: bool,
    cursor: Option<String>,
}

pub(crate) async fn backfill(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let body: BackfillRequest = request.json()?;
    let table = app.config.table(&body.table).ok_or_else(|| {
        ApiError::not_found(format!("`{}` is not an embedding table", body.table))
    })?;
    caller.require(app, Some(table), Action::Admin)?;
    let after = body.cursor.as_deref().map(record_cursor).transpose()?;
    // A table of exactly 500 records takes one call, not a second that finds nothing.
    let mut candidates = app
        .store
        .backfill_candidates(table, &caller.organization_id, after, MAX_RECORDS + 1)
        .await?;
    let more = cut_page(&mut candidates, MAX_RECORDS);
    let model = &table.embeddings.model;
    let jobs: Vec<EmbeddingJob> = candidates
        .iter()
        .filter_map(|candidate| {
            let text = table.embedding_text(&candidate.record);
            let current = candidate.stored_hash.as_deref() == Some(&content_hash(model, &text));
            if text.trim().is_empty() || (current && !body.all) {
                return None;
            }
            let id = candidate.record.get(&table.id_column)?.as_str()?;
            Some(
                EmbeddingJob::new(
                    Uuid::new_v4(),
                    &caller.organization_id,
                    model,
                    &text,
                    Some((table.name.clone(), id.to_owned())),
                )
                .with_record_text(&text),
            )
        })
        .collect();
    let backfill_id = Uuid::new_v4();
    let sent = submit_backfill(app, &jobs, &backfill_id.to_string()).await?;
    let next_cursor = more
        .then(|| candidates.last())
        .flatten()
        .and_then(|c| c.record.get(&table.id_column)?.as_str().map(str::to_owned));
    tracing::info!(
        backfill_id = %backfill_id,
        table = %table.name,
        records = candidates.len(),
        queued = sent,
        failed = jobs.len() - sent,
        d1_statements = app.store.statements(),
        "backfill"
    );
    if sent == 0 && !jobs.is_empty() {
        return Err(
            ApiError::unavailable("the embedding queue is unavailable; retry later").into(),
        );
    }
    Ok(HttpResponse::json(
        202,
        &serde_json::json!({
            "backfillId": backfill_id,
            "table": table.name,
            "count": sent,
            "failed": jobs.len() - sent,
            "nextCursor": next_cursor,
        }),
    ))
}
