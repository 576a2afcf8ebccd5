//! A batch from `embeddings-dlq`: messages out of retries.
//!
//! - A job is marked `dead`, keeping the last error its failed attempts recorded; if D1 cannot
//!   take the write, the runtime delivers the batch again, so no job is left open.
//! - A model-change step has no job to mark: its chain would stop there, and the change with
//!   it (every write paying two embeddings until the sweep noticed). It is logged as an error,
//!   and its table's changes are resumed from their sets' rows as they are now: each building
//!   set's first backfill page, each retiring set's clean-up, issued for its current seq and
//!   sent after [`DEAD_LETTER_RESUME_DELAY_SECONDS`], so that it merges with any step of the
//!   chain still live (`shared::sets`, "One chain per set"). It is acknowledged only once those
//!   are sent.

use std::collections::BTreeSet;

use shared::disposition::RetryPolicy;
use shared::sets::{MigrationStep, DEAD_LETTER_RESUME_DELAY_SECONDS};
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use crate::deliveries::Settle;
use crate::ports::{DeadJob, Delivery, JobIdentity, JobStore, MigrationStore, Requeue};

/// The reason a dead-lettered job is dead, in front of its last error.
pub(crate) const RETRIES_EXHAUSTED: &str = "retries exhausted";

/// Settles a batch of `embeddings-dlq`, over the job store and the sets' (one D1 in both).
pub(crate) async fn handle(
    jobs_store: &impl JobStore,
    sets: &impl MigrationStore,
    requeue: &impl Requeue,
    messages: &[Delivery],
    now_ms: i64,
) -> Vec<Settle> {
    let (steps, jobs): (Vec<usize>, Vec<usize>) =
        (0..messages.len()).partition(|&i| MigrationStep::is_step(&messages[i].body));
    let mut settles = vec![Settle::Ack; messages.len()];
    let job_settle = mark_dead(jobs_store, messages, &jobs, now_ms).await;
    for &i in &jobs {
        settles[i] = job_settle;
    }
    if !steps.is_empty() {
        let step_settle = resume(sets, requeue, messages, &steps).await;
        for &i in &steps {
            settles[i] = step_settle;
        }
    }
    settles
}

/// Marks the jobs at `places` dead.
async fn mark_dead(
    store: &impl JobStore,
    messages: &[Delivery],
    places: &[usize],
    now_ms: i64,
) -> Settle {
    if places.is_empty() {
        return Settle::Ack;
    }
    let dead: Vec<DeadJob> = places
        .iter()
        .filter_map(|&i| JobIdentity::read(&messages[i].body))
        .map(|job| DeadJob {
            job_id: job.job_id,
            organization_id: job.organization_id,
            reason: RETRIES_EXHAUSTED.into(),
        })
        .collect();
    let written = if dead.is_empty() {
        Ok(())
    } else {
        store.mark_dead(&dead, now_ms).await
    };
    tracing::info!(
        queue = crate::EMBEDDINGS_DLQ,
        size = places.len(),
        dead = dead.len(),
        unreadable = places.len() - dead.len(),
        error = written.as_ref().err().map(ToString::to_string),
        "dead-letter batch processed"
    );
    match written {
        Ok(()) => Settle::Ack,
        Err(_) => Settle::Retry {
            delay_seconds: RetryPolicy::default().delay_seconds(0),
        },
    }
}

/// Resumes the changes of the tables of the steps at `places`; how to settle those steps.
async fn resume<S: MigrationStore, R: Requeue>(
    store: &S,
    requeue: &R,
    messages: &[Delivery],
    places: &[usize],
) -> Settle {
    let mut tables: BTreeSet<(String, String)> = BTreeSet::new();
    for &i in places {
        let message = &messages[i];
        let Some(table) = step_table(message) else {
            tracing::error!(queue = crate::EMBEDDINGS_DLQ, message_id = %message.message_id, "a model change step out of retries names no table: dropped");
            continue;
        };
        tables.insert(table);
    }
    let tables: Vec<(String, String)> = tables.into_iter().collect();
    match resume_tables(store, requeue, &tables).await {
        Ok(sent) => {
            tracing::info!(
                queue = crate::EMBEDDINGS_DLQ,
                tables = tables.len(),
                sent,
                delay_seconds = DEAD_LETTER_RESUME_DELAY_SECONDS,
                "model changes of dead-lettered steps resumed"
            );
            Settle::Ack
        }
        Err(fault) => {
            tracing::error!(queue = crate::EMBEDDINGS_DLQ, tables = tables.len(), error = %fault, "resuming the model changes of dead-lettered steps failed; they are tried again");
            Settle::Retry {
                delay_seconds: RetryPolicy::default().delay_seconds(0),
            }
        }
    }
}

/// The organization and table of a dead-lettered step, logged as the error it is. A step this
/// consumer cannot decode (another version) still names them.
fn step_table(message: &Delivery) -> Option<(String, String)> {
    match MigrationStep::decode(message.body.clone()) {
        Ok(step) => {
            let m = &step.migration;
            tracing::error!(queue = crate::EMBEDDINGS_DLQ, message_id = %message.message_id, organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, model = %m.model, location = %m.location, step = ?m.step, seq = m.seq, "a model change step ran out of retries; its table's changes are resumed");
            Some((m.organization_id.clone(), m.table.clone()))
        }
        Err(reason) => {
            let migration = message.body.get("migration")?;
            let field = |name: &str| migration.get(name)?.as_str().map(str::to_owned);
            let (organization_id, table) = (field("organizationId")?, field("table")?);
            tracing::error!(queue = crate::EMBEDDINGS_DLQ, message_id = %message.message_id, organization_id, table, reason, "a model change step this consumer cannot read ran out of retries; its table's changes are resumed");
            Some((organization_id, table))
        }
    }
}

/// Sends the step that resumes each building and retiring set of `tables`; how many.
async fn resume_tables<S: MigrationStore, R: Requeue>(
    store: &S,
    requeue: &R,
    tables: &[(String, String)],
) -> Result<usize, Fault> {
    let sets = store.changing_sets(tables).await?;
    let steps: Vec<(MigrationStep, u32)> = sets
        .iter()
        .filter_map(SetRow::resume_step)
        .map(|step| (step, DEAD_LETTER_RESUME_DELAY_SECONDS))
        .collect();
    // At most 100 messages a `sendBatch`.
    for chunk in steps.chunks(100) {
        requeue.steps(chunk).await?;
    }
    Ok(steps.len())
}
