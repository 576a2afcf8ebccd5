//! The real implementations of the ports, over the worker's bindings, and the glue between the
//! runtime's message batch and the handlers. Binding names live here.

use serde::Deserialize;
use shared::config::{Config, TableConfig, VectorIndex};
use shared::disposition::RetryPolicy;
use shared::freshness::{RecordState, StoredVersion};
use shared::message::EmbeddingJob;
use shared::vector::{encode, vector_id};
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::JsValue;
use worker::{
    D1Database, D1PreparedStatement, Env, MessageBatch, MessageBuilder, MessageExt, Queue,
    QueueRetryOptionsBuilder,
};
use worker_kit::d1::{ident, number, optional, text, DB};
use worker_kit::vectorize::{IndexedVector, Vectorize};
use worker_kit::Fault;

use crate::deliveries::Settle;
use crate::ports::{DeadJob, Delivery, Embedded, JobStore, Loaded, Requeue, VectorIndexes, Write};

/// Producer binding of `embeddings-queue`, for retries.
pub(crate) const EMBEDDINGS_QUEUE: &str = "EMBEDDINGS_QUEUE";
/// Producer binding of `embeddings-dlq`.
pub(crate) const EMBEDDINGS_DLQ: &str = "EMBEDDINGS_DLQ";
/// Optional variable: the first retry delay in seconds (default 2); each later one doubles.
pub(crate) const RETRY_BASE_DELAY_SECONDS: &str = "RETRY_BASE_DELAY_SECONDS";

pub(crate) fn store(env: &Env) -> worker::Result<D1Store> {
    Ok(D1Store {
        db: env.d1(DB)?,
        config: worker_kit::config::config(),
    })
}

pub(crate) fn requeue(env: &Env) -> worker::Result<QueueRequeue> {
    Ok(QueueRequeue {
        queue: env.queue(EMBEDDINGS_QUEUE)?,
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

/// Jobs, records and the D1 vector store.
#[derive(Debug)]
pub(crate) struct D1Store {
    db: D1Database,
    config: &'static Config,
}

#[derive(Deserialize)]
struct CreatedAt {
    created_at: i64,
}

#[derive(Deserialize)]
struct StoredRow {
    content_hash: String,
    job_id: String,
    job_created_at: i64,
}

/// Job statuses a delivery may still change.
const OPEN: &str = "status IN ('queued', 'processing')";

impl D1Store {
    fn statement(&self, sql: &str, values: &[JsValue]) -> Result<D1PreparedStatement, Fault> {
        Ok(self.db.prepare(sql).bind(values)?)
    }

    /// The job's row, created for a custom pipeline's job, moved to `processing`; it returns
    /// `created_at` unless the job is final or belongs to another organization.
    fn record_delivery(
        &self,
        job: &EmbeddingJob,
        now_ms: i64,
    ) -> Result<D1PreparedStatement, Fault> {
        self.statement(
            &format!(
                "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
                     content_hash, status, attempts, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'processing', 1, ?8, ?8)
                 ON CONFLICT (id) DO UPDATE SET status = 'processing', attempts = attempts + 1,
                     updated_at = excluded.updated_at
                 WHERE embedding_jobs.{OPEN} AND embedding_jobs.organization_id = excluded.organization_id
                 RETURNING created_at"
            ),
            &[
                text(&job.job_id.to_string()),
                text(&job.organization_id),
                optional(job.table.as_deref()),
                optional(job.id.as_deref()),
                text(&job.model),
                text(&job.content),
                text(&job.content_hash),
                number(now_ms),
            ],
        )
    }

    fn read_record(
        &self,
        table: &TableConfig,
        job: &EmbeddingJob,
    ) -> Result<D1PreparedStatement, Fault> {
        // Names come from the validated config, never from a message.
        let columns: Vec<String> = table.embedding_columns().into_iter().map(ident).collect();
        self.statement(
            &format!(
                "SELECT {} FROM {} WHERE {} = ?1 AND {} = ?2",
                columns.join(", "),
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column)
            ),
            &[optional(job.id.as_deref()), text(&job.organization_id)],
        )
    }

    fn read_stored(&self, job: &EmbeddingJob) -> Result<D1PreparedStatement, Fault> {
        self.statement(
            "SELECT content_hash, job_id, job_created_at FROM embedding_vectors
             WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3",
            &[
                text(&job.organization_id),
                optional(job.table.as_deref()),
                optional(job.id.as_deref()),
            ],
        )
    }

    /// The statements that store an embedded record's vector, in order: the record's embedding
    /// column, the vector store, the job. Each is guarded so that an older job loses to a newer
    /// one that committed first, and the job ends `stale` when it lost.
    fn store_record_vector(
        &self,
        table: &TableConfig,
        embedded: &Embedded<'_>,
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let Embedded {
            job,
            created_at,
            vector,
            metadata,
            truncated,
            ..
        } = *embedded;
        let job_id = job.job_id.to_string();
        let record_id = job.id.as_deref().unwrap_or_default();
        let newer = "SELECT 1 FROM embedding_vectors v
             WHERE v.organization_id = ?3 AND v.table_name = ?4 AND v.record_id = ?2
               AND (v.job_created_at, v.job_id) > (?5, ?6)";
        let column = self.statement(
            &format!(
                "UPDATE {} SET {} = ?1 WHERE {} = ?2 AND {} = ?3 AND NOT EXISTS ({newer})",
                ident(&table.name),
                ident(&table.embeddings.embedding_column),
                ident(&table.id_column),
                ident(&table.organization_column),
            ),
            &[
                text(&serde_json::to_string(vector)?),
                text(record_id),
                text(&job.organization_id),
                text(&table.name),
                number(created_at),
                text(&job_id),
            ],
        )?;
        // Vectorize tables keep only the version here; the vector is in the index.
        let blob: JsValue = match table.embeddings.vector_index {
            VectorIndex::D1 => Uint8Array::from(encode(vector).as_slice()).into(),
            VectorIndex::Vectorize { .. } => JsValue::NULL,
        };
        let store = self.statement(
            &format!(
                "INSERT INTO embedding_vectors (organization_id, table_name, record_id, vector_id, model,
                     content_hash, vector, metadata, job_id, job_created_at, seq, updated_at)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM embedding_vectors
                      WHERE organization_id = ?1 AND table_name = ?2), ?11
                 WHERE EXISTS (SELECT 1 FROM {} WHERE {} = ?3 AND {} = ?1)
                 ON CONFLICT (organization_id, table_name, record_id) DO UPDATE SET
                     vector_id = excluded.vector_id, model = excluded.model,
                     content_hash = excluded.content_hash, vector = excluded.vector,
                     metadata = excluded.metadata, job_id = excluded.job_id,
                     job_created_at = excluded.job_created_at, seq = excluded.seq,
                     updated_at = excluded.updated_at
                 WHERE (excluded.job_created_at, excluded.job_id)
                     > (embedding_vectors.job_created_at, embedding_vectors.job_id)",
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column),
            ),
            &[
                text(&job.organization_id),
                text(&table.name),
                text(record_id),
                text(&vector_id(&job.organization_id, &table.name, record_id)),
                text(&job.model),
                text(&job.content_hash),
                blob,
                text(&serde_json::to_string(metadata)?),
                text(&job_id),
                number(created_at),
                number(now_ms),
            ],
        )?;
        let finish = self.statement(
            &format!(
                "UPDATE embedding_jobs SET
                     status = CASE WHEN EXISTS (SELECT 1 FROM embedding_vectors
                         WHERE organization_id = ?2 AND table_name = ?3 AND record_id = ?4 AND job_id = ?1)
                       THEN 'done' ELSE 'stale' END,
                     truncated = ?5, updated_at = ?6, completed_at = ?6
                 WHERE id = ?1 AND organization_id = ?2 AND {OPEN}"
            ),
            &[
                text(&job_id),
                text(&job.organization_id),
                text(&table.name),
                text(record_id),
                number(i64::from(truncated)),
                number(now_ms),
            ],
        )?;
        Ok(vec![column, store, finish])
    }
}

