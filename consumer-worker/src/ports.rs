//! What the consumer needs from the outside world.

use shared::message::EmbeddingJob;
use worker_kit::Fault;

/// One message as delivered: the queue's message id and its JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub message_id: String,
    pub body: serde_json::Value,
}

/// A job known to be dead, by id and organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadJob {
    pub job_id: String,
    pub organization_id: String,
    pub reason: String,
}

/// The job table, as the consumer writes it. Each call is one D1 round trip for the whole batch.
pub(crate) trait JobLedger {
    /// Records one delivery of each job (`processing`, attempts + 1), creating the row for a job
    /// that a custom pipeline sent without one. Final jobs are left as they are.
    async fn record_deliveries(&self, jobs: &[&EmbeddingJob], now_ms: i64) -> Result<(), Fault>;
    /// Marks jobs `dead` with their reason; `keep_last_error` keeps an error already recorded
    /// by a failed attempt in front of the reason.
    async fn mark_dead(
        &self,
        jobs: &[DeadJob],
        keep_last_error: bool,
        now_ms: i64,
    ) -> Result<(), Fault>;
}

/// Reads the job id and organization out of a body that did not decode as a job, so even a
/// malformed message's job can be marked dead.
pub(crate) fn job_identity(body: &serde_json::Value) -> Option<(String, String)> {
    let job_id = body.get("jobId")?.as_str()?;
    uuid::Uuid::parse_str(job_id).ok()?;
    let organization_id = body.get("organizationId")?.as_str()?;
    Some((job_id.to_owned(), organization_id.to_owned()))
}
