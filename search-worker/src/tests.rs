//! search-worker's routes, run in wasm with a fake store and a fake embedder.

use serde_json::json;
use shared::ai::{EmbeddingResult, FailureKind};
use shared::models::ModelSpec;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::embedder::{EmbedError, Embedder};
use worker_kit::http::{HttpRequest, Method};
use worker_kit::Fault;

use crate::ports::{App, Store};
use crate::routes::handle;

struct FakeStore {
    up: bool,
}

impl Store for FakeStore {
    async fn ping(&self) -> Result<(), Fault> {
        if self.up {
            Ok(())
        } else {
            Err(Fault("D1 down".into()))
        }
    }
}

/// Answers each text with a vector of the model's dimension whose first value is the text's
/// length, or fails as told.
struct FakeEmbedder {
    fails: Option<FailureKind>,
    /// Answer this many dimensions instead of the model's, to exercise the shape check.
    dimensions: Option<usize>,
}

impl Embedder for FakeEmbedder {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        if let Some(kind) = self.fails {
            return Err(EmbedError {
                kind,
                message: "fake failure".into(),
            });
        }
        let dimensions = self.dimensions.unwrap_or(model.dimensions);
        #[allow(clippy::cast_precision_loss)]
        let data = texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0; dimensions];
                v[0] = t.len() as f32;
                v
            })
            .collect();
        Ok(EmbeddingResult {
            shape: vec![texts.len(), dimensions],
            data,
            pooling: None,
        })
    }
}

fn app(up: bool, fails: Option<FailureKind>) -> App<FakeStore, FakeEmbedder> {
    App {
        store: FakeStore { up },
        embedder: FakeEmbedder {
            fails,
            dimensions: None,
        },
        config: worker_kit::config::config(),
    }
}

fn embed_request(request: &serde_json::Value) -> HttpRequest {
    HttpRequest::new(Method::Post, "/embed")
        .with_json(&json!({"organizationId": "org_a", "request": request}))
}

#[wasm_bindgen_test]
async fn health_names_the_worker_and_checks_d1() {
    let response = handle(&app(true, None), &HttpRequest::new(Method::Get, "/health")).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["worker"], "search-worker");
    let response = handle(&app(false, None), &HttpRequest::new(Method::Get, "/health")).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["d1"], false);
}

#[wasm_bindgen_test]
async fn embed_returns_the_vector_of_the_services_model() {
    let response = handle(
        &app(true, None),
        &embed_request(&json!({"text": "hello", "service": "claimSimilarity"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["model"], "@cf/baai/bge-base-en-v1.5");
    assert_eq!(response.body["dimensions"], 768);
    assert_eq!(response.body["vector"][0], 5.0);
    let response = handle(
        &app(true, None),
        &embed_request(&json!({"text": "hi", "model": "@cf/baai/bge-small-en-v1.5"})),
    )
    .await;
    assert_eq!(response.body["dimensions"], 384);
}

#[wasm_bindgen_test]
async fn embed_failures_are_clear_errors() {
    let cases = [
        (
            app(true, Some(FailureKind::Transient)),
            json!({"text": "x"}),
            503,
            "unavailable",
        ),
        (
            app(true, Some(FailureKind::Permanent)),
            json!({"text": "x"}),
            502,
            "model_failed",
        ),
        (
            app(true, None),
            json!({"text": "x", "service": "nope"}),
            404,
            "not_found",
        ),
        (app(true, None), json!({"text": ""}), 400, "invalid_request"),
    ];
    for (app, request, status, code) in cases {
        let response = handle(&app, &embed_request(&request)).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{request}"
        );
    }
    let wrong_shape = App {
        embedder: FakeEmbedder {
            fails: None,
            dimensions: Some(12),
        },
        ..app(true, None)
    };
    let response = handle(&wrong_shape, &embed_request(&json!({"text": "x"}))).await;
    assert_eq!(
        response.status, 502,
        "an answer of the wrong dimension is refused: {}",
        response.body
    );
}

#[wasm_bindgen_test]
async fn unknown_routes_and_methods_are_json_errors() {
    let app = app(true, None);
    let response = handle(
        &app,
        &HttpRequest::new(Method::Post, "/search/claimSimilarity"),
    )
    .await;
    assert_eq!(response.status, 404);
    assert_eq!(response.body["error"]["code"], "not_found");
    let response = handle(&app, &HttpRequest::new(Method::Post, "/health")).await;
    assert_eq!(response.status, 405);
}
