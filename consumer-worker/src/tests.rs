//! The consumer's handling of both queues, run in wasm with fake bindings.

use std::cell::{Cell, RefCell};

use serde_json::{json, Value};
use shared::ai::{EmbeddingResult, FailureKind};
use shared::config::Config;
use shared::disposition::{RetryPolicy, MAX_RETRIES};
use shared::freshness::{RecordState, StoredVersion};
use shared::job::JobStatus;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::models::{self, ModelSpec};
use shared::sets::{MigrationStep, SetRole, VectorSet};
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::embedder::{EmbedError, Embedder};
use worker_kit::index_sync::{RecordKey, Synced};
use worker_kit::Fault;

use crate::deliveries::{Consumer, Settle};
use crate::ports::{
    DeadJob, Delivery, Destination, Embedded, JobStore, KeptCopy, LiveSet, Loaded, LoadedBatch,
    Requeue, VectorIndexes, Write,
};
use crate::{dead_letter, EMBEDDINGS_DLQ};

mod model_change;

const CONFIG: &str = r#"
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

fn config() -> Config {
    Config::parse(CONFIG).unwrap()
}

/// What a write looked like, owned, for assertions.
#[derive(Debug, Clone, PartialEq)]
enum Written {
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
fn set_dims(store: &FakeStore) -> Vec<Vec<usize>> {
    store.set_dims.borrow().clone()
}

#[derive(Default)]
struct FakeStore {
    /// What `load` answers per job id; a job not listed is a fresh unbound job.
    states: RefCell<Vec<(Uuid, Option<Loaded>)>>,
    loads: Cell<usize>,
    commits: RefCell<Vec<Vec<Written>>>,
    dead: RefCell<Vec<DeadJob>>,
    unindexed: RefCell<Vec<DeadJob>>,
    /// Open jobs of a backfill: the bulk lane's.
    bulk_jobs: RefCell<Vec<Uuid>>,
    load_down: bool,
    commit_down: bool,
    /// Open jobs with the time each last moved, for the sweep.
    open: RefCell<Vec<(EmbeddingJob, i64)>>,
    /// Each embedded write's set vectors' dimensions.
    set_dims: RefCell<Vec<Vec<usize>>>,
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
                Write::Embedded(Embedded {
                    job, to, truncated, ..
                }) => {
                    let (table, dims) = match to {
                        Destination::JobRow(vector) => (None, vector.len()),
                        Destination::Sets(table, vectors) => {
                            self.set_dims
                                .borrow_mut()
                                .push(vectors.iter().map(|v| v.vector.len()).collect());
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

fn fresh(record: RecordState) -> Loaded {
    Loaded {
        created_at: 100,
        record,
        sets: Vec::new(),
        copies: Vec::new(),
    }
}

fn live(set: VectorSet, stored: Option<StoredVersion>) -> LiveSet {
    LiveSet {
        set,
        role: SetRole::Active,
        stored,
    }
}

fn set(model: &str, location: &str) -> VectorSet {
    VectorSet {
        model: model.into(),
        location: location.into(),
    }
}

/// The version a set holds when `job`'s content was embedded by another job at `at`.
fn stored_like(job: &EmbeddingJob, model: &str, at: i64) -> StoredVersion {
    StoredVersion {
        content_hash: shared::message::content_hash(model, &job.content),
        job_id: Uuid::nil().to_string(),
        job_created_at: at,
    }
}

/// Embeds each text as a vector of the model's dimension; fails as told.
#[derive(Default)]
struct FakeEmbedder {
    calls: RefCell<Vec<usize>>,
    /// Every call fails with this.
    down: Option<FailureKind>,
    /// A call containing this text is refused (permanently).
    poison: Option<String>,
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
struct FakeQueues {
    /// `sendBatch` calls made.
    sends: Cell<usize>,
    retried: RefCell<Vec<(EmbeddingJob, u32)>>,
    /// The lane each retried job was sent on, in the same order.
    lanes: RefCell<Vec<Lane>>,
    dead_lettered: RefCell<Vec<EmbeddingJob>>,
    steps: RefCell<Vec<(MigrationStep, u32)>>,
    down: bool,
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
struct FakeIndexes {
    synced: RefCell<Vec<Vec<RecordKey>>>,
    down: bool,
    /// Records whose vector the index refuses on its own.
    refuses: Vec<String>,
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
struct World {
    store: FakeStore,
    embedder: FakeEmbedder,
    queues: FakeQueues,
    indexes: FakeIndexes,
    /// The queue the batches come from.
    lane: Lane,
}

impl World {
    async fn run(&self, messages: &[Delivery]) -> Vec<Settle> {
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

    fn written(&self) -> Vec<Written> {
        self.store
            .commits
            .borrow()
            .iter()
            .flatten()
            .cloned()
            .collect()
    }
}

fn delivery(job: &EmbeddingJob) -> Delivery {
    body(serde_json::to_value(job).unwrap())
}

fn body(body: Value) -> Delivery {
    Delivery {
        message_id: Uuid::new_v4().to_string(),
        body,
    }
}

fn unbound(content: &str) -> EmbeddingJob {
    EmbeddingJob::new(
        Uuid::new_v4(),
        "org_a",
        models::DEFAULT_MODEL,
        content,
        None,
    )
}

fn bound(table: &str, id: &str, content: &str) -> EmbeddingJob {
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

#[wasm_bindgen_test]
async fn a_batch_is_embedded_in_as_few_calls_as_the_limit_allows_and_written_once() {
    let world = World::default();
    let jobs: Vec<EmbeddingJob> = (0..150).map(|i| unbound(&format!("text {i}"))).collect();
    let small = EmbeddingJob::new(
        Uuid::new_v4(),
        "org_a",
        "@cf/baai/bge-small-en-v1.5",
        "small",
        None,
    );
    let mut messages: Vec<Delivery> = jobs.iter().map(delivery).collect();
    messages.push(delivery(&small));

    let settles = world.run(&messages).await;

    assert!(settles.iter().all(|s| *s == Settle::Ack));
    let mut calls = world.embedder.calls.borrow().clone();
    calls.sort_unstable();
    assert_eq!(
        calls,
        vec![1, 50, 100],
        "ceil(150/100) calls for one model, one for the other"
    );
    assert_eq!(world.store.loads.get(), 1, "one read round trip");
    assert_eq!(
        world.store.commits.borrow().len(),
        1,
        "one write round trip"
    );
    let written = world.written();
    assert_eq!(written.len(), 151);
    assert!(written.contains(&Written::Embedded {
        job_id: small.job_id.to_string(),
        table: None,
        dims: 384,
        truncated: false
    }));
}

#[wasm_bindgen_test]
async fn the_same_job_twice_in_a_batch_is_embedded_and_written_once() {
    let world = World::default();
    let job = unbound("twice");
    let settles = world.run(&[delivery(&job), delivery(&job)]).await;
    assert_eq!(settles, vec![Settle::Ack, Settle::Ack]);
    assert_eq!(*world.embedder.calls.borrow(), vec![1]);
    assert_eq!(world.written().len(), 1);
}

#[wasm_bindgen_test]
async fn a_job_already_final_is_acknowledged_without_work() {
    let world = World::default();
    let job = unbound("done before");
    world.store.states.borrow_mut().push((job.job_id, None));
    assert_eq!(world.run(&[delivery(&job)]).await, vec![Settle::Ack]);
    assert!(world.embedder.calls.borrow().is_empty());
    assert!(world.store.commits.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn stale_skipped_and_gone_jobs_make_no_ai_call() {
    let world = World::default();
    let stale = bound("claims", "clm_1", "old text");
    let skipped = bound("claims", "clm_2", "same text");
    let gone = bound("claims", "clm_3", "whatever");
    {
        let mut states = world.store.states.borrow_mut();
        states.push((
            stale.job_id,
            Some(fresh(RecordState::Present {
                text: "new text".into(),
            })),
        ));
        let mut unchanged = fresh(RecordState::Present {
            text: "same text".into(),
        });
        unchanged.sets.push(live(
            set(models::DEFAULT_MODEL, "d1"),
            Some(stored_like(&skipped, models::DEFAULT_MODEL, 50)),
        ));
        states.push((skipped.job_id, Some(unchanged)));
        states.push((gone.job_id, Some(fresh(RecordState::Missing))));
    }
    let settles = world
        .run(&[delivery(&stale), delivery(&skipped), delivery(&gone)])
        .await;
    assert_eq!(settles, vec![Settle::Ack; 3]);
    assert!(world.embedder.calls.borrow().is_empty());
    let written = world.written();
    let status_of = |id: Uuid| {
        written.iter().find_map(|w| match w {
            Written::Finished {
                job_id,
                status,
                reason,
            } if *job_id == id.to_string() => Some((*status, reason.clone())),
            _ => None,
        })
    };
    assert!(matches!(
        status_of(stale.job_id),
        Some((JobStatus::Stale, Some(_)))
    ));
    assert_eq!(status_of(skipped.job_id), Some((JobStatus::Skipped, None)));
    let (status, reason) = status_of(gone.job_id).unwrap();
    assert_eq!(status, JobStatus::Dead);
    assert!(reason.unwrap().contains("clm_3"));
}

#[wasm_bindgen_test]
async fn a_transient_ai_failure_is_sent_again_with_its_attempt_raised_then_dead_lettered() {
    let world = World {
        embedder: FakeEmbedder {
            down: Some(FailureKind::Transient),
            ..FakeEmbedder::default()
        },
        ..World::default()
    };
    let first = unbound("first try");
    let mut last = unbound("last try");
    last.attempt = MAX_RETRIES;
    let settles = world.run(&[delivery(&first), delivery(&last)]).await;
    assert_eq!(
        settles,
        vec![Settle::Ack, Settle::Ack],
        "acked once sent again"
    );

    let retried = world.queues.retried.borrow();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].0.job_id, first.job_id);
    assert_eq!(retried[0].0.attempt, 1);
    assert_eq!(retried[0].1, RetryPolicy::default().delay_seconds(0));
    assert_eq!(world.queues.dead_lettered.borrow()[0].job_id, last.job_id);
    // The error is kept on both rows, for the job route and the dead-letter handler.
    let failed = world
        .written()
        .iter()
        .filter(|w| matches!(w, Written::Failed { error, .. } if error.contains("500")))
        .count();
    assert_eq!(failed, 2);
}

#[wasm_bindgen_test]
async fn retries_go_back_in_as_few_send_batches_as_the_queue_allows() {
    let world = World {
        embedder: FakeEmbedder {
            down: Some(FailureKind::Transient),
            ..FakeEmbedder::default()
        },
        ..World::default()
    };
    let jobs: Vec<EmbeddingJob> = (0..150).map(|i| unbound(&format!("text {i}"))).collect();
    let messages: Vec<Delivery> = jobs.iter().map(delivery).collect();
    let settles = world.run(&messages).await;
    assert!(settles.iter().all(|s| *s == Settle::Ack));
    assert_eq!(world.queues.retried.borrow().len(), 150);
    assert_eq!(world.queues.sends.get(), 2, "100 and 50, not 150 sends");
}

#[wasm_bindgen_test]
async fn a_refused_text_dies_alone_and_the_rest_of_its_call_is_embedded() {
    let world = World {
        embedder: FakeEmbedder {
            poison: Some("poison".into()),
            ..FakeEmbedder::default()
        },
        ..World::default()
    };
    let good = unbound("good");
    let bad = unbound("poison");
    let settles = world.run(&[delivery(&good), delivery(&bad)]).await;
    assert_eq!(settles, vec![Settle::Ack, Settle::Ack]);
    assert_eq!(*world.embedder.calls.borrow(), vec![2, 1, 1]);
    let written = world.written();
    assert!(written.iter().any(
        |w| matches!(w, Written::Embedded { job_id, .. } if *job_id == good.job_id.to_string())
    ));
    assert!(written.iter().any(|w| matches!(w,
        Written::Finished { job_id, status: JobStatus::Dead, reason: Some(r) }
            if *job_id == bad.job_id.to_string() && r.contains("400"))));
    assert!(world.queues.retried.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn nothing_is_acknowledged_when_the_results_cannot_be_written() {
    let world = World {
        store: FakeStore {
            commit_down: true,
            ..FakeStore::default()
        },
        ..World::default()
    };
    let job = unbound("embedded but not stored");
    let settles = world.run(&[delivery(&job)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert_eq!(
        world.queues.retried.borrow()[0].0.job_id,
        job.job_id,
        "sent again, not lost"
    );

    let down = World {
        store: FakeStore {
            load_down: true,
            ..FakeStore::default()
        },
        queues: FakeQueues {
            down: true,
            ..FakeQueues::default()
        },
        ..World::default()
    };
    let settles = down.run(&[delivery(&job)]).await;
    assert_eq!(
        settles,
        vec![Settle::Retry { delay_seconds: 2 }],
        "with the queue down too, the runtime delivers it again"
    );
    assert!(down.embedder.calls.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn a_malformed_message_is_dead_without_blocking_the_others() {
    let world = World::default();
    let good = unbound("fine");
    let bad = unbound("original");
    let mut tampered = serde_json::to_value(&bad).unwrap();
    tampered["content"] = json!("edited after hashing");
    let settles = world
        .run(&[body(tampered), delivery(&good), body(json!("not a job"))])
        .await;
    assert_eq!(settles, vec![Settle::Ack; 3]);
    let written = world.written();
    assert!(written.iter().any(|w| matches!(w,
        Written::Finished { job_id, status: JobStatus::Dead, reason: Some(r) }
            if *job_id == bad.job_id.to_string() && r.contains("contentHash"))));
    assert_eq!(
        written.len(),
        2,
        "the body without a job id has no row to mark"
    );
}

fn note_key(id: &str) -> RecordKey {
    RecordKey {
        organization_id: "org_a".into(),
        table: "notes".into(),
        record_id: id.into(),
    }
}

#[wasm_bindgen_test]
async fn vectorize_tables_are_brought_in_line_with_d1_after_the_commit() {
    let world = World::default();
    let note = bound("notes", "note_1", "a note");
    let settles = world.run(&[delivery(&note)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert!(matches!(
        &world.written()[0],
        Written::Embedded { dims: 384, table: Some(t), .. } if t == "notes"
    ));
    assert_eq!(
        *world.indexes.synced.borrow(),
        vec![vec![note_key("note_1")]]
    );

    // Nothing committed, nothing to bring in line: the job comes back whole.
    let no_commit = World {
        store: FakeStore {
            commit_down: true,
            ..FakeStore::default()
        },
        ..World::default()
    };
    no_commit.run(&[delivery(&note)]).await;
    assert!(no_commit.indexes.synced.borrow().is_empty());
    assert_eq!(no_commit.queues.retried.borrow().len(), 1);
}

#[wasm_bindgen_test]
async fn a_failed_sync_is_retried_and_its_redelivery_only_syncs() {
    let note = bound("notes", "note_1", "a note");
    let down = World {
        indexes: FakeIndexes {
            down: true,
            ..FakeIndexes::default()
        },
        ..World::default()
    };
    down.run(&[delivery(&note)]).await;
    assert!(
        down.written()
            .iter()
            .any(|w| matches!(w, Written::Embedded { .. })),
        "D1 keeps the vector: it is the truth the index is brought in line with"
    );
    let retried = down.queues.retried.borrow().clone();
    assert_eq!(retried.len(), 1, "the job comes back to write the index");

    // The redelivery finds the job final: no AI call, no write, one sync.
    let again = World::default();
    again.store.states.borrow_mut().push((note.job_id, None));
    let settles = again.run(&[delivery(&retried[0].0)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert!(again.embedder.calls.borrow().is_empty());
    assert!(again.written().is_empty());
    assert_eq!(
        *again.indexes.synced.borrow(),
        vec![vec![note_key("note_1")]]
    );
}

#[wasm_bindgen_test]
async fn a_vector_the_index_refuses_fails_its_own_job_and_no_other() {
    let world = World {
        indexes: FakeIndexes {
            refuses: vec!["note_2".into()],
            ..FakeIndexes::default()
        },
        ..World::default()
    };
    let notes = [
        bound("notes", "note_1", "a note"),
        bound("notes", "note_2", "a poisoned note"),
        bound("notes", "note_3", "another note"),
    ];
    let deliveries: Vec<Delivery> = notes.iter().map(delivery).collect();
    let settles = world.run(&deliveries).await;
    assert_eq!(settles, vec![Settle::Ack; 3]);
    assert!(
        world.queues.retried.borrow().is_empty(),
        "nothing is tried again: the refusal was one record's"
    );
    let unindexed = world.store.unindexed.borrow().clone();
    assert_eq!(unindexed.len(), 1, "{unindexed:?}");
    assert_eq!(unindexed[0].job_id, notes[1].job_id.to_string());
    assert!(
        unindexed[0].reason.contains("metadata too large"),
        "{unindexed:?}"
    );
}

#[wasm_bindgen_test]
async fn a_table_moved_to_vectorize_copies_d1_vectors_without_ai_calls() {
    let world = World::default();
    let note = bound("notes", "note_1", "a note");
    let earlier = bound("notes", "note_1", "a note");
    let small = "@cf/baai/bge-small-en-v1.5";
    let kept = StoredVersion {
        job_id: earlier.job_id.to_string(),
        ..stored_like(&note, small, 50)
    };
    // The table moved from D1 to Vectorize: its D1 set is active, the Vectorize one building.
    world.store.states.borrow_mut().push((
        note.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, "d1"), Some(kept.clone())),
                LiveSet {
                    role: SetRole::Building,
                    ..live(set(small, "vectorize:VECTORIZE_384"), None)
                },
            ],
            copies: vec![KeptCopy {
                model: small.into(),
                content_hash: note.content_hash.clone(),
                vector: vec![0.25; 384],
            }],
            ..fresh(RecordState::Present {
                text: "a note".into(),
            })
        }),
    ));
    let settles = world.run(&[delivery(&note)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert!(world.embedder.calls.borrow().is_empty(), "no AI call");
    assert!(matches!(
        &world.written()[0],
        Written::Embedded { job_id, dims: 384, .. } if *job_id == note.job_id.to_string()
    ));
    assert_eq!(world.indexes.synced.borrow().len(), 1);

    // Already where the table keeps vectors: skipped, as before.
    let here = World::default();
    here.store.states.borrow_mut().push((
        note.job_id,
        Some(Loaded {
            sets: vec![live(set(small, "vectorize:VECTORIZE_384"), Some(kept))],
            ..fresh(RecordState::Present {
                text: "a note".into(),
            })
        }),
    ));
    here.run(&[delivery(&note)]).await;
    assert!(matches!(
        &here.written()[0],
        Written::Finished {
            status: JobStatus::Skipped,
            ..
        }
    ));
    assert!(
        here.indexes.synced.borrow().is_empty(),
        "a skipped job wrote nothing to bring in line"
    );
}

#[wasm_bindgen_test]
async fn long_content_is_truncated_and_the_job_says_so() {
    let world = World::default();
    let long = unbound(&"word ".repeat(2_000));
    world.run(&[delivery(&long)]).await;
    assert!(matches!(
        world.written()[0],
        Written::Embedded {
            truncated: true,
            ..
        }
    ));
}

#[wasm_bindgen_test]
async fn dead_lettered_jobs_are_marked_dead_or_come_back() {
    let store = FakeStore::default();
    let job = unbound("exhausted");
    let (sets, queues) = (model_change::FakeSets::default(), FakeQueues::default());
    let settles = dead_letter::handle(&store, &sets, &queues, &[delivery(&job)], 1).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert_eq!(store.dead.borrow()[0].job_id, job.job_id.to_string());
    assert_eq!(
        store.dead.borrow()[0].reason,
        dead_letter::RETRIES_EXHAUSTED
    );

    let down = FakeStore {
        commit_down: true,
        ..FakeStore::default()
    };
    let settles = dead_letter::handle(&down, &sets, &queues, &[delivery(&job)], 1).await;
    assert!(
        matches!(settles[0], Settle::Retry { .. }),
        "never dropped unrecorded"
    );
}

#[wasm_bindgen_test]
fn queue_names_match_the_wrangler_config() {
    let toml = include_str!("../../wrangler/consumer-worker.toml");
    for lane in [Lane::Live, Lane::Bulk] {
        let consumer = format!("[[queues.consumers]]\nqueue = \"{}\"", lane.queue());
        assert!(toml.contains(&consumer), "{consumer}");
        let producer = format!(
            "binding = \"{}\"\nqueue = \"{}\"",
            lane.binding(),
            lane.queue()
        );
        assert!(toml.contains(&producer), "{producer}");
    }
    assert!(toml.contains(&format!("queue = \"{EMBEDDINGS_DLQ}\"")));
    assert!(toml.contains(&format!("max_retries = {MAX_RETRIES} ")));
}

#[wasm_bindgen_test]
async fn the_sweep_sends_again_the_jobs_left_open_too_long() {
    use shared::job::STUCK_AFTER_MS;

    let world = World::default();
    let now = 10 * STUCK_AFTER_MS;
    let (lost, moving) = (unbound("lost in the queue"), unbound("still moving"));
    world.store.open.borrow_mut().extend([
        (lost.clone(), now - STUCK_AFTER_MS),
        (moving.clone(), now - STUCK_AFTER_MS + 1),
    ]);
    let swept = crate::sweep::sweep(&world.store, &world.queues, now).await;
    assert_eq!((swept.found, swept.sent), (1, 1));
    let retried = world.queues.retried.borrow().clone();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].0.job_id, retried[0].1), (lost.job_id, 0));
    assert_eq!(retried[0].0.content, "lost in the queue");
    // Marked as just handled: the next sweep, a minute later, leaves it be (and takes the other,
    // stuck by then).
    let again = crate::sweep::sweep(&world.store, &world.queues, now + 60_000).await;
    assert_eq!(again.found, 1);
    assert_eq!(
        world.queues.retried.borrow().last().unwrap().0.job_id,
        moving.job_id
    );

    // A queue that refuses: nothing is marked, so the next sweep tries again.
    let down = World {
        queues: FakeQueues {
            down: true,
            ..FakeQueues::default()
        },
        ..World::default()
    };
    down.store.open.borrow_mut().push((lost.clone(), 0));
    assert_eq!(
        crate::sweep::sweep(&down.store, &down.queues, now)
            .await
            .sent,
        0
    );
    assert_eq!(down.store.open.borrow()[0].1, 0);
}

#[wasm_bindgen_test]
async fn the_sweep_and_a_batchs_retries_keep_each_job_on_its_lane() {
    use shared::job::STUCK_AFTER_MS;

    let world = World::default();
    let (live, bulk) = (unbound("a live write"), unbound("a backfill's job"));
    world.store.bulk_jobs.borrow_mut().push(bulk.job_id);
    world
        .store
        .open
        .borrow_mut()
        .extend([(live.clone(), 0), (bulk.clone(), 0)]);
    let swept = crate::sweep::sweep(&world.store, &world.queues, 2 * STUCK_AFTER_MS).await;
    assert_eq!(swept.sent, 2);
    let sent: Vec<(Uuid, Lane)> = world
        .queues
        .retried
        .borrow()
        .iter()
        .map(|(job, _)| job.job_id)
        .zip(world.queues.lanes.borrow().iter().copied())
        .collect();
    assert!(sent.contains(&(live.job_id, Lane::Live)), "{sent:?}");
    assert!(sent.contains(&(bulk.job_id, Lane::Bulk)), "{sent:?}");

    // A failed attempt from the bulk queue is tried again on the bulk queue.
    let from_bulk = World {
        embedder: FakeEmbedder {
            down: Some(FailureKind::Transient),
            ..FakeEmbedder::default()
        },
        lane: Lane::Bulk,
        ..World::default()
    };
    from_bulk.run(&[delivery(&unbound("page job"))]).await;
    assert_eq!(*from_bulk.queues.lanes.borrow(), vec![Lane::Bulk]);
}

#[wasm_bindgen_test]
fn a_model_change_step_goes_to_the_queue_as_plain_objects() {
    use worker::js_sys::{Map, Reflect};
    use worker::wasm_bindgen::JsCast;
    let step = MigrationStep::new(shared::sets::Migration {
        organization_id: "org_a".into(),
        table: "notes".into(),
        model: models::DEFAULT_MODEL.into(),
        location: "d1".into(),
        migration_id: Uuid::new_v4(),
        seq: 3,
        step: shared::sets::Step::Switch {
            attempt: 2,
            covered_at: Some(5),
        },
    });
    // What the queue binding is handed (`MessageBuilder` serializes with serde-wasm-bindgen).
    let js = serde_wasm_bindgen::to_value(&step).unwrap();
    let migration = Reflect::get(&js, &"migration".into()).unwrap();
    let inner = Reflect::get(&migration, &"step".into()).unwrap();
    for value in [&js, &migration, &inner] {
        assert!(
            value.is_object() && !value.is_instance_of::<Map>(),
            "a JS Map: {value:?}"
        );
    }
    // And what the consumer reads back off the queue.
    let body: Value = serde_wasm_bindgen::from_value(js).unwrap();
    assert!(MigrationStep::is_step(&body));
    assert_eq!(MigrationStep::decode(body).unwrap(), step);
}

#[wasm_bindgen_test]
async fn while_a_model_changes_a_write_is_embedded_with_both_models_into_both_sets() {
    let world = World::default();
    // claims is configured with bge-base; its searches still read a bge-small set.
    let claim = bound("claims", "clm_1", "the new text");
    let small = "@cf/baai/bge-small-en-v1.5";
    world.store.states.borrow_mut().push((
        claim.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, "d1"), None),
                LiveSet {
                    role: SetRole::Building,
                    ..live(set(models::DEFAULT_MODEL, "d1"), None)
                },
            ],
            ..fresh(RecordState::Present {
                text: "the new text".into(),
            })
        }),
    ));
    let settles = world.run(&[delivery(&claim)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert_eq!(
        *world.embedder.calls.borrow(),
        vec![1, 1],
        "one call a model: a set's vector is always its own model's"
    );
    assert_eq!(set_dims(&world.store), vec![vec![384, 768]]);

    // A set that holds the text already (the building set, filled by the backfill) takes the
    // newer job's name instead of a second embedding.
    let again = World::default();
    let update = bound("claims", "clm_1", "the new text");
    again.store.states.borrow_mut().push((
        update.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, "d1"), Some(stored_like(&update, small, 10))),
                LiveSet {
                    role: SetRole::Building,
                    ..live(
                        set(models::DEFAULT_MODEL, "d1"),
                        Some(stored_like(&update, models::DEFAULT_MODEL, 10)),
                    )
                },
            ],
            ..fresh(RecordState::Present {
                text: "the new text".into(),
            })
        }),
    ));
    again.run(&[delivery(&update)]).await;
    assert!(again.embedder.calls.borrow().is_empty());
    assert_eq!(
        again.written(),
        vec![
            Written::Finished {
                job_id: update.job_id.to_string(),
                status: JobStatus::Skipped,
                reason: None,
            },
            Written::Touched {
                job_id: update.job_id.to_string(),
                sets: 2,
            },
        ]
    );
}
