//! A batch of jobs end to end: deciding, embedding in as few calls as the limits allow, writing
//! once, and settling each message (retries, dead letters, malformed messages).

use serde_json::json;
use shared::disposition::{RetryPolicy, MAX_RETRIES};
use shared::freshness::RecordState;
use shared::job::JobStatus;
use shared::message::EmbeddingJob;
use shared::models;
use shared::sets::SetRole;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::*;
use crate::deliveries::Settle;
use crate::ports::{Delivery, LiveSet, Loaded};

#[wasm_bindgen_test]
async fn a_batch_is_embedded_in_as_few_calls_as_the_limit_allows_and_written_once() {
    let world = World::default();
    let jobs: Vec<EmbeddingJob> = (0..150).map(|i| unbound(&format!("text {i}"))).collect();
    let small = EmbeddingJob::new(
        Uuid::new_v4(),
        "org_a",
        "@cf/baai/bge-small-en-v1.5",
        "small",
        None,
    );
    let mut messages: Vec<Delivery> = jobs.iter().map(delivery).collect();
    messages.push(delivery(&small));

    let settles = world.run(&messages).await;

    assert!(settles.iter().all(|s| *s == Settle::Ack));
    let mut calls = world.embedder.calls.borrow().clone();
    calls.sort_unstable();
    assert_eq!(
        calls,
        vec![1, 50, 100],
        "ceil(150/100) calls for one model, one for the other"
    );
    assert_eq!(world.store.loads.get(), 1, "one read round trip");
    assert_eq!(
        world.store.commits.borrow().len(),
        1,
        "one write round trip"
    );
    let written = world.written();
    assert_eq!(written.len(), 151);
    assert!(written.contains(&Written::Embedded {
        job_id: small.job_id.to_string(),
        table: None,
        dims: 384,
        truncated: false
    }));
}

#[wasm_bindgen_test]
async fn the_same_job_twice_in_a_batch_is_embedded_and_written_once() {
    let world = World::default();
    let job = unbound("twice");
    let settles = world.run(&[delivery(&job), delivery(&job)]).await;
    assert_eq!(settles, vec![Settle::Ack, Settle::Ack]);
    assert_eq!(*world.embedder.calls.borrow(), vec![1]);
    assert_eq!(world.written().len(), 1);
}

#[wasm_bindgen_test]
async fn a_job_already_final_is_acknowledged_without_work() {
    let world = World::default();
    let job = unbound("done before");
    world.store.states.borrow_mut().push((job.job_id, None));
    assert_eq!(world.run(&[delivery(&job)]).await, vec![Settle::Ack]);
    assert!(world.embedder.calls.borrow().is_empty());
    assert!(world.store.commits.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn stale_skipped_and_gone_jobs_make_no_ai_call() {
    let world = World::default();
    let stale = bound("claims", "clm_1", "old text");
    let skipped = bound("claims", "clm_2", "same text");
    let gone = bound("claims", "clm_3", "whatever");
    {
        let mut states = world.store.states.borrow_mut();
        states.push((
            stale.job_id,
            Some(fresh(RecordState::Present {
                text: "new text".into(),
            })),
        ));
        let mut unchanged = fresh(RecordState::Present {
            text: "same text".into(),
        });
        unchanged.sets.push(live(
            set(models::DEFAULT_MODEL, "d1"),
            Some(stored_like(&skipped, models::DEFAULT_MODEL, 50)),
        ));
        states.push((skipped.job_id, Some(unchanged)));
        states.push((gone.job_id, Some(fresh(RecordState::Missing))));
    }
    let settles = world
        .run(&[delivery(&stale), delivery(&skipped), delivery(&gone)])
        .await;
    assert_eq!(settles, vec![Settle::Ack; 3]);
    assert!(world.embedder.calls.borrow().is_empty());
    let written = world.written();
    let status_of = |id: Uuid| {
        written.iter().find_map(|w| match w {
            Written::Finished {
                job_id,
                status,
                reason,
            } if *job_id == id.to_string() => Some((*status, reason.clone())),
            _ => None,
        })
    };
    assert!(matches!(
        status_of(stale.job_id),
        Some((JobStatus::Stale, Some(_)))
    ));
    assert_eq!(status_of(skipped.job_id), Some((JobStatus::Skipped, None)));
    let (status, reason) = status_of(gone.job_id).unwrap();
    assert_eq!(status, JobStatus::Dead);
    assert!(reason.unwrap().contains("clm_3"));
}

#[wasm_bindgen_test]
async fn a_transient_ai_failure_is_sent_again_with_its_attempt_raised_then_dead_lettered() {
    let world = World::ai_down();
    let first = unbound("first try");
    let mut last = unbound("last try");
    last.attempt = MAX_RETRIES;
    let settles = world.run(&[delivery(&first), delivery(&last)]).await;
    assert_eq!(
        settles,
        vec![Settle::Ack, Settle::Ack],
        "acked once sent again"
    );

    let retried = world.queues.retried.borrow();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].0.job_id, first.job_id);
    assert_eq!(retried[0].0.attempt, 1);
    assert_eq!(retried[0].1, RetryPolicy::default().delay_seconds(0));
    assert_eq!(world.queues.dead_lettered.borrow()[0].job_id, last.job_id);
    // The error is kept on both rows, for the job route and the dead-letter handler.
    let failed = world
        .written()
        .iter()
        .filter(|w| matches!(w, Written::Failed { error, .. } if error.contains("500")))
        .count();
    assert_eq!(failed, 2);
}

