//! `enqueue`: a checked job by the right model, sent on the queue, the gateway's job for the
//! same content.

use serde_json::{json, Value};
use shared::message::EmbeddingJob;
use shared::rpc::EnqueueRequest;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fakes::FakeQueue;
use super::fixtures::{app, call_with};
use crate::rpc;

#[wasm_bindgen_test]
async fn enqueue_sends_a_checked_job_by_the_right_model() {
    let app = app();
    let queue = FakeQueue::default();
    let enqueue = |request: Value| ("enqueue", vec![json!("org_a"), request]);
    let reply = call_with(
        &app,
        &queue,
        &enqueue(json!({"text": "Three were charged", "table": "claims", "id": "clm_9"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = queue.sent.borrow().last().cloned().unwrap();
    assert_eq!(reply.body["jobId"], sent.job_id.to_string());
    assert_eq!(
        (
            sent.organization_id.as_str(),
            sent.model.as_str(),
            sent.table.as_deref(),
            sent.id.as_deref()
        ),
        (
            "org_a",
            "@cf/baai/bge-base-en-v1.5",
            Some("claims"),
            Some("clm_9")
        ),
        "a record's job is by its table's model"
    );
    assert_eq!(
        EmbeddingJob::decode(serde_json::to_value(&sent).unwrap()),
        Ok(sent.clone()),
        "the consumer takes it"
    );

    let reply = call_with(
        &app,
        &queue,
        &enqueue(json!({"text": "a note", "service": "noteSearch"})),
    )
    .await;
    assert_eq!(
        reply.body["model"], "@cf/baai/bge-small-en-v1.5",
        "{}",
        reply.body
    );

    let refused: [(Value, u16); 6] = [
        (json!({"text": "  "}), 400),
        (json!({"text": "x", "table": "claims"}), 400),
        (json!({"text": "x", "table": "nope", "id": "a"}), 404),
        (
            json!({"text": "x", "table": "claims", "id": "a", "model": "@cf/baai/bge-small-en-v1.5"}),
            400,
        ),
        (json!({"text": "x", "model": "@cf/nope"}), 400),
        (json!({"text": "x", "extra": 1}), 400),
    ];
    let before = queue.sent.borrow().len();
    for (request, status) in refused {
        let reply = call_with(&app, &queue, &enqueue(request.clone())).await;
        assert_eq!(reply.status, status, "{request}: {}", reply.body);
    }
    assert_eq!(queue.sent.borrow().len(), before, "nothing refused is sent");

    let down = FakeQueue {
        down: true,
        ..FakeQueue::default()
    };
    let reply = call_with(&app, &down, &enqueue(json!({"text": "x"}))).await;
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (503, Some("unavailable"))
    );
}

#[wasm_bindgen_test]
fn an_enqueued_job_is_the_gateways_job_for_the_same_content() {
    let config = worker_kit::config::config();
    let request = EnqueueRequest {
        text: "Police arrested three suspects".into(),
        service: None,
        model: None,
        table: None,
        id: None,
    };
    let job = rpc::job(config, "org_a", &request, uuid::Uuid::nil()).unwrap();
    assert_eq!(
        job,
        EmbeddingJob::new(
            uuid::Uuid::nil(),
            "org_a",
            shared::models::default_model().name,
            "Police arrested three suspects",
            None
        )
    );
}
