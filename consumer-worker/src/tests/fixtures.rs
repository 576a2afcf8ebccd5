//! The fakes every consumer test runs over (the job store, the embedder, the queues, the
//! vector indexes), the config they read, and the builders of jobs and deliveries.

use std::cell::{Cell, RefCell};

use serde_json::Value;
use shared::ai::{EmbeddingResult, FailureKind};
use shared::config::Config;
use shared::disposition::RetryPolicy;
use shared::freshness::{RecordState, StoredVersion};
use shared::job::JobStatus;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::models::{self, ModelSpec};
use shared::sets::{MigrationStep, SetRole, VectorSet};
use uuid::Uuid;
use worker_kit::embedder::{EmbedError, Embedder};
use worker_kit::index_sync::{RecordKey, Synced};
use worker_kit::Fault;

use crate::deliveries::{Consumer, Settle};
use crate::ports::{
    DeadJob, Delivery, Destination, Embedded, JobStore, LiveSet, Loaded, LoadedBatch, Requeue,
    VectorIndexes, Write,
};
use crate::store::RecordItems;

pub(super) const CONFIG: &str = r#"
[[table]]
name = "claims"
columns = ["id", "organization_id", "story_id", "content", "embedding"]
writable = ["story_id", "content"]
[table.embeddings]
fields = ["content"]
metadata = ["story_id"]

[[table]]
name = "notes"
columns = ["id", "organization_id", "body", "embedding"]
[table.embeddings]
fields = ["body"]
model = "@cf/baai/bge-small-en-v1.5"
vector_index = { backend = "vectorize", binding = "VECTORIZE_384" }
"#;

pub(super) fn config() -> Config {
    Config::parse(CONFIG).unwrap()
}

/// What a write looked like, owned, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Written {
    Embedded {
        job_id: String,
        table: Option<String>,
        dims: usize,
        truncated: bool,
    },
    Finished {
        job_id: String,
        status: JobStatus,
        reason: Option<String>,
    },
    Failed {
        job_id: String,
        error: String,
    },
    Touched {
        job_id: String,
        sets: usize,
    },
}

/// The dimensions of each set vector of every embedded write, in order.
pub(super) fn set_dims(store: &FakeStore) -> Vec<Vec<usize>> {
    store.set_dims.borrow().clone()
}

#[derive(Default)]
pub(super) struct FakeStore {
    /// What `load` answers per job id; a job not listed is a fresh unbound job.
    pub(super) states: RefCell<Vec<(Uuid, Option<Loaded>)>>,
    pub(super) loads: Cell<usize>,
    pub(super) commits: RefCell<Vec<Vec<Written>>>,
    pub(super) dead: RefCell<Vec<DeadJob>>,
    pub(super) unindexed: RefCell<Vec<DeadJob>>,
    /// Open jobs of a backfill: the bulk lane's.
    pub(super) bulk_jobs: RefCell<Vec<Uuid>>,
    pub(super) load_down: bool,
    pub(super) commit_down: bool,
    /// Open jobs with the time each last moved, for the sweep.
    pub(super) open: RefCell<Vec<(EmbeddingJob, i64)>>,
    /// Each embedded write's set vectors' dimensions.
    pub(super) set_dims: RefCell<Vec<Vec<usize>>>,
    /// The embedding column's items the D1 store would send for the embedded writes
    /// (`crate::store::RecordItems`).
    pub(super) columns: RefCell<Vec<Value>>,
}

impl JobStore for FakeStore {
    async fn load(&self, jobs: &[&EmbeddingJob], _now: i64) -> Result<LoadedBatch, Fault> {
        self.loads.set(self.loads.get() + 1);
        if self.load_down {
            return Err(Fault("D1 busy".into()));
        }
        let states = self.states.borrow();
        let config = config();
        let jobs = jobs
            .iter()
            .map(|job| {
                let mut loaded = states
                    .iter()
                    .find(|(id, _)| *id == job.job_id)
                    .map_or_else(|| Some(fresh(RecordState::Unbound)), |(_, s)| s.clone())?;
                // A table's first set is the one its config names, as the real store makes it.
                if let Some(table) = job.table.as_deref().and_then(|t| config.table(t)) {
                    if loaded.sets.is_empty() {
                        loaded.sets.push(live(VectorSet::configured(table), None));
                    }
                }
                Some(loaded)
            })
            .collect();
        Ok(LoadedBatch {
            jobs,
            started: Vec::new(),
        })
    }

