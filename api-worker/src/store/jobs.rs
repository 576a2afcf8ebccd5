//! [`Jobs`] over D1: the `embedding_jobs` rows the gateway writes, reads and replays. Statuses
//! are written from [`JobStatus`], never spelled here.

use shared::job::{JobStatus, STUCK_AFTER_MS};
use shared::message::EmbeddingJob;
use uuid::Uuid;
use worker::wasm_bindgen::JsValue;
use worker_kit::d1::{self, number, optional, text};
use worker_kit::Fault;

use super::D1Store;
use crate::ports::{JobFilter, JobRow, Jobs};

const JOB_COLUMNS: &str =
    "id, organization_id, table_name, record_id, model, content, content_hash, status,
     attempts, last_error, truncated, backfill_id, created_at, updated_at, completed_at";

impl Jobs for D1Store {
    async fn insert_jobs(&self, jobs: &[JobRow]) -> Result<(), Fault> {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                serde_json::json!({
                    "id": job.id, "org": job.organization_id, "table": job.table_name,
                    "record": job.record_id, "model": job.model, "content": job.content,
                    "hash": job.content_hash, "status": job.status, "attempts": job.attempts,
                    "backfill": job.backfill_id, "created": job.created_at,
                })
            })
            .collect();
        // A backfill's 500 rows in a statement or two, not 500 of D1's queries.
        let statements = self.over_chunks(
            &rows,
            "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
                 content_hash, status, attempts, backfill_id, created_at, updated_at)
             SELECT value ->> 'id', value ->> 'org', value ->> 'table', value ->> 'record',
                 value ->> 'model', value ->> 'content', value ->> 'hash', value ->> 'status',
                 value ->> 'attempts', value ->> 'backfill', value ->> 'created',
                 value ->> 'created'
             FROM json_each(?1)",
            &[],
        )?;
        d1::run_batch(&self.db, statements).await
    }

    async fn mark_jobs_failed(
        &self,
        organization_id: &str,
        job_ids: &[Uuid],
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let ids: Vec<serde_json::Value> = job_ids
            .iter()
            .map(|id| serde_json::Value::String(id.to_string()))
            .collect();
        let statements = self.over_chunks(
            &ids,
            &format!(
                "UPDATE embedding_jobs SET status = '{}', last_error = ?3, updated_at = ?4,
                     completed_at = ?4
                 WHERE organization_id = ?2 AND id IN (SELECT value FROM json_each(?1))",
                JobStatus::Failed.as_str()
            ),
            &[text(organization_id), text(error), number(now_ms)],
        )?;
        d1::run_batch(&self.db, statements).await
    }

    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault> {
        let row = self
            .statement(
                &format!(
                    "SELECT {JOB_COLUMNS}, hex(vector) AS vector_hex
                     FROM embedding_jobs WHERE id = ?1 AND organization_id = ?2"
                ),
                &[text(&job_id.to_string()), text(organization_id)],
            )?
            .first::<JobRow>(None)
            .await?;
        Ok(row)
    }

    async fn jobs(&self, organization_id: &str, filter: &JobFilter) -> Result<Vec<JobRow>, Fault> {
        let (before_at, before_id) = filter
            .before
            .as_ref()
            .map_or((JsValue::NULL, JsValue::NULL), |(at, id)| {
                (number(*at), text(id))
            });
        let rows = self
            .statement(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM embedding_jobs
                     WHERE organization_id = ?1
                       AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR backfill_id = ?3)
                       AND (?4 IS NULL OR (created_at, id) < (?4, ?5))
                       AND (?7 IS NULL OR table_name = ?7)
                     ORDER BY created_at DESC, id DESC LIMIT ?6"
                ),
                &[
                    text(organization_id),
                    optional(filter.status.map(JobStatus::as_str)),
                    optional(filter.backfill_id.as_deref()),
                    before_at,
                    before_id,
                    number(i64::from(filter.limit)),
                    optional(filter.table.as_deref()),
                ],
            )?
            .all()
            .await?
            .results::<JobRow>()?;
        Ok(rows)
    }

    async fn requeue_job(&self, job: &EmbeddingJob, now_ms: i64) -> Result<bool, Fault> {
        // Guards `JobStatus::can_replay` against a race: of two replays, one matches.
        let (queued, processing, dead, failed) = (
            JobStatus::Queued.as_str(),
            JobStatus::Processing.as_str(),
            JobStatus::Dead.as_str(),
            JobStatus::Failed.as_str(),
        );
        let result = self
            .statement(
                &format!(
                    "UPDATE embedding_jobs SET status = '{queued}', content = ?3,
                         content_hash = ?4, updated_at = ?5, completed_at = NULL
                     WHERE id = ?1 AND organization_id = ?2
                       AND (status IN ('{dead}', '{failed}')
                            OR (status IN ('{queued}', '{processing}') AND updated_at <= ?6))"
                ),
                &[
                    text(&job.job_id.to_string()),
                    text(&job.organization_id),
                    text(&job.content),
                    text(&job.content_hash),
                    number(now_ms),
                    number(now_ms - STUCK_AFTER_MS),
                ],
            )?
            .run()
            .await?;
        Ok(Self::changes(&result)? > 0)
    }
}
