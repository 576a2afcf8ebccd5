//! The search routes: checked here, then forwarded to search-worker with the organization.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fakes::FakeSearch;
use super::fixtures::{app, as_ann, as_user, send};

#[wasm_bindgen_test]
async fn search_routes_are_checked_then_forwarded_with_the_organization() {
    let mut app = app();
    let found =
        json!({"id": "clm_1", "score": 0.875, "classification": "CONFIRMS", "metadata": {}});
    app.search = FakeSearch::answering(&[
        ("search", json!([found])),
        (
            "grayZone",
            json!({"high_confidence": [found], "gray_zone": []}),
        ),
        ("query", json!({"count": 0, "matches": []})),
    ]);
    let body = json!({"text": "hello", "limit": 3});
    let query = json!({"vector": vec![0.125; 768], "topK": 3, "table": "claims"});
    let sent_query =
        json!({"vector": vec![0.125; 768], "topK": 3, "table": "claims", "returnMetadata": true});
    for (path, method, args, answer) in [
        (
            "/api/v1/embeddings/search/claimSimilarity",
            "search",
            vec![json!("org_a"), json!("claimSimilarity"), body.clone()],
            json!([found]),
        ),
        (
            "/api/v1/embeddings/gray-zone/claimSimilarity",
            "grayZone",
            vec![json!("org_a"), json!("claimSimilarity"), body.clone()],
            json!({"high_confidence": [found], "gray_zone": []}),
        ),
        (
            "/api/v1/embeddings/query",
            "query",
            vec![json!("org_a"), sent_query.clone()],
            json!({"count": 0, "matches": []}),
        ),
    ] {
        let body = if method == "query" { &query } else { &body };
        let response = send(
            &app,
            as_user("vic", HttpRequest::new(Method::Post, path)).with_json(body),
        )
        .await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert_eq!(
            response.body, answer,
            "{path}: the answer as search-worker gave it"
        );
        let calls = app.search.transport().calls.borrow();
        assert_eq!(calls.last().unwrap(), &(method.to_owned(), args));
    }
    let before = app.search.transport().calls.borrow().len();
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/search/nope",
        ))
        .with_json(&body),
    )
    .await;
    assert_eq!(response.status, 404);
    let response = send(
        &app,
        as_user(
            "vic",
            HttpRequest::new(Method::Post, "/api/v1/embeddings/embed"),
        )
        .with_json(&json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status, 403, "a viewer may search but not embed");
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings/embed"))
            .with_json(&json!({"text": ""})),
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        app.search.transport().calls.borrow().len(),
        before,
        "nothing refused reaches search-worker"
    );
}

#[wasm_bindgen_test]
async fn a_search_search_worker_would_refuse_is_refused_without_the_hop() {
    let app = app();
    for (route, body) in [
        (
            "search",
            json!({"text": "x", "filters": {"story_id": {"$bogus": 1}}}),
        ),
        (
            "gray-zone",
            json!({"text": "x", "filters": {"story_id": {"$in": 5}}}),
        ),
        ("search", json!({"text": "x", "limit": 1000})),
        ("gray-zone", json!({"text": "x", "min": 2})),
    ] {
        let response = send(
            &app,
            as_ann(HttpRequest::new(
                Method::Post,
                &format!("/api/v1/embeddings/{route}/claimSimilarity"),
            ))
            .with_json(&body),
        )
        .await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
    }
    assert!(app.search.transport().calls.borrow().is_empty());
}
