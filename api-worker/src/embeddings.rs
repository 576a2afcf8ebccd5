//! The embeddings API: enqueue a job for any content, list the embedding tables; and the one way
//! every route (enqueue, CRUD, backfill, replay) hands jobs to the queue.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use shared::access::Action;
use shared::message::{body_size, send_batches, EmbeddingJob};
use shared::{enqueue, ApiError};
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, JobQueue, JobRow, Jobs, Ports, Records};

/// `POST /api/v1/embeddings`: the text is `content`; search-worker's RPC calls it `text`
/// ([`shared::rpc::EnqueueRequest`]). Both are read by [`enqueue::resolve`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnqueueBody {
    content: String,
    model: Option<String>,
    table: Option<String>,
    id: Option<String>,
}

/// The reference page's answer to an enqueue, field for field.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnqueueResponse {
    pub queued: bool,
    pub job_id: Uuid,
    pub table: Option<String>,
    pub id: Option<String>,
    pub model: String,
}

impl EnqueueResponse {
    pub(crate) fn of(job: &EmbeddingJob) -> Self {
        EnqueueResponse {
            queued: true,
            job_id: job.job_id,
            table: job.table.clone(),
            id: job.id.clone(),
            model: job.model.clone(),
        }
    }
}

/// Resolves the request by the enqueue rule, checking the caller's access where the rule
/// says; for a record, reads it and stamps the job with its text's hash; then writes the job
/// row and sends the message.
pub(crate) async fn enqueue(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let body: EnqueueBody = request.json()?;
    let asked = enqueue::Request {
        text_field: "content",
        text: &body.content,
        service: None,
        model: body.model.as_deref(),
        table: body.table.as_deref(),
        id: body.id.as_deref(),
    };
    let resolved = enqueue::resolve(app.config, asked, |table| match table {
        // It replaces the record's vector: an update of the record, under the table's rule.
        Some(table) => {
            caller.require(app, Some(table), Action::Embed)?;
            caller.require(app, Some(table), Action::Update)
        }
        None => caller.require(app, None, Action::Embed),
    })?;
    let record_text = match resolved.target {
        Some(target) => {
            let (table, id) = (target.table(), target.id());
            let record = app
                .store
                .record(table, &caller.organization_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("no record `{id}` in `{}`", table.name))
                })?;
            Some(table.embedding_text(&record))
        }
        None => None,
    };
    let job = EmbeddingJob::new(
        Uuid::new_v4(),
        &caller.organization_id,
        resolved.model.name,
        &body.content,
        resolved.target.map(|target| target.names()),
    );
    let job = match record_text {
        Some(text) => job.with_record_text(&text),
        None => job,
    };
    submit_one(app, &job, "job queued").await?;
    Ok(HttpResponse::json(202, &EnqueueResponse::of(&job)))
}

/// Writes one job's row, then sends it. If the queue refuses it, the row is marked `failed` and
/// the caller gets 503: no job is left pointing at nothing.
pub(crate) async fn submit_one(
    app: &App<impl Ports>,
    job: &EmbeddingJob,
    event: &str,
) -> Result<()> {
    app.store
        .insert_jobs(&[JobRow::queued(job, None, app.now_ms)])
        .await?;
    send_one(app, job, event).await
}

/// Sends a job whose row is written (marking it `failed`, with 503, if the queue refuses).
pub(crate) async fn send_one(app: &App<impl Ports>, job: &EmbeddingJob, event: &str) -> Result<()> {
    if let Err(fault) = app.queue.send(job).await {
        tracing::error!(job_id = %job.job_id, error = %fault, "queue send failed; job marked failed");
        app.store
            .mark_jobs_failed(
                &job.organization_id,
                &[job.job_id],
                &format!("queue send failed: {fault}"),
                app.now_ms,
            )
            .await?;
        return Err(
            ApiError::unavailable("the embedding queue is unavailable; retry later").into(),
        );
    }
    tracing::info!(
        job_id = %job.job_id,
        organization_id = %job.organization_id,
        model = %job.model,
        table = job.table.as_deref(),
        "{event}"
    );
    Ok(())
}

/// Writes a backfill's jobs' rows in one transaction, then sends them on the bulk lane
/// (`shared::lane`) in as few `sendBatch` calls as the queue's limits allow (100 messages,
/// 256 KB), all at once. Jobs of a call the queue refuses are marked `failed`; returns how many
/// were sent.
pub(crate) async fn submit_backfill(
    app: &App<impl Ports>,
    jobs: &[EmbeddingJob],
    backfill_id: &str,
) -> Result<usize> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let rows: Vec<JobRow> = jobs
        .iter()
        .map(|job| JobRow::queued(job, Some(backfill_id), app.now_ms))
        .collect();
    app.store.insert_jobs(&rows).await?;
    // Each `sendBatch` is a round trip, and a backfill call makes five or more. A call that
    // fails has its own rows marked failed; the others are sent regardless.
    let chunks = send_batches(jobs, body_size);
    let outcomes = join_all(chunks.iter().map(|chunk| app.queue.send_bulk(chunk))).await;
    let mut sent = 0;
    for (chunk, outcome) in chunks.into_iter().zip(outcomes) {
        match outcome {
            Ok(()) => sent += chunk.len(),
            Err(fault) => {
                tracing::error!(jobs = chunk.len(), error = %fault, "queue batch send failed; jobs marked failed");
                let ids: Vec<Uuid> = chunk.iter().map(|j| j.job_id).collect();
                app.store
                    .mark_jobs_failed(
                        &chunk[0].organization_id,
                        &ids,
                        &format!("queue send failed: {fault}"),
                        app.now_ms,
                    )
                    .await?;
            }
        }
    }
    Ok(sent)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TableView<'a> {
    name: &'a str,
    embedding_column: &'a str,
    model: &'a str,
}

/// `GET /api/v1/embeddings/tables`: the tables the caller's role may read.
pub(crate) fn tables(app: &App<impl Ports>, caller: &Caller) -> Result<HttpResponse> {
    caller.require(app, None, Action::Read)?;
    let tables: Vec<TableView<'_>> = app
        .config
        .tables
        .iter()
        .filter(|t| caller.require(app, Some(t), Action::Read).is_ok())
        .map(|t| TableView {
            name: &t.name,
            embedding_column: &t.embeddings.embedding_column,
            model: &t.embeddings.model,
        })
        .collect();
    Ok(HttpResponse::ok(&serde_json::json!({ "tables": tables })))
}
