//! The gateway's [`Store`] over D1. Every query is scoped to the caller's organization; request
//! data reaches SQL only as bound parameters, and table and column names only from the
//! validated config (quoted).

use shared::api_key;
use shared::config::TableConfig;
use shared::job::STUCK_AFTER_MS;
use shared::message::EmbeddingJob;
use shared::record::{Record, CREATED_AT, UPDATED_AT};
use std::cell::Cell;

use uuid::Uuid;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};
use worker_kit::d1::{self, ident, number, optional, text};
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use serde::Deserialize;

use crate::ports::{
    ApiKeyRow, BackfillCandidate, JobFilter, JobRow, KeyUse, RecordWrite, SessionRow, Store,
    TableHealth,
};

/// D1, and the statements this request has prepared on it: every one of a `batch()` counts
/// against the invocation's queries (50 on Workers Free, 1,000 on Paid).
#[derive(Debug)]
pub(crate) struct D1Store {
    pub(crate) db: D1Database,
    statements: Cell<usize>,
}

impl D1Store {
    pub(crate) fn new(db: D1Database) -> Self {
        D1Store {
            db,
            statements: Cell::new(0),
        }
    }

    pub(crate) fn count(&self, n: usize) {
        self.statements.set(self.statements.get() + n);
    }

    pub(crate) fn statement(
        &self,
        sql: &str,
        values: &[JsValue],
    ) -> Result<D1PreparedStatement, Fault> {
        self.count(1);
        d1::statement(&self.db, sql, values)
    }

    fn over_chunks(
        &self,
        items: &[serde_json::Value],
        sql: &str,
        rest: &[JsValue],
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let statements = d1::over_chunks(&self.db, items, sql, rest)?;
        self.count(statements.len());
        Ok(statements)
    }
}

/// A JSON value of a record body as a bound parameter (numbers as doubles, booleans as 0/1).
fn bound(value: &serde_json::Value) -> JsValue {
    match value {
        serde_json::Value::String(s) => text(s),
        serde_json::Value::Number(n) => n.as_f64().map_or(JsValue::NULL, JsValue::from_f64),
        serde_json::Value::Bool(b) => JsValue::from_f64(f64::from(u8::from(*b))),
        _ => JsValue::NULL,
    }
}

