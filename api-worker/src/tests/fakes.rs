//! In-memory fakes of the gateway's ports, the seeded app the tests run against, and the
//! helpers that sign its requests in.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde_json::{json, Value};
use shared::api_key;
use shared::config::TableConfig;
use shared::expiring::Expiring;
use shared::job::JobStatus;
use shared::message::EmbeddingJob;
use shared::rate::RouteClass;
use shared::record::Record;
use shared::rpc;
use shared::session::session_cookie;
use shared::sets::{MigrationStep, SetRole, VectorSet};
use shared::ApiError;
use uuid::Uuid;
use worker_kit::http::{HttpRequest, HttpResponse};
use worker_kit::index_sync::{RecordKey, Synced};
use worker_kit::search_client::{SearchClient, Transport};
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use crate::ports::{
    ApiKeyRow, App, BackfillCandidate, JobFilter, JobQueue, JobRow, KeyUse, LastError, Ports,
    RateLimits, RecordWrite, SessionRow, Store, TableHealth, VectorIndexes,
};
use crate::routes::handle;

pub(super) const SECRET: &str = "test-secret-0123456789abcdefghijkl";
pub(super) const NOW: i64 = 1_795_615_199_000;

#[derive(Default)]
pub(super) struct FakeStore {
    pub(super) sessions: Vec<(String, SessionRow)>,
    pub(super) keys: RefCell<Vec<(String, ApiKeyRow)>>,
    /// (table, record with its organization column)
    pub(super) records: RefCell<Vec<(String, Record)>>,
    /// (organization, table, record id, content hash) of stored vectors
    pub(super) vectors: Vec<(String, String, String, String)>,
    pub(super) jobs: RefCell<Vec<JobRow>>,
    /// (organization, table, record id) of each metadata refresh
    pub(super) refreshed: RefCell<Vec<(String, String, String)>>,
    /// What a separate read of a record answers when another write has since overtaken it.
    pub(super) stale_read: RefCell<Option<Record>>,
    /// The vector sets of each organization's table.
    pub(super) sets: RefCell<Vec<SetRow>>,
    pub(super) down: bool,
}

impl FakeStore {
    fn find(&self, table: &TableConfig, organization_id: &str, id: &str) -> Option<Record> {
        self.records
            .borrow()
            .iter()
            .find(|(t, r)| {
                *t == table.name && r["organization_id"] == organization_id && r["id"] == id
            })
            .map(|(_, r)| r.clone())
    }
}

