//! Fakes of the ports over the worker's other bindings: the queue, search-worker, the
//! Vectorize indexes and the rate limits.

use std::cell::{Cell, RefCell};

use serde_json::Value;
use shared::message::EmbeddingJob;
use shared::rate::RouteClass;
use shared::rpc;
use shared::sets::MigrationStep;
use shared::ApiError;
use uuid::Uuid;
use worker_kit::index_sync::{RecordKey, Synced};
use worker_kit::search_client::{SearchClient, Transport};
use worker_kit::Fault;

use crate::ports::{JobQueue, RateLimits, VectorIndexes};

#[derive(Default)]
pub(in crate::tests) struct FakeQueue {
    pub(in crate::tests) sent: RefCell<Vec<EmbeddingJob>>,
    pub(in crate::tests) batches: RefCell<Vec<usize>>,
    pub(in crate::tests) steps: RefCell<Vec<MigrationStep>>,
    /// The jobs sent on the bulk lane.
    pub(in crate::tests) bulk: RefCell<Vec<Uuid>>,
    pub(in crate::tests) down: bool,
    /// `sendBatch` calls under way now, and the most that ever were at once (each call yields
    /// once, as a round trip to the queue would).
    in_flight: Cell<usize>,
    pub(in crate::tests) most_in_flight: Cell<usize>,
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
pub(in crate::tests) struct FakeSearch {
    pub(in crate::tests) down: bool,
    pub(in crate::tests) answers: Vec<(&'static str, Value)>,
    pub(in crate::tests) calls: RefCell<Vec<(String, Vec<Value>)>>,
}

impl FakeSearch {
    pub(in crate::tests) fn answering(answers: &[(&'static str, Value)]) -> SearchClient<Self> {
        SearchClient::new(FakeSearch {
            answers: answers.to_vec(),
            ..FakeSearch::default()
        })
    }

    pub(in crate::tests) fn down() -> SearchClient<Self> {
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
pub(in crate::tests) struct FakeIndexes {
    pub(in crate::tests) synced: RefCell<Vec<Vec<RecordKey>>>,
    pub(in crate::tests) down: bool,
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

/// Rate limits that count like the binding, at a limit a test sets per class (the class's own
/// limit otherwise), in a window that never ends.
#[derive(Default)]
pub(in crate::tests) struct FakeLimits {
    pub(in crate::tests) limits: RefCell<Vec<(RouteClass, u32)>>,
    counts: RefCell<std::collections::HashMap<(RouteClass, String), u32>>,
    pub(in crate::tests) down: bool,
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
