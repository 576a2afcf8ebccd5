//! A batch from `embeddings-queue`: every message gets a disposition; none blocks another.

use shared::disposition::{decide, Disposition, Outcome};
use shared::message::EmbeddingJob;

use crate::ports::{job_identity, DeadJob, Delivery, JobLedger};

/// Decodes every message, records the good ones in one write and the undecodable ones as dead
/// in another, and returns a disposition per message, in order.
pub(crate) async fn handle(
    ledger: &impl JobLedger,
    messages: &[Delivery],
    now_ms: i64,
) -> Vec<Disposition> {
    let decoded: Vec<_> = messages
        .iter()
        .map(|m| EmbeddingJob::decode(m.body.clone()))
        .collect();
    let jobs: Vec<&EmbeddingJob> = decoded.iter().filter_map(|d| d.as_ref().ok()).collect();
    let recorded = if jobs.is_empty() {
        Ok(())
    } else {
        ledger.record_deliveries(&jobs, now_ms).await
    };

    let mut outcomes: Vec<(Outcome, u32)> = decoded
        .iter()
        .map(|d| match (d, &recorded) {
            (Ok(job), Ok(())) => (Outcome::Handled, job.attempt),
            (Ok(job), Err(fault)) => (
                Outcome::Transient(format!("recording delivery failed: {fault}")),
                job.attempt,
            ),
            (Err(e), _) => (Outcome::Permanent(e.to_string()), 0),
        })
        .collect();

    let dead: Vec<DeadJob> = messages
        .iter()
        .zip(&outcomes)
        .filter_map(|(m, (outcome, _))| match outcome {
            Outcome::Permanent(reason) => {
                job_identity(&m.body).map(|(job_id, organization_id)| DeadJob {
                    job_id,
                    organization_id,
                    reason: reason.clone(),
                })
            }
            _ => None,
        })
        .collect();
    if !dead.is_empty() {
        if let Err(fault) = ledger.mark_dead(&dead, false, now_ms).await {
            // Without the record the message must come back, or its job would stay open for ever.
            for (outcome, _) in &mut outcomes {
                if matches!(outcome, Outcome::Permanent(_)) {
                    *outcome = Outcome::Transient(format!("recording a dead job failed: {fault}"));
                }
            }
        }
    }

    let dispositions: Vec<Disposition> = outcomes
        .into_iter()
        .map(|(outcome, attempt)| decide(outcome, attempt))
        .collect();
    for ((message, decoded), disposition) in messages.iter().zip(&decoded).zip(&dispositions) {
        let job_id = decoded.as_ref().map(|job| job.job_id.to_string()).ok();
        match disposition {
            Disposition::Ack => {
                tracing::info!(message_id = %message.message_id, job_id, "job delivery recorded");
            }
            Disposition::Retry { delay_seconds } => {
                tracing::warn!(message_id = %message.message_id, job_id, delay_seconds, "job retried");
            }
            Disposition::Dead { reason } => {
                tracing::warn!(message_id = %message.message_id, job_id, reason, "job dead");
            }
        }
    }
    let count = |f: fn(&Disposition) -> bool| dispositions.iter().filter(|d| f(d)).count();
    tracing::info!(
        queue = crate::EMBEDDINGS_QUEUE,
        size = messages.len(),
        recorded = jobs.len(),
        acked = count(|d| matches!(d, Disposition::Ack)),
        retried = count(|d| matches!(d, Disposition::Retry { .. })),
        dead = count(|d| matches!(d, Disposition::Dead { .. })),
        "batch processed"
    );
    dispositions
}
