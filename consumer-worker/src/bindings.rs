//! The real implementations of the ports over the worker's bindings (D1 is in [`crate::store`]),
//! and the glue between the runtime's message batch and the handlers. Binding names live here.

use shared::disposition::RetryPolicy;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::sets::MigrationStep;
use worker::{
    D1Database, Env, MessageBatch, MessageBuilder, MessageExt, Queue, QueueRetryOptionsBuilder,
    SendMessage,
};
use worker_kit::d1::DB;
use worker_kit::index_sync::{self, RecordKey, Synced};
use worker_kit::vectorize::Vectorize;
use worker_kit::Fault;

use crate::deliveries::Settle;
use crate::ports::{Delivery, Requeue, VectorIndexes};
use crate::store::D1Store;

/// Producer binding of `embeddings-dlq`.
pub(crate) const EMBEDDINGS_DLQ: &str = "EMBEDDINGS_DLQ";
/// Optional variable: the first retry delay in seconds (default 2); each later one doubles.
pub(crate) const RETRY_BASE_DELAY_SECONDS: &str = "RETRY_BASE_DELAY_SECONDS";

pub(crate) fn store(env: &Env) -> worker::Result<D1Store> {
    Ok(D1Store {
        db: env.d1(DB)?,
        config: worker_kit::config::config(),
        statements: std::cell::Cell::new(0),
    })
}

/// The producers of both lanes' queues (`shared::lane`: `EMBEDDINGS_QUEUE`,
/// `EMBEDDINGS_BULK_QUEUE`) and of the dead-letter queue.
pub(crate) fn requeue(env: &Env) -> worker::Result<QueueRequeue> {
    Ok(QueueRequeue {
        live: env.queue(Lane::Live.binding())?,
        bulk: env.queue(Lane::Bulk.binding())?,
        dead_letters: env.queue(EMBEDDINGS_DLQ)?,
    })
}

pub(crate) fn retry_policy(env: &Env) -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    if let Some(base) = env
        .var(RETRY_BASE_DELAY_SECONDS)
        .ok()
        .and_then(|v| v.to_string().parse().ok())
    {
        policy.base_delay_seconds = base;
    }
    policy
}

/// The batch's messages with their bodies as JSON; a body that is not JSON becomes `null` and is
/// refused by decoding like any other malformed message.
pub(crate) fn deliveries<T>(batch: &MessageBatch<T>) -> Vec<Delivery> {
    batch
        .raw_iter()
        .map(|message| Delivery {
            message_id: message.id(),
            body: serde_wasm_bindgen::from_value(message.body()).unwrap_or(serde_json::Value::Null),
        })
        .collect()
}

/// Settles each message with the runtime.
pub(crate) fn apply<T>(batch: &MessageBatch<T>, settles: &[Settle]) {
    for (message, settle) in batch.raw_iter().zip(settles) {
        match settle {
            Settle::Ack => message.ack(),
            Settle::Retry { delay_seconds } => message.retry_with_options(
                &QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(*delay_seconds)
                    .build(),
            ),
        }
    }
}

#[derive(Debug)]
pub(crate) struct QueueRequeue {
    live: Queue,
    bulk: Queue,
    dead_letters: Queue,
}

impl QueueRequeue {
    fn queue(&self, lane: Lane) -> &Queue {
        match lane {
            Lane::Live => &self.live,
            Lane::Bulk => &self.bulk,
        }
    }
}

impl Requeue for QueueRequeue {
    async fn retry(&self, lane: Lane, jobs: &[(EmbeddingJob, u32)]) -> Result<(), Fault> {
        let messages: Vec<SendMessage<EmbeddingJob>> = jobs
            .iter()
            .map(|(job, delay)| {
                MessageBuilder::new(job.clone())
                    .delay_seconds(*delay)
                    .build()
            })
            .collect();
        self.queue(lane).send_batch(messages).await?;
        Ok(())
    }

    async fn dead_letter(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault> {
        self.dead_letters.send_batch(jobs.to_vec()).await?;
        Ok(())
    }

    async fn steps(&self, steps: &[(MigrationStep, u32)]) -> Result<(), Fault> {
        let messages: Vec<SendMessage<MigrationStep>> = steps
            .iter()
            .map(|(step, delay)| {
                MessageBuilder::new(step.clone())
                    .delay_seconds(*delay)
                    .build()
            })
            .collect();
        // A model change is bulk work: its steps never wait in front of live jobs.
        self.bulk.send_batch(messages).await?;
        Ok(())
    }
}

/// The Vectorize indexes the config names, looked up by binding when first used, and the D1
/// database they are brought in line with.
#[derive(Debug)]
pub(crate) struct EnvIndexes<'a> {
    pub env: &'a Env,
    pub db: &'a D1Database,
}

impl VectorIndexes for EnvIndexes<'_> {
    async fn sync(&self, records: &[RecordKey]) -> Result<Synced, Fault> {
        index_sync::sync(self.env, self.db, records).await
    }

    async fn delete(&self, binding: &str, vector_ids: &[String]) -> Result<(), Fault> {
        let index = Vectorize::from_env(self.env, binding)?;
        for chunk in vector_ids.chunks(index_sync::MAX_DELETE) {
            index.delete(chunk).await?;
        }
        Ok(())
    }
}