    async fn commit(&self, writes: &[Write<'_>], _now: i64) -> Result<(), Fault> {
        if self.commit_down {
            return Err(Fault("D1 busy".into()));
        }
        let written = writes
            .iter()
            .map(|w| match w {
                Write::Embedded(
                    embedded @ Embedded {
                        job, to, truncated, ..
                    },
                ) => {
                    let (table, dims) = match to {
                        Destination::JobRow(vector) => (None, vector.len()),
                        Destination::Sets(table, vectors) => {
                            self.set_dims
                                .borrow_mut()
                                .push(vectors.iter().map(|v| v.vector.len()).collect());
                            let items = RecordItems::of(table, &[embedded]).unwrap();
                            self.columns.borrow_mut().extend(items.columns);
                            (
                                Some(table.name.clone()),
                                vectors.first().map_or(0, |v| v.vector.len()),
                            )
                        }
                    };
                    Written::Embedded {
                        job_id: job.job_id.to_string(),
                        table,
                        dims,
                        truncated: *truncated,
                    }
                }
                Write::Touched { job, sets, .. } => Written::Touched {
                    job_id: job.job_id.to_string(),
                    sets: sets.len(),
                },
                Write::Finished {
                    job_id,
                    status,
                    reason,
                    ..
                } => Written::Finished {
                    job_id: job_id.clone(),
                    status: *status,
                    reason: reason.clone(),
                },
                Write::Rejected { job, reason } => Written::Finished {
                    job_id: job.job_id.clone(),
                    status: JobStatus::Dead,
                    reason: Some(reason.clone()),
                },
                Write::Failed { job_id, error, .. } => Written::Failed {
                    job_id: job_id.clone(),
                    error: error.clone(),
                },
            })
            .collect();
        self.commits.borrow_mut().push(written);
        Ok(())
    }

    async fn mark_dead(&self, jobs: &[DeadJob], _now: i64) -> Result<(), Fault> {
        if self.commit_down {
            return Err(Fault("D1 busy".into()));
        }
        self.dead.borrow_mut().extend(jobs.iter().cloned());
        Ok(())
    }

    async fn mark_unindexed(&self, jobs: &[DeadJob], _now: i64) -> Result<(), Fault> {
        if self.commit_down {
            return Err(Fault("D1 busy".into()));
        }
        self.unindexed.borrow_mut().extend(jobs.iter().cloned());
        Ok(())
    }

    async fn stuck_jobs(
        &self,
        unmoved_since: i64,
        limit: u32,
    ) -> Result<Vec<(EmbeddingJob, Lane)>, Fault> {
        let mut open = self.open.borrow().clone();
        open.sort_by_key(|(_, moved)| *moved);
        let bulk = self.bulk_jobs.borrow();
        Ok(open
            .into_iter()
            .filter(|(_, moved)| *moved <= unmoved_since)
            .take(limit as usize)
            .map(|(job, _)| {
                let lane = if bulk.contains(&job.job_id) {
                    Lane::Bulk
                } else {
                    Lane::Live
                };
                (job, lane)
            })
            .collect())
    }

    async fn touch(&self, jobs: &[EmbeddingJob], now: i64) -> Result<(), Fault> {
        for (job, moved) in self.open.borrow_mut().iter_mut() {
            if jobs.iter().any(|j| j.job_id == job.job_id) {
                *moved = now;
            }
        }
        Ok(())
    }

    /// The fake has no statements: one per round trip, as if each were one.
    fn statements(&self) -> usize {
        self.loads.get() + self.commits.borrow().len()
    }
}

pub(super) fn fresh(record: RecordState) -> Loaded {
    Loaded {
        created_at: 100,
        record,
        sets: Vec::new(),
        copies: Vec::new(),
    }
}

pub(super) fn live(set: VectorSet, stored: Option<StoredVersion>) -> LiveSet {
    LiveSet {
        set,
        role: SetRole::Active,
        stored,
    }
}

pub(super) fn set(model: &str, location: &str) -> VectorSet {
    VectorSet {
        model: model.into(),
        location: location.into(),
    }
}

/// The version a set holds when `job`'s content was embedded by another job at `at`.
pub(super) fn stored_like(job: &EmbeddingJob, model: &str, at: i64) -> StoredVersion {
    StoredVersion {
        content_hash: shared::message::content_hash(model, &job.content),
        job_id: Uuid::nil().to_string(),
        job_created_at: at,
    }
}

/// Embeds each text as a vector of the model's dimension; fails as told.
#[derive(Default)]
pub(super) struct FakeEmbedder {
    pub(super) calls: RefCell<Vec<usize>>,
    /// Every call fails with this.
    pub(super) down: Option<FailureKind>,
    /// A call containing this text is refused (permanently).
    pub(super) poison: Option<String>,
}

impl Embedder for FakeEmbedder {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        self.calls.borrow_mut().push(texts.len());
        if let Some(kind) = self.down {
            return Err(EmbedError {
                kind,
                message: "Workers AI answered 500".into(),
            });
        }
        if self.poison.as_ref().is_some_and(|p| texts.contains(p)) {
            return Err(EmbedError {
                kind: FailureKind::Permanent,
                message: "Workers AI answered 400: cannot embed".into(),
            });
        }
        Ok(EmbeddingResult {
            shape: vec![texts.len(), model.dimensions],
            data: texts.iter().map(|_| vec![0.5; model.dimensions]).collect(),
            pooling: None,
        })
    }
}

