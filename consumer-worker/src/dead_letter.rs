//! A batch from `embeddings-dlq`: jobs that failed past the queue's `max_retries`. Each is
//! marked `dead`, keeping the last error its failed attempts recorded.

use shared::disposition::{decide, Disposition, Outcome};

use crate::ports::{job_identity, DeadJob, Delivery, JobLedger};

pub(crate) async fn handle(
    ledger: &impl JobLedger,
    messages: &[Delivery],
    now_ms: i64,
) -> Vec<Disposition> {
    let dead: Vec<DeadJob> = messages
        .iter()
        .filter_map(|m| job_identity(&m.body))
        .map(|(job_id, organization_id)| DeadJob {
            job_id,
            organization_id,
            reason: "retries exhausted".into(),
        })
        .collect();
    let written = if dead.is_empty() {
        Ok(())
    } else {
        ledger.mark_dead(&dead, true, now_ms).await
    };
    let outcome = match &written {
        Ok(()) => Outcome::Handled,
        Err(fault) => Outcome::Transient(format!("marking dead-lettered jobs failed: {fault}")),
    };
    tracing::info!(
        queue = crate::EMBEDDINGS_DLQ,
        size = messages.len(),
        dead = dead.len(),
        unreadable = messages.len() - dead.len(),
        ok = written.is_ok(),
        "dead-letter batch processed"
    );
    messages
        .iter()
        .map(|_| decide(outcome.clone(), 0))
        .collect()
}
