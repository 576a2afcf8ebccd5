//! The embeddings API: enqueue a job, follow it, list the embedding tables.

use serde::{Deserialize, Serialize};
use shared::message::EmbeddingJob;
use shared::{guard, models, ApiError, ErrorCode};
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, JobQueue, JobRow, SearchService, Store};

/// `POST /api/v1/embeddings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnqueueRequest {
    content: String,
    model: Option<String>,
    table: Option<String>,
    id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EnqueueResponse {
    queued: bool,
    job_id: Uuid,
    table: Option<String>,
    id: Option<String>,
    model: String,
}

/// Validates the request, writes the job row, then sends the message. If the send fails the
/// row is marked `failed` and the caller gets 503: no job is left pointing at nothing.
pub(crate) async fn enqueue<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let body: EnqueueRequest = request.json()?;
    let content = guard::text("content", &body.content)?;
    let requested_model = body.model.as_deref().map(guard::model).transpose()?;
    let (model, target) = match (body.table.as_deref(), body.id.as_deref()) {
        (Some(table_name), Some(id)) => {
            let table = app.config.table(table_name).ok_or_else(|| {
                ApiError::not_found(format!("`{table_name}` is not an embedding table"))
            })?;
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
            (
                model,
                Some((table, id.to_owned(), table.embedding_text(&record))),
            )
        }
        (Some(_), None) => {
            return Err(ApiError::invalid("`id` is required when `table` is given").into())
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid("`table` is required when `id` is given").into())
        }
        (None, None) => (requested_model.unwrap_or_else(models::default_model), None),
    };

    let mut job = EmbeddingJob::new(
        Uuid::new_v4(),
        &caller.organization_id,
        model.name,
        content,
        target
            .as_ref()
            .map(|(table, id, _)| (table.name.clone(), id.clone())),
    );
    if let Some((_, _, record_text)) = &target {
        job = job.with_record_text(record_text);
    }
    app.store
        .insert_job(&JobRow::queued(&job, app.now_ms))
        .await?;
    send(app, job, "job queued").await
}

/// Sends a job whose row is written. If the queue refuses it, the row is marked `failed` and
/// the caller gets 503: no job is left pointing at nothing.
async fn send<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    job: EmbeddingJob,
    event: &str,
) -> Result<HttpResponse> {
    if let Err(fault) = app.queue.send(&job).await {
        tracing::error!(job_id = %job.job_id, error = %fault, "queue send failed; job marked failed");
        app.store
            .mark_job_failed(
                &job.organization_id,
                job.job_id,
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
    Ok(HttpResponse::json(
        202,
        &EnqueueResponse {
            queued: true,
            job_id: job.job_id,
            table: job.table,
            id: job.id,
            model: job.model,
        },
    ))
}

/// `POST /api/v1/embeddings/jobs/{jobId}/retry`: replays a `dead` or `failed` job as it was
/// accepted, under the same id. If its record has changed since, the record's current text
/// decides staleness, as for a new job.
pub(crate) async fn retry_job<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    caller: &Caller,
    job_id: &str,
) -> Result<HttpResponse> {
    let job_id = parse_job_id(job_id)?;
    let organization_id = &caller.organization_id;
    let row = app
        .store
        .job(organization_id, job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job `{job_id}`")))?;
    let status = row.view()?.status;
    if !status.can_replay() {
        return Err(not_replayable(job_id, status.as_str()).into());
    }
    let target = row.table_name.clone().zip(row.record_id.clone());
    let mut job = EmbeddingJob::new(job_id, organization_id, &row.model, &row.content, target);
    // A record that is gone is left to the consumer, which marks the job dead and says why.
    if let (Some(table), Some(id)) = (
        row.table_name.as_deref().and_then(|t| app.config.table(t)),
        row.record_id.as_deref(),
    ) {
        if let Some(record) = app.store.record(table, organization_id, id).await? {
            job = job.with_record_text(&table.embedding_text(&record));
        }
    }
    if !app
        .store
        .requeue_job(organization_id, job_id, app.now_ms)
        .await?
    {
        // Another replay won the race.
        return Err(not_replayable(job_id, "queued").into());
    }
    send(app, job, "job replayed").await
}

fn not_replayable(job_id: Uuid, status: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("job `{job_id}` is {status}; only dead or failed jobs can be retried"),
    )
}

fn parse_job_id(job_id: &str) -> Result<Uuid> {
    Ok(Uuid::parse_str(job_id).map_err(|_| ApiError::invalid("job id must be a UUID"))?)
}

/// `GET /api/v1/embeddings/jobs/{jobId}`: another organization's job is a 404, like a missing one.
pub(crate) async fn job_status<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    caller: &Caller,
    job_id: &str,
) -> Result<HttpResponse> {
    let job_id = parse_job_id(job_id)?;
    let row = app
        .store
        .job(&caller.organization_id, job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job `{job_id}`")))?;
    Ok(HttpResponse::ok(&row.view()?))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TableView<'a> {
    name: &'a str,
    embedding_column: &'a str,
    model: &'a str,
}

/// `GET /api/v1/embeddings/tables`.
pub(crate) fn tables<S, Q, X>(app: &App<S, Q, X>) -> HttpResponse {
    let tables: Vec<TableView<'_>> = app
        .config
        .tables
        .iter()
        .map(|t| TableView {
            name: &t.name,
            embedding_column: &t.embeddings.embedding_column,
            model: &t.embeddings.model,
        })
        .collect();
    HttpResponse::ok(&serde_json::json!({ "tables": tables }))
}