impl JobStore for D1Store {
    async fn load(
        &self,
        jobs: &[&EmbeddingJob],
        now_ms: i64,
    ) -> Result<Vec<Option<Loaded>>, Fault> {
        let mut statements = Vec::with_capacity(jobs.len() * 3);
        let mut tables = Vec::with_capacity(jobs.len());
        for job in jobs {
            statements.push(self.record_delivery(job, now_ms)?);
            let table = job.table.as_deref().and_then(|t| self.config.table(t));
            if let Some(table) = table {
                statements.push(self.read_record(table, job)?);
                statements.push(self.read_stored(job)?);
            }
            tables.push(table);
        }
        let mut results = self.db.batch(statements).await?.into_iter();
        let mut loaded = Vec::with_capacity(jobs.len());
        for (job, table) in jobs.iter().zip(tables) {
            let mut next = || {
                results
                    .next()
                    .ok_or_else(|| Fault("D1 returned fewer results than statements".into()))
            };
            let created = next()?.results::<CreatedAt>()?.into_iter().next();
            let (record, metadata, stored) = match table {
                Some(table) => {
                    let record = next()?.results::<serde_json::Map<String, serde_json::Value>>()?;
                    let stored = next()?.results::<StoredRow>()?.into_iter().next();
                    match record.into_iter().next() {
                        Some(row) => (
                            RecordState::Present {
                                text: table.embedding_text(&row),
                            },
                            table.metadata_of(&row),
                            stored,
                        ),
                        None => (RecordState::Missing, serde_json::Map::new(), stored),
                    }
                }
                // A job of a table the config no longer has is treated as unbound: it still
                // gets its vector, on the job row.
                None if job.table.is_some() => (RecordState::Missing, serde_json::Map::new(), None),
                None => (RecordState::Unbound, serde_json::Map::new(), None),
            };
            loaded.push(created.map(|created| Loaded {
                created_at: created.created_at,
                record,
                metadata,
                stored: stored.map(|s| StoredVersion {
                    content_hash: s.content_hash,
                    job_id: s.job_id,
                    job_created_at: s.job_created_at,
                }),
            }));
        }
        Ok(loaded)
    }

