//! The [`MigrationStore`] over D1: the sets of a model change and their coverage. Table and
//! column names come only from the validated config; everything else is a bound parameter.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::message::EmbeddingJob;
use shared::sets::Starter;
use shared::sets::{Migration, VectorSet};
use worker::wasm_bindgen::JsValue;
use worker_kit::d1::{self, ident, number, optional, text};
use worker_kit::sets::{
    self, active_rows, Applied, CoverageRow, SetRow, EARLIER_BATCHES, SET_ROW, UNCOVERED,
};
use worker_kit::Fault;

use crate::migration::{Coverage, Page, PageRecord, RetiringRow, Switched};
use crate::ports::MigrationStore;
use crate::store::D1Store;

impl D1Store {
    /// `sql` over the migration's organization and table (`?1`, `?2`), `rest` following.
    fn table_statement(
        &self,
        sql: &str,
        m: &Migration,
        rest: &[JsValue],
    ) -> Result<worker::D1PreparedStatement, Fault> {
        self.count(1);
        let mut values = vec![text(&m.organization_id), text(&m.table)];
        values.extend(rest.iter().cloned());
        d1::statement(&self.db, sql, &values)
    }

    /// `sql` over the building set (`?1` to `?4`: organization, table, model, location), `rest`
    /// following.
    fn statement_with(
        &self,
        sql: &str,
        m: &Migration,
        rest: &[JsValue],
    ) -> Result<worker::D1PreparedStatement, Fault> {
        let set = [text(&m.model), text(&m.location)];
        let values: Vec<JsValue> = set.into_iter().chain(rest.iter().cloned()).collect();
        self.table_statement(sql, m, &values)
    }
}

impl MigrationStore for D1Store {
    async fn claim(&self, m: &Migration, now_ms: i64) -> Result<Option<u32>, Fault> {
        #[derive(Deserialize)]
        struct Claimed {
            step_seq: u32,
        }
        // The guard of `shared::sets::Claim`: of the steps issued for one value, one moves it.
        // Marks the set as moved too: the sweep resumes a chain whose steps stopped.
        let claimed = self
            .statement_with(
                "UPDATE embedding_sets SET step_seq = step_seq + 1, updated_at = ?8
                 WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
                   AND role = ?5 AND step_seq = ?6
                   AND (role != 'building' OR migration_id = ?7)
                 RETURNING step_seq",
                m,
                &[
                    text(m.step.works_on().as_str()),
                    number(i64::from(m.seq)),
                    text(&m.migration_id.to_string()),
                    number(now_ms),
                ],
            )?
            .all()
            .await?
            .results::<Claimed>()?;
        Ok(claimed.first().map(|c| c.step_seq))
    }

