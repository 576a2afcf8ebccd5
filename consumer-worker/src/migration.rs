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

use std::collections::BTreeMap;

use shared::config::Config;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::sets::{
    needs_job, switch_delay_seconds, Claim, Migration, MigrationStep, Step, BACKFILL_PAGE,
    CLEANUP_CHUNK, DEFERRED_STEP_DELAY_SECONDS, FAILED_STEP_DELAY_SECONDS, VECTORIZE_SETTLE_MS,
};
use uuid::Uuid;
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use crate::deliveries::Settle;
use crate::ports::{MigrationStore, Requeue, VectorIndexes};

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

    async fn backfill(
        &self,
        step: &MigrationStep,
        seq: u32,
        after: Option<&str>,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let m = &step.migration;
        let Some(table) = self.config.table(&m.table) else {
            return Ok(());
        };
        let page = self.store.uncovered(table, m, after, BACKFILL_PAGE).await?;
        // Each job is newer than any the building set's start could have missed: those were
        // made no later than the set (`shared::sets`).
        let created_at = now_ms.max(page.set_created_at + 1);
        let jobs: Vec<EmbeddingJob> = page
            .records
            .iter()
            .filter(|record| {
                needs_job(
                    &m.model,
                    &record.text,
                    record.covered,
                    record.stored_hash.as_deref(),
                    record.queued,
                )
            })
            .map(|record| {
                EmbeddingJob::new(
                    Uuid::new_v4(),
                    &m.organization_id,
                    &m.model,
                    &record.text,
                    Some((m.table.clone(), record.id.clone())),
                )
                .with_record_text(&record.text)
            })
            .collect();
        if !jobs.is_empty() {
            // Recorded before they are sent: a job whose message is then lost stays open, and
            // the sweep sends it again (`crate::sweep`); the page, run again, leaves it be.
            let backfill_id = m.migration_id.to_string();
            self.store
                .queue_jobs(&jobs, &backfill_id, created_at)
                .await?;
            let lane = Lane::of_job(Some(&backfill_id));
            let sends: Vec<(EmbeddingJob, u32)> = jobs.iter().map(|j| (j.clone(), 0)).collect();
            for batch in
                shared::message::send_batches(&sends, |(job, _)| shared::message::body_size(job))
            {
                self.requeue.retry(lane, batch).await?;
            }
        }
        let next = Step::after_page(
            page.records.len(),
            page.records.last().map(|r| r.id.as_str()),
        );
        tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, after, seq, records = page.records.len(), queued = jobs.len(), "model change: backfill page");
        self.requeue.steps(&[(step.then(seq, next), 0)]).await
    }

    async fn switch(
        &self,
        step: &MigrationStep,
        seq: u32,
        attempt: u32,
        covered_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let m = &step.migration;
        let Some(table) = self.config.table(&m.table) else {
            return Ok(());
        };
        let again = |covered_at| Step::Switch {
            attempt: attempt + 1,
            covered_at,
        };
        let coverage = self.store.coverage(table, m).await?;
        if coverage.covered < coverage.of {
            tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, covered = coverage.covered, of = coverage.of, attempt, "model change: the new set is not complete yet");
            if attempt + 1 >= RESTART_AFTER {
                // Still not complete after a while: a record the backfill could not list then
                // (its first vector landed since, or its job died) is listed now. The backfill
                // ends in a switch of its own, so this chain stops here.
                return self
                    .requeue
                    .steps(&[(step.then(seq, Step::Backfill { after: None }), 0)])
                    .await;
            }
            let delay = switch_delay_seconds(attempt);
            return self
                .requeue
                .steps(&[(step.then(seq, again(None)), delay)])
                .await;
        }
        // Vectorize shows a write seconds after it takes it: the last backfilled records must be
        // found by the first searches of the new set.
        let settle_ms = if step.set().binding().is_some() {
            VECTORIZE_SETTLE_MS
        } else {
            0
        };
        let since = covered_at.unwrap_or(now_ms);
        if now_ms - since < settle_ms {
            let left_ms = settle_ms - (now_ms - since);
            let wait = u32::try_from((left_ms + 999) / 1000).unwrap_or(10);
            return self
                .requeue
                .steps(&[(step.then(seq, again(Some(since))), wait)])
                .await;
        }
        let Switched::Done { retired } = self.store.switch(table, m, now_ms).await? else {
            // A record changed between the count and the switch: look again.
            return self
                .requeue
                .steps(&[(step.then(seq, again(None)), switch_delay_seconds(0))])
                .await;
        };
        tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, model = %m.model, location = %m.location, records = coverage.of, "model change switched: searches now read the new set; the old one is being removed");
        // The chain goes on as the retired set's: its clean-up, issued for that set's seq.
        let Some(cleanup) = retired.as_ref().and_then(SetRow::cleanup_step) else {
            return Ok(());
        };
        let cleanup = MigrationStep::new(Migration {
            migration_id: m.migration_id,
            ..cleanup.migration
        });
        self.requeue.steps(&[(cleanup, 0)]).await
    }

    async fn cleanup(&self, step: &MigrationStep, seq: u32, now_ms: i64) -> Result<(), Fault> {
        let m = &step.migration;
        let mut rows = self.store.retiring_rows(m, CLEANUP_CHUNK).await?;
        let mut more = rows.len() == CLEANUP_CHUNK as usize;
        // A change given up before its switch wrote its own model's vectors into the records'
        // embedding column, which follows the configured set: those records get the active
        // set's vectors back first, a smaller chunk at a time (each carries its vectors).
        let given_up: Vec<RetiringRow> = rows
            .iter()
            .filter(|r| r.switched_at.is_none())
            .take(RESTORE_CHUNK)
            .cloned()
            .collect();
        if let (Some(table), false) = (self.config.table(&m.table), given_up.is_empty()) {
            more |= given_up.len() < rows.len();
            rows = given_up;
            let records: Vec<&str> = rows.iter().map(|r| r.record_id.as_str()).collect();
            let restored = self.store.restore_columns(table, m, &records).await?;
            tracing::info!(organization_id = %m.organization_id, table = %m.table, records = records.len(), restored, "model change given up: the records' embedding column holds the active set's vectors again");
        }
        let mut by_binding: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for row in &rows {
            if let Some(binding) = shared::sets::binding_of(&row.location) {
                by_binding
                    .entry(binding)
                    .or_default()
                    .push(row.vector_id.clone());
            }
        }
        // Out of the index first: a row gone from D1 would leave its vector unnamed there.
        for (binding, ids) in &by_binding {
            self.indexes.delete(binding, ids).await?;
        }
        self.store.remove_rows(m, &rows, now_ms).await?;
        if more {
            return self
                .requeue
                .steps(&[(step.then(seq, Step::Cleanup), 0)])
                .await;
        }
        let removed = self.store.drop_retired(m, now_ms).await?;
        tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, model = %m.model, location = %m.location, rows = rows.len(), sets_removed = removed, "model change done: the old set is removed");
        self.start_waiting_change(m, now_ms).await
    }

    /// Starts the change a deploy asked for while the old set was being removed: it could not
    /// start then (`worker_kit::sets::ensure` builds no set where a retiring one still is), and
    /// would otherwise wait for the table's next write, or the sweep.
    async fn start_waiting_change(&self, m: &Migration, now_ms: i64) -> Result<(), Fault> {
        let Some(table) = self.config.table(&m.table) else {
            return Ok(());
        };
        let pair = worker_kit::sets::pair(&m.organization_id, table);
        let started = self.store.ensure(&[pair], now_ms).await?;
        let steps: Vec<(MigrationStep, u32)> = started
            .iter()
            .filter_map(SetRow::first_step)
            .map(|step| (step, 0))
            .collect();
        for (step, _) in &steps {
            let next = &step.migration;
            tracing::info!(organization_id = %next.organization_id, table = %next.table, migration_id = %next.migration_id, model = %next.model, location = %next.location, "model change started once the old set was removed");
        }
        if steps.is_empty() {
            return Ok(());
        }
        self.requeue.steps(&steps).await
    }
}

