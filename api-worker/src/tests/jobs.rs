//! The job routes: scoped lists and pages, and replays.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fakes::Fakes;
use super::fixtures::{app, as_ann, send, NOW};
use crate::ports::App;

async fn enqueue_plain(app: &App<Fakes>, content: &str) -> String {
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
        .with_json(&json!({"content": content}));
    send(app, request).await.body["jobId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[wasm_bindgen_test]
async fn jobs_are_scoped_listed_by_status_and_paged() {
    let mut app = app();
    let mut ids = Vec::new();
    for i in 0..3 {
        app.now_ms = NOW + i;
        ids.push(enqueue_plain(&app, &format!("job {i}")).await);
    }
    app.store.jobs.borrow_mut()[0].status = "dead".into();
    let get = |path: &str| as_ann(HttpRequest::new(Method::Get, path));

    let response = send(&app, get(&format!("/api/v1/embeddings/jobs/{}", ids[1]))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["status"], "queued");

    let page = send(&app, get("/api/v1/embeddings/jobs?limit=2")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let first: Vec<&str> = page.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        vec![ids[2].as_str(), ids[1].as_str()],
        "newest first"
    );
    let cursor = page.body["nextCursor"].as_str().unwrap();
    let rest = send(
        &app,
        get(&format!("/api/v1/embeddings/jobs?limit=2&cursor={cursor}")),
    )
    .await;
    assert_eq!(rest.body["jobs"][0]["jobId"], ids[0].as_str());
    assert!(rest.body["nextCursor"].is_null());
    let whole = send(&app, get("/api/v1/embeddings/jobs?limit=3")).await;
    assert_eq!(whole.body["jobs"].as_array().unwrap().len(), 3);
    assert!(
        whole.body["nextCursor"].is_null(),
        "a page that takes the last job offers no next page: {}",
        whole.body
    );

    let dead = send(&app, get("/api/v1/embeddings/jobs?status=dead")).await;
    assert_eq!(dead.body["jobs"].as_array().unwrap().len(), 1);
    for bad in ["status=gone", "limit=0", "cursor=%%%", "colour=red"] {
        let response = send(&app, get(&format!("/api/v1/embeddings/jobs?{bad}"))).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
    }

    app.store.jobs.borrow_mut()[1].organization_id = "org_b".into();
    let response = send(&app, get(&format!("/api/v1/embeddings/jobs/{}", ids[1]))).await;
    assert_eq!(
        response.status, 404,
        "another tenant's job is not found, not forbidden"
    );
    let listed = send(&app, get("/api/v1/embeddings/jobs")).await;
    assert_eq!(listed.body["jobs"].as_array().unwrap().len(), 2);
    let response = send(&app, get("/api/v1/embeddings/jobs/not-a-uuid")).await;
    assert_eq!(response.status, 400);
}

#[wasm_bindgen_test]
async fn only_a_dead_or_failed_job_is_replayed_under_its_own_id() {
    let app = app();
    let job_id = enqueue_plain(&app, "replay me").await;
    let retry = || {
        as_ann(HttpRequest::new(
            Method::Post,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        ))
    };
    let response = send(&app, retry()).await;
    assert_eq!(
        response.status, 409,
        "a queued job is not replayed: {}",
        response.body
    );
    assert_eq!(response.body["error"]["code"], "conflict");

    app.store.jobs.borrow_mut()[0].status = "dead".into();
    let response = send(&app, retry()).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(response.body["jobId"], job_id.as_str());
    assert_eq!(app.store.jobs.borrow()[0].status, "queued");
    let sent = app.queue.sent.borrow().clone();
    assert_eq!(
        (sent.len(), sent[1].job_id.to_string(), sent[1].attempt),
        (2, job_id.clone(), 0)
    );

    app.store.jobs.borrow_mut()[0].organization_id = "org_b".into();
    assert_eq!(
        send(&app, retry()).await.status,
        404,
        "another tenant's job"
    );
}

#[wasm_bindgen_test]
async fn a_dead_record_job_replays_with_the_records_text_as_it_is_now() {
    let app = app();
    let enqueued = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(
            &json!({"content": "an old text of the claim", "table": "claims", "id": "clm_1"}),
        ),
    )
    .await;
    assert_eq!(enqueued.status, 202, "{}", enqueued.body);
    let job_id = enqueued.body["jobId"].as_str().unwrap().to_owned();
    app.store.jobs.borrow_mut()[0].status = "dead".into();
    let replayed = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Post,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        )),
    )
    .await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    let sent = app.queue.sent.borrow().last().unwrap().clone();
    let current = "Police arrested three suspects";
    assert_eq!(
        sent.content, current,
        "the vector written must be of the text the record has"
    );
    assert_eq!(
        sent.content_hash,
        shared::message::content_hash(&sent.model, current)
    );
    assert_eq!(
        app.store.jobs.borrow()[0].content,
        current,
        "the job row says what was embedded"
    );
}

#[wasm_bindgen_test]
async fn a_job_stuck_open_can_be_replayed_once_it_has_not_moved_for_a_while() {
    let app = app();
    let job_id = enqueue_plain(&app, "lost in the queue").await;
    let retry = || {
        as_ann(HttpRequest::new(
            Method::Post,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        ))
    };
    app.store.jobs.borrow_mut()[0].status = "processing".into();
    assert_eq!(
        send(&app, retry()).await.status,
        409,
        "a job still moving is left alone"
    );
    app.store.jobs.borrow_mut()[0].updated_at = NOW - shared::job::STUCK_AFTER_MS;
    let replayed = send(&app, retry()).await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    assert_eq!(app.store.jobs.borrow()[0].status, "queued");
}

#[wasm_bindgen_test]
async fn a_tables_dead_jobs_link_lists_that_tables_dead_jobs_only() {
    let app = app();
    for content in ["a notes job", "a claims job", "a free job"] {
        enqueue_plain(&app, content).await;
    }
    for (job, table) in app
        .store
        .jobs
        .borrow_mut()
        .iter_mut()
        .zip(["notes", "claims"])
    {
        job.status = "dead".into();
        job.table_name = Some(table.into());
    }
    let get = |path: &str| as_ann(HttpRequest::new(Method::Get, path));
    let status = send(&app, get("/api/v1/embeddings/status/notes")).await;
    assert_eq!(status.status, 200, "{}", status.body);
    let link = status.body["jobs"]["deadJobs"].as_str().unwrap().to_owned();
    assert_eq!(link, "/api/v1/embeddings/jobs?status=dead&table=notes");
    let listed = send(&app, get(&link)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let tables: Vec<&str> = listed.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["table"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(tables, ["notes"], "{}", listed.body);
    let unknown = send(&app, get("/api/v1/embeddings/jobs?table=stories")).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}
