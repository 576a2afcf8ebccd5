//! The ledger over D1, and the glue between the runtime's message batch and the handlers.

use shared::disposition::Disposition;
use shared::message::EmbeddingJob;
use worker::{D1Database, Env, MessageBatch, MessageExt, QueueRetryOptionsBuilder};
use worker_kit::d1::{number, optional, text, DB};
use worker_kit::Fault;

use crate::ports::{DeadJob, Delivery, JobLedger};

pub(crate) fn ledger(env: &Env) -> worker::Result<D1Ledger> {
    Ok(D1Ledger(env.d1(DB)?))
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

/// Applies each disposition to its message. A `Dead` job was already recorded by the handler,
/// so its message is acknowledged.
pub(crate) fn apply<T>(batch: &MessageBatch<T>, dispositions: &[Disposition]) {
    for (message, disposition) in batch.raw_iter().zip(dispositions) {
        match disposition {
            Disposition::Ack | Disposition::Dead { .. } => message.ack(),
            Disposition::Retry { delay_seconds } => message.retry_with_options(
                &QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(*delay_seconds)
                    .build(),
            ),
        }
    }
}

#[derive(Debug)]
pub(crate) struct D1Ledger(D1Database);

impl JobLedger for D1Ledger {
    async fn record_deliveries(&self, jobs: &[&EmbeddingJob], now_ms: i64) -> Result<(), Fault> {
        let mut statements = Vec::with_capacity(jobs.len());
        for job in jobs {
            // The row exists when the gateway sent the job; a custom pipeline's job gets one here.
            // A final job stays final, and a row of another organization is never touched.
            let statement = self
                .0
                .prepare(
                    "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
                         content_hash, status, attempts, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'processing', 1, ?8, ?8)
                     ON CONFLICT (id) DO UPDATE SET status = 'processing', attempts = attempts + 1,
                         updated_at = excluded.updated_at
                     WHERE embedding_jobs.status IN ('queued', 'processing')
                       AND embedding_jobs.organization_id = excluded.organization_id",
                )
                .bind(&[
                    text(&job.job_id.to_string()),
                    text(&job.organization_id),
                    optional(job.table.as_deref()),
                    optional(job.id.as_deref()),
                    text(&job.model),
                    text(&job.content),
                    text(&job.content_hash),
                    number(now_ms),
                ])?;
            statements.push(statement);
        }
        self.0.batch(statements).await?;
        Ok(())
    }

    async fn mark_dead(
        &self,
        jobs: &[DeadJob],
        keep_last_error: bool,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let reason_sql = if keep_last_error {
            "CASE WHEN last_error IS NULL THEN ?3 ELSE ?3 || ': ' || last_error END"
        } else {
            "?3"
        };
        let sql = format!(
            "UPDATE embedding_jobs SET status = 'dead', last_error = {reason_sql}, updated_at = ?4, completed_at = ?4
             WHERE id = ?1 AND organization_id = ?2 AND status IN ('queued', 'processing')"
        );
        let mut statements = Vec::with_capacity(jobs.len());
        for job in jobs {
            statements.push(self.0.prepare(&sql).bind(&[
                text(&job.job_id),
                text(&job.organization_id),
                text(&job.reason),
                number(now_ms),
            ])?);
        }
        self.0.batch(statements).await?;
        Ok(())
    }
}