fn columns(table: &TableConfig) -> String {
    table
        .columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A write the table refused by one of its constraints is the caller's to fix, not a fault.
fn refused(error: worker::Error) -> Result<RecordWrite, Fault> {
    let message = error.to_string();
    match message.find("constraint failed") {
        Some(at) => {
            let start = message[..at].rfind(':').map_or(0, |i| i + 1);
            let reason = message[start..]
                .split(": SQLITE")
                .next()
                .unwrap_or_default();
            Ok(RecordWrite::Refused(reason.trim().to_owned()))
        }
        None => Err(Fault::from(error)),
    }
}

const JOB_COLUMNS: &str =
    "id, organization_id, table_name, record_id, model, content, content_hash, status,
     attempts, last_error, truncated, backfill_id, created_at, updated_at, completed_at";

impl D1Store {
    /// Runs a record write that `RETURNING`s the row: the row as stored, `none` when the
    /// statement wrote nothing, or the constraint that refused it.
    async fn write_record(
        &self,
        sql: &str,
        params: &[JsValue],
        none: RecordWrite,
    ) -> Result<RecordWrite, Fault> {
        match self.statement(sql, params)?.all().await {
            Ok(result) => Ok(result
                .results::<Record>()?
                .into_iter()
                .next()
                .map_or(none, RecordWrite::Written)),
            Err(e) => refused(e),
        }
    }

    fn changes(result: &worker::D1Result) -> Result<usize, Fault> {
        Ok(result
            .meta()?
            .and_then(|meta| meta.changes)
            .unwrap_or_default())
    }
}

impl Store for D1Store {
    fn statements(&self) -> usize {
        self.statements.get()
    }

    async fn ping(&self) -> Result<(), Fault> {
        d1::ping(&self.db).await
    }

    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault> {
        // The session and the user's role in its active organization, in one round trip.
        let row = self
            .statement(
                r#"SELECT s."userId" AS user_id, s."activeOrganizationId" AS active_organization_id,
                          CAST(s."expiresAt" AS TEXT) AS expires_at, m."role" AS role
                   FROM "session" s
                   LEFT JOIN "member" m
                     ON m."organizationId" = s."activeOrganizationId" AND m."userId" = s."userId"
                   WHERE s."token" = ?1"#,
                &[text(token)],
            )?
            .first::<SessionRow>(None)
            .await?;
        Ok(row)
    }

    async fn use_api_key(&self, key_hash: &str, now_ms: i64) -> Result<Option<KeyUse>, Fault> {
        #[derive(Deserialize)]
        struct CreatorRole {
            role: String,
        }
        // One round trip: the key marked used (when its last written use is a minute old, as
        // `api_key::use_is_written` says: an UPDATE that matches nothing writes nothing), the
        // key, and its creator's membership now.
        let touch = self.statement(
            "UPDATE api_keys SET last_used_at = ?2
             WHERE key_hash = ?1 AND revoked_at IS NULL
               AND (last_used_at IS NULL OR last_used_at <= ?3)",
            &[
                text(key_hash),
                number(now_ms),
                number(now_ms - api_key::LAST_USED_RESOLUTION_MS),
            ],
        )?;
        let key = self.statement(
            "SELECT id, organization_id, name, role, created_by, created_at, last_used_at, revoked_at
             FROM api_keys WHERE key_hash = ?1 AND revoked_at IS NULL",
            &[text(key_hash)],
        )?;
        let creator = self.statement(
            r#"SELECT m."role" AS role FROM api_keys k
               JOIN "member" m ON m."organizationId" = k.organization_id AND m."userId" = k.created_by
               WHERE k.key_hash = ?1"#,
            &[text(key_hash)],
        )?;
        let mut results = self
            .db
            .batch(vec![touch, key, creator])
            .await?
            .into_iter()
            .skip(1);
        let key = match results.next() {
            Some(result) => result.results::<ApiKeyRow>()?.into_iter().next(),
            None => None,
        };
        let creator_role = match results.next() {
            Some(result) => result.results::<CreatorRole>()?.into_iter().next(),
            None => None,
        };
        Ok(key.map(|key| KeyUse {
            key,
            creator_role: creator_role.map(|c| c.role),
        }))
    }

    async fn insert_api_key(&self, key: &ApiKeyRow, key_hash: &str) -> Result<(), Fault> {
        self.statement(
            "INSERT INTO api_keys (id, organization_id, name, key_hash, role, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                text(&key.id),
                text(&key.organization_id),
                text(&key.name),
                text(key_hash),
                text(&key.role),
                text(&key.created_by),
                number(key.created_at),
            ],
        )?
        .run()
        .await?;
        Ok(())
    }

    async fn api_keys(&self, organization_id: &str) -> Result<Vec<ApiKeyRow>, Fault> {
        let rows = self.statement(
            "SELECT id, organization_id, name, role, created_by, created_at, last_used_at, revoked_at
             FROM api_keys WHERE organization_id = ?1 ORDER BY created_at DESC, id",
            &[text(organization_id)],
        )?
        .all()
        .await?
        .results::<ApiKeyRow>()?;
        Ok(rows)
    }

    async fn revoke_api_key(
        &self,
        organization_id: &str,
        id: &str,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        let result = self
            .statement(
                "UPDATE api_keys SET revoked_at = ?3
                 WHERE id = ?1 AND organization_id = ?2 AND revoked_at IS NULL",
                &[text(id), text(organization_id), number(now_ms)],
            )?
            .run()
            .await?;
        Ok(Self::changes(&result)? > 0)
    }

    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1 AND {} = ?2",
            columns(table),
            ident(&table.name),
            ident(&table.id_column),
            ident(&table.organization_column)
        );
        let row = self
            .statement(&sql, &[text(id), text(organization_id)])?
            .first::<Record>(None)
            .await?;
        Ok(row)
    }

    async fn records(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Fault> {
        let id = ident(&table.id_column);
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1 AND (?2 IS NULL OR {id} > ?2) ORDER BY {id} LIMIT ?3",
            columns(table),
            ident(&table.name),
            ident(&table.organization_column),
        );
        let rows = self
            .statement(
                &sql,
                &[
                    text(organization_id),
                    optional(after),
                    number(i64::from(limit)),
                ],
            )?
            .all()
            .await?
            .results::<Record>()?;
        Ok(rows)
    }

    async fn insert_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        now_ms: i64,
    ) -> Result<RecordWrite, Fault> {
        let mut names = vec![ident(&table.id_column), ident(&table.organization_column)];
        let mut params = vec![text(id), text(organization_id)];
        for (name, value) in values {
            names.push(ident(name));
            params.push(bound(value));
        }
        for stamp in [CREATED_AT, UPDATED_AT] {
            if table.columns.iter().any(|c| c == stamp) {
                names.push(ident(stamp));
                params.push(number(now_ms));
            }
        }
        let placeholders: Vec<String> = (1..=params.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING {}",
            ident(&table.name),
            names.join(", "),
            placeholders.join(", "),
            columns(table)
        );
        self.write_record(&sql, &params, RecordWrite::IdTaken).await
    }

    async fn update_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        now_ms: i64,
    ) -> Result<(Option<Record>, RecordWrite), Fault> {
        let mut sets = Vec::new();
        let mut params = vec![text(id), text(organization_id)];
        for (name, value) in values {
            params.push(bound(value));
            sets.push(format!("{} = ?{}", ident(name), params.len()));
        }
        if table.columns.iter().any(|c| c == UPDATED_AT) {
            params.push(number(now_ms));
            sets.push(format!("{} = ?{}", ident(UPDATED_AT), params.len()));
        }
        let (table_name, id_column, organization_column) = (
            ident(&table.name),
            ident(&table.id_column),
            ident(&table.organization_column),
        );
        let before = self.statement(
            &format!(
                "SELECT {} FROM {table_name} WHERE {id_column} = ?1 AND {organization_column} = ?2",
                columns(table)
            ),
            &[text(id), text(organization_id)],
        )?;
        let update = self.statement(
            &format!(
                "UPDATE {table_name} SET {} WHERE {id_column} = ?1 AND {organization_column} = ?2
                 RETURNING {}",
                sets.join(", "),
                columns(table)
            ),
            &params,
        )?;
        // One batch is one transaction: no other write lands between the read and the update.
        let results = match self.db.batch(vec![before, update]).await {
            Ok(results) => results,
            Err(e) => return refused(e).map(|write| (None, write)),
        };
        let mut rows = results.into_iter().map(|result| {
            result
                .results::<Record>()
                .map(|rows| rows.into_iter().next())
        });
        let before = rows.next().transpose()?.flatten();
        let after = rows.next().transpose()?.flatten();
        Ok((
            before,
            after.map_or(RecordWrite::Missing, RecordWrite::Written),
        ))
    }

    async fn refresh_vector_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let result = self
            .statement(
                &format!(
                    "UPDATE embedding_vectors SET
                         metadata = (SELECT {} FROM {} r WHERE r.{} = ?3 AND r.{} = ?1),
                         seq = (SELECT MAX(seq) + 1 FROM embedding_vectors
                                WHERE organization_id = ?1 AND table_name = ?2)
                     WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3
                       AND vector IS NOT NULL",
                    table.metadata_sql("r"),
                    ident(&table.name),
                    ident(&table.id_column),
                    ident(&table.organization_column),
                ),
                &[text(organization_id), text(&table.name), text(id)],
            )?
            .run()
            .await?;
        Ok(Self::changes(&result)? > 0)
    }

    async fn delete_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let record = self.statement(
            &format!(
                "DELETE FROM {} WHERE {} = ?1 AND {} = ?2",
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column)
            ),
            &[text(id), text(organization_id)],
        )?;
        // A tombstone, not a DELETE: its new `seq` tells search-worker's cache the vector is gone.
        let vector = self.statement(
            "UPDATE embedding_vectors SET vector = NULL, codes = NULL, content_hash = '',
                 metadata = '{}', seq = (SELECT MAX(seq) + 1 FROM embedding_vectors
                        WHERE organization_id = ?1 AND table_name = ?2)
             WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3",
            &[text(organization_id), text(&table.name), text(id)],
        )?;
        let results = self.db.batch(vec![record, vector]).await?;
        Ok(results
            .first()
            .map(Self::changes)
            .transpose()?
            .unwrap_or_default()
            > 0)
    }

    async fn backfill_candidates(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BackfillCandidate>, Fault> {
        let id = ident(&table.id_column);
        let record_columns: Vec<String> = table
            .embedding_columns()
            .into_iter()
            .map(|c| format!("r.{}", ident(c)))
            .collect();
        let sql = format!(
            // Current means current in the set the config names: while the table's model or
            // index changes, a record the new set lacks is sent there.
            "SELECT {}, v.content_hash AS stored_hash
             FROM {} r
             LEFT JOIN embedding_vectors v
               ON v.organization_id = ?1 AND v.table_name = ?4 AND v.model = ?6
              AND v.location = ?5 AND v.record_id = r.{id}
             WHERE r.{} = ?1 AND (?2 IS NULL OR r.{id} > ?2)
             ORDER BY r.{id} LIMIT ?3",
            record_columns.join(", "),
            ident(&table.name),
            ident(&table.organization_column),
        );
        let rows = self
            .statement(
                &sql,
                &[
                    text(organization_id),
                    optional(after),
                    number(i64::from(limit)),
                    text(&table.name),
                    text(&table.embeddings.vector_index.location()),
                    text(&table.embeddings.model),
                ],
            )?
            .all()
            .await?
            .results::<Record>()?;
        Ok(rows
            .into_iter()
            .map(|mut record| {
                let stored_hash = record
                    .remove("stored_hash")
                    .and_then(|h| h.as_str().map(str::to_owned));
                BackfillCandidate {
                    record,
                    stored_hash,
                }
            })
            .collect())
    }

    async fn insert_jobs(&self, jobs: &[JobRow]) -> Result<(), Fault> {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .map(|job| {
                serde_json::json!({
                    "id": job.id, "org": job.organization_id, "table": job.table_name,
                    "record": job.record_id, "model": job.model, "content": job.content,
                    "hash": job.content_hash, "status": job.status, "attempts": job.attempts,
                    "backfill": job.backfill_id, "created": job.created_at,
                })
            })
            .collect();
        // A backfill's 500 rows in a statement or two, not 500 of D1's queries.
        let statements = self.over_chunks(
            &rows,
            "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
                 content_hash, status, attempts, backfill_id, created_at, updated_at)
             SELECT value ->> 'id', value ->> 'org', value ->> 'table', value ->> 'record',
                 value ->> 'model', value ->> 'content', value ->> 'hash', value ->> 'status',
                 value ->> 'attempts', value ->> 'backfill', value ->> 'created',
                 value ->> 'created'
             FROM json_each(?1)",
            &[],
        )?;
        d1::run_batch(&self.db, statements).await
    }

    async fn mark_jobs_failed(
        &self,
        organization_id: &str,
        job_ids: &[Uuid],
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let ids: Vec<serde_json::Value> = job_ids
            .iter()
            .map(|id| serde_json::Value::String(id.to_string()))
            .collect();
        let statements = self.over_chunks(
            &ids,
            "UPDATE embedding_jobs SET status = 'failed', last_error = ?3, updated_at = ?4,
                 completed_at = ?4
             WHERE organization_id = ?2 AND id IN (SELECT value FROM json_each(?1))",
            &[text(organization_id), text(error), number(now_ms)],
        )?;
        d1::run_batch(&self.db, statements).await
    }

    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault> {
        let row = self
            .statement(
                &format!(
                    "SELECT {JOB_COLUMNS}, hex(vector) AS vector_hex
                     FROM embedding_jobs WHERE id = ?1 AND organization_id = ?2"
                ),
                &[text(&job_id.to_string()), text(organization_id)],
            )?
            .first::<JobRow>(None)
            .await?;
        Ok(row)
    }

    async fn jobs(&self, organization_id: &str, filter: &JobFilter) -> Result<Vec<JobRow>, Fault> {
        let (before_at, before_id) = filter
            .before
            .as_ref()
            .map_or((JsValue::NULL, JsValue::NULL), |(at, id)| {
                (number(*at), text(id))
            });
        let rows = self
            .statement(
                &format!(
                    "SELECT {JOB_COLUMNS} FROM embedding_jobs
                     WHERE organization_id = ?1
                       AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR backfill_id = ?3)
                       AND (?4 IS NULL OR (created_at, id) < (?4, ?5))
                     ORDER BY created_at DESC, id DESC LIMIT ?6"
                ),
                &[
                    text(organization_id),
                    optional(filter.status.map(shared::job::JobStatus::as_str)),
                    optional(filter.backfill_id.as_deref()),
                    before_at,
                    before_id,
                    number(i64::from(filter.limit)),
                ],
            )?
            .all()
            .await?
            .results::<JobRow>()?;
        Ok(rows)
    }

    async fn requeue_job(&self, job: &EmbeddingJob, now_ms: i64) -> Result<bool, Fault> {
        let result = self
            .statement(
                "UPDATE embedding_jobs SET status = 'queued', content = ?3, content_hash = ?4,
                     updated_at = ?5, completed_at = NULL
                 WHERE id = ?1 AND organization_id = ?2
                   AND (status IN ('dead', 'failed')
                        OR (status IN ('queued', 'processing') AND updated_at <= ?6))",
                &[
                    text(&job.job_id.to_string()),
                    text(&job.organization_id),
                    text(&job.content),
                    text(&job.content_hash),
                    number(now_ms),
                    number(now_ms - STUCK_AFTER_MS),
                ],
            )?
            .run()
            .await?;
        Ok(Self::changes(&result)? > 0)
    }

    async fn table_health(
        &self,
        table: &TableConfig,
        organization_id: &str,
        _now_ms: i64,
    ) -> Result<TableHealth, Fault> {
        self.read_table_health(table, organization_id).await
    }

    async fn ensure_sets(
        &self,
        table: &TableConfig,
        organization_id: &str,
        now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<SetRow>), Fault> {
        self.make_sure_of_sets(table, organization_id, now_ms).await
    }
}
