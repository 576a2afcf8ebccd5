//! The gateway's reads and writes of vector sets (`shared::sets`) over D1: a table's embedding
//! health for the status route, and the set a model change starts. Every count is an indexed
//! query: the jobs by `embedding_jobs_table_status_idx` and `embedding_jobs_open_record_idx`,
//! the vectors by their set's key; none reads the jobs table through.

use serde::Deserialize;
use shared::config::TableConfig;
use shared::sets::{Starter, VectorSet};
use worker_kit::d1::{ident, text};
use worker_kit::sets::{self, CoverageRow, SetRow, SET_ROW};
use worker_kit::{vector_rows, Fault};

use crate::ports::{LastError, TableHealth};
use crate::store::D1Store;

#[derive(Deserialize)]
struct Count {
    n: u64,
}

#[derive(Deserialize)]
struct StatusCount {
    status: String,
    n: u64,
    oldest: Option<i64>,
}

/// The newest error of each kind of job that keeps one: dead, failed, and open (a job between
/// retries). Each is the first of an index range.
const LAST_ERRORS: &str = "
    SELECT * FROM (SELECT id, status, last_error, updated_at FROM embedding_jobs
        WHERE organization_id = ?1 AND table_name = ?2 AND status = 'dead'
        ORDER BY created_at DESC LIMIT 1)
    UNION ALL SELECT * FROM (SELECT id, status, last_error, updated_at FROM embedding_jobs
        WHERE organization_id = ?1 AND table_name = ?2 AND status = 'failed'
        ORDER BY created_at DESC LIMIT 1)
    UNION ALL SELECT * FROM (SELECT id, status, last_error, updated_at FROM embedding_jobs
        WHERE organization_id = ?1 AND table_name = ?2 AND status IN ('queued', 'processing')
          AND last_error IS NOT NULL ORDER BY created_at DESC LIMIT 1)";

impl D1Store {
    pub(crate) async fn read_table_health(
        &self,
        table: &TableConfig,
        organization_id: &str,
    ) -> Result<TableHealth, Fault> {
        let scope = [text(organization_id), text(&table.name)];
        let configured = VectorSet::configured(table);
        let statements = vec![
            self.statement(
                &format!(
                    "SELECT {SET_ROW} FROM embedding_sets
                     WHERE organization_id = ?1 AND table_name = ?2
                       AND role IN ('active', 'building', 'retiring')"
                ),
                &scope,
            )?,
            self.statement(
                &format!(
                    "SELECT COUNT(*) AS n FROM {} WHERE {} = ?1",
                    ident(&table.name),
                    ident(&table.organization_column)
                ),
                &[text(organization_id)],
            )?,
            self.statement(
                &vector_rows::embedded_count(),
                &[
                    text(organization_id),
                    text(&table.name),
                    text(&configured.model),
                    text(&configured.location),
                ],
            )?,
            self.statement(
                "SELECT status, COUNT(*) AS n, MIN(created_at) AS oldest FROM embedding_jobs
                 WHERE organization_id = ?1 AND table_name = ?2
                   AND status IN ('queued', 'processing', 'failed', 'dead')
                 GROUP BY status",
                &scope,
            )?,
            self.statement(LAST_ERRORS, &scope)?,
        ];
        let results = self.db.batch(statements).await?;
        let [sets, records, embedded, jobs, errors] = results.as_slice() else {
            return Err(Fault("D1 returned other than five results".into()));
        };
        let count = |result: &worker::D1Result| -> Result<u64, Fault> {
            Ok(result.results::<Count>()?.first().map_or(0, |c| c.n))
        };
        let mut health = TableHealth {
            sets: sets.results::<SetRow>()?,
            records: count(records)?,
            embedded: count(embedded)?,
            ..TableHealth::default()
        };
        for row in jobs.results::<StatusCount>()? {
            match row.status.as_str() {
                "queued" | "processing" => {
                    health.pending += row.n;
                    health.oldest_pending_at = match (health.oldest_pending_at, row.oldest) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                "failed" => health.failed = row.n,
                "dead" => health.dead = row.n,
                _ => {}
            }
        }
        health.last_error = errors
            .results::<LastError>()?
            .into_iter()
            .max_by_key(|e| e.updated_at);
        let building = health
            .sets
            .iter()
            .find(|s| s.role() == Some(shared::sets::SetRole::Building));
        if let Some(building) = building {
            self.count(1);
            let row = sets::coverage(&self.db, organization_id, table, &building.set())?
                .first::<CoverageRow>(None)
                .await?
                .unwrap_or_default();
            health.coverage = Some(row.counts());
        }
        Ok(health)
    }

    /// Makes sure of the table's configured set as the command decides
    /// (`shared::sets::plan`, `Starter::Command`): the sets it changed (made, or gave up: their
    /// first step is the command's to send) and those live now.
    pub(crate) async fn make_sure_of_sets(
        &self,
        table: &TableConfig,
        organization_id: &str,
        now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<SetRow>), Fault> {
        let applied = sets::ensure(
            &self.db,
            &[(organization_id, table)],
            Starter::Command,
            now_ms,
        )
        .await?;
        self.count(applied.statements);
        Ok((
            applied.made.into_iter().chain(applied.given_up).collect(),
            applied.live,
        ))
    }
}
