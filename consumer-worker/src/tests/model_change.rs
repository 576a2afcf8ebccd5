//! A model change's steps (`crate::migration`), and their resumption by the sweep and by the
//! dead-letter queue, over a fake of `embedding_sets` that claims a set by the same rule as
//! the D1 statement (`shared::sets`, "One chain per set").

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use shared::config::{Config, TableConfig};
use shared::message::{content_hash, EmbeddingJob};
use shared::sets::{
    fair_order, Migration, MigrationStep, SetRole, Starter, Step, VectorSet,
    DEAD_LETTER_RESUME_DELAY_SECONDS, DEFERRED_STEP_DELAY_SECONDS, FAILED_STEP_DELAY_SECONDS,
};
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::sets::{apply_in_memory, Applied, SetRow};
use worker_kit::Fault;

use super::{body, config, delivery, unbound, FakeIndexes, FakeQueues, FakeStore};
use crate::dead_letter;
use crate::deliveries::Settle;
use crate::migration::{Coverage, Page, PageRecord, RetiringRow, Steps, Switched};
use crate::ports::MigrationStore;

const SMALL: &str = "@cf/baai/bge-small-en-v1.5";
const BASE: &str = "@cf/baai/bge-base-en-v1.5";
const LARGE: &str = "@cf/baai/bge-large-en-v1.5";

/// `embedding_sets`, and what a change's steps read and write, in memory.
#[derive(Default)]
pub(super) struct FakeSets {
    /// Each set's row, and when it last moved.
    sets: RefCell<Vec<(SetRow, i64)>>,
    /// The active set's live records, in id order.
    records: RefCell<Vec<String>>,
    /// Those the building set covers.
    covered: RefCell<BTreeSet<String>>,
    /// The jobs backfill pages recorded: their backfill id, their record, whether still open.
    jobs: RefCell<Vec<(String, String, bool)>>,
    /// Rows of retiring sets.
    retiring: RefCell<Vec<RetiringRow>>,
    /// The records of each `restore_columns` call.
    restored: RefCell<Vec<Vec<String>>>,
    dropped: Cell<usize>,
    /// The config `ensure` decides by (`shared::sets::plan`); the tests' own if none.
    configured: Option<Config>,
    /// The tables `ensure` was asked for.
    ensured: RefCell<Vec<(String, String)>>,
    /// Backfill pages that fail, after their step's claim, before one lists.
    failing_pages: Cell<usize>,
    /// D1 refuses every claim.
    claim_down: bool,
}

