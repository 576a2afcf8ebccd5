//! The vector sets of each organization's table (`shared::sets`), as D1 keeps them in
//! `embedding_sets`: the statements that make sure of a table's configured set, which the
//! consumer runs with every batch and the gateway's `POST .../migration` on demand.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::sets::{Migration, MigrationStep, SetRole, Step, VectorSet};
use worker::{D1Database, D1PreparedStatement};

use crate::d1::{ident, number, statement, text};
use crate::Fault;

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

/// One organization's table, for [`ensure`]: its configured set and the id a model change it
/// starts would take.
pub fn pair(organization_id: &str, table: &TableConfig) -> Value {
    let set = VectorSet::configured(table);
    json!([
        organization_id,
        table.name,
        set.model,
        set.location,
        uuid::Uuid::new_v4().to_string()
    ])
}

/// The statements that make sure of each table's configured set, for `pairs` (a JSON array of
/// [`pair`]s), in order; run them in one batch:
///
/// 1. a building set the config no longer names retires (the config changed again); it
///    returns those ([`SetRow`]s), whose clean-up the caller starts;
/// 2. the configured set is created: active if the table has no set yet, else building (a
///    model change starts), unless it is live already, cannot share the active set's Vectorize
///    index (`shared::sets::blocked`), or a retiring set is still being removed from where it
///    would go (the same set named again, or the Vectorize index it would share ids in: the
///    clean-up would delete what the new set writes). Such a change starts with the first job
///    after the clean-up, or the sweep. It returns the sets it made ([`SetRow`]s);
/// 3. the live sets are read ([`SetRow`]s).
pub fn ensure(
    db: &D1Database,
    pairs: &str,
    now_ms: i64,
) -> Result<[D1PreparedStatement; 3], Fault> {
    let retire = statement(
        db,
        &format!(
            "UPDATE embedding_sets SET role = 'retiring', updated_at = ?2
             WHERE role = 'building' AND EXISTS (SELECT 1 FROM json_each(?1) j
                 WHERE j.value ->> 0 = embedding_sets.organization_id
                   AND j.value ->> 1 = embedding_sets.table_name
                   AND (j.value ->> 2 != embedding_sets.model
                        OR j.value ->> 3 != embedding_sets.location))
             RETURNING {SET_ROW}"
        ),
        &[text(pairs), number(now_ms)],
    )?;
    let create = statement(
        db,
        &format!(
            "INSERT INTO embedding_sets (organization_id, table_name, model, location, role,
                 created_at, updated_at, switched_at, migration_id)
             SELECT j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3,
                 CASE WHEN a.model IS NULL THEN 'active' ELSE 'building' END, ?2, ?2,
                 CASE WHEN a.model IS NULL THEN ?2 END,
                 CASE WHEN a.model IS NOT NULL THEN j.value ->> 4 END
             FROM json_each(?1) j
             LEFT JOIN embedding_sets a ON a.organization_id = j.value ->> 0
                 AND a.table_name = j.value ->> 1 AND a.role = 'active'
             WHERE NOT EXISTS (SELECT 1 FROM embedding_sets s
                     WHERE s.organization_id = j.value ->> 0 AND s.table_name = j.value ->> 1
                       AND s.model = j.value ->> 2 AND s.location = j.value ->> 3
                       AND s.role IN ('active', 'building'))
               AND NOT (a.location IS NOT NULL AND a.location = j.value ->> 3
                        AND a.location LIKE 'vectorize:%')
               AND NOT EXISTS (SELECT 1 FROM embedding_sets r
                     WHERE r.organization_id = j.value ->> 0 AND r.table_name = j.value ->> 1
                       AND r.role = 'retiring' AND r.location = j.value ->> 3
                       AND (r.model = j.value ->> 2 OR r.location LIKE 'vectorize:%'))
             ON CONFLICT DO NOTHING
             RETURNING {SET_ROW}"
        ),
        &[text(pairs), number(now_ms)],
    )?;
    let read = statement(
        db,
        &format!(
            "SELECT {SET_ROW} FROM embedding_sets
             WHERE role IN ('active', 'building') AND (organization_id, table_name) IN
                 (SELECT value ->> 0, value ->> 1 FROM json_each(?1))"
        ),
        &[text(pairs)],
    )?;
    Ok([retire, create, read])
}

