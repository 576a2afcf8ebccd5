//! A job's row in `embedding_jobs`: as a new job writes it, and as the job routes show it.

use serde::Deserialize;
use shared::job::{JobStatus, JobView};
use shared::message::EmbeddingJob;
use shared::time::rfc3339_millis;
use worker_kit::Fault;

/// A job row as stored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct JobRow {
    pub id: String,
    pub organization_id: String,
    pub table_name: Option<String>,
    pub record_id: Option<String>,
    pub model: String,
    pub content: String,
    pub content_hash: String,
    pub status: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// 1 when the content was cut to the model's input limit.
    pub truncated: i64,
    /// SQL `hex()` of the compact vector of a job not bound to a record (the job route only).
    #[serde(default)]
    pub vector_hex: Option<String>,
    pub backfill_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: Option<i64>,
}

impl JobRow {
    /// A new `queued` row for a job about to be sent.
    pub(crate) fn queued(job: &EmbeddingJob, backfill_id: Option<&str>, now_ms: i64) -> Self {
        JobRow {
            id: job.job_id.to_string(),
            organization_id: job.organization_id.clone(),
            table_name: job.table.clone(),
            record_id: job.id.clone(),
            model: job.model.clone(),
            content: job.content.clone(),
            content_hash: job.content_hash.clone(),
            status: JobStatus::Queued.as_str().to_owned(),
            attempts: 0,
            last_error: None,
            truncated: 0,
            vector_hex: None,
            backfill_id: backfill_id.map(str::to_owned),
            created_at: now_ms,
            updated_at: now_ms,
            completed_at: None,
        }
    }

    /// The row's status; an unknown one is a fault of the data.
    pub(crate) fn status(&self) -> Result<JobStatus, Fault> {
        JobStatus::parse(&self.status).ok_or_else(|| {
            Fault(format!(
                "job {} has unknown status `{}`",
                self.id, self.status
            ))
        })
    }

    /// The job as the job routes show it.
    pub(crate) fn view(&self) -> Result<JobView, Fault> {
        let embedding = self
            .vector_hex
            .as_deref()
            .map(shared::vector::decode_hex)
            .transpose()
            .map_err(|e| Fault(format!("job {}: {e}", self.id)))?;
        Ok(JobView {
            job_id: self.id.clone(),
            status: self.status()?,
            model: self.model.clone(),
            table: self.table_name.clone(),
            id: self.record_id.clone(),
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            truncated: self.truncated != 0,
            embedding,
            backfill_id: self.backfill_id.clone(),
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
            completed_at: self.completed_at.map(rfc3339_millis),
        })
    }
}
