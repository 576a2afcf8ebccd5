//! The vector sets of each organization's table (`shared::sets`), as D1 keeps them in
//! `embedding_sets`: the statements that read a table's sets and apply what a starter of model
//! changes decided for them (`shared::sets::plan`), which the consumer runs with every batch,
//! its sweep and the end of a clean-up, and the gateway's `POST .../migration` on demand.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::sets::{plan, Migration, MigrationStep, SeenSet, SetRole, Starter, Step, VectorSet};
use worker::{D1Database, D1PreparedStatement};

use crate::d1::{number, statement, text};

mod coverage;
use crate::Fault;
pub use coverage::{active_rows, coverage, earlier_batches, CoverageRow, UNCOVERED};

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

/// A set of a table as a starter of model changes reads it: [`SetRow`]'s columns and when a
/// worker configured for it last vouched for it (`shared::sets::table`).
#[derive(Debug, Clone, Deserialize)]
struct SeenRow {
    organization_id: String,
    table_name: String,
    model: String,
    location: String,
    role: String,
    vouched_at: i64,
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

/// What starters decided for their tables (`shared::sets::plan`), as rows the statements of
/// [`Decided::statements`] read from JSON by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decided {
    /// The tables decided for (organization, table): their sets are read again after the
    /// writes, in the same transaction.
    tables: Vec<(String, String)>,
    give_up: Vec<Value>,
    create: Vec<Value>,
    vouch: Vec<Value>,
}

/// Decides, for each of `wanted` (an organization and a configured table), what its sets become
/// (`shared::sets::plan`), from `rows`, the results of [`read`] for those tables.
pub fn decide(
    rows: &worker::D1Result,
    wanted: &[(&str, &TableConfig)],
    by: Starter,
    now_ms: i64,
) -> Result<Decided, Fault> {
    let rows = rows.results::<SeenRow>()?;
    Ok(decide_rows(&rows, wanted, by, now_ms))
}

fn decide_rows(
    rows: &[SeenRow],
    wanted: &[(&str, &TableConfig)],
    by: Starter,
    now_ms: i64,
) -> Decided {
    let mut decided = Decided::default();
    for (org, table) in wanted {
        decided.tables.push(((*org).to_owned(), table.name.clone()));
        let seen: Vec<SeenSet> = rows
            .iter()
            .filter(|r| r.organization_id == *org && r.table_name == table.name)
            .filter_map(|r| {
                Some(SeenSet {
                    set: VectorSet {
                        model: r.model.clone(),
                        location: r.location.clone(),
                    },
                    role: SetRole::parse(&r.role)?,
                    vouched_at: r.vouched_at,
                })
            })
            .collect();
        let configured = VectorSet::configured(table);
        let plan = plan(&seen, &configured, by, now_ms);
        let key = |set: &VectorSet| {
            json!({ "org": org, "table": table.name, "model": set.model,
                    "location": set.location })
        };
        if let Some(given_up) = &plan.give_up {
            let vouched_at = seen
                .iter()
                .find(|s| s.set == *given_up)
                .map_or(0, |s| s.vouched_at);
            let mut item = key(given_up);
            item["vouchedAt"] = json!(vouched_at);
            decided.give_up.push(item);
        }
        if let Some(role) = plan.create {
            let applied = plan.applied(&seen);
            let after: Vec<[&str; 3]> = applied
                .iter()
                .map(|s| {
                    [
                        s.set.model.as_str(),
                        s.set.location.as_str(),
                        s.role.as_str(),
                    ]
                })
                .collect();
            let mut item = key(&configured);
            item["role"] = json!(role.as_str());
            item["migrationId"] =
                json!((role == SetRole::Building).then(|| uuid::Uuid::new_v4().to_string()));
            item["seen"] = json!(serde_json::to_string(&after).unwrap_or_default());
            decided.create.push(item);
        }
        if plan.vouch {
            decided.vouch.push(key(&configured));
        }
    }
    decided
}

