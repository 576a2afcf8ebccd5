//! The end of a model change: the switch that makes the built set active and the active one
//! retiring, then the clean-up of the retired set, its rows read and removed (a retired change
//! first puts the active set's vectors back in the records' column), and the set dropped once
//! empty.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::sets::{Migration, SetRole};
use worker_kit::d1::{number, text};
use worker_kit::sets::{earlier_batches, SetRow, SET_ROW};
use worker_kit::vector_rows::{self, active_rows, UNCOVERED};
use worker_kit::Fault;

use crate::migration::{RetiringRow, Switched};
use crate::store::D1Store;

impl D1Store {
    /// [`crate::ports::MigrationStore::switch`].
    pub(super) async fn switch_sets(
        &self,
        table: &TableConfig,
        m: &Migration,
        now_ms: i64,
    ) -> Result<Switched, Fault> {
        let migration_id = text(&m.migration_id.to_string());
        let (active, building, retiring) = (
            SetRole::Active.as_str(),
            SetRole::Building.as_str(),
            SetRole::Retiring.as_str(),
        );
        // Two statements in one transaction: the unique index on one active set per table is
        // checked row by row, so the old set steps down before the new one steps up.
        let retire = self.statement_with(
            &format!(
                "UPDATE embedding_sets SET role = '{retiring}', updated_at = ?5
                 WHERE organization_id = ?1 AND table_name = ?2 AND role = '{active}'
                   AND EXISTS (SELECT 1 FROM embedding_sets b
                       WHERE b.organization_id = ?1 AND b.table_name = ?2 AND b.model = ?3
                         AND b.location = ?4 AND b.role = '{building}'
                         AND b.migration_id = ?6)
                   AND NOT EXISTS (SELECT 1 FROM {rows} AND {UNCOVERED})
                   AND NOT {earlier}
                 RETURNING {SET_ROW}",
                rows = active_rows(table),
                earlier = earlier_batches(),
            ),
            m,
            &[number(now_ms), migration_id.clone()],
        )?;
        let promote = self.statement_with(
            &format!(
                "UPDATE embedding_sets SET role = '{active}', switched_at = ?5, updated_at = ?5
                 WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3
                   AND location = ?4 AND role = '{building}' AND migration_id = ?6
                   AND NOT EXISTS (SELECT 1 FROM embedding_sets
                       WHERE organization_id = ?1 AND table_name = ?2 AND role = '{active}')
                 RETURNING model"
            ),
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

    /// [`crate::ports::MigrationStore::retiring_rows`].
    pub(super) async fn rows_of_retiring(
        &self,
        m: &Migration,
        limit: u32,
    ) -> Result<Vec<RetiringRow>, Fault> {
        Ok(self
            .statement_with(
                &vector_rows::retiring_rows(),
                m,
                &[number(i64::from(limit))],
            )?
            .all()
            .await?
            .results::<RetiringRow>()?)
    }

    /// [`crate::ports::MigrationStore::restore_columns`].
    pub(super) async fn restore_from_active(
        &self,
        table: &TableConfig,
        m: &Migration,
        records: &[&str],
    ) -> Result<usize, Fault> {
        #[derive(Deserialize)]
        struct Active {
            record_id: String,
            model: String,
            location: String,
            job_id: String,
            hex: String,
        }
        // The active set whatever this worker's config names: a worker configured for the set
        // given up may run its clean-up (a rolling deploy).
        let rows = self
            .table_statement(
                &vector_rows::active_vectors(),
                m,
                &[text(&serde_json::to_string(records)?)],
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
                "model": row.model, "location": row.location,
                "vector": serde_json::to_string(&vector)?,
            }));
        }
        // The statement a batch writes the column with: it applies an item only while the
        // active set still keeps the row it was read from, and no set being built holds the
        // record.
        let statements = self.over_chunks(
            &columns,
            &vector_rows::column_update(table),
            &[text(&table.name)],
        )?;
        self.run_batch(statements).await?;
        Ok(rows.len())
    }

    /// [`crate::ports::MigrationStore::remove_rows`].
    pub(super) async fn remove_retiring_rows(
        &self,
        m: &Migration,
        rows: &[RetiringRow],
    ) -> Result<(), Fault> {
        let items: Vec<Value> = rows
            .iter()
            .map(|r| json!({ "model": r.model, "location": r.location, "record": r.record_id }))
            .collect();
        let statements = self.over_chunks(
            &items,
            &vector_rows::remove_retiring(),
            &[text(&m.organization_id), text(&m.table)],
        )?;
        if statements.is_empty() {
            return Ok(());
        }
        // The step's claim marked the clean-up as moving: the sweep leaves it be.
        self.run_batch(statements).await
    }

    /// [`crate::ports::MigrationStore::drop_retired`].
    pub(super) async fn drop_emptied_set(&self, m: &Migration) -> Result<usize, Fault> {
        let removed = self
            .statement_with(&vector_rows::drop_emptied(), m, &[])?
            .all()
            .await?
            .results::<Value>()?;
        Ok(removed.len())
    }
}
