//! The statements on `embedding_jobs`: a job's delivery recorded, its end written (`done`,
//! `stale`, `skipped`, `dead`, or a failed attempt's error), and the sweep's reads and marks.
//! Status names come from [`JobStatus`], never from literals; only an open job (`queued`,
//! `processing`) of the item's organization ever changes.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::job::JobStatus;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use worker::D1PreparedStatement;
use worker_kit::d1::{self, number, text};
use worker_kit::vector_rows::KEPT_JOBS_VECTOR;
use worker_kit::Fault;

use super::D1Store;
use crate::ports::DeadJob;

/// Job statuses a delivery may still change, as the condition on a row's `status`.
fn open() -> String {
    format!(
        "status IN ('{}', '{}')",
        JobStatus::Queued.as_str(),
        JobStatus::Processing.as_str()
    )
}

/// Dead jobs as the JSON items their update statement reads.
fn dead_items(jobs: &[DeadJob]) -> Vec<Value> {
    jobs.iter()
        .map(|job| json!({ "job": job.job_id, "org": job.organization_id, "reason": job.reason }))
        .collect()
}

/// A delivered job's id and the `created_at` of its row, as the delivery statement
/// `RETURNING`s them.
#[derive(Deserialize)]
pub(super) struct Delivered {
    pub id: String,
    pub created_at: i64,
}