#[wasm_bindgen_test]
async fn retries_go_back_in_as_few_send_batches_as_the_queue_allows() {
    let world = World::ai_down();
    let jobs: Vec<EmbeddingJob> = (0..150).map(|i| unbound(&format!("text {i}"))).collect();
    let messages: Vec<Delivery> = jobs.iter().map(delivery).collect();
    let settles = world.run(&messages).await;
    assert!(settles.iter().all(|s| *s == Settle::Ack));
    assert_eq!(world.queues.retried.borrow().len(), 150);
    assert_eq!(world.queues.sends.get(), 2, "100 and 50, not 150 sends");
}

#[wasm_bindgen_test]
async fn a_refused_text_dies_alone_and_the_rest_of_its_call_is_embedded() {
    let world = World {
        embedder: FakeEmbedder {
            poison: Some("poison".into()),
            ..FakeEmbedder::default()
        },
        ..World::default()
    };
    let good = unbound("good");
    let bad = unbound("poison");
    let settles = world.run(&[delivery(&good), delivery(&bad)]).await;
    assert_eq!(settles, vec![Settle::Ack, Settle::Ack]);
    assert_eq!(*world.embedder.calls.borrow(), vec![2, 1, 1]);
    let written = world.written();
    assert!(written.iter().any(
        |w| matches!(w, Written::Embedded { job_id, .. } if *job_id == good.job_id.to_string())
    ));
    assert!(written.iter().any(|w| matches!(w,
        Written::Finished { job_id, status: JobStatus::Dead, reason: Some(r) }
            if *job_id == bad.job_id.to_string() && r.contains("400"))));
    assert!(world.queues.retried.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn nothing_is_acknowledged_when_the_results_cannot_be_written() {
    let world = World {
        store: FakeStore {
            commit_down: true,
            ..FakeStore::default()
        },
        ..World::default()
    };
    let job = unbound("embedded but not stored");
    let settles = world.run(&[delivery(&job)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert_eq!(
        world.queues.retried.borrow()[0].0.job_id,
        job.job_id,
        "sent again, not lost"
    );

    let down = World {
        store: FakeStore {
            load_down: true,
            ..FakeStore::default()
        },
        queues: FakeQueues {
            down: true,
            ..FakeQueues::default()
        },
        ..World::default()
    };
    let settles = down.run(&[delivery(&job)]).await;
    assert_eq!(
        settles,
        vec![Settle::Retry { delay_seconds: 2 }],
        "with the queue down too, the runtime delivers it again"
    );
    assert!(down.embedder.calls.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn a_malformed_message_is_dead_without_blocking_the_others() {
    let world = World::default();
    let good = unbound("fine");
    let bad = unbound("original");
    let mut tampered = serde_json::to_value(&bad).unwrap();
    tampered["content"] = json!("edited after hashing");
    let settles = world
        .run(&[body(tampered), delivery(&good), body(json!("not a job"))])
        .await;
    assert_eq!(settles, vec![Settle::Ack; 3]);
    let written = world.written();
    assert!(written.iter().any(|w| matches!(w,
        Written::Finished { job_id, status: JobStatus::Dead, reason: Some(r) }
            if *job_id == bad.job_id.to_string() && r.contains("contentHash"))));
    assert_eq!(
        written.len(),
        2,
        "the body without a job id has no row to mark"
    );
}

#[wasm_bindgen_test]
async fn long_content_is_truncated_and_the_job_says_so() {
    let world = World::default();
    let long = unbound(&"word ".repeat(2_000));
    world.run(&[delivery(&long)]).await;
    assert!(matches!(
        world.written()[0],
        Written::Embedded {
            truncated: true,
            ..
        }
    ));
}

#[wasm_bindgen_test]
async fn while_a_model_changes_a_write_is_embedded_with_both_models_into_both_sets() {
    let world = World::default();
    // claims is configured with bge-base; its searches still read a bge-small set.
    let claim = bound("claims", "clm_1", "the new text");
    let small = "@cf/baai/bge-small-en-v1.5";
    world.store.states.borrow_mut().push((
        claim.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, "d1"), None),
                LiveSet {
                    role: SetRole::Building,
                    ..live(set(models::DEFAULT_MODEL, "d1"), None)
                },
            ],
            ..fresh(RecordState::Present {
                text: "the new text".into(),
            })
        }),
    ));
    let settles = world.run(&[delivery(&claim)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert_eq!(
        *world.embedder.calls.borrow(),
        vec![1, 1],
        "one call a model: a set's vector is always its own model's"
    );
    assert_eq!(set_dims(&world.store), vec![vec![384, 768]]);

    // A set that holds the text already (the building set, filled by the backfill) takes the
    // newer job's name instead of a second embedding.
    let again = World::default();
    let update = bound("claims", "clm_1", "the new text");
    again.store.states.borrow_mut().push((
        update.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, "d1"), Some(stored_like(&update, small, 10))),
                LiveSet {
                    role: SetRole::Building,
                    ..live(
                        set(models::DEFAULT_MODEL, "d1"),
                        Some(stored_like(&update, models::DEFAULT_MODEL, 10)),
                    )
                },
            ],
            ..fresh(RecordState::Present {
                text: "the new text".into(),
            })
        }),
    ));
    again.run(&[delivery(&update)]).await;
    assert!(again.embedder.calls.borrow().is_empty());
    assert_eq!(
        again.written(),
        vec![
            Written::Finished {
                job_id: update.job_id.to_string(),
                status: JobStatus::Skipped,
                reason: None,
            },
            Written::Touched {
                job_id: update.job_id.to_string(),
                sets: 2,
            },
        ]
    );
}