impl Decided {
    /// Whether nothing is to be written.
    pub fn is_empty(&self) -> bool {
        self.give_up.is_empty() && self.create.is_empty() && self.vouch.is_empty()
    }

    /// The statements that apply the decisions, to run in one batch, in order; each guards its
    /// decision against a writer that raced it, and decides nothing:
    ///
    /// 1. the sets given up retire, if still building and vouched for by no one since they
    ///    were seen; it returns those ([`SetRow`]s), whose clean-up the caller starts;
    /// 2. the configured sets are made, each only if its table's sets are still as its decision
    ///    saw them (once 1 is applied), and no other was made meanwhile (the unique indexes of
    ///    one active and one building set a table); it returns those made ([`SetRow`]s);
    /// 3. the configured building sets are vouched for;
    /// 4. the tables' sets are read again ([`SetRow`]s): the sets a batch writes to are those
    ///    live once its decision (or a racing starter's) is applied, as one transaction sees them.
    pub fn statements(
        &self,
        db: &D1Database,
        now_ms: i64,
    ) -> Result<[D1PreparedStatement; 4], Fault> {
        let give_up = statement(
            db,
            &format!(
                "UPDATE embedding_sets SET role = 'retiring', updated_at = ?2
                 WHERE role = 'building' AND EXISTS (SELECT 1 FROM json_each(?1) j
                     WHERE j.value ->> 'org' = organization_id
                       AND j.value ->> 'table' = table_name AND j.value ->> 'model' = model
                       AND j.value ->> 'location' = location
                       AND j.value ->> 'vouchedAt' = vouched_at)
                 RETURNING {SET_ROW}"
            ),
            &[text(&serde_json::to_string(&self.give_up)?), number(now_ms)],
        )?;
        // The table's sets, listed as `Plan::applied` lists them.
        let as_seen = "(SELECT json_group_array(json_array(s.model, s.location, s.role))
             FROM (SELECT model, location, role FROM embedding_sets
                 WHERE organization_id = j.value ->> 'org' AND table_name = j.value ->> 'table'
                 ORDER BY model, location) s)";
        let create = statement(
            db,
            &format!(
                "INSERT INTO embedding_sets (organization_id, table_name, model, location, role,
                     created_at, updated_at, switched_at, migration_id, vouched_at)
                 SELECT j.value ->> 'org', j.value ->> 'table', j.value ->> 'model',
                     j.value ->> 'location', j.value ->> 'role', ?2, ?2,
                     CASE WHEN j.value ->> 'role' = 'active' THEN ?2 END,
                     j.value ->> 'migrationId', ?2
                 FROM json_each(?1) j
                 WHERE {as_seen} = j.value ->> 'seen'
                 ON CONFLICT DO NOTHING
                 RETURNING {SET_ROW}"
            ),
            &[text(&serde_json::to_string(&self.create)?), number(now_ms)],
        )?;
        let vouch = statement(
            db,
            "UPDATE embedding_sets SET vouched_at = ?2
             WHERE role = 'building' AND (organization_id, table_name, model, location) IN
                 (SELECT value ->> 'org', value ->> 'table', value ->> 'model',
                     value ->> 'location' FROM json_each(?1))",
            &[text(&serde_json::to_string(&self.vouch)?), number(now_ms)],
        )?;
        let tables: Vec<(&str, &str)> = self
            .tables
            .iter()
            .map(|(org, table)| (org.as_str(), table.as_str()))
            .collect();
        Ok([give_up, create, vouch, read(db, &tables)?])
    }
}

/// The sets a decision's statements changed, and those live after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The building sets given up, now retiring: their clean-up is to start.
    pub given_up: Vec<SetRow>,
    /// The configured sets made: a building one's backfill is to start.
    pub made: Vec<SetRow>,
    /// The active and building sets of the tables decided for, once the decisions are applied:
    /// what a batch's jobs write to.
    pub live: Vec<SetRow>,
    /// D1 statements run.
    pub statements: usize,
}

