//! The consumer's [`JobStore`] over D1: jobs, records and the D1 vector store. Two round trips
//! a batch: one to record the deliveries and read what deciding needs, one to write every
//! result. Request data reaches SQL only as bound parameters; table and column names only from
//! the validated config.

use serde::Deserialize;
use shared::config::{Config, TableConfig};
use shared::freshness::{RecordState, StoredVersion};
use shared::message::EmbeddingJob;
use shared::vector::{decode_hex, encode, vector_id};
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};
use worker_kit::d1::{self, ident, number, optional, text};
use worker_kit::Fault;

use crate::ports::{DeadJob, Embedded, JobStore, Loaded, Write};

/// Jobs, records and the D1 vector store.
#[derive(Debug)]
pub(crate) struct D1Store {
    pub db: D1Database,
    pub config: &'static Config,
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
    location: String,
    /// D1's copy of the vector, read only when it is kept elsewhere than its table keeps
    /// vectors now (it is about to be moved).
    copy_hex: Option<String>,
}

/// Job statuses a delivery may still change.
const OPEN: &str = "status IN ('queued', 'processing')";

impl D1Store {
    /// The job's row, created for a custom pipeline's job, moved to `processing`; it returns
    /// `created_at` unless the job is final or belongs to another organization.
    fn record_delivery(
        &self,
        job: &EmbeddingJob,
        now_ms: i64,
    ) -> Result<D1PreparedStatement, Fault> {
        d1::statement(
            &self.db,
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
        d1::statement(
            &self.db,
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

    fn read_stored(
        &self,
        table: &TableConfig,
        job: &EmbeddingJob,
    ) -> Result<D1PreparedStatement, Fault> {
        d1::statement(
            &self.db,
            "SELECT content_hash, job_id, job_created_at, location,
                 CASE WHEN location != ?4 THEN hex(vector) END AS copy_hex
             FROM embedding_vectors
             WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3",
            &[
                text(&job.organization_id),
                optional(job.table.as_deref()),
                optional(job.id.as_deref()),
                text(&table.embeddings.vector_index.location()),
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
            truncated,
            ..
        } = *embedded;
        let job_id = job.job_id.to_string();
        let record_id = job.id.as_deref().unwrap_or_default();
        let newer = "SELECT 1 FROM embedding_vectors v
             WHERE v.organization_id = ?3 AND v.table_name = ?4 AND v.record_id = ?2
               AND (v.job_created_at, v.job_id) > (?5, ?6)";
        let column = d1::statement(
            &self.db,
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
        // Kept for Vectorize tables too: D1's copy is what the index is brought in line with,
        // and what a move to another backend copies without embedding again.
        let blob: JsValue = Uint8Array::from(encode(vector).as_slice()).into();
        let store = d1::statement(
            &self.db,
            &format!(
                "INSERT INTO embedding_vectors (organization_id, table_name, record_id, vector_id, model,
                     content_hash, vector, metadata, job_id, job_created_at, seq, updated_at, location)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, {}, ?8, ?9,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM embedding_vectors
                      WHERE organization_id = ?1 AND table_name = ?2), ?10, ?11
                 FROM {} r WHERE r.{} = ?3 AND r.{} = ?1
                 ON CONFLICT (organization_id, table_name, record_id) DO UPDATE SET
                     vector_id = excluded.vector_id, model = excluded.model,
                     content_hash = excluded.content_hash, vector = excluded.vector,
                     metadata = excluded.metadata, job_id = excluded.job_id,
                     job_created_at = excluded.job_created_at, seq = excluded.seq,
                     updated_at = excluded.updated_at, location = excluded.location
                 WHERE (excluded.job_created_at, excluded.job_id)
                     > (embedding_vectors.job_created_at, embedding_vectors.job_id)",
                // The metadata is the record's as it is now, not as the job read it.
                table.metadata_sql("r"),
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
                text(&job_id),
                number(created_at),
                number(now_ms),
                text(&table.embeddings.vector_index.location()),
            ],
        )?;
        let finish = d1::statement(
            &self.db,
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
                statements.push(self.read_stored(table, job)?);
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
            let (record, stored) = match table {
                Some(table) => {
                    let record = next()?.results::<serde_json::Map<String, serde_json::Value>>()?;
                    let stored = next()?.results::<StoredRow>()?.into_iter().next();
                    match record.into_iter().next() {
                        Some(row) => (
                            RecordState::Present {
                                text: table.embedding_text(&row),
                            },
                            stored,
                        ),
                        None => (RecordState::Missing, stored),
                    }
                }
                // A job of a table the config no longer has is treated as unbound: it still
                // gets its vector, on the job row.
                None if job.table.is_some() => (RecordState::Missing, None),
                None => (RecordState::Unbound, None),
            };
            // D1's copy, when it was read (the vector is kept elsewhere): a copy that does not
            // decode counts as none, and the job is embedded again.
            let copy = stored
                .as_ref()
                .and_then(|s| s.copy_hex.as_deref())
                .and_then(|hex| decode_hex(hex).ok())
                .filter(|v| !v.is_empty());
            loaded.push(created.map(|created| Loaded {
                created_at: created.created_at,
                record,
                stored: stored.map(|s| StoredVersion {
                    copy_kept: copy.is_some(),
                    content_hash: s.content_hash,
                    job_id: s.job_id,
                    job_created_at: s.job_created_at,
                    location: s.location,
                }),
                copy,
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
                }) => statements.push(d1::statement(
                    &self.db,
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
                } => statements.push(d1::statement(
                    &self.db,
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
                Write::Rejected { job, reason } => statements.push(d1::statement(
                    &self.db,
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
                } => statements.push(d1::statement(
                    &self.db,
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
            statements.push(d1::statement(
                &self.db,
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

    async fn stuck_jobs(&self, unmoved_since: i64, limit: u32) -> Result<Vec<EmbeddingJob>, Fault> {
        #[derive(Deserialize)]
        struct StuckRow {
            id: String,
            organization_id: String,
            table_name: Option<String>,
            record_id: Option<String>,
            model: String,
            content: String,
        }
        let rows = d1::statement(
            &self.db,
            &format!(
                "SELECT id, organization_id, table_name, record_id, model, content
                     FROM embedding_jobs WHERE {OPEN} AND updated_at <= ?1
                     ORDER BY updated_at LIMIT ?2"
            ),
            &[number(unmoved_since), number(i64::from(limit))],
        )?
        .all()
        .await?
        .results::<StuckRow>()?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let job_id = uuid::Uuid::parse_str(&row.id).ok()?;
                Some(EmbeddingJob::new(
                    job_id,
                    row.organization_id,
                    row.model,
                    row.content,
                    row.table_name.zip(row.record_id),
                ))
            })
            .collect())
    }

    async fn touch(&self, jobs: &[EmbeddingJob], now_ms: i64) -> Result<(), Fault> {
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
        d1::statement(
            &self.db,
            &format!(
                "UPDATE embedding_jobs SET updated_at = ?1
                 WHERE {OPEN} AND id IN (SELECT value FROM json_each(?2))"
            ),
            &[number(now_ms), text(&serde_json::to_string(&ids)?)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
