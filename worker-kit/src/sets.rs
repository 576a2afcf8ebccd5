//! The vector sets of each organization's table (`shared::sets`), as D1 keeps them in
//! `embedding_sets`: the statements that read a table's sets and apply what a starter of model
//! changes decided for them (`shared::sets::plan`), which the consumer runs with every batch,
//! its sweep and the end of a clean-up, and the gateway's `POST .../migration` on demand.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::sets::{Migration, MigrationStep, SetRole, Step, VectorSet};
use worker::{D1Database, D1PreparedStatement};

use crate::d1::{statement, text};

use crate::Fault;

mod apply;
mod coverage;
mod decide;
pub use apply::{apply, apply_in_memory, ensure, Applied};
pub use coverage::{active_rows, coverage, earlier_batches, CoverageRow, UNCOVERED};
pub use decide::{decide, Decided};

/// A set of an organization's table, as `embedding_sets` keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SetRow {
    pub organization_id: String,
    pub table_name: String,
    pub model: String,
    pub location: String,
    pub role: String,
    pub migration_id: Option<String>,
    /// Its fencing counter: the step that starts or resumes its chain is issued for this value
    /// (`shared::sets`, "One chain per set").
    pub step_seq: u32,
    /// When its chain last took a step (or the set was made): how `POST .../migration` tells a
    /// moving chain from a stopped one (`shared::sets::command_resumes`).
    #[serde(default)]
    pub updated_at: i64,
}

/// The columns every statement that reads a [`SetRow`] selects or returns.
pub const SET_ROW: &str =
    "organization_id, table_name, model, location, role, migration_id, step_seq, updated_at";

impl SetRow {
    pub fn set(&self) -> VectorSet {
        VectorSet {
            model: self.model.clone(),
            location: self.location.clone(),
        }
    }

    pub fn role(&self) -> Option<SetRole> {
        SetRole::parse(&self.role)
    }

    /// The step that starts or resumes this set's chain (`shared::sets::Step::resuming`),
    /// issued for its current `step_seq`, so that it merges with a chain still live: a building
    /// set's first backfill page, a retiring set's clean-up; none for the active set, or a
    /// building set without a valid migration id.
    pub fn resume_step(&self) -> Option<MigrationStep> {
        let role = self.role()?;
        let step = Step::resuming(role)?;
        let migration_id = match role {
            SetRole::Building => uuid::Uuid::parse_str(self.migration_id.as_deref()?).ok()?,
            // A clean-up is no change's backfill: its claim reads no migration id.
            SetRole::Retiring | SetRole::Active => uuid::Uuid::nil(),
        };
        Some(MigrationStep::new(Migration {
            migration_id,
            organization_id: self.organization_id.clone(),
            table: self.table_name.clone(),
            model: self.model.clone(),
            location: self.location.clone(),
            seq: self.step_seq,
            step,
        }))
    }

    /// The clean-up step of this set, if it is retiring ([`SetRow::resume_step`]).
    pub fn cleanup_step(&self) -> Option<MigrationStep> {
        (self.role() == Some(SetRole::Retiring))
            .then(|| self.resume_step())
            .flatten()
    }

    /// The first backfill step of the model change this row is the building set of
    /// ([`SetRow::resume_step`]).
    pub fn first_step(&self) -> Option<MigrationStep> {
        (self.role() == Some(SetRole::Building))
            .then(|| self.resume_step())
            .flatten()
    }
}

/// Reads every set of the organizations' tables `tables` (`(organization, table)` pairs): the
/// sets a starter decides on ([`decide`]). Its results read as [`SetRow`]s and as what
/// [`decide`] takes.
pub fn read(db: &D1Database, tables: &[(&str, &str)]) -> Result<D1PreparedStatement, Fault> {
    let items: Vec<Value> = tables
        .iter()
        .map(|(org, table)| json!({ "org": org, "table": table }))
        .collect();
    statement(
        db,
        &format!(
            "SELECT {SET_ROW}, vouched_at FROM embedding_sets
             WHERE (organization_id, table_name) IN
                 (SELECT value ->> 'org', value ->> 'table' FROM json_each(?1))"
        ),
        &[text(&serde_json::to_string(&items)?)],
    )
}

#[cfg(test)]
mod tests;
