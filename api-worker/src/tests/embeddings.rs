//! Enqueue (`POST /api/v1/embeddings`): the job row, the message, and what is refused.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fixtures::{app, as_ann, send};

#[wasm_bindgen_test]
async fn enqueue_writes_the_job_then_sends_the_message() {
    let app = app();
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(
        &json!({"content": "Three suspects were arrested", "table": "claims", "id": "clm_1"}),
    );
    let response = send(&app, request).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response
            .body
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["id", "jobId", "model", "queued", "table"],
        "the reference page's fields, no more"
    );
    assert_eq!(response.body["model"], "@cf/baai/bge-base-en-v1.5");

    let sent = app.queue.sent.borrow();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].job_id.to_string(), response.body["jobId"]);
    assert_eq!(sent[0].organization_id, "org_a");
    assert_eq!(
        sent[0].record_hash,
        Some(shared::message::content_hash(
            &sent[0].model,
            "Police arrested three suspects"
        )),
        "the record's current text, not the content, decides staleness"
    );
    let jobs = app.store.jobs.borrow();
    assert_eq!(
        (jobs[0].status.as_str(), jobs[0].organization_id.as_str()),
        ("queued", "org_a")
    );
}

#[wasm_bindgen_test]
async fn a_failed_send_marks_the_job_failed_and_answers_503() {
    let mut app = app();
    app.queue.down = true;
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
        .with_json(&json!({"content": "hello"}));
    let response = send(&app, request).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["error"]["code"], "unavailable");
    let jobs = app.store.jobs.borrow();
    assert_eq!(jobs.len(), 1, "the job row is kept, with its failure");
    assert_eq!(jobs[0].status, "failed");
    assert!(jobs[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("queue down"));
}

#[wasm_bindgen_test]
async fn bad_requests_get_a_clear_4xx() {
    let app = app();
    let cases = [
        (
            json!({"content": "x", "table": "claims", "id": "clm_404"}),
            404,
            "not_found",
        ),
        (
            json!({"content": "x", "table": "claims", "id": "clm_b1"}),
            404,
            "not_found",
        ),
        (
            json!({"content": "x", "table": "stories", "id": "s1"}),
            404,
            "not_found",
        ),
        (
            json!({"content": "x", "table": "claims"}),
            400,
            "invalid_request",
        ),
        (
            json!({"content": "x", "id": "clm_1"}),
            400,
            "invalid_request",
        ),
        (
            json!({"content": "x", "model": "@cf/meta/llama"}),
            400,
            "unknown_model",
        ),
        (
            json!({"content": "x", "table": "claims", "id": "clm_1", "model": "@cf/baai/bge-small-en-v1.5"}),
            400,
            "invalid_request",
        ),
        (
            json!({"content": "x", "table": "claims", "id": "bad id'"}),
            400,
            "invalid_request",
        ),
        (json!({"content": 7}), 400, "invalid_request"),
        (
            json!({"content": "x", "colour": "red"}),
            400,
            "invalid_request",
        ),
        (json!({}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let response = send(
            &app,
            as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(&body),
        )
        .await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let mut request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"));
    request.body = b"{not json".to_vec();
    let response = send(&app, request).await;
    assert_eq!(
        (response.status, response.body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    assert!(app.queue.sent.borrow().is_empty());
}