/// The live rows (`va`) of the active set of `?1`'s table `?2` that the set of model `?3` kept
/// at `?4` does not cover: it has no live vector for the record written by a job at least as
/// new (`shared::sets`).
pub const UNCOVERED: &str =
    "va.vector IS NOT NULL AND NOT EXISTS (SELECT 1 FROM embedding_vectors vb
         WHERE vb.organization_id = ?1 AND vb.table_name = ?2 AND vb.model = ?3
           AND vb.location = ?4 AND vb.record_id = va.record_id AND vb.vector IS NOT NULL
           AND (vb.job_created_at, vb.job_id) >= (va.job_created_at, va.job_id))";

/// The active set's live rows (`va`) of `?1`'s `table` (as `?2`) whose record is still in the
/// table: a `FROM` clause and its `WHERE`. A vector whose record the app deleted behind the
/// API's back is no record to cover (the backfill could not embed it again).
pub fn active_rows(table: &TableConfig) -> String {
    format!(
        "embedding_sets a JOIN embedding_vectors va
             ON va.organization_id = a.organization_id AND va.table_name = a.table_name
            AND va.model = a.model AND va.location = a.location
         JOIN {t} r ON r.{id} = va.record_id AND r.{org} = va.organization_id
         WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = 'active'
           AND va.vector IS NOT NULL",
        t = ident(&table.name),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
    )
}

/// Jobs of `?1`'s table `?2` still being processed by a batch that began before the building
/// set (model `?3` at `?4`) existed: such a batch writes only the active set, and may bring a
/// record the backfill did not list. The switch waits for them.
pub const EARLIER_BATCHES: &str = "EXISTS (SELECT 1 FROM embedding_jobs j
         WHERE j.organization_id = ?1 AND j.table_name = ?2 AND j.status = 'processing'
           AND j.updated_at <= (SELECT b.created_at FROM embedding_sets b
               WHERE b.organization_id = ?1 AND b.table_name = ?2 AND b.model = ?3
                 AND b.location = ?4))";

/// How much of the active set another set covers, as [`coverage`] counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct CoverageRow {
    /// Live records of the active set.
    pub of: Option<u64>,
    /// Those the other set does not cover.
    pub uncovered: Option<u64>,
    /// 1 while a batch that began before the other set existed is still at work.
    pub earlier: Option<u64>,
}

impl CoverageRow {
    /// Covered records, and of how many; a batch from before the change counts as one record
    /// not covered yet.
    pub fn counts(&self) -> (u64, u64) {
        let of = self.of.unwrap_or(0);
        let uncovered = self.uncovered.unwrap_or(0) + self.earlier.unwrap_or(0);
        (of.saturating_sub(uncovered), of.max(uncovered))
    }
}

/// Counts the active set's live records of an organization's table, and those `set` does not
/// cover ([`CoverageRow`]). One pass over the active set, each record looked up by key.
pub fn coverage(
    db: &D1Database,
    organization_id: &str,
    table: &TableConfig,
    set: &VectorSet,
) -> Result<D1PreparedStatement, Fault> {
    statement(
        db,
        &format!(
            "SELECT COUNT(*) AS of, SUM(CASE WHEN {UNCOVERED} THEN 1 ELSE 0 END) AS uncovered,
                 (SELECT {EARLIER_BATCHES}) AS earlier
             FROM {}",
            active_rows(table)
        ),
        &[
            text(organization_id),
            text(&table.name),
            text(&set.model),
            text(&set.location),
        ],
    )
}
