//! The clean-up of a retiring set: a chunk of its rows goes from Vectorize and D1 at a time
//! (a change given up before its switch first gives the records' embedding column back the
//! active set's vectors); once none is left the set goes, and a change that waited for it
//! starts.

use std::collections::BTreeMap;

use shared::sets::{Migration, MigrationStep, Step, CLEANUP_CHUNK};
use worker_kit::Fault;

use super::Steps;
use crate::ports::{MigrationStore, Requeue, VectorIndexes};

impl<S: MigrationStore, R: Requeue, V: VectorIndexes> Steps<'_, S, R, V> {
    pub(super) async fn cleanup(
        &self,
        step: &MigrationStep,
        seq: u32,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let m = &step.migration;
        let mut rows = self.store.retiring_rows(m, CLEANUP_CHUNK).await?;
        let mut more = rows.len() == CLEANUP_CHUNK as usize;
        // A change given up before its switch wrote its own model's vectors into the records'
        // embedding column, which follows the set being built: those records get the active
        // set's vectors back first, a smaller chunk at a time (each carries its vectors).
        let given_up: Vec<RetiringRow> = rows
            .iter()
            .filter(|r| r.switched_at.is_none())
            .take(RESTORE_CHUNK)
            .cloned()
            .collect();
        if let (Some(table), false) = (self.config.table(&m.table), given_up.is_empty()) {
            more |= given_up.len() < rows.len();
            rows = given_up;
            let records: Vec<&str> = rows.iter().map(|r| r.record_id.as_str()).collect();
            let restored = self.store.restore_columns(table, m, &records).await?;
            tracing::info!(organization_id = %m.organization_id, table = %m.table, records = records.len(), restored, "model change given up: the records' embedding column holds the active set's vectors again");
        }
        let mut by_binding: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for row in &rows {
            if let Some(binding) = shared::sets::binding_of(&row.location) {
                by_binding
                    .entry(binding)
                    .or_default()
                    .push(row.vector_id.clone());
            }
        }
        // Out of the index first: a row gone from D1 would leave its vector unnamed there.
        for (binding, ids) in &by_binding {
            self.indexes.delete(binding, ids).await?;
        }
        self.store.remove_rows(m, &rows, now_ms).await?;
        if more {
            return self
                .requeue
                .steps(&[(step.then(seq, Step::Cleanup), 0)])
                .await;
        }
        let removed = self.store.drop_retired(m, now_ms).await?;
        tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, model = %m.model, location = %m.location, rows = rows.len(), sets_removed = removed, "model change done: the old set is removed");
        self.start_waiting_change(m, now_ms).await
    }

    /// Starts the change a deploy asked for while the old set was being removed: it could not
    /// start then (`shared::sets::plan` makes no set where a retiring one still is), and would
    /// otherwise wait for the table's next write, or the sweep.
    async fn start_waiting_change(&self, m: &Migration, now_ms: i64) -> Result<(), Fault> {
        let tables = [(m.organization_id.clone(), m.table.clone())];
        let steps: Vec<(MigrationStep, u32)> = self
            .store
            .ensure(&tables, now_ms)
            .await?
            .steps()
            .into_iter()
            .map(|step| (step, 0))
            .collect();
        for (step, _) in &steps {
            let next = &step.migration;
            tracing::info!(organization_id = %next.organization_id, table = %next.table, migration_id = %next.migration_id, model = %next.model, location = %next.location, step = ?next.step, "model change started once the old set was removed");
        }
        if steps.is_empty() {
            return Ok(());
        }
        self.requeue.steps(&steps).await
    }
}

/// Rows of a given-up set whose records' columns one clean-up step restores: their vectors, as
/// JSON, fit one bound parameter of D1's (`worker_kit::d1::MAX_PARAMETER_BYTES`) at 1,024
/// dimensions.
const RESTORE_CHUNK: usize = 100;

/// A row of a retiring set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct RetiringRow {
    pub model: String,
    pub location: String,
    pub record_id: String,
    pub vector_id: String,
    /// When its set became active; none for a set given up before its switch.
    pub switched_at: Option<i64>,
}
