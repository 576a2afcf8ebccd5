//! A fake of `embedding_sets` and of what a model change's steps read and write, in memory:
//! it claims a set by the same rule as the D1 statement (`shared::sets`, "One chain per set")
//! and decides what a table's sets become by `shared::sets::plan`, as the D1 store does.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use shared::config::{Config, TableConfig};
use shared::message::{content_hash, EmbeddingJob};
use shared::sets::{fair_order, Migration, MigrationStep, SetRole, Starter, VectorSet};
use uuid::Uuid;
use worker_kit::sets::{apply_in_memory, Applied, SetRow};
use worker_kit::Fault;

use super::{config, FakeIndexes, FakeQueues};
use crate::deliveries::Settle;
use crate::migration::{Coverage, Page, PageRecord, RetiringRow, Steps, Switched};
use crate::ports::MigrationStore;

pub(super) const SMALL: &str = "@cf/baai/bge-small-en-v1.5";
pub(super) const BASE: &str = "@cf/baai/bge-base-en-v1.5";
pub(super) const LARGE: &str = "@cf/baai/bge-large-en-v1.5";

/// `embedding_sets`, and what a change's steps read and write, in memory.
#[derive(Default)]
pub(super) struct FakeSets {
    /// Each set's row, and when it last moved.
    pub(super) sets: RefCell<Vec<(SetRow, i64)>>,
    /// The active set's live records, in id order.
    pub(super) records: RefCell<Vec<String>>,
    /// Those the building set covers.
    pub(super) covered: RefCell<BTreeSet<String>>,
    /// The jobs backfill pages recorded: their backfill id, their record, whether still open.
    pub(super) jobs: RefCell<Vec<(String, String, bool)>>,
    /// Rows of retiring sets.
    pub(super) retiring: RefCell<Vec<RetiringRow>>,
    /// The records of each `restore_columns` call.
    pub(super) restored: RefCell<Vec<Vec<String>>>,
    pub(super) dropped: Cell<usize>,
    /// The config `ensure` decides by (`shared::sets::plan`); the tests' own if none.
    pub(super) configured: Option<Config>,
    /// The tables `ensure` was asked for.
    pub(super) ensured: RefCell<Vec<(String, String)>>,
    /// Backfill pages that fail, after their step's claim, before one lists.
    pub(super) failing_pages: Cell<usize>,
    /// D1 refuses every claim.
    pub(super) claim_down: bool,
}

pub(super) fn row(org: &str, table: &str, model: &str, role: SetRole, seq: u32) -> SetRow {
    SetRow {
        organization_id: org.into(),
        table_name: table.into(),
        model: model.into(),
        location: "d1".into(),
        role: role.as_str().into(),
        migration_id: (role == SetRole::Building).then(|| Uuid::new_v4().to_string()),
        step_seq: seq,
        updated_at: 0,
    }
}

fn same_set(row: &SetRow, m: &Migration) -> bool {
    row.organization_id == m.organization_id
        && row.table_name == m.table
        && row.model == m.model
        && row.location == m.location
}

impl FakeSets {
    /// claims' change from bge-small to its configured bge-base, both in D1, over `records`
    /// live records none of which the new set covers yet.
    pub(super) fn change_of_claims(records: usize) -> Self {
        let sets = FakeSets::default();
        sets.sets.borrow_mut().extend([
            (row("org_a", "claims", SMALL, SetRole::Active, 0), 0),
            (row("org_a", "claims", BASE, SetRole::Building, 0), 0),
        ]);
        *sets.records.borrow_mut() = (0..records).map(|i| format!("clm_{i:04}")).collect();
        sets
    }

    pub(super) fn with_set(self, row: SetRow, moved: i64) -> Self {
        self.sets.borrow_mut().push((row, moved));
        self
    }

    pub(super) fn building(&self) -> SetRow {
        self.sets
            .borrow()
            .iter()
            .map(|(row, _)| row)
            .find(|row| row.role() == Some(SetRole::Building))
            .cloned()
            .expect("a building set")
    }

    /// Each set's model and role.
    pub(super) fn roles(&self) -> Vec<(String, String)> {
        self.sets
            .borrow()
            .iter()
            .map(|(row, _)| (row.model.clone(), row.role.clone()))
            .collect()
    }

