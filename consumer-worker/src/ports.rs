//! What the consumer needs from the outside world, as traits: D1 (the job store), the queues (to
//! send a job again or to the dead-letter queue) and Vectorize. The embedder is
//! `worker_kit::embedder::Embedder`. Real implementations are in [`crate::bindings`], fakes in
//! the tests.

use shared::config::TableConfig;
use shared::freshness::{RecordState, StoredVersion};
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::sets::{Migration, MigrationStep, SetRole, VectorSet};
use worker_kit::index_sync::{RecordKey, Synced};

use worker_kit::sets::{Applied, SetRow};

use crate::migration::{Coverage, Page, RetiringRow, Switched};
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
    /// The live sets of the job's table (the active one first), each with what it holds for
    /// the record; none for a job without a record.
    pub sets: Vec<LiveSet>,
    /// Vectors of the record kept in one set that another set of the same model lacks (the
    /// table is moving to another backend or index): copied there instead of embedded again.
    pub copies: Vec<KeptCopy>,
}

/// A set a job of its table writes to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LiveSet {
    pub set: VectorSet,
    pub role: SetRole,
    pub stored: Option<StoredVersion>,
}

/// A record's vector as one set keeps it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeptCopy {
    pub model: String,
    pub content_hash: String,
    pub vector: Vec<f32>,
}

/// What one `load` read: each job's state, and the steps of the model changes it started (the
/// config names a set that its table did not have) or ended (the config no longer names a set
/// being built: its clean-up).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LoadedBatch {
    pub jobs: Vec<Option<Loaded>>,
    pub started: Vec<MigrationStep>,
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
    /// Sets that already held the job's content under an older job's name take this (newer)
    /// job's: every live set of a record then names the newest job that embedded any of them,
    /// which is what a model change's switch compares (`shared::sets`).
    Touched {
        job: &'a EmbeddingJob,
        created_at: i64,
        table: &'a TableConfig,
        sets: Vec<SetVector<'a>>,
    },
    /// A failed attempt of a job that will be tried again: its error is kept as `last_error`.
    Failed {
        job_id: String,
        organization_id: String,
        error: String,
    },
}

/// A job's new vectors and where they go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Embedded<'a> {
    pub job: &'a EmbeddingJob,
    pub created_at: i64,
    pub to: Destination<'a>,
    pub truncated: bool,
}

/// Where a job's vectors go.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Destination<'a> {
    /// A job without a record: its one vector goes on the job row.
    JobRow(&'a [f32]),
    /// A record of this table: one vector per set, each also offered to the record's
    /// embedding column, which takes the one of the set it follows
    /// (`worker_kit::vector_rows::column_follows`).
    Sets(&'a TableConfig, Vec<SetVector<'a>>),
}