    async fn stalled(&self, unmoved_since: i64, limit: u32) -> Result<Vec<SetRow>, Fault> {
        self.count(1);
        // `shared::sets::fair_order`: each organization's oldest first, then its second...
        Ok(d1::statement(
            &self.db,
            &format!(
                "SELECT {SET_ROW} FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY organization_id
                         ORDER BY updated_at) AS turn
                     FROM embedding_sets
                     WHERE role IN ('building', 'retiring') AND updated_at <= ?1)
                 ORDER BY turn, updated_at LIMIT ?2"
            ),
            &[number(unmoved_since), number(i64::from(limit))],
        )?
        .all()
        .await?
        .results::<SetRow>()?)
    }

    async fn unconfigured(
        &self,
        configured: &[(&TableConfig, VectorSet)],
        limit: u32,
    ) -> Result<Vec<(String, String)>, Fault> {
        #[derive(Deserialize)]
        struct Pair {
            organization_id: String,
            table_name: String,
        }
        let items: Vec<Value> = configured
            .iter()
            .map(|(table, set)| {
                json!({ "table": table.name, "model": set.model, "location": set.location })
            })
            .collect();
        self.count(1);
        // In turns across organizations, as `stalled`.
        let pairs = d1::statement(
            &self.db,
            "SELECT organization_id, table_name FROM (
                 SELECT a.organization_id, a.table_name, a.updated_at,
                     ROW_NUMBER() OVER (PARTITION BY a.organization_id
                         ORDER BY a.updated_at) AS turn
                 FROM embedding_sets a
                 JOIN json_each(?1) c ON c.value ->> 'table' = a.table_name
                 WHERE a.role = 'active'
                   AND NOT EXISTS (SELECT 1 FROM embedding_sets b
                       WHERE b.organization_id = a.organization_id
                         AND b.table_name = a.table_name AND b.role = 'building'
                         AND b.model = c.value ->> 'model'
                         AND b.location = c.value ->> 'location')
                   AND (a.model != c.value ->> 'model' OR a.location != c.value ->> 'location'
                       OR EXISTS (SELECT 1 FROM embedding_sets b
                           WHERE b.organization_id = a.organization_id
                             AND b.table_name = a.table_name AND b.role = 'building')))
             ORDER BY turn, updated_at LIMIT ?2",
            &[
                text(&serde_json::to_string(&items)?),
                number(i64::from(limit)),
            ],
        )?
        .all()
        .await?
        .results::<Pair>()?;
        Ok(pairs
            .into_iter()
            .map(|p| (p.organization_id, p.table_name))
            .collect())
    }

    async fn ensure(&self, tables: &[(String, String)], now_ms: i64) -> Result<Applied, Fault> {
        let wanted: Vec<(&str, &TableConfig)> = tables
            .iter()
            .filter_map(|(org, table)| Some((org.as_str(), self.config.table(table)?)))
            .collect();
        if wanted.is_empty() {
            return Ok(Applied::default());
        }
        let (_, applied) = sets::ensure(&self.db, &wanted, Starter::Worker, now_ms).await?;
        self.count(applied.statements);
        Ok(applied)
    }

    async fn changing_sets(&self, tables: &[(String, String)]) -> Result<Vec<SetRow>, Fault> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        self.count(1);
        Ok(d1::statement(
            &self.db,
            &format!(
                "SELECT {SET_ROW} FROM embedding_sets
                 WHERE role IN ('building', 'retiring') AND (organization_id, table_name) IN
                     (SELECT value ->> 0, value ->> 1 FROM json_each(?1))"
            ),
            &[text(&serde_json::to_string(tables)?)],
        )?
        .all()
        .await?
        .results::<SetRow>()?)
    }

    async fn uncovered(
        &self,
        table: &TableConfig,
        m: &Migration,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, Fault> {
        let columns: Vec<String> = table
            .embedding_columns()
            .into_iter()
            .map(|c| format!("r.{}", ident(c)))
            .collect();
        let sql = format!(
            "SELECT va.record_id AS \"__id\", vb.content_hash AS \"__stored\",
                 CASE WHEN {UNCOVERED} THEN 0 ELSE 1 END AS \"__covered\",
                 EXISTS (SELECT 1 FROM embedding_jobs j
                     WHERE j.organization_id = ?1 AND j.table_name = ?2
                       AND j.record_id = va.record_id AND j.status IN ('queued', 'processing')
                       AND j.backfill_id = ?7) AS \"__queued\",
                 b.created_at AS \"__set_created\", {columns}
             FROM embedding_sets a
             JOIN embedding_vectors va ON va.organization_id = a.organization_id
                 AND va.table_name = a.table_name AND va.model = a.model
                 AND va.location = a.location
             JOIN embedding_sets b ON b.organization_id = ?1 AND b.table_name = ?2
                 AND b.model = ?3 AND b.location = ?4
             JOIN {t} r ON r.{id} = va.record_id AND r.{org} = va.organization_id
             LEFT JOIN embedding_vectors vb ON vb.organization_id = ?1 AND vb.table_name = ?2
                 AND vb.model = ?3 AND vb.location = ?4 AND vb.record_id = va.record_id
             WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = 'active'
               AND va.vector IS NOT NULL AND (?5 IS NULL OR va.record_id > ?5)
             ORDER BY va.record_id LIMIT ?6",
            columns = columns.join(", "),
            t = ident(&table.name),
            id = ident(&table.id_column),
            org = ident(&table.organization_column),
        );
        let rows = self
            .statement_with(
                &sql,
                m,
                &[
                    optional(after),
                    number(i64::from(limit)),
                    text(&m.migration_id.to_string()),
                ],
            )?
            .all()
            .await?
            .results::<serde_json::Map<String, Value>>()?;
        let mut page = Page::default();
        for mut row in rows {
            let field = |row: &mut serde_json::Map<String, Value>, name: &str| row.remove(name);
            let id = field(&mut row, "__id").and_then(|v| v.as_str().map(str::to_owned));
            let stored_hash =
                field(&mut row, "__stored").and_then(|v| v.as_str().map(str::to_owned));
            let covered = field(&mut row, "__covered").and_then(|v| v.as_i64()) == Some(1);
            let queued = field(&mut row, "__queued").and_then(|v| v.as_i64()) == Some(1);
            if let Some(created) = field(&mut row, "__set_created").and_then(|v| v.as_i64()) {
                page.set_created_at = created;
            }
            let Some(id) = id else { continue };
            page.records.push(PageRecord {
                id,
                text: table.has_text(&row).then(|| table.embedding_text(&row)),
                covered,
                stored_hash,
                queued,
            });
        }
        Ok(page)
    }

    async fn queue_jobs(
        &self,
        jobs: &[EmbeddingJob],
        backfill_id: &str,
        created_at: i64,
    ) -> Result<(), Fault> {
        let items: Vec<Value> = jobs
            .iter()
            .map(|job| {
                json!({ "id": job.job_id.to_string(), "org": job.organization_id,
                        "table": job.table, "record": job.id, "model": job.model,
                        "content": job.content, "hash": job.content_hash,
                        "truncated": i64::from(job.truncated) })
            })
            .collect();
        // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
        let statements = self.over_chunks(
            &items,
            "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model,
                 content, content_hash, status, attempts, created_at, updated_at, backfill_id,
                 truncated)
             SELECT value ->> 'id', value ->> 'org', value ->> 'table', value ->> 'record',
                 value ->> 'model', value ->> 'content', value ->> 'hash', 'queued', 0, ?2, ?2,
                 ?3, value ->> 'truncated'
             FROM json_each(?1) WHERE true
             ON CONFLICT (id) DO NOTHING",
            &[number(created_at), text(backfill_id)],
        )?;
        self.run_batch(statements).await
    }

    async fn coverage(&self, table: &TableConfig, m: &Migration) -> Result<Coverage, Fault> {
        self.count(1);
        let row = worker_kit::sets::coverage(&self.db, &m.organization_id, table, &m.set())?
            .first::<CoverageRow>(None)
            .await?
            .unwrap_or_default();
        let (covered, of) = row.counts();
        Ok(Coverage { covered, of })
    }

    async fn switch(
        &self,
        table: &TableConfig,
        m: &Migration,
        now_ms: i64,
    ) -> Result<Switched, Fault> {
        let migration_id = text(&m.migration_id.to_string());
        // Two statements in one transaction: the unique index on one active set per table is
        // checked row by row, so the old set steps down before the new one steps up.
        let retire = self.statement_with(
            &format!(
                "UPDATE embedding_sets SET role = 'retiring', updated_at = ?5
                 WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active'
                   AND EXISTS (SELECT 1 FROM embedding_sets b
                       WHERE b.organization_id = ?1 AND b.table_name = ?2 AND b.model = ?3
                         AND b.location = ?4 AND b.role = 'building' AND b.migration_id = ?6)
                   AND NOT EXISTS (SELECT 1 FROM {active} AND {UNCOVERED})
                   AND NOT {EARLIER_BATCHES}
                 RETURNING {SET_ROW}",
                active = active_rows(table)
            ),
            m,
            &[number(now_ms), migration_id.clone()],
        )?;
        let promote = self.statement_with(
            "UPDATE embedding_sets SET role = 'active', switched_at = ?5, updated_at = ?5
             WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
               AND role = 'building' AND migration_id = ?6
               AND NOT EXISTS (SELECT 1 FROM embedding_sets
                   WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active')
             RETURNING model",
            m,
            &[number(now_ms), migration_id],
        )?;
        let results = self.db.batch(vec![retire, promote]).await?;
        let promoted = match results.get(1) {
            Some(result) => !result.results::<Value>()?.is_empty(),
            None => false,
        };
        if !promoted {
            return Ok(Switched::NotYet);
        }
        let retired = match results.first() {
            Some(result) => result.results::<SetRow>()?.into_iter().next(),
            None => None,
        };
        Ok(Switched::Done { retired })
    }

    async fn retiring_rows(&self, m: &Migration, limit: u32) -> Result<Vec<RetiringRow>, Fault> {
        Ok(self
            .statement_with(
                "SELECT v.model, v.location, v.record_id, v.vector_id, s.switched_at
                 FROM embedding_sets s JOIN embedding_vectors v
                     ON v.organization_id = s.organization_id AND v.table_name = s.table_name
                    AND v.model = s.model AND v.location = s.location
                 WHERE s.organization_id = ?1 AND s.table_name = ?2 AND s.model = ?3
                   AND s.location = ?4 AND s.role = 'retiring'
                 LIMIT ?5",
                m,
                &[number(i64::from(limit))],
            )?
            .all()
            .await?
            .results::<RetiringRow>()?)
    }

    async fn restore_columns(
        &self,
        table: &TableConfig,
        m: &Migration,
        records: &[&str],
    ) -> Result<usize, Fault> {
        #[derive(Deserialize)]
        struct Active {
            record_id: String,
            job_id: String,
            job_created_at: i64,
            hex: String,
        }
        let configured = VectorSet::configured(table);
        let rows = self
            .table_statement(
                "SELECT v.record_id, v.job_id, v.job_created_at, hex(v.vector) AS hex
                 FROM embedding_sets a JOIN embedding_vectors v
                     ON v.organization_id = a.organization_id AND v.table_name = a.table_name
                    AND v.model = a.model AND v.location = a.location
                 WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = 'active'
                   AND a.model = ?3 AND a.location = ?4 AND v.vector IS NOT NULL
                   AND v.record_id IN (SELECT value FROM json_each(?5))",
                m,
                &[
                    text(&configured.model),
                    text(&configured.location),
                    text(&serde_json::to_string(records)?),
                ],
            )?
            .all()
            .await?
            .results::<Active>()?;
        let mut columns = Vec::with_capacity(rows.len());
        for row in &rows {
            let vector = shared::vector::decode_hex(&row.hex)
                .map_err(|e| Fault(format!("a stored vector of `{}`: {e}", row.record_id)))?;
            columns.push(json!({
                "org": m.organization_id, "record": row.record_id, "job": row.job_id,
                "created": row.job_created_at, "vector": serde_json::to_string(&vector)?,
            }));
        }
        let statements = self.over_chunks(
            &columns,
            &crate::store::column_update(table),
            &[
                text(&table.name),
                text(&configured.model),
                text(&configured.location),
            ],
        )?;
        self.run_batch(statements).await?;
        Ok(rows.len())
    }

    async fn remove_rows(
        &self,
        m: &Migration,
        rows: &[RetiringRow],
        _now_ms: i64,
    ) -> Result<(), Fault> {
        let items: Vec<Value> = rows
            .iter()
            .map(|r| json!([r.model, r.location, r.record_id]))
            .collect();
        let statements = self.over_chunks(
            &items,
            "DELETE FROM embedding_vectors
             WHERE organization_id = ?2 AND table_name = ?3
               AND (model, location, record_id) IN
                   (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1))
               AND EXISTS (SELECT 1 FROM embedding_sets s
                   WHERE s.organization_id = ?2 AND s.table_name = ?3
                     AND s.model = embedding_vectors.model
                     AND s.location = embedding_vectors.location AND s.role = 'retiring')",
            &[text(&m.organization_id), text(&m.table)],
        )?;
        if statements.is_empty() {
            return Ok(());
        }
        // The step's claim marked the clean-up as moving: the sweep leaves it be.
        self.run_batch(statements).await
    }

    async fn drop_retired(&self, m: &Migration, _now_ms: i64) -> Result<usize, Fault> {
        let removed = self
            .statement_with(
                "DELETE FROM embedding_sets
                 WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
                   AND role = 'retiring'
                   AND NOT EXISTS (SELECT 1 FROM embedding_vectors v
                       WHERE v.organization_id = embedding_sets.organization_id
                         AND v.table_name = embedding_sets.table_name
                         AND v.model = embedding_sets.model
                         AND v.location = embedding_sets.location)
                 RETURNING model",
                m,
                &[],
            )?
            .all()
            .await?
            .results::<Value>()?;
        Ok(removed.len())
    }
}
