//! The queues around a batch: the dead-letter queue, the wrangler config's names, the sweep, and
//! what a model-change step looks like on the queue.

use serde_json::Value;
use shared::disposition::MAX_RETRIES;
use shared::lane::Lane;
use shared::models;
use shared::sets::MigrationStep;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fake_sets::FakeSets;
use super::fixtures::*;
use crate::deliveries::Settle;
use crate::{dead_letter, EMBEDDINGS_DLQ};

#[wasm_bindgen_test]
async fn dead_lettered_jobs_are_marked_dead_or_come_back() {
    let store = FakeStore::default();
    let job = unbound("exhausted");
    let (sets, queues) = (FakeSets::default(), FakeQueues::default());
    let settles = dead_letter::handle(&store, &sets, &queues, &[delivery(&job)], 1).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert_eq!(store.dead.borrow()[0].job_id, job.job_id.to_string());
    assert_eq!(
        store.dead.borrow()[0].reason,
        dead_letter::RETRIES_EXHAUSTED
    );

    let down = FakeStore {
        commit_down: true,
        ..FakeStore::default()
    };
    let settles = dead_letter::handle(&down, &sets, &queues, &[delivery(&job)], 1).await;
    assert!(
        matches!(settles[0], Settle::Retry { .. }),
        "never dropped unrecorded"
    );
}

#[wasm_bindgen_test]
fn queue_names_match_the_wrangler_config() {
    let toml = include_str!("../../../wrangler/consumer-worker.toml");
    for lane in [Lane::Live, Lane::Bulk] {
        let consumer = format!("[[queues.consumers]]\nqueue = \"{}\"", lane.queue());
        assert!(toml.contains(&consumer), "{consumer}");
        let producer = format!(
            "binding = \"{}\"\nqueue = \"{}\"",
            lane.binding(),
            lane.queue()
        );
        assert!(toml.contains(&producer), "{producer}");
    }
    assert!(toml.contains(&format!("queue = \"{EMBEDDINGS_DLQ}\"")));
    assert!(toml.contains(&format!("max_retries = {MAX_RETRIES} ")));
}

#[wasm_bindgen_test]
async fn the_sweep_sends_again_the_jobs_left_open_too_long() {
    use shared::job::STUCK_AFTER_MS;

    let world = World::default();
    let now = 10 * STUCK_AFTER_MS;
    let (lost, moving) = (unbound("lost in the queue"), unbound("still moving"));
    world.store.open.borrow_mut().extend([
        (lost.clone(), now - STUCK_AFTER_MS),
        (moving.clone(), now - STUCK_AFTER_MS + 1),
    ]);
    let swept = crate::sweep::sweep(&world.store, &world.queues, now).await;
    assert_eq!((swept.found, swept.sent), (1, 1));
    let retried = world.queues.retried.borrow().clone();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].0.job_id, retried[0].1), (lost.job_id, 0));
    assert_eq!(retried[0].0.content, "lost in the queue");
    // Marked as just handled: the next sweep, a minute later, leaves it be (and takes the other,
    // stuck by then).
    let again = crate::sweep::sweep(&world.store, &world.queues, now + 60_000).await;
    assert_eq!(again.found, 1);
    assert_eq!(
        world.queues.retried.borrow().last().unwrap().0.job_id,
        moving.job_id
    );

    // A queue that refuses: nothing is marked, so the next sweep tries again.
    let down = World {
        queues: FakeQueues {
            down: true,
            ..FakeQueues::default()
        },
        ..World::default()
    };
    down.store.open.borrow_mut().push((lost.clone(), 0));
    assert_eq!(
        crate::sweep::sweep(&down.store, &down.queues, now)
            .await
            .sent,
        0
    );
    assert_eq!(down.store.open.borrow()[0].1, 0);
}

#[wasm_bindgen_test]
async fn the_sweep_and_a_batchs_retries_keep_each_job_on_its_lane() {
    use shared::job::STUCK_AFTER_MS;

    let world = World::default();
    let (live, bulk) = (unbound("a live write"), unbound("a backfill's job"));
    world.store.bulk_jobs.borrow_mut().push(bulk.job_id);
    world
        .store
        .open
        .borrow_mut()
        .extend([(live.clone(), 0), (bulk.clone(), 0)]);
    let swept = crate::sweep::sweep(&world.store, &world.queues, 2 * STUCK_AFTER_MS).await;
    assert_eq!(swept.sent, 2);
    let sent: Vec<(Uuid, Lane)> = world
        .queues
        .retried
        .borrow()
        .iter()
        .map(|(job, _)| job.job_id)
        .zip(world.queues.lanes.borrow().iter().copied())
        .collect();
    assert!(sent.contains(&(live.job_id, Lane::Live)), "{sent:?}");
    assert!(sent.contains(&(bulk.job_id, Lane::Bulk)), "{sent:?}");

    // A failed attempt from the bulk queue is tried again on the bulk queue.
    let from_bulk = World {
        lane: Lane::Bulk,
        ..World::ai_down()
    };
    from_bulk.run(&[delivery(&unbound("page job"))]).await;
    assert_eq!(*from_bulk.queues.lanes.borrow(), vec![Lane::Bulk]);
}

#[wasm_bindgen_test]
fn a_model_change_step_goes_to_the_queue_as_plain_objects() {
    use worker::js_sys::{Map, Reflect};
    use worker::wasm_bindgen::JsCast;
    let step = MigrationStep::new(shared::sets::Migration {
        organization_id: "org_a".into(),
        table: "notes".into(),
        model: models::DEFAULT_MODEL.into(),
        location: "d1".into(),
        migration_id: Uuid::new_v4(),
        seq: 3,
        step: shared::sets::Step::Switch {
            attempt: 2,
            covered_at: Some(5),
        },
    });
    // What the queue binding is handed (`MessageBuilder` serializes with serde-wasm-bindgen).
    let js = serde_wasm_bindgen::to_value(&step).unwrap();
    let migration = Reflect::get(&js, &"migration".into()).unwrap();
    let inner = Reflect::get(&migration, &"step".into()).unwrap();
    for value in [&js, &migration, &inner] {
        assert!(
            value.is_object() && !value.is_instance_of::<Map>(),
            "a JS Map: {value:?}"
        );
    }
    // And what the consumer reads back off the queue.
    let body: Value = serde_wasm_bindgen::from_value(js).unwrap();
    assert!(MigrationStep::is_step(&body));
    assert_eq!(MigrationStep::decode(body).unwrap(), step);
}