    /// The consumer embeds every open job of a backfill: the building set covers its record.
    pub(super) fn embed_all(&self) {
        for (_, record, open) in self.jobs.borrow_mut().iter_mut() {
            if std::mem::take(open) {
                self.covered.borrow_mut().insert(record.clone());
            }
        }
    }

    /// How many jobs the backfills recorded for each record.
    pub(super) fn jobs_per_record(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for (_, record, _) in self.jobs.borrow().iter() {
            *counts.entry(record.clone()).or_default() += 1;
        }
        counts
    }
}

impl MigrationStore for FakeSets {
    async fn claim(&self, m: &Migration, now_ms: i64) -> Result<Option<u32>, Fault> {
        if self.claim_down {
            return Err(Fault("D1 busy".into()));
        }
        // The statement's guard: the step's set, in the step's role, at the step's seq, and a
        // building set under the step's migration.
        let role = m.step.works_on();
        let migration_id = m.migration_id.to_string();
        let mut sets = self.sets.borrow_mut();
        let claimed = sets.iter_mut().find(|(row, _)| {
            same_set(row, m)
                && row.role() == Some(role)
                && row.step_seq == m.seq
                && (role != SetRole::Building
                    || row.migration_id.as_deref() == Some(migration_id.as_str()))
        });
        Ok(claimed.map(|(row, moved)| {
            row.step_seq += 1;
            *moved = now_ms;
            row.step_seq
        }))
    }

    async fn stalled(&self, unmoved_since: i64, limit: u32) -> Result<Vec<SetRow>, Fault> {
        let sets = self.sets.borrow();
        let stalled: Vec<&(SetRow, i64)> = sets
            .iter()
            .filter(|(row, moved)| {
                matches!(row.role(), Some(SetRole::Building | SetRole::Retiring))
                    && *moved <= unmoved_since
            })
            .collect();
        // The rule the statement's `ROW_NUMBER() OVER (PARTITION BY organization_id ...)` keeps.
        Ok(fair_order(stalled, |(row, moved)| {
            (row.organization_id.as_str(), *moved)
        })
        .into_iter()
        .take(limit as usize)
        .map(|(row, _)| row.clone())
        .collect())
    }

    async fn unconfigured(
        &self,
        _configured: &[(&TableConfig, VectorSet)],
        _limit: u32,
    ) -> Result<Vec<(String, String)>, Fault> {
        Ok(Vec::new())
    }

    /// Applies `shared::sets::plan` to the sets in memory, as the D1 store's statements do
    /// (`worker_kit::sets::apply_in_memory`).
    async fn ensure(&self, tables: &[(String, String)], now_ms: i64) -> Result<Applied, Fault> {
        self.ensured.borrow_mut().extend(tables.iter().cloned());
        let config = self.configured.clone().unwrap_or_else(config);
        let mut sets = self.sets.borrow_mut();
        let mut rows: Vec<SetRow> = sets.iter().map(|(row, _)| row.clone()).collect();
        let mut applied = Applied::default();
        for (org, name) in tables {
            let Some(table) = config.table(name) else {
                continue;
            };
            let one = apply_in_memory(&mut rows, org, table, Starter::Worker, now_ms);
            applied.given_up.extend(one.given_up);
            applied.made.extend(one.made);
        }
        // Each set keeps when it last moved, unless the decision moved it now.
        let moved: Vec<(SetRow, i64)> = rows
            .into_iter()
            .map(|row| {
                let before = sets.iter().find(|(old, _)| *old == row).map(|(_, at)| *at);
                (row, before.unwrap_or(now_ms))
            })
            .collect();
        *sets = moved;
        Ok(applied)
    }

    async fn changing_sets(&self, tables: &[(String, String)]) -> Result<Vec<SetRow>, Fault> {
        Ok(self
            .sets
            .borrow()
            .iter()
            .map(|(row, _)| row)
            .filter(|row| {
                matches!(row.role(), Some(SetRole::Building | SetRole::Retiring))
                    && tables.contains(&(row.organization_id.clone(), row.table_name.clone()))
            })
            .cloned()
            .collect())
    }

