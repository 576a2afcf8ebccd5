//! The embeddings API: enqueue a job, follow it, list the embedding tables.

use serde::{Deserialize, Serialize};
use shared::message::EmbeddingJob;
use shared::{guard, models, ApiError};
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
            if !app
                .store
                .record_exists(table, &caller.organization_id, id)
                .await?
            {
                return Err(
                    ApiError::not_found(format!("no record `{id}` in `{table_name}`")).into(),
                );
            }
            (model, Some((table.name.clone(), id.to_owned())))
        }
        (Some(_), None) => {
            return Err(ApiError::invalid("`id` is required when `table` is given").into())
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid("`table` is required when `id` is given").into())
        }
        (None, None) => (requested_model.unwrap_or_else(models::default_model), None),
    };

    let job = EmbeddingJob::new(
        Uuid::new_v4(),
        &caller.organization_id,
        model.name,
        content,
        target,
    );
    app.store
        .insert_job(&JobRow::queued(&job, app.now_ms))
        .await?;
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
        "job queued"
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

/// `GET /api/v1/embeddings/jobs/{jobId}`: another organization's job is a 404, like a missing one.
pub(crate) async fn job_status<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    caller: &Caller,
    job_id: &str,
) -> Result<HttpResponse> {
    let job_id = Uuid::parse_str(job_id).map_err(|_| ApiError::invalid("job id must be a UUID"))?;
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
