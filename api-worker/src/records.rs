//! CRUD for every embedding table: `/api/v1/{table}` and `/api/v1/{table}/{id}`.
//!
//! The organization column is set from the caller, never from the body; only the table's
//! writable fields are accepted. A create enqueues an embedding when the table embeds on insert;
//! an update enqueues one only when a watched field really changed; a delete removes the
//! record's vectors. Reads leave the embedding column out unless `?include=embedding`.
//! A write answers `{"record": {...}, "job": {"jobId", "status"} | null}`.

use shared::access::Action;
use shared::config::TableConfig;
use shared::job::JobStatus;
use shared::message::EmbeddingJob;
use shared::record::{
    changes_watched, cut_page, page_size, record_cursor, Record, RecordInput, Write,
};
use shared::{guard, ApiError, ErrorCode};
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};
use worker_kit::index_sync::RecordKey;

use crate::auth::Caller;
use crate::embeddings::submit_one;
use crate::error::{Error, Result};
use crate::ports::{App, Ports, RecordWrite, Records, VectorIndexes};

/// The table a CRUD route names, if it is an embedding table.
pub(crate) fn table<'a>(app: &'a App<impl Ports>, name: &str) -> Result<&'a TableConfig> {
    Ok(app
        .config
        .table(name)
        .ok_or_else(|| ApiError::not_found(format!("no route or embedding table `{name}`")))?)
}

/// The record a write stored, or why there is none: a taken id is 409, a record gone is 404,
/// and values the table's constraints refused are a 400 with the database's reason, which
/// names the column (`NOT NULL constraint failed: notes.title`).
fn stored(table: &TableConfig, id: &str, write: RecordWrite) -> Result<Record> {
    match write {
        RecordWrite::Written(record) => Ok(record),
        RecordWrite::IdTaken => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("a record `{id}` already exists in `{}`", table.name),
        )
        .into()),
        RecordWrite::Missing => Err(not_found(table, id)),
        RecordWrite::Refused(reason) => {
            Err(ApiError::invalid(format!("`{}` refused the values: {reason}", table.name)).into())
        }
    }
}

fn not_found(table: &TableConfig, id: &str) -> Error {
    ApiError::not_found(format!("no record `{id}` in `{}`", table.name)).into()
}

/// `POST /api/v1/{table}`: 201 with the record and the embedding job it started, if any.
pub(crate) async fn create(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    caller.require(app, Some(table), Action::Create)?;
    let body: serde_json::Value = request.json()?;
    let input = RecordInput::parse(table, &body, Write::Create)?;
    let id = input
        .id
        .clone()
        .unwrap_or_else(|| Uuid::new_v4().simple().to_string());
    let organization_id = &caller.organization_id;
    let write = app
        .store
        .insert_record(table, organization_id, &id, &input.values, app.now_ms)
        .await?;
    let record = stored(table, &id, write)?;
    let embed = table.embeddings.on_insert;
    respond_written(
        app,
        caller,
        table,
        &id,
        record,
        embed,
        201,
        "record created",
    )
    .await
}

/// `GET /api/v1/{table}?limit=&cursor=&include=embedding`: records in id order.
pub(crate) async fn list(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    caller.require(app, Some(table), Action::Read)?;
    request.only_query(&["limit", "cursor", "include"])?;
    let include = include_embedding(request)?;
    let limit = page_size(request.query("limit").as_deref())?;
    let after = request
        .query("cursor")
        .map(|c| record_cursor(&c).map(str::to_owned))
        .transpose()?;
    let mut records = app
        .store
        .records(table, &caller.organization_id, after.as_deref(), limit + 1)
        .await?;
    let next_cursor = cut_page(&mut records, limit)
        .then(|| records.last())
        .flatten()
        .and_then(|r| r.get(&table.id_column)?.as_str().map(str::to_owned));
    let records: Vec<serde_json::Value> = records
        .into_iter()
        .map(|r| view(table, r, include))
        .collect();
    Ok(HttpResponse::ok(
        &serde_json::json!({ "records": records, "nextCursor": next_cursor }),
    ))
}

/// `GET /api/v1/{table}/{id}`.
pub(crate) async fn get(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    id: &str,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    caller.require(app, Some(table), Action::Read)?;
    request.only_query(&["include"])?;
    let include = include_embedding(request)?;
    let id = guard::record_id(id)?;
    let record = app
        .store
        .record(table, &caller.organization_id, id)
        .await?
        .ok_or_else(|| not_found(table, id))?;
    Ok(HttpResponse::ok(&view(table, record, include)))
}

/// `PATCH /api/v1/{table}/{id}`: 200 with the record, and the job when a watched field changed.
pub(crate) async fn update(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    id: &str,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    caller.require(app, Some(table), Action::Update)?;
    let id = guard::record_id(id)?;
    let body: serde_json::Value = request.json()?;
    let input = RecordInput::parse(table, &body, Write::Update)?;
    let organization_id = &caller.organization_id;
    // The row before the update is read with it, in one transaction: whether a watched field
    // changed is then decided against what this update really replaced, not against a read
    // another PATCH may have overtaken.
    let (before, write) = app
        .store
        .update_record(table, organization_id, id, &input.values, app.now_ms)
        .await?;
    let record = stored(table, id, write)?;
    let before = before.ok_or_else(|| not_found(table, id))?;
    let embed = changes_watched(table, &before, &input.values);
    if touches_metadata(table, &input.values) {
        refresh_vector_metadata(app, table, organization_id, id).await?;
    }
    respond_written(app, caller, table, id, record, embed, 200, "record updated").await
}

