//! The sets themselves, as `embedding_sets` keeps them: a step's claim, the chains that
//! stopped, the tables a deploy changed, the sets a worker makes sure of, and those changing.

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::sets::{Migration, SetRole, Starter, VectorSet};
use worker_kit::d1::{self, number, text};
use worker_kit::sets::{self, Applied, SetRow, SET_ROW};
use worker_kit::Fault;

use crate::store::D1Store;

impl D1Store {
    /// [`crate::ports::MigrationStore::claim`].
    pub(super) async fn claim_set(&self, m: &Migration, now_ms: i64) -> Result<Option<u32>, Fault> {
        #[derive(Deserialize)]
        struct Claimed {
            step_seq: u32,
        }
        // The guard of `shared::sets::Claim`: of the steps issued for one value, one moves it.
        // Marks the set as moved too: the sweep resumes a chain whose steps stopped.
        let claimed = self
            .statement_with(
                &format!(
                    "UPDATE embedding_sets SET step_seq = step_seq + 1, updated_at = ?8
                     WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3
                       AND location = ?4 AND role = ?5 AND step_seq = ?6
                       AND (role != '{building}' OR migration_id = ?7)
                     RETURNING step_seq",
                    building = SetRole::Building.as_str(),
                ),
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

    /// [`crate::ports::MigrationStore::stalled`].
    pub(super) async fn stalled_sets(
        &self,
        unmoved_since: i64,
        limit: u32,
    ) -> Result<Vec<SetRow>, Fault> {
        self.count(1);
        // `shared::sets::fair_order`: each organization's oldest first, then its second...
        Ok(d1::statement(
            &self.db,
            &format!(
                "SELECT {SET_ROW} FROM (
                     SELECT *, ROW_NUMBER() OVER (PARTITION BY organization_id
                         ORDER BY updated_at) AS turn
                     FROM embedding_sets
                     WHERE role IN ('{building}', '{retiring}') AND updated_at <= ?1)
                 ORDER BY turn, updated_at LIMIT ?2",
                building = SetRole::Building.as_str(),
                retiring = SetRole::Retiring.as_str(),
            ),
            &[number(unmoved_since), number(i64::from(limit))],
        )?
        .all()
        .await?
        .results::<SetRow>()?)
    }

    /// [`crate::ports::MigrationStore::unconfigured`].
    pub(super) async fn unconfigured_tables(
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
                json!({ "table": table.name, "model": set.model, "location": set.location,
                        "oneModel": set.holds_one_model() })
            })
            .collect();
        self.count(1);
        // In turns across organizations, as `stalled`. What becomes of each table is
        // `shared::sets::plan`'s to decide; the last condition is `shared::sets::blocked` as the
        // sweep must see it (the flag is `VectorSet::holds_one_model`): a table whose change
        // cannot start, and that builds nothing, is left out, or such tables would fill every
        // sweep.
        let pairs = d1::statement(
            &self.db,
            &format!(
                "SELECT organization_id, table_name FROM (
                     SELECT a.organization_id, a.table_name, a.updated_at,
                         ROW_NUMBER() OVER (PARTITION BY a.organization_id
                             ORDER BY a.updated_at) AS turn
                     FROM embedding_sets a
                     JOIN json_each(?1) c ON c.value ->> 'table' = a.table_name
                     WHERE a.role = '{active}'
                       AND NOT EXISTS (SELECT 1 FROM embedding_sets b
                           WHERE b.organization_id = a.organization_id
                             AND b.table_name = a.table_name AND b.role = '{building}'
                             AND b.model = c.value ->> 'model'
                             AND b.location = c.value ->> 'location')
                       AND (a.model != c.value ->> 'model'
                           OR a.location != c.value ->> 'location'
                           OR EXISTS (SELECT 1 FROM embedding_sets b
                               WHERE b.organization_id = a.organization_id
                                 AND b.table_name = a.table_name
                                 AND b.role = '{building}'))
                       AND NOT (c.value ->> 'oneModel' AND a.location = c.value ->> 'location'
                           AND a.model != c.value ->> 'model'
                           AND NOT EXISTS (SELECT 1 FROM embedding_sets b
                               WHERE b.organization_id = a.organization_id
                                 AND b.table_name = a.table_name
                                 AND b.role = '{building}')))
                 ORDER BY turn, updated_at LIMIT ?2",
                active = SetRole::Active.as_str(),
                building = SetRole::Building.as_str(),
            ),
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

    /// [`crate::ports::MigrationStore::ensure`].
    pub(super) async fn ensure_sets(
        &self,
        tables: &[(String, String)],
        now_ms: i64,
    ) -> Result<Applied, Fault> {
        let wanted: Vec<(&str, &TableConfig)> = tables
            .iter()
            .filter_map(|(org, table)| Some((org.as_str(), self.config.table(table)?)))
            .collect();
        if wanted.is_empty() {
            return Ok(Applied::default());
        }
        let applied = sets::ensure(&self.db, &wanted, Starter::Worker, now_ms).await?;
        self.count(applied.statements);
        Ok(applied)
    }

    /// [`crate::ports::MigrationStore::changing_sets`]: `tables` travel as items of
    /// `{org, table}`.
    pub(super) async fn changing_sets_of(
        &self,
        tables: &[(String, String)],
    ) -> Result<Vec<SetRow>, Fault> {
        if tables.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<Value> = tables
            .iter()
            .map(|(org, table)| json!({ "org": org, "table": table }))
            .collect();
        self.count(1);
        Ok(d1::statement(
            &self.db,
            &format!(
                "SELECT {SET_ROW} FROM embedding_sets
                 WHERE role IN ('{building}', '{retiring}') AND (organization_id, table_name) IN
                     (SELECT value ->> 'org', value ->> 'table' FROM json_each(?1))",
                building = SetRole::Building.as_str(),
                retiring = SetRole::Retiring.as_str(),
            ),
            &[text(&serde_json::to_string(&items)?)],
        )?
        .all()
        .await?
        .results::<SetRow>()?)
    }
}
