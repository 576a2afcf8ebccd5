//! A model change's steps (`crate::migration`), and their resumption by the sweep and by the
//! dead-letter queue, over the fake of `embedding_sets` ([`super::fake_sets`]).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use shared::sets::{
    MigrationStep, SetRole, Step, DEAD_LETTER_RESUME_DELAY_SECONDS, DEFERRED_STEP_DELAY_SECONDS,
    FAILED_STEP_DELAY_SECONDS,
};
use wasm_bindgen_test::wasm_bindgen_test;

use super::fake_sets::*;
use super::{body, config, delivery, unbound, FakeIndexes, FakeQueues, FakeStore};
use crate::dead_letter;
use crate::deliveries::Settle;
use crate::migration::Steps;

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