    async fn commit(&self, writes: &[Write<'_>], now_ms: i64) -> Result<(), Fault> {
        let mut statements = Vec::with_capacity(writes.len() * 3);
        for write in writes {
            match write {
                Write::Embedded(embedded @ Embedded { table: Some(table), .. }) => {
                    statements.extend(self.store_record_vector(table, embedded, now_ms)?);
                }
                Write::Embedded(Embedded {
                    job,
                    vector,
                    truncated,
                    ..
                }) => statements.push(self.statement(
                    &format!(
                        "UPDATE embedding_jobs SET status = 'done', vector = ?3, truncated = ?4,
                             updated_at = ?5, completed_at = ?5
                         WHERE id = ?1 AND organization_id = ?2 AND {OPEN}"
                    ),
                    &[
                        text(&job.job_id.to_string()),
                        text(&job.organization_id),
                        Uint8Array::from(encode(vector).as_slice()).into(),
                        number(i64::from(*truncated)),
                        number(now_ms),
                    ],
                )?),
                Write::Finished {
                    job_id,
                    organization_id,
                    status,
                    reason,
                } => statements.push(self.statement(
                    &format!(
                        "UPDATE embedding_jobs SET status = ?3, last_error = COALESCE(?4, last_error),
                             updated_at = ?5, completed_at = ?5
                         WHERE id = ?1 AND organization_id = ?2 AND {OPEN}"
                    ),
                    &[
                        text(job_id),
                        text(organization_id),
                        text(status.as_str()),
                        optional(reason.as_deref()),
                        number(now_ms),
                    ],
                )?),
                Write::Rejected { job, reason } => statements.push(self.statement(
                    &format!(
                        "INSERT INTO embedding_jobs (id, organization_id, model, content, content_hash,
                             status, attempts, last_error, created_at, updated_at, completed_at)
                         VALUES (?1, ?2, ?3, ?4, '', 'dead', 1, ?5, ?6, ?6, ?6)
                         ON CONFLICT (id) DO UPDATE SET status = 'dead', attempts = attempts + 1,
                             last_error = excluded.last_error, updated_at = excluded.updated_at,
                             completed_at = excluded.completed_at
                         WHERE embedding_jobs.{OPEN}
                           AND embedding_jobs.organization_id = excluded.organization_id"
                    ),
                    &[
                        text(&job.job_id),
                        text(&job.organization_id),
                        text(&job.model),
                        text(&job.content),
                        text(reason),
                        number(now_ms),
                    ],
                )?),
                Write::Failed {
                    job_id,
                    organization_id,
                    error,
                } => statements.push(self.statement(
                    &format!(
                        "UPDATE embedding_jobs SET last_error = ?3, updated_at = ?4
                         WHERE id = ?1 AND organization_id = ?2 AND {OPEN}"
                    ),
                    &[
                        text(job_id),
                        text(organization_id),
                        text(error),
                        number(now_ms),
                    ],
                )?),
            }
        }
        self.db.batch(statements).await?;
        Ok(())
    }

    async fn mark_dead(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault> {
        let mut statements = Vec::with_capacity(jobs.len());
        for job in jobs {
            statements.push(self.statement(
                &format!(
                    "UPDATE embedding_jobs SET status = 'dead',
                         last_error = CASE WHEN last_error IS NULL THEN ?3 ELSE ?3 || ': ' || last_error END,
                         updated_at = ?4, completed_at = ?4
                     WHERE id = ?1 AND organization_id = ?2 AND {OPEN}"
                ),
                &[
                    text(&job.job_id),
                    text(&job.organization_id),
                    text(&job.reason),
                    number(now_ms),
                ],
            )?);
        }
        self.db.batch(statements).await?;
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct QueueRequeue {
    queue: Queue,
    dead_letters: Queue,
}

impl Requeue for QueueRequeue {
    async fn retry(&self, job: &EmbeddingJob, delay_seconds: u32) -> Result<(), Fault> {
        self.queue
            .send(
                MessageBuilder::new(job)
                    .delay_seconds(delay_seconds)
                    .build(),
            )
            .await?;
        Ok(())
    }

    async fn dead_letter(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        self.dead_letters.send(job).await?;
        Ok(())
    }
}

/// The Vectorize indexes the config names, looked up by binding when first used.
#[derive(Debug)]
pub(crate) struct EnvIndexes<'a>(pub &'a Env);

impl VectorIndexes for EnvIndexes<'_> {
    async fn upsert(&self, binding: &str, vectors: &[IndexedVector]) -> Result<(), Fault> {
        Vectorize::from_env(self.0, binding)?.upsert(vectors).await
    }
}
