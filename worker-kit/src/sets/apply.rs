//! A decision applied: in D1, in one batch that reads the sets again after its writes; or in
//! memory, the model of D1 the stores' fakes use.

use shared::config::TableConfig;
use shared::sets::{plan, MigrationStep, SeenSet, SetRole, Starter, VectorSet};
use worker::D1Database;

use super::{decide, read, Decided, SetRow};
use crate::Fault;

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

/// Applies `decided`, taken on `seen` (the tables' sets as [`read`] found them). When it writes
/// nothing, the sets live are those seen; otherwise its statements run in one batch, which reads
/// the sets again after its writes: a starter whose creation lost a race to another's writes to
/// the set the other made, as if it had made it.
pub async fn apply(
    db: &D1Database,
    decided: &Decided,
    seen: Vec<SetRow>,
    now_ms: i64,
) -> Result<Applied, Fault> {
    if decided.is_empty() {
        return Ok(Applied {
            live: live(seen),
            ..Applied::default()
        });
    }
    let sent = decided.statements(db, now_ms)?;
    let count = sent.statements.len();
    let results = db.batch(sent.statements).await?;
    if results.len() != count {
        return Err(Fault(format!(
            "D1 returned {} results for {count} statements",
            results.len()
        )));
    }
    let rows = |at: Option<usize>| -> Result<Vec<SetRow>, Fault> {
        at.map_or(Ok(Vec::new()), |at| Ok(results[at].results::<SetRow>()?))
    };
    Ok(Applied {
        given_up: rows(sent.given_up)?,
        made: rows(sent.made)?,
        live: live(rows(Some(count - 1))?),
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
