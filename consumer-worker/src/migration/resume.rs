//! The sweep's part in model changes: chains that stopped are resumed, and changes no write
//! started are started.

use shared::config::Config;
use shared::sets::MigrationStep;
use worker_kit::Fault;

use crate::ports::{MigrationStore, Requeue};

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
    let started = store.ensure(&idle, now_ms).await?;
    let mut steps: Vec<(MigrationStep, u32)> = Vec::new();
    for row in stalled.iter().chain(&started.made).chain(&started.given_up) {
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