#[derive(Default)]
pub(super) struct FakeQueues {
    /// `sendBatch` calls made.
    pub(super) sends: Cell<usize>,
    pub(super) retried: RefCell<Vec<(EmbeddingJob, u32)>>,
    /// The lane each retried job was sent on, in the same order.
    pub(super) lanes: RefCell<Vec<Lane>>,
    pub(super) dead_lettered: RefCell<Vec<EmbeddingJob>>,
    pub(super) steps: RefCell<Vec<(MigrationStep, u32)>>,
    pub(super) down: bool,
}

impl Requeue for FakeQueues {
    async fn retry(&self, lane: Lane, jobs: &[(EmbeddingJob, u32)]) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue unavailable".into()));
        }
        self.sends.set(self.sends.get() + 1);
        self.retried.borrow_mut().extend(jobs.iter().cloned());
        self.lanes.borrow_mut().extend(jobs.iter().map(|_| lane));
        Ok(())
    }

    async fn dead_letter(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue unavailable".into()));
        }
        self.sends.set(self.sends.get() + 1);
        self.dead_lettered.borrow_mut().extend(jobs.iter().cloned());
        Ok(())
    }

    async fn steps(&self, steps: &[(MigrationStep, u32)]) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue unavailable".into()));
        }
        self.sends.set(self.sends.get() + 1);
        self.steps.borrow_mut().extend(steps.iter().cloned());
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct FakeIndexes {
    pub(super) synced: RefCell<Vec<Vec<RecordKey>>>,
    pub(super) down: bool,
    /// Records whose vector the index refuses on its own.
    pub(super) refuses: Vec<String>,
}

impl VectorIndexes for FakeIndexes {
    async fn sync(&self, records: &[RecordKey]) -> Result<Synced, Fault> {
        if self.down {
            return Err(Fault("Vectorize unavailable".into()));
        }
        self.synced.borrow_mut().push(records.to_vec());
        let refused: Vec<(RecordKey, String)> = records
            .iter()
            .filter(|r| self.refuses.contains(&r.record_id))
            .map(|r| (r.clone(), "metadata too large".to_owned()))
            .collect();
        Ok(Synced {
            upserted: records.len() - refused.len(),
            deleted: 0,
            statements: 2,
            refused,
        })
    }

    async fn delete(&self, _binding: &str, _vector_ids: &[String]) -> Result<(), Fault> {
        Ok(())
    }
}

#[derive(Default)]
pub(super) struct World {
    pub(super) store: FakeStore,
    pub(super) embedder: FakeEmbedder,
    pub(super) queues: FakeQueues,
    pub(super) indexes: FakeIndexes,
    /// The queue the batches come from.
    pub(super) lane: Lane,
}

impl World {
    /// A world whose AI fails every call transiently.
    pub(super) fn ai_down() -> Self {
        World {
            embedder: FakeEmbedder {
                down: Some(FailureKind::Transient),
                ..FakeEmbedder::default()
            },
            ..World::default()
        }
    }

    pub(super) async fn run(&self, messages: &[Delivery]) -> Vec<Settle> {
        let config = config();
        Consumer {
            store: &self.store,
            embedder: &self.embedder,
            requeue: &self.queues,
            indexes: &self.indexes,
            config: &config,
            policy: RetryPolicy::default(),
            lane: self.lane,
        }
        .handle(messages, 1)
        .await
    }

    pub(super) fn written(&self) -> Vec<Written> {
        self.store
            .commits
            .borrow()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

pub(super) fn delivery(job: &EmbeddingJob) -> Delivery {
    body(serde_json::to_value(job).unwrap())
}

pub(super) fn body(body: Value) -> Delivery {
    Delivery {
        message_id: Uuid::new_v4().to_string(),
        body,
    }
}

pub(super) fn unbound(content: &str) -> EmbeddingJob {
    EmbeddingJob::new(
        Uuid::new_v4(),
        "org_a",
        models::DEFAULT_MODEL,
        content,
        None,
    )
}

pub(super) fn bound(table: &str, id: &str, content: &str) -> EmbeddingJob {
    let model = config().table(table).unwrap().embeddings.model.clone();
    EmbeddingJob::new(
        Uuid::new_v4(),
        "org_a",
        model,
        content,
        Some((table.into(), id.into())),
    )
    .with_record_text(content)
}
