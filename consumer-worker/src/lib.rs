//! consumer-worker: the consumer of both lanes' queues (`shared::lane`: live work on
//! `embeddings-queue`, bulk work on `embeddings-bulk`, handled alike, each batch's retries back
//! to its own queue) and of their dead-letter queue `embeddings-dlq`. It trusts the messages it
//! gets: only the gateway (after authentication, firewall and guards) and the project's own
//! pipelines can send them.
//!
//! - [`deliveries`]: a batch of jobs: decide, embed in as few AI calls as the
//!   100-text limit allows, write every result in one D1 transaction, settle each message.
//! - [`migration`]: the steps of a model change, on the bulk queue with its jobs: backfill
//!   pages, the switch, the clean-up of the old set.
//! - [`dead_letter`]: a batch of `embeddings-dlq`: mark each job `dead` with its last error,
//!   and resume the model changes of the steps that reached it.
//! - [`routing`]: which of these handlers each message of a batch goes to, from its queue.
//! - [`sweep`]: on a cron trigger, send again the jobs left open too long.
//! - [`ports`]: the job store, the queues and the vector indexes, as traits; [`store`] and
//!   [`sets_store`] implement the stores over D1, [`bindings`] the rest over Queues and
//!   Vectorize, and settles the runtime's messages.

mod bindings;
mod dead_letter;
mod deliveries;
mod migration;
mod ports;
mod routing;
mod sets_store;
mod store;
mod sweep;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use shared::lane::Lane;
use shared::sets::MigrationStep;
use worker::{event, Context, Env, MessageBatch, Result, ScheduleContext, ScheduledEvent};
use worker_kit::embedder::AnyEmbedder;

use crate::deliveries::Settle;
use crate::ports::Delivery;
use crate::routing::{LaneBatch, Route};
use crate::store::D1Store;

/// Where a job goes once its retries are spent, from either lane's queue (`shared::lane`).
pub(crate) const EMBEDDINGS_DLQ: &str = "embeddings-dlq";

#[event(start)]
fn start() {
    worker_kit::telemetry::init("consumer-worker");
}

#[event(queue)]
async fn queue(batch: MessageBatch<serde_json::Value>, env: Env, _ctx: Context) -> Result<()> {
    let store = bindings::store(&env)?;
    let messages = bindings::deliveries(&batch);
    let queue = batch.queue();
    let settles = match routing::route(&queue, &messages) {
        Route::Lane(lane, sorted) => handle_lane(&env, &store, lane, &messages, sorted).await?,
        Route::DeadLetter => {
            let requeue = bindings::requeue(&env)?;
            dead_letter::handle(&store, &store, &requeue, &messages, worker_kit::now_ms()).await
        }
        Route::Unknown => {
            tracing::error!(
                queue,
                "batch from a queue this worker does not consume; retrying"
            );
            batch.retry_all();
            return Ok(());
        }
    };
    bindings::apply(&batch, &settles);
    Ok(())
}

/// A lane's batch: its jobs to [`deliveries`], its model-change steps to [`migration`].
async fn handle_lane(
    env: &Env,
    store: &D1Store,
    lane: Lane,
    messages: &[Delivery],
    sorted: LaneBatch,
) -> Result<Vec<Settle>> {
    let embedder = AnyEmbedder::from_env(env).map_err(|f| worker::Error::RustError(f.0))?;
    let requeue = bindings::requeue(env)?;
    let indexes = bindings::EnvIndexes { env, db: &store.db };
    let config = worker_kit::config::config();
    let consumer = deliveries::Consumer {
        store,
        embedder: &embedder,
        requeue: &requeue,
        indexes: &indexes,
        config,
        policy: bindings::retry_policy(env),
        lane,
    };
    let steps = migration::Steps {
        store,
        requeue: &requeue,
        indexes: &indexes,
        config,
    };
    let now = worker_kit::now_ms();
    for (i, reason) in &sorted.dropped {
        tracing::error!(message_id = %messages[*i].message_id, reason, "malformed model change step dropped");
    }
    let mut settles = vec![Settle::Ack; messages.len()];
    let job_messages: Vec<Delivery> = sorted.jobs.iter().map(|&i| messages[i].clone()).collect();
    if !job_messages.is_empty() {
        let handled = consumer.handle(&job_messages, now).await;
        routing::place(&mut settles, &sorted.jobs, handled);
    }
    // A few steps an invocation, each a handful of D1 statements, so that a batch stays within
    // D1's 50 queries an invocation (Workers Free) beside its jobs' ten; the rest are sent
    // again to run in a second (`migration::Steps::handle`).
    let (places, decoded): (Vec<usize>, Vec<MigrationStep>) = sorted.steps.into_iter().unzip();
    let handled = steps.handle(&decoded, now).await;
    routing::place(&mut settles, &places, handled);
    Ok(settles)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    let (Ok(store), Ok(requeue)) = (bindings::store(&env), bindings::requeue(&env)) else {
        tracing::error!("sweep: a binding is missing");
        return;
    };
    let now = worker_kit::now_ms();
    sweep::sweep(&store, &requeue, now).await;
    match migration::resume(&store, &requeue, worker_kit::config::config(), now).await {
        Ok(resumed) => tracing::info!(resumed, "sweep: model changes resumed or started"),
        Err(fault) => tracing::error!(error = %fault, "sweep: resuming model changes failed"),
    }
}