    async fn uncovered(
        &self,
        _table: &TableConfig,
        m: &Migration,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, Fault> {
        if self.failing_pages.get() > 0 {
            self.failing_pages.set(self.failing_pages.get() - 1);
            return Err(Fault("D1 busy".into()));
        }
        let (covered, jobs) = (self.covered.borrow(), self.jobs.borrow());
        let backfill = m.migration_id.to_string();
        let records = self
            .records
            .borrow()
            .iter()
            .filter(|id| after.is_none_or(|after| id.as_str() > after))
            .take(limit as usize)
            .map(|id| {
                let text = format!("the text of {id}");
                let is_covered = covered.contains(id);
                PageRecord {
                    id: id.clone(),
                    covered: is_covered,
                    stored_hash: is_covered.then(|| content_hash(&m.model, &text)),
                    queued: jobs
                        .iter()
                        .any(|(b, record, open)| *open && *b == backfill && record == id),
                    text: Some(text),
                }
            })
            .collect();
        Ok(Page {
            records,
            set_created_at: 0,
        })
    }

    async fn queue_jobs(
        &self,
        jobs: &[EmbeddingJob],
        backfill_id: &str,
        _created_at: i64,
    ) -> Result<(), Fault> {
        self.jobs.borrow_mut().extend(
            jobs.iter()
                .map(|job| (backfill_id.to_owned(), job.id.clone().unwrap(), true)),
        );
        Ok(())
    }

    async fn coverage(&self, _table: &TableConfig, _m: &Migration) -> Result<Coverage, Fault> {
        let covered = self.covered.borrow();
        let records = self.records.borrow();
        Ok(Coverage {
            covered: records.iter().filter(|r| covered.contains(*r)).count() as u64,
            of: records.len() as u64,
        })
    }

    async fn switch(
        &self,
        table: &TableConfig,
        m: &Migration,
        _now_ms: i64,
    ) -> Result<Switched, Fault> {
        let coverage = self.coverage(table, m).await?;
        if coverage.covered < coverage.of {
            return Ok(Switched::NotYet);
        }
        let mut retired = None;
        for (row, _) in self.sets.borrow_mut().iter_mut() {
            if row.organization_id != m.organization_id || row.table_name != m.table {
                continue;
            }
            match row.role() {
                Some(SetRole::Active) => {
                    row.role = SetRole::Retiring.as_str().into();
                    retired = Some(row.clone());
                }
                Some(SetRole::Building) if same_set(row, m) => {
                    row.role = SetRole::Active.as_str().into();
                }
                _ => {}
            }
        }
        Ok(Switched::Done { retired })
    }

    async fn retiring_rows(&self, m: &Migration, limit: u32) -> Result<Vec<RetiringRow>, Fault> {
        let rows = self.retiring.borrow();
        Ok(rows
            .iter()
            .filter(|r| r.model == m.model && r.location == m.location)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn restore_columns(
        &self,
        _table: &TableConfig,
        _m: &Migration,
        records: &[&str],
    ) -> Result<usize, Fault> {
        let records: Vec<String> = records.iter().map(|r| (*r).to_owned()).collect();
        let n = records.len();
        self.restored.borrow_mut().push(records);
        Ok(n)
    }

    async fn remove_rows(
        &self,
        _m: &Migration,
        rows: &[RetiringRow],
        _now_ms: i64,
    ) -> Result<(), Fault> {
        self.retiring.borrow_mut().retain(|r| !rows.contains(r));
        Ok(())
    }

    async fn drop_retired(&self, m: &Migration, _now_ms: i64) -> Result<usize, Fault> {
        let left = self
            .retiring
            .borrow()
            .iter()
            .any(|r| r.model == m.model && r.location == m.location);
        let mut sets = self.sets.borrow_mut();
        let before = sets.len();
        sets.retain(|(row, _)| {
            left || !(same_set(row, m) && row.role() == Some(SetRole::Retiring))
        });
        let gone = before - sets.len();
        self.dropped.set(self.dropped.get() + gone);
        Ok(gone)
    }
}

/// Delivers each step of `queue` in a batch of its own, as the runtime would, all at `now`;
/// the steps they sent, each with its delay.
pub(super) async fn deliver(
    sets: &FakeSets,
    queues: &FakeQueues,
    queue: Vec<MigrationStep>,
    now: i64,
) -> Vec<(MigrationStep, u32)> {
    let (config, indexes) = (config(), FakeIndexes::default());
    let steps = Steps {
        store: sets,
        requeue: queues,
        indexes: &indexes,
        config: &config,
    };
    for step in queue {
        assert_eq!(steps.handle(&[step], now).await, vec![Settle::Ack]);
    }
    queues.steps.take()
}
