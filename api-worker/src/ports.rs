//! What the handlers need from the outside world, as traits, one per thing a handler uses: D1's
//! ports ([`Database`], [`Credentials`], [`ApiKeys`], [`Records`], [`Jobs`], [`Sets`]), the
//! queue, the Vectorize indexes, the rate limits. The real implementations are in
//! [`crate::bindings`] and [`crate::store`], in-memory fakes in the tests.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use shared::config::TableConfig;
use shared::expiring::Expiring;
use shared::job::JobStatus;
use shared::message::EmbeddingJob;
use shared::rate::RouteClass;
use shared::record::Record;
use shared::sets::MigrationStep;
use shared::Config;
use uuid::Uuid;
use worker_kit::index_sync::{RecordKey, Synced};
use worker_kit::search_client::{SearchClient, Transport};
use worker_kit::sets::SetRow;
use worker_kit::Fault;

pub(crate) use crate::job_row::JobRow;

/// A better-auth session, with the caller's role in its active organization.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SessionRow {
    pub user_id: String,
    pub active_organization_id: Option<String>,
    /// As stored: ISO 8601 text or Unix time, depending on the better-auth adapter.
    pub expires_at: String,
    /// `member.role` in the active organization; `None` when the user is not a member.
    pub role: Option<String>,
}

/// An API key that is not revoked.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub role: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An API key as it is used: the key, and its creator's `member.role` in its organization now
/// (`None` once the creator is no longer a member). A key acts within both.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyUse {
    pub key: ApiKeyRow,
    pub creator_role: Option<String>,
}

/// Which jobs a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct JobFilter {
    pub status: Option<JobStatus>,
    pub backfill_id: Option<String>,
    /// Jobs bound to records of this table.
    pub table: Option<String>,
    /// Jobs before this one (newest first): `(created_at, id)` of the last job of a page.
    pub before: Option<(i64, String)>,
    pub limit: u32,
}

/// How a record write went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RecordWrite {
    /// The record as it is now stored.
    Written(Record),
    /// An insert whose id is taken.
    IdTaken,
    /// An update of a record that is not (or no longer) there.
    Missing,
    /// The table refused the values (a NOT NULL or CHECK constraint): the database's reason.
    Refused(String),
}

/// A record with the content hash of its stored vector, for a backfill.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BackfillCandidate {
    pub record: Record,
    pub stored_hash: Option<String>,
}

/// A table's embedding health in one organization, as D1 counts it (`GET .../status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TableHealth {
    /// The table's sets: the active one, a building one while the model changes, and retiring
    /// ones while an earlier change's clean-up runs.
    pub sets: Vec<SetRow>,
    /// Records of the table.
    pub records: u64,
    /// Live vectors in the configured set whose record has no job open.
    pub embedded: u64,
    /// Of a building set: the active set's live records it covers, and of how many.
    pub coverage: Option<(u64, u64)>,
    pub pending: u64,
    pub failed: u64,
    pub dead: u64,
    /// When the oldest open job was made.
    pub oldest_pending_at: Option<i64>,
    /// The newest error a job of the table recorded.
    pub last_error: Option<LastError>,
}

/// A job's last recorded error.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct LastError {
    pub id: String,
    pub status: String,
    #[serde(rename = "last_error")]
    pub message: String,
    pub updated_at: i64,
}

/// D1 itself: whether it answers, and what this request has asked of it (`GET /health`, and
/// the logs of a backfill).
pub(crate) trait Database {
    /// The D1 statements this store has prepared so far: the request's share of D1's queries
    /// per invocation (50 on Workers Free), for the logs.
    fn statements(&self) -> usize;
    async fn ping(&self) -> Result<(), Fault>;
}

/// What authentication reads ([`crate::auth`]): a better-auth session by its token, an API key
/// by its hash.
pub(crate) trait Credentials {
    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault>;
    /// The unrevoked key with this hash, marking it used, with its creator's role now.
    async fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<KeyUse>, Fault>;
}

