//! search-worker's routes, run in wasm with a fake store.

use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};
use worker_kit::Fault;

use crate::ports::Store;
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

#[wasm_bindgen_test]
async fn health_names_the_worker_and_checks_d1() {
    let response = handle(
        &FakeStore { up: true },
        &HttpRequest::new(Method::Get, "/health"),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["worker"], "search-worker");
    let response = handle(
        &FakeStore { up: false },
        &HttpRequest::new(Method::Get, "/health"),
    )
    .await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["d1"], false);
}

#[wasm_bindgen_test]
async fn unknown_routes_and_methods_are_json_errors() {
    let store = FakeStore { up: true };
    let response = handle(
        &store,
        &HttpRequest::new(Method::Post, "/search/claimSimilarity"),
    )
    .await;
    assert_eq!(response.status, 404);
    assert_eq!(response.body["error"]["code"], "not_found");
    let response = handle(&store, &HttpRequest::new(Method::Post, "/health")).await;
    assert_eq!(response.status, 405);
}
