//! A retiring set's clean-up, and what follows it: the records' columns given back, the set
//! removed, the change that waited for it started; and the switch that hands its chain on.

use shared::config::Config;
use shared::sets::{MigrationStep, SetRole, Step};
use wasm_bindgen_test::wasm_bindgen_test;

use super::fake_sets::*;
use super::FakeQueues;
use crate::migration::RetiringRow;

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
