//! The status route and the model-change command, against the fakes.

use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};
use worker_kit::sets::SetRow;

use super::fixtures::{app, as_ann, as_user, send, NOW};
use crate::ports::JobRow;

fn set(model: &str, location: &str, role: &str, migration: Option<&str>) -> SetRow {
    SetRow {
        organization_id: "org_a".into(),
        table_name: "notes".into(),
        model: model.into(),
        location: location.into(),
        role: role.into(),
        migration_id: migration.map(Into::into),
        step_seq: 0,
        updated_at: 0,
    }
}

const SMALL: &str = "@cf/baai/bge-small-en-v1.5";
const BASE: &str = "@cf/baai/bge-base-en-v1.5";

fn job(id: &str, status: &str, created_at: i64, error: Option<&str>) -> JobRow {
    JobRow {
        id: id.into(),
        organization_id: "org_a".into(),
        table_name: Some("notes".into()),
        record_id: Some("note_1".into()),
        model: SMALL.into(),
        content: "text".into(),
        content_hash: String::new(),
        status: status.into(),
        attempts: 1,
        last_error: error.map(Into::into),
        truncated: 0,
        vector_hex: None,
        backfill_id: None,
        created_at,
        updated_at: created_at + 5,
        completed_at: None,
    }
}

fn table<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["table"] == name))
        .unwrap_or_else(|| panic!("no `{name}` in {body}"))
}

#[wasm_bindgen_test]
async fn the_status_shows_a_model_change_its_jobs_and_the_last_error_with_its_replay() {
    let app = app();
    // notes is configured with bge-small on D1; pretend a change from bge-base is under way.
    app.store.sets.borrow_mut().extend([
        set(BASE, "d1", "active", None),
        set(SMALL, "d1", "building", Some("m1")),
    ]);
    app.store.jobs.borrow_mut().extend([
        job("j1", "queued", NOW - 4_000, None),
        job(
            "j2",
            "processing",
            NOW - 1_000,
            Some("embedding failed: 503"),
        ),
        job(
            "j3",
            "dead",
            NOW - 9_000,
            Some("record `note_9` no longer exists"),
        ),
    ]);
    let reply = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/embeddings/status")),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let notes = table(&reply.body, "notes");
    assert_eq!(
        notes["active"]["model"], BASE,
        "searches stay on the old set"
    );
    assert_eq!(notes["configured"]["model"], SMALL);
    assert_eq!(notes["migration"]["to"]["model"], SMALL);
    assert_eq!(
        notes["migration"]["jobs"],
        "/api/v1/embeddings/jobs?backfillId=m1"
    );
    assert_eq!(notes["jobs"]["pending"], 2);
    assert_eq!(notes["jobs"]["dead"], 1);
    assert_eq!(notes["jobs"]["oldestPendingAgeMs"], 4_000);
    // The newest error is the retrying job's; it has no replay while it is open.
    assert_eq!(notes["lastError"]["jobId"], "j2");
    assert!(notes["lastError"]["retry"].is_null());
    // A table with nothing yet: no active set, no migration.
    let claims = table(&reply.body, "claims");
    assert!(claims["active"].is_null() && claims["migration"].is_null());

    app.store.jobs.borrow_mut().retain(|j| j.id != "j2");
    let one = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            "/api/v1/embeddings/status/notes",
        )),
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body["lastError"]["jobId"], "j3");
    assert_eq!(
        one.body["lastError"]["retry"], "/api/v1/embeddings/jobs/j3/retry",
        "a dead job links to its replay"
    );
    let unknown = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            "/api/v1/embeddings/status/nope",
        )),
    )
    .await;
    assert_eq!(unknown.status, 404);
}