/// Rows of a given-up set whose records' columns one clean-up step restores: their vectors, as
/// JSON, fit one bound parameter of D1's (`worker_kit::d1::MAX_PARAMETER_BYTES`) at 1,024
/// dimensions.
const RESTORE_CHUNK: usize = 100;

/// Steps one invocation handles at most: each runs at most ten D1 statements (a clean-up step
/// of a given-up set: its claim, its rows, the active set's vectors, the columns in one or two
/// chunks, the rows' removal, and, as the last, the set's removal and the next change's three),
/// so that three stay within D1's 50 queries an invocation beside a batch's jobs.
pub(crate) const STEPS_PER_BATCH: usize = 3;

/// Looks at an incomplete set before its backfill runs again from the start (about half a
/// minute of looking, by `shared::sets::switch_delay_seconds`).
const RESTART_AFTER: u32 = 8;

/// Model changes one sweep resumes or starts at most; the rest wait for the next.
pub(crate) const SWEEP_MIGRATIONS: u32 = 100;

/// On the sweep's cron: resumes the model changes whose steps stopped for
/// [`shared::job::STUCK_AFTER_MS`] (a step message lost, or out of retries), from their first
/// backfill page (pages enqueue only what the new set lacks) or their clean-up, each issued
/// for its set's current seq (a chain that moves again meanwhile merges with it); and starts
/// the changes of tables no write has touched since a deploy changed their model. Both lists
/// come in turns across organizations, so that a few with many changes cannot fill every
/// sweep.
pub(crate) async fn resume<S: MigrationStore, R: Requeue>(
    store: &S,
    requeue: &R,
    config: &Config,
    now_ms: i64,
) -> Result<usize, Fault> {
    let stalled = store
        .stalled(now_ms - shared::job::STUCK_AFTER_MS, SWEEP_MIGRATIONS)
        .await?;
    let configured: Vec<_> = config
        .tables
        .iter()
        .map(|t| (t, shared::sets::VectorSet::configured(t)))
        .collect();
    let idle = store.unconfigured(&configured, SWEEP_MIGRATIONS).await?;
    let pairs: Vec<serde_json::Value> = idle
        .iter()
        .filter_map(|(org, table)| Some(worker_kit::sets::pair(org, config.table(table)?)))
        .collect();
    let started = store.ensure(&pairs, now_ms).await?;
    let mut steps: Vec<(MigrationStep, u32)> = Vec::new();
    for row in stalled.iter().chain(&started) {
        // A retiring set's change is past its switch: only its clean-up is left.
        let Some(first) = row.resume_step() else {
            continue;
        };
        tracing::warn!(organization_id = %row.organization_id, table = %row.table_name, model = %row.model, role = %row.role, seq = row.step_seq, "model change resumed by the sweep");
        steps.push((first, 0));
    }
    for chunk in steps.chunks(100) {
        requeue.steps(chunk).await?;
    }
    Ok(steps.len())
}

/// A record a backfill page looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRecord {
    pub id: String,
    /// Its embedded fields, joined as the config says.
    pub text: String,
    /// Whether the building set's vector is live and at least as new as the active set's.
    pub covered: bool,
    /// The content hash of the building set's vector, if any.
    pub stored_hash: Option<String>,
    /// Whether a job of this change's backfill is open for it.
    pub queued: bool,
}

/// A page of the active set's live records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub records: Vec<PageRecord>,
    /// When the building set was started (its generation).
    pub set_created_at: i64,
}

/// How much of the active set the building set covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub covered: u64,
    pub of: u64,
}

/// What a switch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Switched {
    /// The building set did not cover the active one then: nothing changed.
    NotYet,
    /// The building set is active; the set that was active is retiring (none if the table had
    /// no active set, which a building set is never started beside).
    Done { retired: Option<SetRow> },
}

/// A row of a retiring set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct RetiringRow {
    pub model: String,
    pub location: String,
    pub record_id: String,
    pub vector_id: String,
    /// When its set became active; none for a set given up before its switch.
    pub switched_at: Option<i64>,
}
