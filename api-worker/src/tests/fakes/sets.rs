//! [`Sets`] of the [`FakeStore`]: a table's health counted from the rows in memory, and the
//! sets a model change makes.

use shared::config::TableConfig;
use shared::job::JobStatus;
use shared::sets::{SetRole, Starter};
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use super::{in_table, FakeStore};
use crate::ports::{JobRow, LastError, Sets, TableHealth};

impl Sets for FakeStore {
    async fn table_health(
        &self,
        table: &TableConfig,
        organization_id: &str,
        _now_ms: i64,
    ) -> Result<TableHealth, Fault> {
        self.reachable()?;
        let sets: Vec<SetRow> = self
            .sets
            .borrow()
            .iter()
            .filter(|s| s.organization_id == organization_id && s.table_name == table.name)
            .filter(|s| s.role().is_some())
            .cloned()
            .collect();
        let jobs = self.jobs.borrow();
        let of_table: Vec<&JobRow> = jobs
            .iter()
            .filter(|j| {
                j.organization_id == organization_id && j.table_name.as_deref() == Some(&table.name)
            })
            .collect();
        let status = |j: &JobRow| JobStatus::parse(&j.status);
        let open = |j: &JobRow| status(j).is_some_and(|s| !s.is_final());
        let with = |wanted: JobStatus| {
            of_table
                .iter()
                .filter(|j| status(j) == Some(wanted))
                .count() as u64
        };
        let vectors = self
            .vectors
            .iter()
            .filter(|(org, t, _, _)| org == organization_id && *t == table.name)
            .count() as u64;
        let building = sets.iter().any(|s| s.role() == Some(SetRole::Building));
        Ok(TableHealth {
            records: self
                .records
                .borrow()
                .iter()
                .filter(|stored| in_table(stored, &table.name, organization_id))
                .count() as u64,
            embedded: vectors,
            coverage: building.then_some((0, vectors)),
            pending: of_table.iter().filter(|j| open(j)).count() as u64,
            failed: with(JobStatus::Failed),
            dead: with(JobStatus::Dead),
            oldest_pending_at: of_table
                .iter()
                .filter(|j| open(j))
                .map(|j| j.created_at)
                .min(),
            last_error: of_table
                .iter()
                .filter_map(|j| {
                    Some(LastError {
                        id: j.id.clone(),
                        status: j.status.clone(),
                        message: j.last_error.clone()?,
                        updated_at: j.updated_at,
                    })
                })
                .max_by_key(|e| e.updated_at),
            sets,
        })
    }

    async fn ensure_sets(
        &self,
        table: &TableConfig,
        organization_id: &str,
        now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<SetRow>), Fault> {
        self.reachable()?;
        let mut sets = self.sets.borrow_mut();
        let applied = worker_kit::sets::apply_in_memory(
            &mut sets,
            organization_id,
            table,
            Starter::Command,
            now_ms,
        );
        let live = sets
            .iter()
            .filter(|s| s.organization_id == organization_id && s.table_name == table.name)
            .filter(|s| s.role() != Some(SetRole::Retiring))
            .cloned()
            .collect();
        Ok((
            applied.made.into_iter().chain(applied.given_up).collect(),
            live,
        ))
    }
}
