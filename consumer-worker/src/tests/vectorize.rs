//! Vectorize tables: the indexes brought in line with D1 after the commit, a failed sync, a
//! vector the index refuses, and a table moved to Vectorize.

use shared::freshness::{RecordState, StoredVersion};
use shared::job::JobStatus;
use shared::sets::SetRole;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::index_sync::RecordKey;

use super::fixtures::*;
use crate::deliveries::Settle;
use crate::ports::{Delivery, KeptCopy, LiveSet, Loaded};

fn note_key(id: &str) -> RecordKey {
    RecordKey {
        organization_id: "org_a".into(),
        table: "notes".into(),
        record_id: id.into(),
    }
}

#[wasm_bindgen_test]
async fn vectorize_tables_are_brought_in_line_with_d1_after_the_commit() {
    let world = World::default();
    let note = bound("notes", "note_1", "a note");
    let settles = world.run(&[delivery(&note)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert!(matches!(
        &world.written()[0],
        Written::Embedded { dims: 384, table: Some(t), .. } if t == "notes"
    ));
    assert_eq!(
        *world.indexes.synced.borrow(),
        vec![vec![note_key("note_1")]]
    );

    // Nothing committed, nothing to bring in line: the job comes back whole.
    let no_commit = World {
        store: FakeStore {
            commit_down: true,
            ..FakeStore::default()
        },
        ..World::default()
    };
    no_commit.run(&[delivery(&note)]).await;
    assert!(no_commit.indexes.synced.borrow().is_empty());
    assert_eq!(no_commit.queues.retried.borrow().len(), 1);
}

#[wasm_bindgen_test]
async fn a_failed_sync_is_retried_and_its_redelivery_only_syncs() {
    let note = bound("notes", "note_1", "a note");
    let down = World {
        indexes: FakeIndexes {
            down: true,
            ..FakeIndexes::default()
        },
        ..World::default()
    };
    down.run(&[delivery(&note)]).await;
    assert!(
        down.written()
            .iter()
            .any(|w| matches!(w, Written::Embedded { .. })),
        "D1 keeps the vector: it is the truth the index is brought in line with"
    );
    let retried = down.queues.retried.borrow().clone();
    assert_eq!(retried.len(), 1, "the job comes back to write the index");

    // The redelivery finds the job final: no AI call, no write, one sync.
    let again = World::default();
    again.store.states.borrow_mut().push((note.job_id, None));
    let settles = again.run(&[delivery(&retried[0].0)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert!(again.embedder.calls.borrow().is_empty());
    assert!(again.written().is_empty());
    assert_eq!(
        *again.indexes.synced.borrow(),
        vec![vec![note_key("note_1")]]
    );
}

#[wasm_bindgen_test]
async fn a_vector_the_index_refuses_fails_its_own_job_and_no_other() {
    let world = World {
        indexes: FakeIndexes {
            refuses: vec!["note_2".into()],
            ..FakeIndexes::default()
        },
        ..World::default()
    };
    let notes = [
        bound("notes", "note_1", "a note"),
        bound("notes", "note_2", "a poisoned note"),
        bound("notes", "note_3", "another note"),
    ];
    let deliveries: Vec<Delivery> = notes.iter().map(delivery).collect();
    let settles = world.run(&deliveries).await;
    assert_eq!(settles, vec![Settle::Ack; 3]);
    assert!(
        world.queues.retried.borrow().is_empty(),
        "nothing is tried again: the refusal was one record's"
    );
    let unindexed = world.store.unindexed.borrow().clone();
    assert_eq!(unindexed.len(), 1, "{unindexed:?}");
    assert_eq!(unindexed[0].job_id, notes[1].job_id.to_string());
    assert!(
        unindexed[0].reason.contains("metadata too large"),
        "{unindexed:?}"
    );
}

#[wasm_bindgen_test]
async fn a_table_moved_to_vectorize_copies_d1_vectors_without_ai_calls() {
    let world = World::default();
    let note = bound("notes", "note_1", "a note");
    let earlier = bound("notes", "note_1", "a note");
    let small = "@cf/baai/bge-small-en-v1.5";
    let kept = StoredVersion {
        job_id: earlier.job_id.to_string(),
        ..stored_like(&note, small, 50)
    };
    // The table moved from D1 to Vectorize: its D1 set is active, the Vectorize one building.
    world.store.states.borrow_mut().push((
        note.job_id,
        Some(Loaded {
            sets: vec![
                live(set(small, "d1"), Some(kept.clone())),
                LiveSet {
                    role: SetRole::Building,
                    ..live(set(small, "vectorize:VECTORIZE_384"), None)
                },
            ],
            copies: vec![KeptCopy {
                model: small.into(),
                content_hash: note.content_hash.clone(),
                vector: vec![0.25; 384],
            }],
            ..fresh(RecordState::Present {
                text: "a note".into(),
            })
        }),
    ));
    let settles = world.run(&[delivery(&note)]).await;
    assert_eq!(settles, vec![Settle::Ack]);
    assert!(world.embedder.calls.borrow().is_empty(), "no AI call");
    assert!(matches!(
        &world.written()[0],
        Written::Embedded { job_id, dims: 384, .. } if *job_id == note.job_id.to_string()
    ));
    assert_eq!(world.indexes.synced.borrow().len(), 1);

    // Already where the table keeps vectors: skipped, as before.
    let here = World::default();
    here.store.states.borrow_mut().push((
        note.job_id,
        Some(Loaded {
            sets: vec![live(set(small, "vectorize:VECTORIZE_384"), Some(kept))],
            ..fresh(RecordState::Present {
                text: "a note".into(),
            })
        }),
    ));
    here.run(&[delivery(&note)]).await;
    assert!(matches!(
        &here.written()[0],
        Written::Finished {
            status: JobStatus::Skipped,
            ..
        }
    ));
    assert!(
        here.indexes.synced.borrow().is_empty(),
        "a skipped job wrote nothing to bring in line"
    );
}