fn row(org: &str, table: &str, model: &str, role: SetRole, seq: u32) -> SetRow {
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
    fn change_of_claims(records: usize) -> Self {
        let sets = FakeSets::default();
        sets.sets.borrow_mut().extend([
            (row("org_a", "claims", SMALL, SetRole::Active, 0), 0),
            (row("org_a", "claims", BASE, SetRole::Building, 0), 0),
        ]);
        *sets.records.borrow_mut() = (0..records).map(|i| format!("clm_{i:04}")).collect();
        sets
    }

    fn with_set(self, row: SetRow, moved: i64) -> Self {
        self.sets.borrow_mut().push((row, moved));
        self
    }

    fn building(&self) -> SetRow {
        self.sets
            .borrow()
            .iter()
            .map(|(row, _)| row)
            .find(|row| row.role() == Some(SetRole::Building))
            .cloned()
            .expect("a building set")
    }

    /// Each set's model and role.
    fn roles(&self) -> Vec<(String, String)> {
        self.sets
            .borrow()
            .iter()
            .map(|(row, _)| (row.model.clone(), row.role.clone()))
            .collect()
    }

    /// The consumer embeds every open job of a backfill: the building set covers its record.
    fn embed_all(&self) {
        for (_, record, open) in self.jobs.borrow_mut().iter_mut() {
            if std::mem::take(open) {
                self.covered.borrow_mut().insert(record.clone());
            }
        }
    }

    /// How many jobs the backfills recorded for each record.
    fn jobs_per_record(&self) -> BTreeMap<String, usize> {
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
async fn deliver(
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

#[wasm_bindgen_test]
async fn however_often_a_change_is_started_or_a_step_delivered_its_set_has_one_chain() {
    for commands_first in [true, false] {
        let sets = FakeSets::change_of_claims(1_200);
        let queues = FakeQueues::default();
        // The chain's first page runs: 500 jobs, and the next page is on its way.
        let first = sets.building().first_step().unwrap();
        let chain = deliver(&sets, &queues, vec![first.clone()], 1).await;
        assert_eq!(chain.len(), 1);
        assert_eq!(sets.jobs.borrow().len(), 500);
        // Meanwhile the command is sent five times, each issuing the first page for the set's
        // seq as it reads it (api-worker's `migrate`), and the first page is delivered again.
        let commands = (0..5).map(|_| sets.building().resume_step().unwrap());
        let chain = chain.into_iter().map(|(step, _)| step);
        let mut queue: Vec<MigrationStep> = if commands_first {
            commands.chain(chain).collect()
        } else {
            chain.chain(commands).collect()
        };
        queue.push(first);

        let mut round = 0;
        while !queue.is_empty() {
            round += 1;
            assert!(round < 20, "the change never ends");
            let sent = deliver(&sets, &queues, std::mem::take(&mut queue), round * 1_000).await;
            assert!(
                sent.len() <= 1,
                "round {round}: {} steps live: {sent:?}",
                sent.len()
            );
            if round == 1 && commands_first {
                // A command's page won, and ran the first page again: its records' jobs are
                // still open, so it enqueued none of them again.
                assert_eq!(sets.jobs.borrow().len(), 500);
            }
            // The consumer embeds what the pages enqueued.
            sets.embed_all();
            queue = sent.into_iter().map(|(step, _)| step).collect();
        }
        let per_record = sets.jobs_per_record();
        assert_eq!(per_record.len(), 1_200, "every record");
        let twice: Vec<_> = per_record.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "enqueued more than once: {twice:?}");
        // And the change ended: switched, and the old set removed.
        assert_eq!(
            sets.roles(),
            [(BASE.to_owned(), "active".to_owned())],
            "commands first: {commands_first}"
        );
    }
}

#[wasm_bindgen_test]
async fn a_step_that_fails_after_its_claim_goes_on_as_itself_and_its_redelivery_is_dropped() {
    let sets = FakeSets::change_of_claims(10);
    sets.failing_pages.set(1);
    let queues = FakeQueues::default();
    let first = sets.building().first_step().unwrap();
    let again = deliver(&sets, &queues, vec![first.clone()], 1).await;
    assert_eq!(
        again,
        [(
            first.then(1, first.migration.step.clone()),
            FAILED_STEP_DELAY_SECONDS
        )],
        "the same page, for the seq it claimed, after a delay"
    );
    // Delivered again anyway (the runtime's at-least-once): its seq is spent.
    assert!(deliver(&sets, &queues, vec![first], 2).await.is_empty());
    assert!(sets.jobs.borrow().is_empty());
    // The step sent again runs the page.
    let next = deliver(&sets, &queues, vec![again[0].0.clone()], 3).await;
    assert_eq!(sets.jobs.borrow().len(), 10);
    assert_eq!(next.len(), 1);
    assert!(matches!(next[0].0.migration.step, Step::Switch { .. }));
    assert_eq!(next[0].0.migration.seq, 2);

    // A claim D1 could not make: nothing ran, and the runtime delivers the step again.
    let down = FakeSets {
        claim_down: true,
        ..FakeSets::change_of_claims(10)
    };
    let (config, indexes) = (config(), FakeIndexes::default());
    let steps = Steps {
        store: &down,
        requeue: &queues,
        indexes: &indexes,
        config: &config,
    };
    let step = down.building().first_step().unwrap();
    let settles = steps.handle(&[step], 1).await;
    assert!(matches!(settles[..], [Settle::Retry { .. }]), "{settles:?}");
}

#[wasm_bindgen_test]
async fn steps_past_a_batchs_share_are_sent_again_with_a_delay_not_retried() {
    let sets = FakeSets::change_of_claims(10);
    let queues = FakeQueues::default();
    let (config, indexes) = (config(), FakeIndexes::default());
    let steps = Steps {
        store: &sets,
        requeue: &queues,
        indexes: &indexes,
        config: &config,
    };
    let first = sets.building().first_step().unwrap();
    let batch: Vec<MigrationStep> = (0..5).map(|_| first.clone()).collect();
    let settles = steps.handle(&batch, 1).await;
    assert_eq!(settles, vec![Settle::Ack; 5], "none spends a retry");
    let sent = queues.steps.take();
    let deferred: Vec<&(MigrationStep, u32)> = sent
        .iter()
        .filter(|(_, delay)| *delay == DEFERRED_STEP_DELAY_SECONDS)
        .collect();
    assert_eq!(deferred.len(), 2, "{sent:?}");
    assert!(
        deferred.iter().all(|(step, _)| *step == first),
        "as they came"
    );
    // Of the three that ran, one claimed the set: its next page is the only other step.
    assert_eq!(sent.len(), 3, "{sent:?}");

    // Only when they cannot be sent are they retried.
    let down = FakeQueues {
        down: true,
        ..FakeQueues::default()
    };
    let steps = Steps {
        store: &sets,
        requeue: &down,
        indexes: &indexes,
        config: &config,
    };
    let settles = steps.handle(&batch, 2).await;
    let retry = Settle::Retry {
        delay_seconds: DEFERRED_STEP_DELAY_SECONDS,
    };
    assert_eq!(settles[3..], [retry; 2]);
}

/// Every event logged while it is the default subscriber: its level and its fields.
#[derive(Clone, Default)]
struct Logged(Arc<Mutex<Vec<(tracing::Level, String)>>>);

impl Logged {
    fn errors(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(level, _)| *level == tracing::Level::ERROR)
            .map(|(_, fields)| fields.clone())
            .collect()
    }
}

impl tracing::Subscriber for Logged {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields(String);
        impl tracing::field::Visit for Fields {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                let _ = write!(self.0, "{}={value:?} ", field.name());
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[wasm_bindgen_test]
async fn a_step_out_of_retries_resumes_its_tables_changes_and_says_so() {
    // claims is changing (its chain's seq is 3 by now) and an older set is still being removed;
    // another organization's change is no part of it.
    let sets = FakeSets::change_of_claims(10)
        .with_set(row("org_a", "claims", LARGE, SetRole::Retiring, 2), 0)
        .with_set(row("org_b", "claims", BASE, SetRole::Building, 0), 0);
    sets.sets.borrow_mut()[1].0.step_seq = 3;
    let building = sets.building();
    let dead_step = building.first_step().unwrap().then(
        1,
        Step::Backfill {
            after: Some("clm_0004".into()),
        },
    );
    let job = unbound("a job out of retries");
    let messages = [
        body(serde_json::to_value(&dead_step).unwrap()),
        delivery(&job),
    ];
    let (store, queues, logged) = (
        FakeStore::default(),
        FakeQueues::default(),
        Logged::default(),
    );
    let settles = {
        let _default = tracing::subscriber::set_default(logged.clone());
        dead_letter::handle(&store, &sets, &queues, &messages, 1).await
    };
    assert_eq!(settles, vec![Settle::Ack, Settle::Ack]);
    assert_eq!(store.dead.borrow().len(), 1, "the job is dead, as ever");
    // The table's chains, each from its set's row as it is now, after a delay: they merge with
    // any step still live.
    let mut sent = queues.steps.take();
    sent.sort_by_key(|(step, _)| step.migration.model.clone());
    assert_eq!(
        sent,
        [
            (
                building.first_step().unwrap(),
                DEAD_LETTER_RESUME_DELAY_SECONDS
            ),
            (
                row("org_a", "claims", LARGE, SetRole::Retiring, 2)
                    .cleanup_step()
                    .unwrap(),
                DEAD_LETTER_RESUME_DELAY_SECONDS
            ),
        ]
    );
    assert_eq!(sent[0].0.migration.seq, 3);
    let errors = logged.errors();
    let said = errors.iter().any(|e| {
        e.contains("org_a")
            && e.contains("claims")
            && e.contains(&dead_step.migration.migration_id.to_string())
    });
    assert!(said, "logged as an error, with its change: {errors:?}");

    // Nothing sent, nothing acknowledged.
    let down = FakeQueues {
        down: true,
        ..FakeQueues::default()
    };
    let settles = dead_letter::handle(&store, &sets, &down, &messages, 2).await;
    assert!(matches!(settles[0], Settle::Retry { .. }), "{settles:?}");
    assert_eq!(settles[1], Settle::Ack);
}

#[wasm_bindgen_test]
async fn the_sweep_resumes_each_organizations_oldest_change_before_any_organizations_second() {
    use shared::job::STUCK_AFTER_MS;

    // org_big's 150 clean-ups stalled before org_small's one change did.
    let mut sets = FakeSets::default();
    for i in 0..150 {
        let table = format!("t{i:03}");
        sets = sets.with_set(row("org_big", &table, SMALL, SetRole::Retiring, 0), i);
    }
    let sets = sets.with_set(row("org_small", "claims", BASE, SetRole::Building, 4), 500);
    let queues = FakeQueues::default();
    let resumed = crate::migration::resume(&sets, &queues, &config(), 10 * STUCK_AFTER_MS)
        .await
        .unwrap();
    assert_eq!(resumed, crate::migration::SWEEP_MIGRATIONS as usize);
    let sent = queues.steps.take();
    let orgs: Vec<&str> = sent
        .iter()
        .map(|(step, _)| step.migration.organization_id.as_str())
        .collect();
    assert_eq!(orgs[..2], ["org_big", "org_small"], "{orgs:?}");
    // Each issued for its set's seq now.
    assert_eq!(sent[1].0.migration.seq, 4);
}

fn retiring(n: usize, switched_at: Option<i64>) -> Vec<RetiringRow> {
    (0..n)
        .map(|i| RetiringRow {
            model: SMALL.into(),
            location: "d1".into(),
            record_id: format!("clm_{i:03}"),
            vector_id: format!("v{i}"),
            switched_at,
        })
        .collect()
}

/// claims' retiring bge-small set, with `rows`.
/// The tests' config, with claims embedded by `model`.
fn claims_on(model: &str) -> Config {
    let text = super::fixtures::CONFIG.replacen(
        "fields = [\"content\"]\n",
        &format!("fields = [\"content\"]\nmodel = \"{model}\"\n"),
        1,
    );
    Config::parse(&text).unwrap()
}

fn retiring_claims(rows: Vec<RetiringRow>) -> FakeSets {
    let sets = FakeSets::default()
        .with_set(row("org_a", "claims", BASE, SetRole::Active, 0), 0)
        .with_set(row("org_a", "claims", SMALL, SetRole::Retiring, 0), 0);
    *sets.retiring.borrow_mut() = rows;
    sets
}

fn cleanup_of_claims(sets: &FakeSets) -> MigrationStep {
    let rows = sets.sets.borrow();
    rows.iter()
        .find_map(|(row, _)| row.cleanup_step())
        .expect("a retiring set")
}

/// Runs the clean-up step and every clean-up step it sends, until none is left; how many ran.
/// What else they sent stays in `queues`.
async fn run_steps(sets: &FakeSets, queues: &FakeQueues, first: MigrationStep) -> usize {
    let (mut next, mut sent) = (vec![first], Vec::new());
    let mut ran = 0;
    while let Some(step) = next.pop() {
        assert!(ran < 10, "the clean-up never ends");
        ran += 1;
        for (step, delay) in deliver(sets, queues, vec![step], 1_000).await {
            if step.migration.step == Step::Cleanup {
                next.push(step);
            } else {
                sent.push((step, delay));
            }
        }
    }
    *queues.steps.borrow_mut() = sent;
    ran
}

#[wasm_bindgen_test]
async fn a_given_up_sets_clean_up_gives_every_record_its_active_vector_back_first() {
    // 250 rows of a set given up before its switch (a deploy went back mid-change): their
    // records' columns hold its model's vectors.
    let sets = retiring_claims(retiring(250, None));
    let queues = FakeQueues::default();
    let ran = run_steps(&sets, &queues, cleanup_of_claims(&sets)).await;
    let restored = sets.restored.borrow();
    let sizes: Vec<usize> = restored.iter().map(Vec::len).collect();
    assert_eq!(sizes, [100, 100, 50], "100 records a step");
    let mut all: Vec<&String> = restored.iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 250, "each record once");
    assert_eq!(ran, 3);
    assert!(sets.retiring.borrow().is_empty());
    assert_eq!(sets.dropped.get(), 1);
    assert_eq!(sets.roles(), [(BASE.to_owned(), "active".to_owned())]);
}

#[wasm_bindgen_test]
async fn a_switched_sets_clean_up_leaves_the_columns_and_starts_the_change_that_waited() {
    // The old set of a change that switched: the columns already hold the new set's vectors.
    let sets = retiring_claims(retiring(3, Some(500)));
    // Meanwhile a deploy asked for the model being removed: no set could be built there yet.
    let sets = FakeSets {
        configured: Some(claims_on(SMALL)),
        ..sets
    };
    let queues = FakeQueues::default();
    assert_eq!(run_steps(&sets, &queues, cleanup_of_claims(&sets)).await, 1);
    assert!(sets.restored.borrow().is_empty(), "no column to restore");
    assert_eq!(sets.dropped.get(), 1);
    assert_eq!(
        *sets.ensured.borrow(),
        [("org_a".to_owned(), "claims".to_owned())],
        "the cleaned table alone"
    );
    let waiting = sets.building();
    assert_eq!(waiting.model, SMALL);
    let sent = queues.steps.borrow();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0].0,
        waiting.first_step().unwrap(),
        "its first backfill page"
    );
}

#[wasm_bindgen_test]
async fn a_switch_hands_the_chain_to_the_clean_up_of_the_set_it_retired() {
    let sets = FakeSets::change_of_claims(3);
    sets.sets.borrow_mut()[0].0.step_seq = 7;
    *sets.covered.borrow_mut() = sets.records.borrow().iter().cloned().collect();
    let queues = FakeQueues::default();
    let building = sets.building();
    let switch = building.first_step().unwrap().then(
        0,
        Step::Switch {
            attempt: 0,
            covered_at: None,
        },
    );
    let sent = deliver(&sets, &queues, vec![switch], 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let m = &sent[0].0.migration;
    assert_eq!(
        (m.model.as_str(), &m.step, m.seq),
        (SMALL, &Step::Cleanup, 7),
        "the retired set's clean-up, for its own seq"
    );
    assert_eq!(m.migration_id.to_string(), building.migration_id.unwrap());
}
