//! What the handlers need from the outside world, as traits: the real implementations are in
//! [`crate::bindings`], in-memory fakes in the tests.

use serde::Deserialize;
use shared::config::TableConfig;
use shared::job::{JobStatus, JobView};
use shared::message::EmbeddingJob;
use shared::time::rfc3339_millis;
use shared::Config;
use uuid::Uuid;
use worker_kit::Fault;

/// The row better-auth keeps for a session, as far as the gateway reads it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SessionRow {
    pub user_id: String,
    pub active_organization_id: Option<String>,
    /// As stored: ISO 8601 text or Unix time, depending on the better-auth adapter.
    pub expires_at: String,
}

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
    /// SQL `hex()` of the compact vector of a job not bound to a record.
    pub vector_hex: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: Option<i64>,
}

impl JobRow {
    /// A new `queued` row for a job about to be sent.
    pub(crate) fn queued(job: &EmbeddingJob, now_ms: i64) -> Self {
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
            created_at: now_ms,
            updated_at: now_ms,
            completed_at: None,
        }
    }

    pub(crate) fn view(&self) -> Result<JobView, Fault> {
        let status = JobStatus::parse(&self.status).ok_or_else(|| {
            Fault(format!(
                "job {} has unknown status `{}`",
                self.id, self.status
            ))
        })?;
        let embedding = self
            .vector_hex
            .as_deref()
            .map(shared::vector::decode_hex)
            .transpose()
            .map_err(|e| Fault(format!("job {}: {e}", self.id)))?;
        Ok(JobView {
            job_id: self.id.clone(),
            status,
            model: self.model.clone(),
            table: self.table_name.clone(),
            id: self.record_id.clone(),
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            truncated: self.truncated != 0,
            embedding,
            created_at: rfc3339_millis(self.created_at),
            updated_at: rfc3339_millis(self.updated_at),
            completed_at: self.completed_at.map(rfc3339_millis),
        })
    }
}

/// D1, as the gateway uses it.
pub(crate) trait Store {
    async fn ping(&self) -> Result<(), Fault>;
    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault>;
    async fn member_role(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, Fault>;
    /// A record of an embedding table, its configured columns by name, if it exists in the
    /// organization.
    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault>;
    async fn insert_job(&self, job: &JobRow) -> Result<(), Fault>;
    async fn mark_job_failed(
        &self,
        organization_id: &str,
        job_id: Uuid,
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault>;
    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault>;
    /// Moves a `dead` or `failed` job back to `queued`, in one statement so that two replays
    /// cannot both win; `false` when the job was not in such a state.
    async fn requeue_job(
        &self,
        organization_id: &str,
        job_id: Uuid,
        now_ms: i64,
    ) -> Result<bool, Fault>;
}

/// A record's columns by name.
pub(crate) type Record = serde_json::Map<String, serde_json::Value>;

/// The producer side of `embeddings-queue`.
pub(crate) trait JobQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault>;
}

/// search-worker, over the `SEARCH` service binding.
pub(crate) trait SearchService {
    /// Calls a search-worker route and returns its status and JSON body.
    async fn call(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), Fault>;
}

/// Everything a request handler may use.
#[derive(Debug)]
pub(crate) struct App<S, Q, X> {
    pub store: S,
    pub queue: Q,
    pub search: X,
    /// `BETTER_AUTH_SECRET`; without it every authenticated route fails closed.
    pub auth_secret: Option<String>,
    pub config: &'static Config,
    pub now_ms: i64,
}