impl D1Store {
    /// Every job's row, created for a custom pipeline's job, moved to `processing`; it returns
    /// each job's id and `created_at` ([`Delivered`]), except for a job that is final or
    /// belongs to another organization.
    pub(super) fn record_deliveries(
        &self,
        jobs: &[&EmbeddingJob],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let items: Vec<Value> = jobs
            .iter()
            .map(|job| {
                json!({ "id": job.job_id.to_string(), "org": job.organization_id,
                        "table": job.table, "record": job.id, "model": job.model,
                        "content": job.content, "hash": job.content_hash })
            })
            .collect();
        // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
        self.over_chunks(
            &items,
            &format!(
                "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model,
                     content, content_hash, status, attempts, created_at, updated_at)
                 SELECT value ->> 'id', value ->> 'org', value ->> 'table', value ->> 'record',
                     value ->> 'model', value ->> 'content', value ->> 'hash', '{processing}', 1,
                     ?2, ?2
                 FROM json_each(?1) WHERE true
                 ON CONFLICT (id) DO UPDATE SET status = '{processing}',
                     attempts = attempts + 1, updated_at = excluded.updated_at
                 WHERE embedding_jobs.{open}
                   AND embedding_jobs.organization_id = excluded.organization_id
                 RETURNING id, created_at",
                processing = JobStatus::Processing.as_str(),
                open = open(),
            ),
            &[number(now_ms)],
        )
    }

    /// Ends each embedded record's job (`{job, org, tbl, record, truncated}`): `done`, or
    /// `stale` where no set kept its vector (it lost to a newer job). Runs after the vectors.
    pub(super) fn finish_embedded(
        &self,
        items: &[Value],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        self.update_jobs(
            items,
            &["tbl", "record", "truncated"],
            &format!(
                "status = CASE WHEN {KEPT_JOBS_VECTOR} THEN '{done}' ELSE '{stale}' END,
                 truncated = w.truncated, updated_at = ?2, completed_at = ?2",
                done = JobStatus::Done.as_str(),
                stale = JobStatus::Stale.as_str(),
            ),
            now_ms,
        )
    }

    /// Ends each job without a record (`{job, org, hex, truncated}`) `done`, its vector on its
    /// row.
    pub(super) fn finish_unbound(
        &self,
        items: &[Value],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        self.update_jobs(
            items,
            &["hex", "truncated"],
            &format!(
                "status = '{done}', vector = unhex(w.hex), truncated = w.truncated,
                 updated_at = ?2, completed_at = ?2",
                done = JobStatus::Done.as_str(),
            ),
            now_ms,
        )
    }

    /// Ends each job (`{job, org, status, reason}`) with a final status and no vector, keeping
    /// its last error where it has no reason.
    pub(super) fn finish_without_vector(
        &self,
        items: &[Value],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        self.update_jobs(
            items,
            &["status", "reason"],
            "status = w.status, last_error = COALESCE(w.reason, last_error), updated_at = ?2,
             completed_at = ?2",
            now_ms,
        )
    }

    /// Records each message that is not a valid job but names one (`{job, org, model,
    /// content, reason}`) as a `dead` job, its row created if the gateway never wrote one.
    pub(super) fn reject(
        &self,
        items: &[Value],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        self.over_chunks(
            items,
            &format!(
                "INSERT INTO embedding_jobs (id, organization_id, model, content, content_hash,
                     status, attempts, last_error, created_at, updated_at, completed_at)
                 SELECT value ->> 'job', value ->> 'org', value ->> 'model', value ->> 'content',
                     '', '{dead}', 1, value ->> 'reason', ?2, ?2, ?2
                 FROM json_each(?1) WHERE true
                 ON CONFLICT (id) DO UPDATE SET status = '{dead}', attempts = attempts + 1,
                     last_error = excluded.last_error, updated_at = excluded.updated_at,
                     completed_at = excluded.completed_at
                 WHERE embedding_jobs.{open}
                   AND embedding_jobs.organization_id = excluded.organization_id",
                dead = JobStatus::Dead.as_str(),
                open = open(),
            ),
            &[number(now_ms)],
        )
    }

    /// Keeps each failed attempt's error (`{job, org, error}`) on its job, which stays open.
    pub(super) fn record_failures(
        &self,
        items: &[Value],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        self.update_jobs(
            items,
            &["error"],
            "last_error = w.error, updated_at = ?2",
            now_ms,
        )
    }

    /// One `UPDATE embedding_jobs … FROM` per chunk of `items`: `fields` names what each item
    /// carries (besides `job` and `org`), `set` is the SET clause over them (`w.<field>`), and
    /// only open jobs of the item's organization change.
    fn update_jobs(
        &self,
        items: &[Value],
        fields: &[&str],
        set: &str,
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let columns: Vec<String> = ["job", "org"]
            .iter()
            .chain(fields)
            .map(|f| format!("value ->> '{f}' AS {f}"))
            .collect();
        self.over_chunks(
            items,
            &format!(
                "UPDATE embedding_jobs SET {set}
                 FROM (SELECT {} FROM json_each(?1)) AS w
                 WHERE embedding_jobs.id = w.job AND embedding_jobs.organization_id = w.org
                   AND embedding_jobs.{}",
                columns.join(", "),
                open(),
            ),
            &[number(now_ms)],
        )
    }

    /// Marks open jobs `dead`, keeping the last error of their failed attempts after the
    /// reason.
    pub(super) async fn mark_jobs_dead(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault> {
        let statements = self.update_jobs(
            &dead_items(jobs),
            &["reason"],
            &format!(
                "status = '{dead}',
                 last_error = CASE WHEN last_error IS NULL THEN w.reason
                                   ELSE w.reason || ': ' || last_error END,
                 updated_at = ?2, completed_at = ?2",
                dead = JobStatus::Dead.as_str(),
            ),
            now_ms,
        )?;
        self.run_batch(statements).await
    }

    /// Marks `done` jobs `dead` with the reason: their vector the index refused.
    pub(super) async fn mark_done_jobs_dead(
        &self,
        jobs: &[DeadJob],
        now_ms: i64,
    ) -> Result<(), Fault> {
        let statements = self.over_chunks(
            &dead_items(jobs),
            &format!(
                "UPDATE embedding_jobs SET status = '{dead}', last_error = w.reason,
                     updated_at = ?2, completed_at = ?2
                 FROM (SELECT value ->> 'job' AS job, value ->> 'org' AS org,
                         value ->> 'reason' AS reason FROM json_each(?1)) AS w
                 WHERE embedding_jobs.id = w.job AND embedding_jobs.organization_id = w.org
                   AND embedding_jobs.status = '{done}'",
                dead = JobStatus::Dead.as_str(),
                done = JobStatus::Done.as_str(),
            ),
            &[number(now_ms)],
        )?;
        self.run_batch(statements).await
    }

    /// Up to `limit` open jobs unmoved since `unmoved_since`, oldest first, with their lane.
    pub(super) async fn open_jobs_unmoved(
        &self,
        unmoved_since: i64,
        limit: u32,
    ) -> Result<Vec<(EmbeddingJob, Lane)>, Fault> {
        #[derive(Deserialize)]
        struct StuckRow {
            id: String,
            organization_id: String,
            table_name: Option<String>,
            record_id: Option<String>,
            model: String,
            content: String,
            backfill_id: Option<String>,
        }
        self.count(1);
        let rows = d1::statement(
            &self.db,
            &format!(
                "SELECT id, organization_id, table_name, record_id, model, content, backfill_id
                     FROM embedding_jobs WHERE {} AND updated_at <= ?1
                     ORDER BY updated_at LIMIT ?2",
                open()
            ),
            &[number(unmoved_since), number(i64::from(limit))],
        )?
        .all()
        .await?
        .results::<StuckRow>()?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let job_id = uuid::Uuid::parse_str(&row.id).ok()?;
                let lane = Lane::of_job(row.backfill_id.as_deref());
                let job = EmbeddingJob::new(
                    job_id,
                    row.organization_id,
                    row.model,
                    row.content,
                    row.table_name.zip(row.record_id),
                );
                Some((job, lane))
            })
            .collect())
    }

    /// Marks open jobs as just handled (their `updated_at`).
    pub(super) async fn touch_jobs(&self, jobs: &[EmbeddingJob], now_ms: i64) -> Result<(), Fault> {
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
        self.count(1);
        d1::statement(
            &self.db,
            &format!(
                "UPDATE embedding_jobs SET updated_at = ?1
                 WHERE {} AND id IN (SELECT value FROM json_each(?2))",
                open()
            ),
            &[number(now_ms), text(&serde_json::to_string(&ids)?)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
