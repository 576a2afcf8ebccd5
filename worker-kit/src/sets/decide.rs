//! What a starter of model changes decides for its tables' sets (`shared::sets::plan`), as the
//! rows and guarded statements D1 applies it with.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::sets::{plan, SeenSet, SetRole, Starter, VectorSet};
use worker::{D1Database, D1PreparedStatement};

use super::{read, SET_ROW};
use crate::d1::{number, statement, text};
use crate::Fault;

/// A set of a table as a starter of model changes reads it: [`SetRow`]'s columns and when a
/// worker configured for it last vouched for it (`shared::sets::table`).
#[derive(Debug, Clone, Deserialize)]
pub(super) struct SeenRow {
    pub(super) organization_id: String,
    pub(super) table_name: String,
    pub(super) model: String,
    pub(super) location: String,
    pub(super) role: String,
    pub(super) vouched_at: i64,
}

/// What starters decided for their tables (`shared::sets::plan`), as rows the statements of
/// [`Decided::statements`] read from JSON by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decided {
    /// The tables decided for (organization, table): their sets are read again after the
    /// writes, in the same transaction.
    tables: Vec<(String, String)>,
    pub(super) give_up: Vec<Value>,
    pub(super) create: Vec<Value>,
    pub(super) vouch: Vec<Value>,
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

pub(super) fn decide_rows(
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

    /// The statements that apply the decisions, to run in one batch, in order, each sent only
    /// when a decision needs it; each guards its decision against a writer that raced it, and
    /// decides nothing:
    ///
    /// 1. the sets given up retire, if still building and vouched for by no one since they
    ///    were seen; it returns those ([`SetRow`]s), whose clean-up the caller starts;
    /// 2. the configured sets are made, each only if its table's sets are still as its decision
    ///    saw them (once 1 is applied), and no other was made meanwhile (the unique indexes of
    ///    one active and one building set a table); it returns those made ([`SetRow`]s);
    /// 3. the configured building sets are vouched for;
    /// 4. always, the tables' sets are read again ([`SetRow`]s): the sets a batch writes to are
    ///    those live once its decision (or a racing starter's) is applied, as one transaction
    ///    sees them.
    pub(super) fn statements(&self, db: &D1Database, now_ms: i64) -> Result<Sent, Fault> {
        let mut sent = Sent::default();
        let mut guarded = |sql: &str, rows: &[Value]| -> Result<Option<usize>, Fault> {
            if rows.is_empty() {
                return Ok(None);
            }
            let rows = text(&serde_json::to_string(rows)?);
            sent.statements
                .push(statement(db, sql, &[rows, number(now_ms)])?);
            Ok(Some(sent.statements.len() - 1))
        };
        let given_up = guarded(
            &format!(
                "UPDATE embedding_sets SET role = 'retiring', updated_at = ?2
                 WHERE role = 'building' AND EXISTS (SELECT 1 FROM json_each(?1) j
                     WHERE j.value ->> 'org' = organization_id
                       AND j.value ->> 'table' = table_name AND j.value ->> 'model' = model
                       AND j.value ->> 'location' = location
                       AND j.value ->> 'vouchedAt' = vouched_at)
                 RETURNING {SET_ROW}"
            ),
            &self.give_up,
        )?;
        // The table's sets, listed as `Plan::applied` lists them.
        let as_seen = "(SELECT json_group_array(json_array(s.model, s.location, s.role))
             FROM (SELECT model, location, role FROM embedding_sets
                 WHERE organization_id = j.value ->> 'org' AND table_name = j.value ->> 'table'
                 ORDER BY model, location) s)";
        let made = guarded(
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
            &self.create,
        )?;
        guarded(
            "UPDATE embedding_sets SET vouched_at = ?2
             WHERE role = 'building' AND (organization_id, table_name, model, location) IN
                 (SELECT value ->> 'org', value ->> 'table', value ->> 'model',
                     value ->> 'location' FROM json_each(?1))",
            &self.vouch,
        )?;
        let tables: Vec<(&str, &str)> = self
            .tables
            .iter()
            .map(|(org, table)| (org.as_str(), table.as_str()))
            .collect();
        sent.statements.push(read(db, &tables)?);
        sent.given_up = given_up;
        sent.made = made;
        Ok(sent)
    }
}

/// The statements a decision sends ([`Decided::statements`]), and which of their results holds
/// what: the sets read again are the last.
#[derive(Default)]
pub(super) struct Sent {
    /// In the order they are to run.
    pub(super) statements: Vec<D1PreparedStatement>,
    /// The statement that retires the sets given up, if any were.
    pub(super) given_up: Option<usize>,
    /// The statement that makes the configured sets, if any are to be.
    pub(super) made: Option<usize>,
}
