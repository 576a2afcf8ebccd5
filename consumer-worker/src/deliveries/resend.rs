//! Step 7 of a batch: retries sent back to the batch's own queue and spent jobs to
//! `embeddings-dlq`, in as few `sendBatch` calls as the queue's limits allow.

use shared::message::{body_size, send_batches, EmbeddingJob};
use worker_kit::embedder::Embedder;

use super::{Consumer, Settle};
use crate::ports::{JobStore, Requeue, VectorIndexes};

impl<S: JobStore, E: Embedder, R: Requeue, V: VectorIndexes> Consumer<'_, S, E, R, V> {
    /// Sends retries back to the batch's own queue and spent jobs to `embeddings-dlq`, as few
    /// `sendBatch` calls as the queue's limits allow. A delivered message is acknowledged only once
    /// its new message is sent; if the send fails the runtime delivers it again.
    pub(super) async fn send_again(
        &self,
        retries: &[(usize, (EmbeddingJob, u32))],
        dead_letters: &[(usize, EmbeddingJob)],
        settles: &mut [Settle],
    ) {
        for batch in send_batches(retries, |(_, (job, _))| body_size(job)) {
            let jobs: Vec<(EmbeddingJob, u32)> = batch.iter().map(|(_, r)| r.clone()).collect();
            let sent = self.requeue.retry(self.lane, &jobs).await;
            if let Err(fault) = &sent {
                tracing::error!(jobs = jobs.len(), error = %fault, "sending retries failed; the runtime retries them");
            }
            for (i, (job, delay_seconds)) in batch {
                if sent.is_ok() {
                    tracing::warn!(job_id = %job.job_id, attempt = job.attempt, delay_seconds, "job retried");
                } else {
                    settles[*i] = Settle::Retry {
                        delay_seconds: *delay_seconds,
                    };
                }
            }
        }
        for batch in send_batches(dead_letters, |(_, job)| body_size(job)) {
            let jobs: Vec<EmbeddingJob> = batch.iter().map(|(_, job)| job.clone()).collect();
            if let Err(fault) = self.requeue.dead_letter(&jobs).await {
                tracing::error!(jobs = jobs.len(), error = %fault, "sending to the dead-letter queue failed; the runtime retries them");
                for (i, job) in batch {
                    settles[*i] = Settle::Retry {
                        delay_seconds: self.policy.delay_seconds(job.attempt),
                    };
                }
            }
        }
    }
}