impl Applied {
    /// The first step of each change started and each clean-up due.
    pub fn steps(&self) -> Vec<MigrationStep> {
        self.made
            .iter()
            .chain(&self.given_up)
            .filter_map(SetRow::resume_step)
            .collect()
    }
}

/// Applies `decided`, taken on `read` (the tables' sets as [`read`] found them). When it writes
/// nothing, the sets live are those read; otherwise its statements run in one batch, which reads
/// the sets again after its writes: a starter whose creation lost a race to another's writes to
/// the set the other made, as if it had made it.
pub async fn apply(
    db: &D1Database,
    decided: &Decided,
    read: Vec<SetRow>,
    now_ms: i64,
) -> Result<Applied, Fault> {
    if decided.is_empty() {
        return Ok(Applied {
            live: live(read),
            ..Applied::default()
        });
    }
    let statements = decided.statements(db, now_ms)?;
    let count = statements.len();
    let results = db.batch(statements.to_vec()).await?;
    let [given_up, made, _, after] = results.as_slice() else {
        return Err(Fault("D1 returned other than four results".into()));
    };
    Ok(Applied {
        given_up: given_up.results::<SetRow>()?,
        made: made.results::<SetRow>()?,
        live: live(after.results::<SetRow>()?),
        statements: count,
    })
}

/// Reads the sets of `wanted`'s tables, decides for each as `by` ([`decide`]) and applies the
/// decisions ([`apply`]).
pub async fn ensure(
    db: &D1Database,
    wanted: &[(&str, &TableConfig)],
    by: Starter,
    now_ms: i64,
) -> Result<Applied, Fault> {
    let keys: Vec<(&str, &str)> = wanted
        .iter()
        .map(|(org, table)| (*org, table.name.as_str()))
        .collect();
    let rows = read(db, &keys)?.all().await?;
    let decided = decide(&rows, wanted, by, now_ms)?;
    let mut applied = apply(db, &decided, rows.results::<SetRow>()?, now_ms).await?;
    applied.statements += 1;
    Ok(applied)
}

/// What the statements of a decision do to `rows` (an organization's sets, of every table), in
/// memory, for `table`, decided by `by`: the model of D1 that the fakes of the stores apply.
/// Every set reads as unvouched for.
pub fn apply_in_memory(
    rows: &mut Vec<SetRow>,
    organization_id: &str,
    table: &TableConfig,
    by: Starter,
    now_ms: i64,
) -> Applied {
    let mine =
        |row: &SetRow| row.organization_id == organization_id && row.table_name == table.name;
    let seen: Vec<SeenSet> = rows
        .iter()
        .filter(|row| mine(row))
        .filter_map(|row| {
            Some(SeenSet {
                set: row.set(),
                role: row.role()?,
                vouched_at: 0,
            })
        })
        .collect();
    let configured = VectorSet::configured(table);
    let plan = plan(&seen, &configured, by, now_ms);
    let mut applied = Applied::default();
    for row in rows.iter_mut().filter(|row| mine(row)) {
        if plan.give_up.as_ref() == Some(&row.set()) {
            row.role = SetRole::Retiring.as_str().into();
            row.updated_at = now_ms;
            applied.given_up.push(row.clone());
        }
    }
    if let Some(role) = plan.create {
        let made = SetRow {
            organization_id: organization_id.into(),
            table_name: table.name.clone(),
            model: configured.model,
            location: configured.location,
            role: role.as_str().into(),
            migration_id: (role == SetRole::Building).then(|| uuid::Uuid::new_v4().to_string()),
            step_seq: 0,
            updated_at: now_ms,
        };
        rows.push(made.clone());
        applied.made.push(made);
    }
    applied.live = live(rows.iter().filter(|row| mine(row)).cloned().collect());
    applied
}

/// The active and building sets among `rows`.
fn live(rows: Vec<SetRow>) -> Vec<SetRow> {
    rows.into_iter()
        .filter(|r| matches!(r.role(), Some(SetRole::Active | SetRole::Building)))
        .collect()
}

#[cfg(test)]
mod tests;
