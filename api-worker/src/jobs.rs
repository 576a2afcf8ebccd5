//! The job routes, every one scoped to the caller's organization: one job, a list (filtered by
//! status or backfill, newest first, by cursor), and the replay of a dead job.

use shared::access::Action;
use shared::config::TableConfig;
use shared::job::{JobStatus, STUCK_AFTER_MS};
use shared::message::EmbeddingJob;
use shared::record::{cut_page, job_cursor, page_size, parse_job_cursor};
use shared::{ApiError, ErrorCode};
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::Caller;
use crate::embeddings::{send_one, EnqueueResponse};
use crate::error::Result;
use crate::ports::{App, JobFilter, JobRow, Jobs, Ports, Records};

/// `GET /api/v1/embeddings/jobs/{jobId}`: another organization's job is a 404, like a missing one.
pub(crate) async fn job(
    app: &App<impl Ports>,
    caller: &Caller,
    job_id: &str,
) -> Result<HttpResponse> {
    caller.require(app, None, Action::Read)?;
    let job_id = parse_job_id(job_id)?;
    let row = app
        .store
        .job(&caller.organization_id, job_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no job `{job_id}`")))?;
    // A job of a table is read under that table's rule.
    caller.require(app, job_table(app, &row), Action::Read)?;
    Ok(HttpResponse::ok(&row.view()?))
}

/// `GET /api/v1/embeddings/jobs?status=&backfillId=&table=&limit=&cursor=`.
pub(crate) async fn jobs(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    request.only_query(&["status", "backfillId", "table", "limit", "cursor"])?;
    let table = request
        .query("table")
        .map(|name| {
            app.config
                .table(&name)
                .ok_or_else(|| ApiError::not_found(format!("`{name}` is not an embedding table")))
        })
        .transpose()?;
    caller.require(app, table, Action::Read)?;
    let status = request
        .query("status")
        .map(|s| {
            JobStatus::parse(&s).ok_or_else(|| {
                let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::invalid(format!("`status` must be one of {}", all.join(", ")))
            })
        })
        .transpose()?;
    let backfill_id = request
        .query("backfillId")
        .map(|id| parse_job_id(&id).map(|id| id.to_string()))
        .transpose()?;
    let before = request
        .query("cursor")
        .map(|c| parse_job_cursor(&c).map(|(at, id)| (at, id.to_owned())))
        .transpose()?;
    let limit = page_size(request.query("limit").as_deref())?;
    let filter = JobFilter {
        status,
        backfill_id,
        table: table.map(|t| t.name.clone()),
        before,
        limit: limit + 1,
    };
    let mut rows = app.store.jobs(&caller.organization_id, &filter).await?;
    let next_cursor = cut_page(&mut rows, limit)
        .then(|| rows.last())
        .flatten()
        .map(|last| job_cursor(last.created_at, &last.id));
    // Jobs of tables the caller may not read are left out, as the tables route leaves them out.
    let jobs = rows
        .iter()
        .filter(|row| {
            caller
                .require(app, job_table(app, row), Action::Read)
                .is_ok()
        })
        .map(crate::ports::JobRow::view)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(HttpResponse::ok(
        &serde_json::json!({ "jobs": jobs, "nextCursor": next_cursor }),
    ))
}

/// `POST /api/v1/embeddings/jobs/{jobId}/retry`: replays a `dead` or `failed` job under the
/// same id: a job of a record with the record's current text, any other as it was accepted.
pub(crate) async fn retry(
    app: &App<impl Ports>,
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
    let table = job_table(app, &row);
    caller.require(app, table, Action::Embed)?;
    let status = row.status()?;
    if !status.can_replay(row.updated_at, app.now_ms) {
        return Err(not_replayable(job_id, status.as_str()).into());
    }
    let target = row.table_name.clone().zip(row.record_id.clone());
    // A record's job is replayed with the record's text as it is now: its old content would be
    // written as the vector of a text the record no longer has. A record that is gone is left
    // to the consumer, which marks the job dead and says why.
    let mut job = EmbeddingJob::new(
        job_id,
        organization_id,
        &row.model,
        &row.content,
        target.clone(),
    );
    if let (Some(table), Some(id)) = (table, row.record_id.as_deref()) {
        if let Some(record) = app.store.record(table, organization_id, id).await? {
            let text = table.embedding_text(&record);
            job = EmbeddingJob::new(job_id, organization_id, &row.model, &text, target)
                .with_record_text(&text);
        }
    }
    if !app.store.requeue_job(&job, app.now_ms).await? {
        // Another replay won the race.
        return Err(not_replayable(job_id, JobStatus::Queued.as_str()).into());
    }
    send_one(app, &job, "job replayed").await?;
    Ok(HttpResponse::json(202, &EnqueueResponse::of(&job)))
}

/// The configured table a job is bound to, whose access rules apply to it.
fn job_table<'a>(app: &'a App<impl Ports>, row: &JobRow) -> Option<&'a TableConfig> {
    row.table_name.as_deref().and_then(|t| app.config.table(t))
}

fn not_replayable(job_id: Uuid, status: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!(
            "job `{job_id}` is {status}; only dead or failed jobs can be retried, and queued or \
             processing ones that have not moved for {} minutes",
            STUCK_AFTER_MS / 60_000
        ),
    )
}

pub(crate) fn parse_job_id(job_id: &str) -> Result<Uuid> {
    Ok(Uuid::parse_str(job_id).map_err(|_| ApiError::invalid("job id must be a UUID"))?)
}