fn touches_metadata(table: &TableConfig, values: &Record) -> bool {
    values
        .keys()
        .any(|name| table.embeddings.metadata.contains(name))
}

/// A metadata field changed: the stored vector carries the record's new metadata at once, in D1
/// and (brought in line with D1) in a Vectorize index, so filtered searches follow the edit
/// without waiting for an embedding that may never come (the text did not change).
async fn refresh_vector_metadata(
    app: &App<impl Ports>,
    table: &TableConfig,
    organization_id: &str,
    id: &str,
) -> Result<()> {
    if !app
        .store
        .refresh_vector_metadata(table, organization_id, id)
        .await?
    {
        return Ok(());
    }
    sync_index(
        app,
        table,
        organization_id,
        id,
        "the record is updated, but the search index has not caught up; retry the PATCH",
    )
    .await
}

/// Brings the Vectorize indexes that hold a set of the table in line with D1 for one record the
/// gateway just changed there: the configured one, and while the table's model or index
/// changes, the one the active set is kept in (a table on D1 has nothing there, and the sync
/// costs one read). If Vectorize fails, the caller is told what stands and to retry
/// (`unavailable`).
async fn sync_index(
    app: &App<impl Ports>,
    table: &TableConfig,
    organization_id: &str,
    id: &str,
    unavailable: &str,
) -> Result<()> {
    let record = RecordKey {
        organization_id: organization_id.to_owned(),
        table: table.name.clone(),
        record_id: id.to_owned(),
    };
    app.indexes.sync(&[record]).await.map_err(|fault| {
        tracing::error!(table = %table.name, id, error = %fault, "bringing Vectorize in line with D1 failed");
        Error::Api(ApiError::unavailable(unavailable))
    })?;
    Ok(())
}

/// `DELETE /api/v1/{table}/{id}`: the record and its vectors; 204.
///
/// D1 first (the record, and a tombstone for its vector), then a Vectorize table's index is
/// brought in line with D1. That runs even when the record was already gone, so a DELETE retried
/// after a 503 still clears the index (and answers 404, as for any id that is not there).
pub(crate) async fn delete(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    id: &str,
) -> Result<HttpResponse> {
    caller.require(app, Some(table), Action::Delete)?;
    let id = guard::record_id(id)?;
    let organization_id = &caller.organization_id;
    let deleted = app.store.delete_record(table, organization_id, id).await?;
    sync_index(
        app,
        table,
        organization_id,
        id,
        "the record is deleted, but its vector is not yet out of the search index; retry the DELETE",
    )
    .await?;
    if !deleted {
        return Err(not_found(table, id));
    }
    tracing::info!(table = %table.name, id, "record deleted");
    Ok(HttpResponse::no_content())
}

/// The embedding job a write started: `queued`, or `failed` when the queue refused it (the
/// write itself stands; a backfill or a replay picks the job up).
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StartedJob {
    job_id: Uuid,
    status: JobStatus,
}

/// The answer to a write: the record as stored, and the embedding job started for it when
/// `embed` says so.
#[allow(clippy::too_many_arguments)]
async fn respond_written(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    id: &str,
    record: Record,
    embed: bool,
    status: u16,
    event: &str,
) -> Result<HttpResponse> {
    let job = if embed {
        embed_record(app, caller, table, id, &record).await?
    } else {
        None
    };
    tracing::info!(table = %table.name, id, job_id = job.map(|j| j.job_id.to_string()), "{event}");
    Ok(HttpResponse::json(
        status,
        &serde_json::json!({ "record": view(table, record, false), "job": job }),
    ))
}

/// Enqueues the embedding of a record's current text; none when the text is empty.
async fn embed_record(
    app: &App<impl Ports>,
    caller: &Caller,
    table: &TableConfig,
    id: &str,
    record: &Record,
) -> Result<Option<StartedJob>> {
    let text = table.embedding_text(record);
    if text.trim().is_empty() {
        return Ok(None);
    }
    let job = EmbeddingJob::new(
        Uuid::new_v4(),
        &caller.organization_id,
        &table.embeddings.model,
        &text,
        Some((table.name.clone(), id.to_owned())),
    )
    .with_record_text(&text);
    let status = match submit_one(app, &job, "record embedding queued").await {
        Ok(()) => JobStatus::Queued,
        Err(Error::Api(e)) if e.code == ErrorCode::Unavailable => JobStatus::Failed,
        Err(e) => return Err(e),
    };
    Ok(Some(StartedJob {
        job_id: job.job_id,
        status,
    }))
}

fn include_embedding(request: &HttpRequest) -> Result<bool> {
    match request.query("include").as_deref() {
        None => Ok(false),
        Some("embedding") => Ok(true),
        Some(other) => Err(ApiError::invalid(format!(
            "`include` may only be `embedding`, not `{other}`"
        ))
        .into()),
    }
}

/// A record as the API shows it: its columns, the embedding (a JSON array) only when asked for.
fn view(table: &TableConfig, mut record: Record, include_embedding: bool) -> serde_json::Value {
    let column = &table.embeddings.embedding_column;
    match record.remove(column) {
        Some(serde_json::Value::String(json)) if include_embedding => {
            let vector = serde_json::from_str(&json).unwrap_or(serde_json::Value::Null);
            record.insert(column.clone(), vector);
        }
        _ if include_embedding => {
            record.insert(column.clone(), serde_json::Value::Null);
        }
        _ => {}
    }
    serde_json::Value::Object(record)
}