#[wasm_bindgen_test]
async fn a_worker_configured_for_the_active_set_offers_the_column_the_building_sets_vector() {
    // notes is configured with bge-small (a deploy rolled back to it) while a bge-base set of
    // it is being built: the job writes both sets, and the column must be able to follow the
    // building set, which the switch will make active without writing any column.
    let world = World::default();
    let note = bound("notes", "note_1", "the new text");
    let (small, base) = ("@cf/baai/bge-small-en-v1.5", models::DEFAULT_MODEL);
    let (small_at, base_at) = ("vectorize:VECTORIZE_384", "vectorize:VECTORIZE_768");
    world.store.states.borrow_mut().push((
        note.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, small_at), None),
                LiveSet {
                    role: SetRole::Building,
                    ..live(set(base, base_at), None)
                },
            ],
            ..fresh(RecordState::Present {
                text: "the new text".into(),
            })
        }),
    ));
    let settles = world.run(&[delivery(&note)]).await;
    assert_eq!(settles, vec![Settle::Ack]);

    let columns = world.store.columns.borrow();
    let offered: Vec<(&str, &str, usize)> = columns
        .iter()
        .map(|item| {
            assert_eq!(item["job"], note.job_id.to_string());
            assert_eq!(item["record"], "note_1");
            let vector: Vec<f32> =
                serde_json::from_str(item["vector"].as_str().unwrap_or_default()).unwrap();
            (
                item["model"].as_str().unwrap_or_default(),
                item["location"].as_str().unwrap_or_default(),
                vector.len(),
            )
        })
        .collect();
    assert!(
        offered.contains(&(base, base_at, 768)),
        "the building set's vector, though the config names the active set: {offered:?}"
    );
    assert_eq!(
        offered.len(),
        2,
        "and the active set's, which the column takes if the change is given up meanwhile: \
         {offered:?}"
    );
}