impl Store for FakeStore {
    /// An in-memory store prepares no D1 statements.
    fn statements(&self) -> usize {
        0
    }
    async fn ping(&self) -> Result<(), Fault> {
        if self.down {
            Err(Fault("D1 down".into()))
        } else {
            Ok(())
        }
    }
    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault> {
        Ok(self
            .sessions
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, s)| s.clone()))
    }
    async fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<KeyUse>, Fault> {
        let mut keys = self.keys.borrow_mut();
        let key = keys
            .iter_mut()
            .find(|(h, k)| h == key_hash && k.revoked_at.is_none());
        Ok(key.map(|(_, k)| {
            if api_key::use_is_written(k.last_used_at, now_ms) {
                k.last_used_at = Some(now_ms);
            }
            // The creator's role now: their membership, as their sessions carry it.
            let creator_role = self
                .sessions
                .iter()
                .find(|(_, s)| {
                    s.user_id == k.created_by
                        && s.active_organization_id.as_deref() == Some(&k.organization_id)
                })
                .and_then(|(_, s)| s.role.clone());
            KeyUse {
                key: k.clone(),
                creator_role,
            }
        }))
    }
    async fn insert_api_key(&self, key: &ApiKeyRow, key_hash: &str) -> Result<(), Fault> {
        self.keys
            .borrow_mut()
            .push((key_hash.to_owned(), key.clone()));
        Ok(())
    }
    async fn api_keys(&self, organization_id: &str) -> Result<Vec<ApiKeyRow>, Fault> {
        Ok(self
            .keys
            .borrow()
            .iter()
            .filter(|(_, k)| k.organization_id == organization_id)
            .map(|(_, k)| k.clone())
            .collect())
    }
    async fn revoke_api_key(
        &self,
        organization_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        let mut keys = self.keys.borrow_mut();
        let key = keys.iter_mut().find(|(_, k)| {
            k.id == id && k.organization_id == organization_id && k.revoked_at.is_none()
        });
        Ok(key.is_some_and(|(_, k)| {
            k.revoked_at = Some(now_ms);
            true
        }))
    }
    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault> {
        if let Some(stale) = self.stale_read.borrow().clone() {
            return Ok(Some(stale));
        }
        Ok(self.find(table, organization_id, id))
    }
    async fn records(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Fault> {
        let mut rows: Vec<Record> = self
            .records
            .borrow()
            .iter()
            .filter(|(t, r)| *t == table.name && r["organization_id"] == organization_id)
            .filter(|(_, r)| after.is_none_or(|a| r["id"].as_str().unwrap() > a))
            .map(|(_, r)| r.clone())
            .collect();
        rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        rows.truncate(limit as usize);
        Ok(rows)
    }
    async fn insert_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        _now_ms: i64,
    ) -> Result<RecordWrite, Fault> {
        if !values.contains_key("content") {
            return Ok(RecordWrite::Refused(format!(
                "NOT NULL constraint failed: {}.content",
                table.name
            )));
        }
        let taken = self.records.borrow().iter().any(|(t, r)| {
            *t == table.name && r["id"] == id && r["organization_id"] == organization_id
        });
        // Ids are unique within an organization (the tables' key is (organization, id)).
        if taken {
            return Ok(RecordWrite::IdTaken);
        }
        let mut record = values.clone();
        record.insert("id".into(), id.into());
        record.insert("organization_id".into(), organization_id.into());
        self.records
            .borrow_mut()
            .push((table.name.clone(), record.clone()));
        Ok(RecordWrite::Written(record))
    }
    async fn update_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        _now_ms: i64,
    ) -> Result<(Option<Record>, RecordWrite), Fault> {
        for (t, record) in self.records.borrow_mut().iter_mut() {
            if *t == table.name
                && record["organization_id"] == organization_id
                && record["id"] == id
            {
                let before = record.clone();
                record.extend(values.clone());
                return Ok((Some(before), RecordWrite::Written(record.clone())));
            }
        }
        Ok((None, RecordWrite::Missing))
    }
    async fn refresh_vector_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let key = (
            organization_id.to_owned(),
            table.name.clone(),
            id.to_owned(),
        );
        let stored = self
            .vectors
            .iter()
            .any(|(o, t, r, _)| (o, t, r) == (&key.0, &key.1, &key.2));
        self.refreshed.borrow_mut().push(key);
        Ok(stored)
    }
    async fn delete_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let mut records = self.records.borrow_mut();
        let before = records.len();
        records.retain(|(t, r)| {
            !(*t == table.name && r["organization_id"] == organization_id && r["id"] == id)
        });
        Ok(records.len() < before)
    }
    async fn backfill_candidates(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BackfillCandidate>, Fault> {
        let records = self.records(table, organization_id, after, limit).await?;
        Ok(records
            .into_iter()
            .map(|record| {
                let stored_hash = self
                    .vectors
                    .iter()
                    .find(|(o, t, i, _)| {
                        o == organization_id && *t == table.name && record["id"] == i.as_str()
                    })
                    .map(|(.., hash)| hash.clone());
                BackfillCandidate {
                    record,
                    stored_hash,
                }
            })
            .collect())
    }
    async fn insert_jobs(&self, jobs: &[JobRow]) -> Result<(), Fault> {
        self.jobs.borrow_mut().extend(jobs.iter().cloned());
        Ok(())
    }
    async fn mark_jobs_failed(
        &self,
        organization_id: &str,
        job_ids: &[Uuid],
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault> {
        for job in self.jobs.borrow_mut().iter_mut() {
            if job.organization_id == organization_id
                && job_ids.iter().any(|id| id.to_string() == job.id)
            {
                job.status = "failed".into();
                job.last_error = Some(error.into());
                job.completed_at = Some(now_ms);
            }
        }
        Ok(())
    }
    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault> {
        Ok(self
            .jobs
            .borrow()
            .iter()
            .find(|j| j.id == job_id.to_string() && j.organization_id == organization_id)
            .cloned())
    }
    async fn jobs(&self, organization_id: &str, filter: &JobFilter) -> Result<Vec<JobRow>, Fault> {
        let mut rows: Vec<JobRow> = self
            .jobs
            .borrow()
            .iter()
            .filter(|j| j.organization_id == organization_id)
            .filter(|j| filter.status.is_none_or(|s| j.status == s.as_str()))
            .filter(|j| filter.backfill_id.is_none() || j.backfill_id == filter.backfill_id)
            .filter(|j| {
                filter
                    .before
                    .as_ref()
                    .is_none_or(|(at, id)| (j.created_at, &j.id) < (*at, id))
            })
            .cloned()
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.truncate(filter.limit as usize);
        Ok(rows)
    }
    async fn requeue_job(&self, replay: &EmbeddingJob, now_ms: i64) -> Result<bool, Fault> {
        let mut jobs = self.jobs.borrow_mut();
        let job = jobs.iter_mut().find(|j| {
            j.id == replay.job_id.to_string()
                && j.organization_id == replay.organization_id
                && JobStatus::parse(&j.status)
                    .is_some_and(|status| status.can_replay(j.updated_at, now_ms))
        });
        Ok(job.is_some_and(|job| {
            job.status = "queued".into();
            job.content.clone_from(&replay.content);
            job.content_hash.clone_from(&replay.content_hash);
            job.updated_at = now_ms;
            job.completed_at = None;
            true
        }))
    }

    async fn table_health(
        &self,
        table: &TableConfig,
        organization_id: &str,
        _now_ms: i64,
    ) -> Result<TableHealth, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        let sets: Vec<SetRow> = self
            .sets
            .borrow()
            .iter()
            .filter(|s| s.organization_id == organization_id && s.table_name == table.name)
            .filter(|s| s.role().is_some())
            .cloned()
            .collect();
        let jobs = self.jobs.borrow();
        let of_table: Vec<&JobRow> = jobs
            .iter()
            .filter(|j| {
                j.organization_id == organization_id && j.table_name.as_deref() == Some(&table.name)
            })
            .collect();
        let with = |statuses: &[&str]| {
            of_table
                .iter()
                .filter(|j| statuses.contains(&j.status.as_str()))
                .count() as u64
        };
        let vectors = self
            .vectors
            .iter()
            .filter(|(org, t, _, _)| org == organization_id && *t == table.name)
            .count() as u64;
        let building = sets.iter().any(|s| s.role() == Some(SetRole::Building));
        Ok(TableHealth {
            records: self
                .records
                .borrow()
                .iter()
                .filter(|(t, r)| *t == table.name && r["organization_id"] == organization_id)
                .count() as u64,
            embedded: vectors,
            coverage: building.then_some((0, vectors)),
            pending: with(&["queued", "processing"]),
            failed: with(&["failed"]),
            dead: with(&["dead"]),
            oldest_pending_at: of_table
                .iter()
                .filter(|j| matches!(j.status.as_str(), "queued" | "processing"))
                .map(|j| j.created_at)
                .min(),
            last_error: of_table
                .iter()
                .filter_map(|j| {
                    Some(LastError {
                        id: j.id.clone(),
                        status: j.status.clone(),
                        message: j.last_error.clone()?,
                        updated_at: j.updated_at,
                    })
                })
                .max_by_key(|e| e.updated_at),
            sets,
        })
    }

    async fn ensure_sets(
        &self,
        table: &TableConfig,
        organization_id: &str,
        _now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<SetRow>), Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        let configured = VectorSet::configured(table);
        let mut sets = self.sets.borrow_mut();
        let row = |role: SetRole| SetRow {
            organization_id: organization_id.into(),
            table_name: table.name.clone(),
            model: configured.model.clone(),
            location: configured.location.clone(),
            role: role.as_str().into(),
            migration_id: (role == SetRole::Building).then(|| Uuid::new_v4().to_string()),
            // As `embedding_sets.step_seq` starts: the first step is issued for 0.
            step_seq: 0,
            updated_at: 0,
        };
        let mine = |s: &SetRow| s.organization_id == organization_id && s.table_name == table.name;
        let active = sets
            .iter()
            .find(|s| mine(s) && s.role() == Some(SetRole::Active))
            .map(SetRow::set);
        let mut created = Vec::new();
        match active {
            None => created.push(row(SetRole::Active)),
            Some(active)
                if active != configured
                    && shared::sets::blocked(&active, &configured).is_none()
                    && !sets.iter().any(|s| {
                        mine(s) && s.set() == configured && s.role() == Some(SetRole::Building)
                    })
                    // Not where a retiring set is still being removed.
                    && !sets.iter().any(|s| {
                        mine(s)
                            && s.role() == Some(SetRole::Retiring)
                            && s.location == configured.location
                            && (s.model == configured.model || s.set().binding().is_some())
                    }) =>
            {
                created.push(row(SetRole::Building));
            }
            Some(_) => {}
        }
        sets.extend(created.iter().cloned());
        let live = sets
            .iter()
            .filter(|s| mine(s) && s.role() != Some(SetRole::Retiring))
            .cloned()
            .collect();
        Ok((created, live))
    }
}