/// An organization's API keys, as [`crate::keys`] manages them.
pub(crate) trait ApiKeys {
    async fn insert_api_key(&self, key: &ApiKeyRow, key_hash: &str) -> Result<(), Fault>;
    async fn api_keys(&self, organization_id: &str) -> Result<Vec<ApiKeyRow>, Fault>;
    async fn revoke_api_key(
        &self,
        organization_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, Fault>;
}

/// The records of the embedding tables, with what their writes do to their stored vectors
/// ([`crate::records`], the record a job names in [`crate::jobs`] and [`crate::embeddings`],
/// [`crate::backfill`]'s candidates). Table and column names come from the validated config
/// only.
pub(crate) trait Records {
    /// A record's columns, if it exists in the organization.
    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault>;
    /// Records in id order after `after`.
    async fn records(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Fault>;
    async fn insert_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        now_ms: i64,
    ) -> Result<RecordWrite, Fault>;
    /// Updates a record and returns it as it was just before, read in the same transaction:
    /// what the update changed is then exact, however many writers race on the record.
    async fn update_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        now_ms: i64,
    ) -> Result<(Option<Record>, RecordWrite), Fault>;
    /// Copies a record's current metadata fields onto its stored vector (a new `seq`, so the
    /// search cache sees it); `false` when it has no stored vector.
    async fn refresh_vector_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault>;
    /// Deletes a record and its stored vector in one transaction; `false` when there was none.
    async fn delete_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault>;
    /// Records in id order after `after`, each with the content hash of its stored vector.
    async fn backfill_candidates(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BackfillCandidate>, Fault>;
}

/// The embedding jobs' rows: written before their messages are sent, read by the job routes,
/// moved back to `queued` by a replay ([`crate::embeddings`], [`crate::jobs`]).
pub(crate) trait Jobs {
    /// Writes job rows, all in one transaction, in a statement or two however many they are.
    async fn insert_jobs(&self, jobs: &[JobRow]) -> Result<(), Fault>;
    async fn mark_jobs_failed(
        &self,
        organization_id: &str,
        job_ids: &[Uuid],
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault>;
    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault>;
    async fn jobs(&self, organization_id: &str, filter: &JobFilter) -> Result<Vec<JobRow>, Fault>;
    /// Moves a `dead` or `failed` job back to `queued` with the content it is replayed with, in
    /// one statement so that two replays cannot both win; `false` when the job was not in such a
    /// state.
    async fn requeue_job(&self, job: &EmbeddingJob, now_ms: i64) -> Result<bool, Fault>;
}

/// A table's vector sets (`shared::sets`) and the embedding health counted from them, as
/// [`crate::status`] reports them and starts a model change.
pub(crate) trait Sets {
    /// The table's embedding health in the organization (two round trips while a model
    /// change runs: its coverage is counted once the sets are known).
    async fn table_health(
        &self,
        table: &TableConfig,
        organization_id: &str,
        now_ms: i64,
    ) -> Result<TableHealth, Fault>;
    /// Makes sure of the table's configured set as the command decides
    /// (`shared::sets::plan`): the sets it changed (made or gave up), and the live sets after.
    async fn ensure_sets(
        &self,
        table: &TableConfig,
        organization_id: &str,
        now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<SetRow>), Fault>;
}

/// D1, as the gateway uses it: every port above, each method one round trip, every query
/// scoped to an organization.
pub(crate) trait Store: Database + Credentials + ApiKeys + Records + Jobs + Sets {}

impl<T: Database + Credentials + ApiKeys + Records + Jobs + Sets> Store for T {}

/// The producer side of both lanes' queues (`shared::lane`).
pub(crate) trait JobQueue {
    /// Sends a live job: a write, an enqueue, a replay.
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault>;
    /// Sends up to 100 jobs of a backfill in one call, on the bulk lane.
    async fn send_bulk(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault>;
    /// Sends a step of a model change (`shared::sets`), on the bulk lane.
    async fn send_step(&self, step: &MigrationStep) -> Result<(), Fault>;
}

/// Vectorize indexes, brought in line with D1 after the gateway changes a record's vector row
/// (`worker_kit::index_sync`).
pub(crate) trait VectorIndexes {
    /// Brings every Vectorize index D1 keeps a set of `records` in, in line with D1.
    async fn sync(&self, records: &[RecordKey]) -> Result<Synced, Fault>;
}

/// The organizations' rate limits (`shared::rate`): one count per organization and class.
pub(crate) trait RateLimits {
    /// Counts one request of `class` under `key`; `false` once the key is past its limit.
    async fn allow(&self, class: RouteClass, key: &str) -> Result<bool, Fault>;
}

/// The implementations an [`App`] runs on: the bindings in production, fakes in tests.
pub(crate) trait Ports {
    type Store: Store;
    type Queue: JobQueue;
    type Limits: RateLimits;
    /// How search-worker is reached: its service binding, over RPC.
    type Search: Transport;
    type Indexes: VectorIndexes;
}

/// Everything a request handler may use.
pub(crate) struct App<P: Ports> {
    pub store: P::Store,
    pub queue: P::Queue,
    pub limits: P::Limits,
    pub search: SearchClient<P::Search>,
    pub indexes: P::Indexes,
    /// `BETTER_AUTH_SECRET`; without it every session is refused (fail closed).
    pub auth_secret: Option<String>,
    /// Sessions read in the last [`crate::auth::SESSION_TRUST_MS`], kept by the isolate.
    pub sessions: Rc<RefCell<Expiring<SessionRow>>>,
    pub config: &'static Config,
    pub now_ms: i64,
}
