//! The steps of a model change (`shared::sets`), as they come off the bulk queue (`shared::lane`):
//!
//! - **backfill**: a page of the active set's live records, in id order, that the building set
//!   does not cover is enqueued as jobs of the change's backfill (tracked like any backfill:
//!   `GET /api/v1/embeddings/jobs?backfillId=…`); then the next page, or the switch;
//! - **switch**: once the building set covers the active one, one D1 transaction makes it
//!   active and the old set retiring; until then it looks again, soon at first, then less often;
//! - **cleanup**: a chunk of a retiring set's rows goes from Vectorize and D1; then the next,
//!   and once none is left the set goes. Each retiring set has a clean-up of its own (the
//!   switch sends the one of the set it retired).
//!
//! Every step is idempotent: delivered twice, it lists a page twice (enqueueing nothing a job
//! of the change is open for), checks coverage twice, or deletes what is already gone. And each
//! set has one chain of steps, however often it is started or a step delivered: a step runs
//! only once it has claimed its set at the seq it was issued for, and is dropped otherwise
//! (`shared::sets`, "One chain per set"). A step that fails after its claim sends itself again
//! for the claimed seq; a step a batch has no room for is sent again, not retried; a step that
//! reaches the dead-letter queue resumes its table's chains (`crate::dead_letter`).

use shared::config::Config;
use shared::sets::{
    Claim, MigrationStep, Step, DEFERRED_STEP_DELAY_SECONDS, FAILED_STEP_DELAY_SECONDS,
};
use worker_kit::Fault;

use crate::deliveries::Settle;
use crate::ports::{MigrationStore, Requeue, VectorIndexes};

mod backfill;
mod cleanup;
mod resume;
mod switch;

pub(crate) use backfill::{Page, PageRecord};
pub(crate) use cleanup::RetiringRow;
pub(crate) use resume::resume;
#[cfg(all(test, target_arch = "wasm32"))]
pub(crate) use resume::SWEEP_MIGRATIONS;
pub(crate) use switch::{Coverage, Switched};

/// What a step needs.
pub(crate) struct Steps<'a, S, R, V> {
    pub store: &'a S,
    pub requeue: &'a R,
    pub indexes: &'a V,
    pub config: &'a Config,
}

impl<S: MigrationStore, R: Requeue, V: VectorIndexes> Steps<'_, S, R, V> {
    /// Settles a batch's steps, in order: the first [`STEPS_PER_BATCH`] run; the rest are sent
    /// again after a moment and acknowledged. A retry would spend the queue's `max_retries`
    /// (its last goes to the dead-letter queue): only if that send fails are they retried.
    pub(crate) async fn handle(&self, steps: &[MigrationStep], now_ms: i64) -> Vec<Settle> {
        let (now, later) = steps.split_at(steps.len().min(STEPS_PER_BATCH));
        let mut settles = Vec::with_capacity(steps.len());
        for step in now {
            settles.push(self.settle(step, now_ms).await);
        }
        if later.is_empty() {
            return settles;
        }
        // Sent as they came: unclaimed, each still carries the seq it was issued for.
        let again: Vec<(MigrationStep, u32)> = later
            .iter()
            .map(|step| (step.clone(), DEFERRED_STEP_DELAY_SECONDS))
            .collect();
        let settle = match self.requeue.steps(&again).await {
            Ok(()) => Settle::Ack,
            Err(fault) => {
                tracing::warn!(steps = later.len(), error = %fault, "sending deferred model change steps failed; they are retried");
                Settle::Retry {
                    delay_seconds: DEFERRED_STEP_DELAY_SECONDS,
                }
            }
        };
        settles.extend(std::iter::repeat_n(settle, later.len()));
        settles
    }

    /// Claims the step's set and runs the step, or drops it if another step claimed first.
    async fn settle(&self, step: &MigrationStep, now_ms: i64) -> Settle {
        let m = &step.migration;
        let claimed = match self.store.claim(m, now_ms).await {
            Ok(claimed) => Claim::of(m.seq, claimed),
            Err(fault) => {
                // Nothing ran: the runtime delivers it again. Should the claim have landed and
                // only its answer been lost, that delivery loses it, and the sweep resumes the
                // chain once it has not moved for `shared::job::STUCK_AFTER_MS`.
                tracing::error!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, step = ?m.step, seq = m.seq, error = %fault, "model change step could not claim its set; it is tried again");
                return Settle::Retry {
                    delay_seconds: FAILED_STEP_DELAY_SECONDS,
                };
            }
        };
        let Claim::Run { seq } = claimed else {
            tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, step = ?m.step, seq = m.seq, "model change step dropped: another step of its set ran at its seq, or the set is no longer in the step's role");
            return Settle::Ack;
        };
        let Err(fault) = self.step(step, seq, now_ms).await else {
            return Settle::Ack;
        };
        // The message's seq is spent (a redelivery would lose the claim): the step goes on as
        // itself, issued for the seq it claimed, so that its chain does not end here.
        let again = step.then(seq, m.step.clone());
        match self
            .requeue
            .steps(&[(again, FAILED_STEP_DELAY_SECONDS)])
            .await
        {
            Ok(()) => {
                tracing::error!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, step = ?m.step, seq, error = %fault, "model change step failed; it runs again");
                Settle::Ack
            }
            Err(send) => {
                // Retried, the message loses the claim and is dropped: the chain waits for the
                // sweep, which resumes it once it has not moved for
                // `shared::job::STUCK_AFTER_MS`, or for the migration command.
                tracing::error!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, step = ?m.step, seq, error = %fault, send_error = %send, "model change step failed, and so did sending it again; the sweep resumes its change");
                Settle::Retry {
                    delay_seconds: FAILED_STEP_DELAY_SECONDS,
                }
            }
        }
    }

    /// Runs a step that claimed its set at `seq`; the step it sends carries `seq`.
    async fn step(&self, step: &MigrationStep, seq: u32, now_ms: i64) -> Result<(), Fault> {
        match &step.migration.step {
            Step::Backfill { after } => self.backfill(step, seq, after.as_deref(), now_ms).await,
            Step::Switch {
                attempt,
                covered_at,
            } => self.switch(step, seq, *attempt, *covered_at, now_ms).await,
            Step::Cleanup => self.cleanup(step, seq, now_ms).await,
        }
    }
}

/// Steps one invocation handles at most: each runs at most ten D1 statements (a clean-up step
/// of a given-up set: its claim, its rows, the active set's vectors, the columns in one or two
/// chunks, the rows' removal, and, as the last, the set's removal and the next change's three),
/// so that three stay within D1's 50 queries an invocation beside a batch's jobs.
pub(crate) const STEPS_PER_BATCH: usize = 3;