#[derive(Default)]
pub(super) struct FakeQueue {
    pub(super) sent: RefCell<Vec<EmbeddingJob>>,
    pub(super) batches: RefCell<Vec<usize>>,
    pub(super) steps: RefCell<Vec<MigrationStep>>,
    /// The jobs sent on the bulk lane.
    pub(super) bulk: RefCell<Vec<Uuid>>,
    pub(super) down: bool,
    /// `sendBatch` calls under way now, and the most that ever were at once (each call yields
    /// once, as a round trip to the queue would).
    in_flight: Cell<usize>,
    pub(super) most_in_flight: Cell<usize>,
}

/// Pending once, then ready: the point where a real call would wait on its round trip.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

impl JobQueue for FakeQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue down".into()));
        }
        self.sent.borrow_mut().push(job.clone());
        Ok(())
    }
    async fn send_bulk(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue down".into()));
        }
        self.batches.borrow_mut().push(jobs.len());
        self.bulk
            .borrow_mut()
            .extend(jobs.iter().map(|job| job.job_id));
        self.sent.borrow_mut().extend(jobs.iter().cloned());
        self.in_flight.set(self.in_flight.get() + 1);
        self.most_in_flight
            .set(self.most_in_flight.get().max(self.in_flight.get()));
        YieldOnce(false).await;
        self.in_flight.set(self.in_flight.get() - 1);
        Ok(())
    }
    async fn send_step(&self, step: &MigrationStep) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue down".into()));
        }
        self.steps.borrow_mut().push(step.clone());
        Ok(())
    }
}

