//! consumer-worker: the consumer of `embeddings-queue` and of its dead-letter queue
//! `embeddings-dlq`. It trusts the messages it gets: only the gateway (after authentication,
//! firewall and guards) and the project's own pipelines can send them.
//!
//! - [`deliveries`]: a batch of `embeddings-queue`: decide, embed in as few AI calls as the
//!   100-text limit allows, write every result in one D1 transaction, settle each message.
//! - [`dead_letter`]: a batch of `embeddings-dlq`: mark each job `dead` with its last error.
//! - [`sweep`]: on a cron trigger, send again the jobs left open too long.
//! - [`ports`]: the job store, the queues and the vector indexes, as traits; [`store`]
//!   implements the store over D1, [`bindings`] the rest over Queues and Vectorize, and settles
//!   the runtime's messages.

mod bindings;
mod dead_letter;
mod deliveries;
mod ports;
mod store;
mod sweep;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use worker::{event, Context, Env, MessageBatch, Result, ScheduleContext, ScheduledEvent};
use worker_kit::embedder::AnyEmbedder;

/// The queue of embedding jobs.
pub(crate) const EMBEDDINGS_QUEUE: &str = "embeddings-queue";
/// Where a job goes once its retries are spent.
pub(crate) const EMBEDDINGS_DLQ: &str = "embeddings-dlq";

#[event(start)]
fn start() {
    worker_kit::telemetry::init("consumer-worker");
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let store = bindings::store(&env)?;
    let messages = bindings::deliveries(&batch);
    let settles = match batch.queue().as_str() {
        EMBEDDINGS_QUEUE => {
            let embedder =
                AnyEmbedder::from_env(&env).map_err(|f| worker::Error::RustError(f.0))?;
            let consumer = deliveries::Consumer {
                store: &store,
                embedder: &embedder,
                requeue: &bindings::requeue(&env)?,
                indexes: &bindings::EnvIndexes {
                    env: &env,
                    db: &store.db,
                },
                config: worker_kit::config::config(),
                policy: bindings::retry_policy(&env),
            };
            consumer.handle(&messages, worker_kit::now_ms()).await
        }
        EMBEDDINGS_DLQ => dead_letter::handle(&store, &messages, worker_kit::now_ms()).await,
        other => {
            tracing::error!(
                queue = other,
                "batch from a queue this worker does not consume; retrying"
            );
            batch.retry_all();
            return Ok(());
        }
    };
    bindings::apply(&batch, &settles);
    Ok(())
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let (Ok(store), Ok(requeue)) = (bindings::store(&env), bindings::requeue(&env)) else {
        tracing::error!("sweep: a binding is missing");
        return;
    };
    sweep::sweep(&store, &requeue, worker_kit::now_ms()).await;
}
