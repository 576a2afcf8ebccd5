//! The sweep, on a cron trigger: jobs that stayed open (`queued`, `processing`) for
//! `shared::job::STUCK_AFTER_MS` are sent again, each on its own lane's queue (`shared::lane`).
//! Their message was lost, or their dead letter never recorded (the dead-letter consumer has no
//! queue of its own to fall back on), and nothing else would ever finish them. The wait is far past
//! the retry schedule, so a job still moving is not taken; one taken anyway is handled once
//! (delivery is at least once, and the freshness rules make a second delivery change nothing). A
//! swept job is marked as just handled, so the next sweep leaves it for another full wait.

use shared::job::STUCK_AFTER_MS;
use shared::lane::Lane;
use shared::message::{body_size, send_batches, EmbeddingJob};

use crate::ports::{JobStore, Requeue};

/// Jobs one sweep sends again at most; the rest wait for the next.
pub(crate) const SWEEP_LIMIT: u32 = 500;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Swept {
    pub found: usize,
    pub sent: usize,
}

pub(crate) async fn sweep(store: &impl JobStore, requeue: &impl Requeue, now_ms: i64) -> Swept {
    let stuck = match store.stuck_jobs(now_ms - STUCK_AFTER_MS, SWEEP_LIMIT).await {
        Ok(stuck) => stuck,
        Err(fault) => {
            tracing::error!(error = %fault, "sweep: reading stuck jobs failed");
            return Swept::default();
        }
    };
    let mut swept = Swept {
        found: stuck.len(),
        sent: 0,
    };
    // Each job goes back to the lane it was made for (`shared::lane`).
    for lane in [Lane::Live, Lane::Bulk] {
        let jobs: Vec<(EmbeddingJob, u32)> = stuck
            .iter()
            .filter(|(_, l)| *l == lane)
            .map(|(job, _)| (job.clone(), 0))
            .collect();
        for batch in send_batches(&jobs, |(job, _)| body_size(job)) {
            if let Err(fault) = requeue.retry(lane, batch).await {
                tracing::error!(jobs = batch.len(), lane = lane.queue(), error = %fault, "sweep: sending stuck jobs again failed; the next sweep tries again");
                continue;
            }
            let sent: Vec<EmbeddingJob> = batch.iter().map(|(job, _)| job.clone()).collect();
            for job in &sent {
                tracing::warn!(job_id = %job.job_id, organization_id = %job.organization_id, lane = lane.queue(), "stuck job sent again");
            }
            if let Err(fault) = store.touch(&sent, now_ms).await {
                // Sent but not marked: the next sweep may send them once more, which is harmless.
                tracing::warn!(jobs = sent.len(), error = %fault, "sweep: marking swept jobs failed");
            }
            swept.sent += sent.len();
        }
    }
    tracing::info!(found = swept.found, sent = swept.sent, "sweep done");
    swept
}
