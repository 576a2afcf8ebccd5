//! A batch from `embeddings-dlq`: jobs out of retries. Each is marked `dead`, keeping the last
//! error its failed attempts recorded; if D1 cannot take the write, the runtime delivers the
//! batch again, so no job is left open.

use shared::disposition::RetryPolicy;

use crate::deliveries::Settle;
use crate::ports::{DeadJob, Delivery, JobIdentity, JobStore};

/// The reason a dead-lettered job is dead, in front of its last error.
pub(crate) const RETRIES_EXHAUSTED: &str = "retries exhausted";

pub(crate) async fn handle(
    store: &impl JobStore,
    messages: &[Delivery],
    now_ms: i64,
) -> Vec<Settle> {
    let dead: Vec<DeadJob> = messages
        .iter()
        .filter_map(|m| JobIdentity::read(&m.body))
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
        size = messages.len(),
        dead = dead.len(),
        unreadable = messages.len() - dead.len(),
        error = written.as_ref().err().map(ToString::to_string),
        "dead-letter batch processed"
    );
    let settle = match written {
        Ok(()) => Settle::Ack,
        Err(_) => Settle::Retry {
            delay_seconds: RetryPolicy::default().delay_seconds(0),
        },
    };
    vec![settle; messages.len()]
}
