//! Embedding health at a glance, and the one command that starts or resumes a model change:
//!
//! - `GET /api/v1/embeddings/status`: every table the caller may read;
//! - `GET /api/v1/embeddings/status/{table}`: one table;
//! - `POST /api/v1/embeddings/tables/{table}/migration`: makes sure of the table's configured
//!   vector set and (re)starts the backfill that builds it (admin).
//!
//! A table's status says which model its searches use now, the configured one, a model change's
//! progress, its records and how many have a current vector in the configured model, its
//! pending, failed and dead jobs, the oldest pending job's age, and the newest error, linked
//! to its replay.

use serde::Serialize;
use shared::access::Action;
use shared::config::TableConfig;
use shared::job::JobStatus;
use shared::sets::{blocked, SetRole, VectorSet};
use shared::time::rfc3339_millis;
use shared::{ApiError, ErrorCode};
use worker_kit::http::HttpResponse;
use worker_kit::sets::SetRow;

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, JobQueue, Ports, Sets, TableHealth};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TableStatus {
    pub table: String,
    /// The set searches read now; `None` until the table's first vector.
    pub active: Option<SetView>,
    /// The set the config names.
    pub configured: SetView,
    pub migration: Option<MigrationView>,
    /// Sets an earlier change left, being removed.
    pub removing: Vec<SetView>,
    /// Why the configured set cannot be built beside the active one, if it cannot.
    pub blocked: Option<String>,
    pub records: u64,
    /// Records with a live vector in the configured model and set, and no job open for them.
    pub embedded: u64,
    pub jobs: JobCounts,
    pub last_error: Option<ErrorView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SetView {
    pub model: String,
    /// `d1`, or `vectorize`.
    pub backend: &'static str,
    /// The Vectorize binding, for a set kept there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
}

impl SetView {
    fn of(set: &VectorSet) -> Self {
        SetView {
            model: set.model.clone(),
            backend: if set.binding().is_some() {
                "vectorize"
            } else {
                "d1"
            },
            binding: set.binding().map(str::to_owned),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MigrationView {
    /// The set being built.
    pub to: SetView,
    pub migration_id: Option<String>,
    /// Live records of the active set the new set covers, of how many.
    pub covered: u64,
    pub of: u64,
    /// `covered / of`, 1 for an empty table.
    pub progress: f64,
    /// Its backfill's jobs.
    pub jobs: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobCounts {
    /// Queued or being processed.
    pub pending: u64,
    pub failed: u64,
    pub dead: u64,
    pub oldest_pending_age_ms: Option<i64>,
    /// The dead jobs, each replayable with `POST /api/v1/embeddings/jobs/{id}/retry`.
    pub dead_jobs: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorView {
    pub job_id: String,
    pub status: String,
    pub message: String,
    pub at: String,
    /// Replays the job (for a dead or failed one).
    pub retry: Option<String>,
}

/// What the status route says of `table`, from what D1 counted.
pub(crate) fn table_status(table: &TableConfig, health: &TableHealth, now_ms: i64) -> TableStatus {
    let configured = VectorSet::configured(table);
    let role = |wanted| health.sets.iter().find(|s| s.role() == Some(wanted));
    let active = role(SetRole::Active).map(SetRow::set);
    let migration = role(SetRole::Building).map(|building| {
        let (covered, of) = health.coverage.unwrap_or_default();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let progress = if of == 0 {
            1.0
        } else {
            covered as f64 / of as f64
        };
        MigrationView {
            to: SetView::of(&building.set()),
            migration_id: building.migration_id.clone(),
            covered,
            of,
            progress,
            jobs: building
                .migration_id
                .as_ref()
                .map(|id| format!("/api/v1/embeddings/jobs?backfillId={id}")),
        }
    });
    let last_error = health.last_error.as_ref().map(|e| ErrorView {
        job_id: e.id.clone(),
        status: e.status.clone(),
        message: e.message.clone(),
        at: rfc3339_millis(e.updated_at),
        retry: matches!(
            JobStatus::parse(&e.status),
            Some(JobStatus::Dead | JobStatus::Failed)
        )
        .then(|| format!("/api/v1/embeddings/jobs/{}/retry", e.id)),
    });
    TableStatus {
        table: table.name.clone(),
        blocked: active.as_ref().and_then(|a| blocked(a, &configured)),
        active: active.as_ref().map(SetView::of),
        configured: SetView::of(&configured),
        migration,
        removing: health
            .sets
            .iter()
            .filter(|s| s.role() == Some(SetRole::Retiring))
            .map(|s| SetView::of(&s.set()))
            .collect(),
        records: health.records,
        embedded: health.embedded,
        jobs: JobCounts {
            pending: health.pending,
            failed: health.failed,
            dead: health.dead,
            oldest_pending_age_ms: health.oldest_pending_at.map(|at| (now_ms - at).max(0)),
            dead_jobs: format!("/api/v1/embeddings/jobs?status=dead&table={}", table.name),
        },
        last_error,
    }
}

/// `GET /api/v1/embeddings/status`.
pub(crate) async fn all(app: &App<impl Ports>, caller: &Caller) -> Result<HttpResponse> {
    let mut tables = Vec::new();
    for table in &app.config.tables {
        if caller.require(app, Some(table), Action::Read).is_err() {
            continue;
        }
        let health = app
            .store
            .table_health(table, &caller.organization_id, app.now_ms)
            .await?;
        tables.push(table_status(table, &health, app.now_ms));
    }
    Ok(HttpResponse::ok(&serde_json::json!({ "tables": tables })))
}

/// `GET /api/v1/embeddings/status/{table}`.
pub(crate) async fn one(
    app: &App<impl Ports>,
    caller: &Caller,
    name: &str,
) -> Result<HttpResponse> {
    let table = embedding_table(app, name)?;
    caller.require(app, Some(table), Action::Read)?;
    let health = app
        .store
        .table_health(table, &caller.organization_id, app.now_ms)
        .await?;
    Ok(HttpResponse::ok(&table_status(table, &health, app.now_ms)))
}

/// `POST /api/v1/embeddings/tables/{table}/migration`: 202 with the table's status while a
/// model change runs, 200 when the table is on its configured set and nothing is left to
/// remove, 409 when the change cannot be made. It starts the change, or resumes it where steps
/// may have been lost: from the first backfill page (pages only enqueue what the new set lacks
/// and no job of the change is open for), and the clean-up of sets an earlier change left. A
/// change that waits for such a clean-up (no set is built where an old one is still being
/// removed) starts when it ends.
///
/// Sent however often, it starts no second chain of steps: it sends a step only for a set it
/// made or whose chain has stopped (`shared::sets::command_resumes`), and each step it sends is
/// issued for its set's current `step_seq`, so that it and a live chain's next step (if any)
/// claim the same value, and only one of them runs (`shared::sets`, "One chain per set").
pub(crate) async fn migrate(
    app: &App<impl Ports>,
    caller: &Caller,
    name: &str,
) -> Result<HttpResponse> {
    let table = embedding_table(app, name)?;
    caller.require(app, Some(table), Action::Admin)?;
    let organization_id = &caller.organization_id;
    let (created, live) = app
        .store
        .ensure_sets(table, organization_id, app.now_ms)
        .await?;
    let configured = VectorSet::configured(table);
    let active = live.iter().find(|s| s.role() == Some(SetRole::Active));
    let building = live.iter().any(|s| s.role() == Some(SetRole::Building));
    if let (Some(active), false) = (active, building) {
        if let Some(reason) = blocked(&active.set(), &configured) {
            return Err(ApiError::new(ErrorCode::Conflict, reason).into());
        }
    }
    let health = app
        .store
        .table_health(table, organization_id, app.now_ms)
        .await?;
    for set in &health.sets {
        let just_made = created.iter().any(|c| c.set() == set.set());
        if !shared::sets::command_resumes(just_made, set.updated_at, app.now_ms) {
            continue;
        }
        let Some(step) = set.resume_step() else {
            continue;
        };
        app.queue.send_step(&step).await.map_err(|fault| {
            tracing::error!(table = %table.name, error = %fault, "sending a model change step failed");
            ApiError::unavailable("the embedding queue is unavailable; retry later")
        })?;
        let m = &step.migration;
        tracing::info!(organization_id, table = %table.name, model = %m.model, location = %m.location, migration_id = %m.migration_id, role = %set.role, seq = m.seq, started = just_made, "model change step sent by the command");
    }
    let status = table_status(table, &health, app.now_ms);
    let settled = status.migration.is_none()
        && status.removing.is_empty()
        && active.is_some_and(|a| a.set() == configured);
    let code = if settled { 200 } else { 202 };
    Ok(HttpResponse::json(code, &status))
}

fn embedding_table<'a>(app: &'a App<impl Ports>, name: &str) -> Result<&'a TableConfig> {
    Ok(app
        .config
        .table(name)
        .ok_or_else(|| ApiError::not_found(format!("`{name}` is not an embedding table")))?)
}
