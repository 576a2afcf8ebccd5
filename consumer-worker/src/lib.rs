//! consumer-worker: the consumer of `embeddings-queue` and of its dead-letter queue
//! `embeddings-dlq`. It trusts the messages it gets: only the gateway (after authentication,
//! firewall and guards) and the project's own pipelines can send them.
//!
//! - [`deliveries`]: a batch of `embeddings-queue`: decode, record, decide a disposition per
//!   message.
//! - [`dead_letter`]: a batch of `embeddings-dlq`: mark each job `dead` with its last error.
//! - [`ports`]: the job ledger trait; [`bindings`] implements it over D1, and applies
//!   dispositions to the runtime's messages.
//!
//! Inference and vector writes are not built yet: a delivered job is recorded as `processing`.

mod bindings;
mod dead_letter;
mod deliveries;
mod ports;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use worker::{event, Context, Env, MessageBatch, Result};

/// The queue of embedding jobs.
pub(crate) const EMBEDDINGS_QUEUE: &str = "embeddings-queue";
/// Where a job goes after `max_retries` failed deliveries.
pub(crate) const EMBEDDINGS_DLQ: &str = "embeddings-dlq";

#[event(start)]
fn start() {
    worker_kit::telemetry::init("consumer-worker");
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let ledger = bindings::ledger(&env)?;
    let messages = bindings::deliveries(&batch);
    let dispositions = match batch.queue().as_str() {
        EMBEDDINGS_QUEUE => deliveries::handle(&ledger, &messages, worker_kit::now_ms()).await,
        EMBEDDINGS_DLQ => dead_letter::handle(&ledger, &messages, worker_kit::now_ms()).await,
        other => {
            tracing::error!(
                queue = other,
                "batch from a queue this worker does not consume; retrying"
            );
            batch.retry_all();
            return Ok(());
        }
    };
    bindings::apply(&batch, &dispositions);
    Ok(())
}
