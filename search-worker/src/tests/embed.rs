//! `embed`: the vector of a service's model, and its failures as clear errors.

use serde_json::json;
use shared::ai::FailureKind;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fakes::FakeEmbedder;
use super::fixtures::{app, handle, post};
use crate::ports::App;

#[wasm_bindgen_test]
async fn embed_returns_the_vector_of_the_services_model() {
    let app = app();
    let response = handle(
        &app,
        &post(
            "/embed",
            "org_a",
            json!({"text": "hello", "service": "claimSimilarity"}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["model"], "@cf/baai/bge-base-en-v1.5");
    assert_eq!(response.body["dimensions"], 768);
    assert_eq!(response.body["vector"][0], 5.0);
    let response = handle(
        &app,
        &post(
            "/embed",
            "org_a",
            json!({"text": "hi", "model": "@cf/baai/bge-small-en-v1.5"}),
        ),
    )
    .await;
    assert_eq!(response.body["dimensions"], 384);
}

#[wasm_bindgen_test]
async fn embed_failures_are_clear_errors() {
    let failing = |kind| App {
        embedder: FakeEmbedder {
            fails: Some(kind),
            ..FakeEmbedder::default()
        },
        ..app()
    };
    let cases = [
        (
            failing(FailureKind::Transient),
            json!({"text": "x"}),
            503,
            "unavailable",
        ),
        (
            failing(FailureKind::Permanent),
            json!({"text": "x"}),
            502,
            "model_failed",
        ),
        (
            app(),
            json!({"text": "x", "service": "nope"}),
            404,
            "not_found",
        ),
        (app(), json!({"text": ""}), 400, "invalid_request"),
    ];
    for (app, request, status, code) in cases {
        let response = handle(&app, &post("/embed", "org_a", request.clone())).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{request}"
        );
    }
    let wrong_shape = App {
        embedder: FakeEmbedder {
            dimensions: Some(12),
            ..FakeEmbedder::default()
        },
        ..app()
    };
    let response = handle(&wrong_shape, &post("/embed", "org_a", json!({"text": "x"}))).await;
    assert_eq!(
        response.status, 502,
        "an answer of the wrong dimension is refused: {}",
        response.body
    );
}