#[wasm_bindgen_test]
async fn the_migration_command_starts_a_change_once_and_is_for_admins() {
    let app = app();
    app.store
        .sets
        .borrow_mut()
        .push(set(BASE, "d1", "active", None));
    let post = |user: &str| {
        as_user(
            user,
            HttpRequest::new(Method::Post, "/api/v1/embeddings/tables/notes/migration"),
        )
    };
    assert_eq!(
        send(&app, post("meg")).await.status,
        403,
        "a member may not"
    );
    assert!(app.queue.steps.borrow().is_empty());

    let reply = send(&app, post("ann")).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["migration"]["to"]["model"], SMALL);
    let steps = app.queue.steps.borrow().clone();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].migration.model, SMALL);
    assert_eq!(
        steps[0].migration.step,
        shared::sets::Step::Backfill { after: None }
    );
    assert_eq!(steps[0].migration.seq, 0, "the new set's first value");
    // The chain's steps have claimed the set four times since, and then stopped long ago.
    for s in app.store.sets.borrow_mut().iter_mut() {
        if s.role == "building" {
            s.step_seq = 4;
            s.updated_at = 0;
        }
    }
    // Again: the same change, from its first page, issued for the set's seq now, so that it
    // merges with the chain's next step (one of the two runs); no second building set.
    assert_eq!(send(&app, post("ann")).await.status, 202);
    let steps = app.queue.steps.borrow();
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[1].migration.migration_id,
        steps[0].migration.migration_id
    );
    assert_eq!(steps[1].migration.seq, 4);
    let building = app
        .store
        .sets
        .borrow()
        .iter()
        .filter(|s| s.role == "building")
        .count();
    assert_eq!(building, 1);
}

#[wasm_bindgen_test]
async fn a_table_already_on_its_configured_set_has_nothing_to_migrate() {
    let app = app();
    let reply = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/tables/claims/migration",
        )),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.body["migration"].is_null());
    assert_eq!(reply.body["active"]["model"], BASE);
    assert!(app.queue.steps.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn the_command_resumes_a_clean_up_and_the_change_that_waits_for_it() {
    let app = app();
    // notes is configured with bge-small: the config went back to it while the bge-small set
    // of an earlier change is still being removed (its clean-up's steps lost, say).
    app.store.sets.borrow_mut().extend([
        set(BASE, "d1", "active", None),
        SetRow {
            step_seq: 9,
            updated_at: 0,
            ..set(SMALL, "d1", "retiring", Some("m1"))
        },
    ]);
    let reply = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/tables/notes/migration",
        )),
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["active"]["model"], BASE);
    assert_eq!(reply.body["configured"]["model"], SMALL);
    assert!(
        reply.body["migration"].is_null(),
        "no set is built there yet"
    );
    assert_eq!(reply.body["removing"][0]["model"], SMALL);
    // Only the clean-up is sent: the consumer starts the change once it is done.
    let steps = app.queue.steps.borrow();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0].migration.model, SMALL);
    assert_eq!(steps[0].migration.step, shared::sets::Step::Cleanup);
    assert_eq!(steps[0].migration.seq, 9, "for the set's seq now");
    let building = app.store.sets.borrow().iter().any(|s| s.role == "building");
    assert!(!building);
}

#[wasm_bindgen_test]
async fn the_command_leaves_a_moving_chain_alone_and_resumes_a_stopped_one() {
    let app = app();
    let moved = |at: i64| SetRow {
        updated_at: at,
        step_seq: 4,
        ..set(SMALL, "d1", "retiring", Some("m1"))
    };
    app.store
        .sets
        .borrow_mut()
        .extend([set(BASE, "d1", "active", None), moved(NOW - 5_000)]);
    let command = || {
        as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/tables/notes/migration",
        ))
    };
    // Its clean-up took a step five seconds ago: sent again and again, the command only answers.
    for _ in 0..3 {
        assert_eq!(send(&app, command()).await.status, 202);
    }
    assert!(
        app.queue.steps.borrow().is_empty(),
        "a moving chain is left alone"
    );
    // Stopped for longer than a moving chain ever waits: resumed, once per command.
    app.store.sets.borrow_mut()[1] = moved(NOW - shared::sets::COMMAND_RESUMES_AFTER_MS);
    assert_eq!(send(&app, command()).await.status, 202);
    assert_eq!(app.queue.steps.borrow().len(), 1);
}
