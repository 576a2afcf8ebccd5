//! What the consumer needs from the outside world, as traits: D1 (the job store), the queues (to
//! send a job again or to the dead-letter queue) and Vectorize. The embedder is
//! `worker_kit::embedder::Embedder`. Real implementations are in [`crate::bindings`], fakes in
//! the tests.

use shared::config::TableConfig;
use shared::freshness::{RecordState, StoredVersion};
use shared::message::EmbeddingJob;
use worker_kit::index_sync::{RecordKey, Synced};
use worker_kit::Fault;

/// One message as delivered: the queue's message id and its JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub message_id: String,
    pub body: serde_json::Value,
}

/// What the store knows of a delivered job, read in the same round trip that records the
/// delivery.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Loaded {
    /// When the job was made; orders jobs of one record.
    pub created_at: i64,
    pub record: RecordState,
    pub stored: Option<StoredVersion>,
    /// D1's copy of the stored vector, when it is kept elsewhere than its table keeps vectors
    /// now: what a move writes to the new place instead of embedding again.
    pub copy: Option<Vec<f32>>,
}

/// The end of a job's delivery, as written to D1.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Write<'a> {
    /// Embedded: the vector goes to the record's embedding column and the vector store (or, for
    /// a job without a record, to the job row); the job is `done`, or `stale` if a newer job
    /// wrote the record's vector meanwhile.
    Embedded(Embedded<'a>),
    /// A final status without a vector: `skipped`, `stale` or `dead`, with a reason for `dead`.
    Finished {
        job_id: String,
        organization_id: String,
        status: shared::job::JobStatus,
        reason: Option<String>,
    },
    /// A message that is not a valid job but names one: the job is recorded `dead` with the
    /// reason, its row created if the gateway never wrote one (a custom pipeline's message).
    Rejected { job: JobIdentity, reason: String },
    /// A failed attempt of a job that will be tried again: its error is kept as `last_error`.
    Failed {
        job_id: String,
        organization_id: String,
        error: String,
    },
}

/// A new vector and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Embedded<'a> {
    pub job: &'a EmbeddingJob,
    pub created_at: i64,
    /// The job's table, when it is bound to a record.
    pub table: Option<&'a TableConfig>,
    pub vector: &'a [f32],
    pub truncated: bool,
}

/// A job known to be dead, by id and organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeadJob {
    pub job_id: String,
    pub organization_id: String,
    pub reason: String,
}

/// The job table and the stores of vectors, in D1. Each call is one D1 round trip.
pub(crate) trait JobStore {
    /// Records one delivery of each job (`processing`, attempts + 1; a custom pipeline's job gets
    /// its row here) and reads what deciding it needs. A job already final, or whose row belongs
    /// to another organization, comes back as `None`.
    async fn load(&self, jobs: &[&EmbeddingJob], now_ms: i64)
        -> Result<Vec<Option<Loaded>>, Fault>;
    /// Writes the batch's results in one transaction.
    async fn commit(&self, writes: &[Write<'_>], now_ms: i64) -> Result<(), Fault>;
    /// Marks jobs `dead`, keeping the last error of their failed attempts after the reason.
    async fn mark_dead(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault>;
    /// Up to `limit` open jobs (`queued`, `processing`) that have not moved since
    /// `unmoved_since`, oldest first, as messages to send again.
    async fn stuck_jobs(&self, unmoved_since: i64, limit: u32) -> Result<Vec<EmbeddingJob>, Fault>;
    /// Marks jobs as just handled (their `updated_at`), so that the next sweep leaves them be.
    async fn touch(&self, jobs: &[EmbeddingJob], now_ms: i64) -> Result<(), Fault>;
    /// The D1 statements run so far (D1 counts each statement of a `batch()` as a query).
    fn statements(&self) -> usize;
}

/// The producer side of both queues, for jobs that must go round again. Each call is one
/// `sendBatch` of jobs that fit in one (`shared::message::send_batches`).
pub(crate) trait Requeue {
    /// Sends jobs (already at their next attempt) back to `embeddings-queue`, each after its
    /// delay in seconds.
    async fn retry(&self, jobs: &[(EmbeddingJob, u32)]) -> Result<(), Fault>;
    /// Sends jobs to `embeddings-dlq`.
    async fn dead_letter(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault>;
}

/// Vector indexes outside D1: the Vectorize index behind each binding a table names.
pub(crate) trait VectorIndexes {
    /// Brings the index behind `binding` in line with D1 for `records`, after D1 committed
    /// (`worker_kit::index_sync`).
    async fn sync(&self, binding: &str, records: &[RecordKey]) -> Result<Synced, Fault>;
}

/// What can be read of a message that did not decode as a job, so that even a malformed
/// message's job is recorded dead: its id and organization, and the model and content if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobIdentity {
    pub job_id: String,
    pub organization_id: String,
    pub model: String,
    pub content: String,
}

impl JobIdentity {
    pub(crate) fn read(body: &serde_json::Value) -> Option<Self> {
        let field = |name: &str| body.get(name).and_then(serde_json::Value::as_str);
        let job_id = field("jobId")?;
        uuid::Uuid::parse_str(job_id).ok()?;
        Some(JobIdentity {
            job_id: job_id.to_owned(),
            organization_id: field("organizationId")?.to_owned(),
            model: field("model").unwrap_or_default().to_owned(),
            content: field("content").unwrap_or_default().to_owned(),
        })
    }
}
