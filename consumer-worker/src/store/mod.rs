//! The consumer's [`JobStore`] over D1: jobs, records and the D1 vector store. Two round trips
//! a batch: one to record the deliveries and read what deciding needs, one to write every
//! result. Each is a handful of statements whatever the batch's size: D1 counts every statement
//! of a `batch()` as a query (50 an invocation on the Free plan), so rows travel as JSON
//! parameters read with `json_each`, never one statement a job. Request data reaches SQL only as
//! bound parameters; table and column names only from the validated config.
//!
//! - [`load`]: the read round trip, assembled into each job's [`crate::ports::Loaded`];
//! - [`commit`]: the write round trip, vectors first (each set's row, then the record's
//!   embedding column), then the jobs they end;
//! - [`jobs`]: the statements on `embedding_jobs`.
//!
//! Statements on `embedding_vectors` are `worker_kit::vector_rows`'s.

mod commit;
mod jobs;
mod load;

/// The items a batch stores its records with, which the tests' fake store records too.
#[cfg(all(test, target_arch = "wasm32"))]
pub(crate) use commit::RecordItems;

use std::cell::Cell;

use serde_json::Value;
use shared::config::Config;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};
use worker_kit::d1;
use worker_kit::Fault;

use crate::ports::{DeadJob, JobStore, LoadedBatch, Write};

/// Jobs, records and the D1 vector store.
#[derive(Debug)]
pub(crate) struct D1Store {
    pub db: D1Database,
    pub config: &'static Config,
    /// Statements run so far, for the batch's log line.
    pub statements: Cell<usize>,
}

impl D1Store {
    /// Adds `n` to the statements this store has run.
    pub(crate) fn count(&self, n: usize) {
        self.statements.set(self.statements.get() + n);
    }

    /// Runs `statements` in one transaction (none: no round trip), counting them.
    pub(crate) async fn run_batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<(), Fault> {
        self.count(statements.len());
        d1::run_batch(&self.db, statements).await
    }

    /// `sql` once per chunk of `items` ([`d1::over_chunks`]).
    pub(crate) fn over_chunks(
        &self,
        items: &[Value],
        sql: &str,
        rest: &[JsValue],
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        d1::over_chunks(&self.db, items, sql, rest)
    }
}

impl JobStore for D1Store {
    async fn load(&self, jobs: &[&EmbeddingJob], now_ms: i64) -> Result<LoadedBatch, Fault> {
        self.load_batch(jobs, now_ms).await
    }

    async fn commit(&self, writes: &[Write<'_>], now_ms: i64) -> Result<(), Fault> {
        self.commit_batch(writes, now_ms).await
    }

    async fn mark_dead(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault> {
        self.mark_jobs_dead(jobs, now_ms).await
    }

    async fn mark_unindexed(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault> {
        self.mark_done_jobs_dead(jobs, now_ms).await
    }

    fn statements(&self) -> usize {
        self.statements.get()
    }

    async fn stuck_jobs(
        &self,
        unmoved_since: i64,
        limit: u32,
    ) -> Result<Vec<(EmbeddingJob, Lane)>, Fault> {
        self.open_jobs_unmoved(unmoved_since, limit).await
    }

    async fn touch(&self, jobs: &[EmbeddingJob], now_ms: i64) -> Result<(), Fault> {
        self.touch_jobs(jobs, now_ms).await
    }
}