/// search-worker: answers each method with its canned value (or, down, with a failed call),
/// as the RPC outcome the real one sends, and records what it was sent.
#[derive(Default)]
pub(super) struct FakeSearch {
    pub(super) down: bool,
    pub(super) answers: Vec<(&'static str, Value)>,
    pub(super) calls: RefCell<Vec<(String, Vec<Value>)>>,
}

impl FakeSearch {
    pub(super) fn answering(answers: &[(&'static str, Value)]) -> SearchClient<Self> {
        SearchClient::new(FakeSearch {
            answers: answers.to_vec(),
            ..FakeSearch::default()
        })
    }

    pub(super) fn down() -> SearchClient<Self> {
        SearchClient::new(FakeSearch {
            down: true,
            ..FakeSearch::default()
        })
    }
}

impl Transport for FakeSearch {
    async fn call(&self, method: &'static str, args: Vec<Value>) -> Result<Value, Fault> {
        self.calls.borrow_mut().push((method.to_owned(), args));
        if self.down {
            return Err(Fault("binding refused".into()));
        }
        let answer = self.answers.iter().find(|(name, _)| *name == method);
        Ok(rpc::outcome(
            answer
                .map(|(_, value)| value.clone())
                .ok_or_else(|| ApiError::not_found(format!("no method `{method}`"))),
        ))
    }
}

/// Records the records brought in line with D1.
#[derive(Default)]
pub(super) struct FakeIndexes {
    pub(super) synced: RefCell<Vec<Vec<RecordKey>>>,
    pub(super) down: bool,
}

impl VectorIndexes for FakeIndexes {
    async fn sync(&self, records: &[RecordKey]) -> Result<Synced, Fault> {
        if self.down {
            return Err(Fault("Vectorize unavailable".into()));
        }
        self.synced.borrow_mut().push(records.to_vec());
        Ok(Synced::default())
    }
}

pub(super) struct Fakes;

/// Rate limits that count like the binding, at a limit a test sets per class (the class's own
/// limit otherwise), in a window that never ends.
#[derive(Default)]
pub(super) struct FakeLimits {
    pub(super) limits: RefCell<Vec<(RouteClass, u32)>>,
    counts: RefCell<std::collections::HashMap<(RouteClass, String), u32>>,
    pub(super) down: bool,
}

impl RateLimits for FakeLimits {
    async fn allow(&self, class: RouteClass, key: &str) -> Result<bool, Fault> {
        if self.down {
            return Err(Fault("rate limiter unavailable".into()));
        }
        let limit = self
            .limits
            .borrow()
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(class.limit(), |(_, n)| *n);
        let mut counts = self.counts.borrow_mut();
        let count = counts.entry((class, key.to_owned())).or_default();
        *count += 1;
        Ok(*count <= limit)
    }
}

impl Ports for Fakes {
    type Store = FakeStore;
    type Queue = FakeQueue;
    type Limits = FakeLimits;
    type Search = FakeSearch;
    type Indexes = FakeIndexes;
}

pub(super) fn session(
    user: &str,
    org: Option<&str>,
    expires_at: &str,
    role: Option<&str>,
) -> SessionRow {
    SessionRow {
        user_id: user.into(),
        active_organization_id: org.map(Into::into),
        expires_at: expires_at.into(),
        role: role.map(Into::into),
    }
}

pub(super) const LIVE: &str = "2099-01-01T00:00:00.000Z";

pub(super) fn claim(org: &str, id: &str, content: &str) -> (String, Record) {
    let record = json!({"id": id, "organization_id": org, "story_id": "s1", "content": content});
    ("claims".into(), record.as_object().unwrap().clone())
}

/// Ann owns `org_a`; Meg is a member and Vic a viewer there; Bob's session is expired; Cid has no
/// active organization; Dan's active organization is one he does not belong to; Zoe owns `org_b`.
pub(super) fn app() -> App<Fakes> {
    App {
        store: FakeStore {
            sessions: vec![
                (
                    "tok_ann".into(),
                    session("ann", Some("org_a"), LIVE, Some("owner")),
                ),
                (
                    "tok_meg".into(),
                    session("meg", Some("org_a"), LIVE, Some("member")),
                ),
                (
                    "tok_vic".into(),
                    session("vic", Some("org_a"), LIVE, Some("viewer")),
                ),
                (
                    "tok_bob".into(),
                    session(
                        "bob",
                        Some("org_a"),
                        "2026-01-01T00:00:00.000Z",
                        Some("owner"),
                    ),
                ),
                ("tok_cid".into(), session("cid", None, LIVE, None)),
                ("tok_dan".into(), session("dan", Some("org_a"), LIVE, None)),
                (
                    "tok_zoe".into(),
                    session("zoe", Some("org_b"), LIVE, Some("owner")),
                ),
            ],
            records: RefCell::new(vec![
                claim("org_a", "clm_1", "Police arrested three suspects"),
                claim("org_b", "clm_b1", "Another tenant's claim"),
            ]),
            ..FakeStore::default()
        },
        queue: FakeQueue::default(),
        limits: FakeLimits::default(),
        search: FakeSearch::answering(&[(
            "health",
            json!({"worker": "search-worker", "d1": true}),
        )]),
        indexes: FakeIndexes::default(),
        auth_secret: Some(SECRET.into()),
        sessions: Rc::new(RefCell::new(Expiring::new(
            crate::auth::SESSION_TRUST_MS,
            crate::auth::SESSION_CACHE_ENTRIES,
        ))),
        config: worker_kit::config::config(),
        now_ms: NOW,
    }
}

pub(super) fn cookie(token: &str) -> String {
    session_cookie(token, SECRET.as_bytes())
}

pub(super) fn as_user(user: &str, request: HttpRequest) -> HttpRequest {
    request.with_header("cookie", &cookie(&format!("tok_{user}")))
}

pub(super) fn as_ann(request: HttpRequest) -> HttpRequest {
    as_user("ann", request)
}

pub(super) async fn send(app: &App<Fakes>, request: HttpRequest) -> HttpResponse {
    handle(app, &request).await
}
