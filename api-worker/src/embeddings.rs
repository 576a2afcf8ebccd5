//! The embeddings API: enqueue a job for any content, list the embedding tables; and the one way
//! every route (enqueue, CRUD, backfill, replay) hands jobs to the queue.

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use shared::access::Action;
use shared::message::{body_size, send_batches, EmbeddingJob};
use shared::{guard, models, ApiError};
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, JobQueue, JobRow, Ports, Store};

/// `POST /api/v1/embeddings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnqueueRequest {
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

/// Validates the request, then writes the job row and sends the message.
pub(crate) async fn enqueue(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let body: EnqueueRequest = request.json()?;
    let content = guard::text("content", &body.content)?;
    let requested_model = body.model.as_deref().map(guard::model).transpose()?;
    let job = match (body.table.as_deref(), body.id.as_deref()) {
        (Some(table_name), Some(id)) => {
            let table = app.config.table(table_name).ok_or_else(|| {
                ApiError::not_found(format!("`{table_name}` is not an embedding table"))
            })?;
            caller.require(app, Some(table), Action::Embed)?;
            // It replaces the record's vector: an update of the record, under the table's rule.
            caller.require(app, Some(table), Action::Update)?;
            let id = guard::record_id(id)?;
            let model = table.model();
            if requested_model.is_some_and(|m| m.name != model.name) {
                return Err(ApiError::invalid(format!(
                    "table `{table_name}` embeds with `{}`; its vectors cannot mix models",
                    model.name
                ))
                .into());
            }
            let record = app
                .store
                .record(table, &caller.organization_id, id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("no record `{id}` in `{table_name}`"))
                })?;
            EmbeddingJob::new(
                Uuid::new_v4(),
                &caller.organization_id,
                model.name,
                content,
                Some((table.name.clone(), id.to_owned())),
            )
            .with_record_text(&table.embedding_text(&record))
        }
        (Some(_), None) => {
            return Err(ApiError::invalid("`id` is required when `table` is given").into())
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid("`table` is required when `id` is given").into())
        }
        (None, None) => {
            caller.require(app, None, Action::Embed)?;
            EmbeddingJob::new(
                Uuid::new_v4(),
                &caller.organization_id,
                requested_model.unwrap_or_else(models::default_model).name,
                content,
                None,
            )
        }
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