/// A vector for one set (empty for a [`Write::Touched`] set, whose vector stays).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetVector<'a> {
    pub set: &'a VectorSet,
    /// `shared::message::content_hash` of the set's model and the job's content.
    pub content_hash: String,
    pub vector: &'a [f32],
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
    /// Every configured set of the batch's tables is made sure of in the same round trip: a
    /// table's first set becomes active, and one that differs from the active set starts a
    /// model change (`shared::sets`).
    async fn load(&self, jobs: &[&EmbeddingJob], now_ms: i64) -> Result<LoadedBatch, Fault>;
    /// Writes the batch's results in one transaction.
    async fn commit(&self, writes: &[Write<'_>], now_ms: i64) -> Result<(), Fault>;
    /// Marks jobs `dead`, keeping the last error of their failed attempts after the reason.
    async fn mark_dead(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault>;
    /// Marks jobs `dead` that this batch committed `done` but whose vector the Vectorize index
    /// refused on its own (`worker_kit::index_sync::upsert_isolating`), with the reason.
    async fn mark_unindexed(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault>;
    /// Up to `limit` open jobs (`queued`, `processing`) that have not moved since
    /// `unmoved_since`, oldest first, as messages to send again.
    async fn stuck_jobs(
        &self,
        unmoved_since: i64,
        limit: u32,
    ) -> Result<Vec<(EmbeddingJob, Lane)>, Fault>;
    /// Marks jobs as just handled (their `updated_at`), so that the next sweep leaves them be.
    async fn touch(&self, jobs: &[EmbeddingJob], now_ms: i64) -> Result<(), Fault>;
    /// The D1 statements run so far (D1 counts each statement of a `batch()` as a query).
    fn statements(&self) -> usize;
}

/// The vector sets of a model change (`crate::migration`), in D1.
pub(crate) trait MigrationStore {
    /// Claims the step's set (`shared::sets`, "One chain per set"): moves its `step_seq` on
    /// from `m.seq` by one, and marks it as moved now, where the set still has the role the
    /// step works on (and a building set is still this migration's). The value it moved to,
    /// if it did.
    async fn claim(&self, m: &Migration, now_ms: i64) -> Result<Option<u32>, Fault>;
    /// Up to `limit` building and retiring sets whose steps stopped before `unmoved_since`,
    /// each organization's oldest before any organization's second
    /// (`shared::sets::fair_order`).
    async fn stalled(&self, unmoved_since: i64, limit: u32) -> Result<Vec<SetRow>, Fault>;
    /// Up to `limit` organizations' tables whose configured set is not building, and whose
    /// active set is not the configured one or that build another: a deploy changed their
    /// model, and nothing wrote to them since. What becomes of each is
    /// `shared::sets::plan`'s to decide. Each organization's first before any organization's
    /// second, as for `stalled`.
    async fn unconfigured(
        &self,
        configured: &[(&TableConfig, VectorSet)],
        limit: u32,
    ) -> Result<Vec<(String, String)>, Fault>;
    /// Makes sure of the configured sets of these organizations' tables (organization, table),
    /// as a worker decides (`worker_kit::sets::ensure`): the sets it gave up and made.
    async fn ensure(&self, tables: &[(String, String)], now_ms: i64) -> Result<Applied, Fault>;
    /// The building and retiring sets of these organizations' tables (organization, table).
    async fn changing_sets(&self, tables: &[(String, String)]) -> Result<Vec<SetRow>, Fault>;
    /// Up to `limit` live records of the active set after `after`, in id order, that the
    /// building set does not cover or holds other content for, with their current text.
    async fn uncovered(
        &self,
        table: &TableConfig,
        m: &Migration,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, Fault>;
    /// Records jobs as queued, of the migration's backfill, made at `created_at`.
    async fn queue_jobs(
        &self,
        jobs: &[EmbeddingJob],
        backfill_id: &str,
        created_at: i64,
    ) -> Result<(), Fault>;
    /// How many live records of the active set the building set covers, of how many.
    async fn coverage(&self, table: &TableConfig, m: &Migration) -> Result<Coverage, Fault>;
    /// Makes the building set active and the active one retiring, in one transaction, if the
    /// building set covers the active one then; whether it did, and the set it retired.
    async fn switch(
        &self,
        table: &TableConfig,
        m: &Migration,
        now_ms: i64,
    ) -> Result<Switched, Fault>;
    /// Up to `limit` rows of the migration's set, while it is retiring.
    async fn retiring_rows(&self, m: &Migration, limit: u32) -> Result<Vec<RetiringRow>, Fault>;
    /// Writes `records`' embedding column from their vectors in the active set, whatever set
    /// the config names, unless a newer job wrote the active set since (and the column with
    /// it) or a set is being built; how many it read.
    async fn restore_columns(
        &self,
        table: &TableConfig,
        m: &Migration,
        records: &[&str],
    ) -> Result<usize, Fault>;
    /// Deletes those rows (of sets still retiring).
    async fn remove_rows(
        &self,
        m: &Migration,
        rows: &[RetiringRow],
        now_ms: i64,
    ) -> Result<(), Fault>;
    /// Removes the migration's set if it is retiring and has no rows left; how many it removed.
    async fn drop_retired(&self, m: &Migration, now_ms: i64) -> Result<usize, Fault>;
}

/// The producer side of both queues, for jobs that must go round again. Each call is one
/// `sendBatch` of jobs that fit in one (`shared::message::send_batches`).
pub(crate) trait Requeue {
    /// Sends jobs (already at their next attempt) to `lane`'s queue (`shared::lane`), each after
    /// its delay in seconds.
    async fn retry(&self, lane: Lane, jobs: &[(EmbeddingJob, u32)]) -> Result<(), Fault>;
    /// Sends jobs to `embeddings-dlq`.
    async fn dead_letter(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault>;
    /// Sends model-change steps to the bulk lane's queue, `embeddings-bulk`, each after its delay
    /// in seconds.
    async fn steps(&self, steps: &[(MigrationStep, u32)]) -> Result<(), Fault>;
}

/// Vector indexes outside D1: the Vectorize index behind each binding a table names.
pub(crate) trait VectorIndexes {
    /// Brings every index D1 keeps a set of `records` in, in line with D1, after D1 committed
    /// (`worker_kit::index_sync`).
    async fn sync(&self, records: &[RecordKey]) -> Result<Synced, Fault>;
    /// Deletes vectors from the index behind `binding` (a retiring set's).
    async fn delete(&self, binding: &str, vector_ids: &[String]) -> Result<(), Fault>;
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
