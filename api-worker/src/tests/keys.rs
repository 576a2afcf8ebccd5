//! The API key routes: made by managers, shown once, revocable.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fixtures::{app, as_ann, as_user, get_as_ann, send, NOW};

#[wasm_bindgen_test]
async fn api_keys_are_made_by_managers_shown_once_and_revocable() {
    let app = app();
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "ci"})),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let key = response.body["key"].as_str().unwrap().to_owned();
    let key_id = response.body["id"].as_str().unwrap().to_owned();
    assert!(
        !app.store.keys.borrow()[0].0.contains(&key),
        "only the hash is stored"
    );

    let with_key =
        |request: HttpRequest| request.with_header("authorization", &format!("Bearer {key}"));
    let response = send(
        &app,
        with_key(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
            .with_json(&json!({"content": "via key"})),
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(app.queue.sent.borrow()[0].organization_id, "org_a");
    // A use is written once a minute at most: a busy key is not a D1 write per request.
    assert_eq!(app.store.keys.borrow()[0].1.last_used_at, Some(NOW));
    let mut app = app;
    for (now, written) in [(NOW + 59_999, NOW), (NOW + 60_000, NOW + 60_000)] {
        app.now_ms = now;
        let read = send(
            &app,
            with_key(HttpRequest::new(Method::Get, "/api/v1/claims/clm_1")),
        )
        .await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(app.store.keys.borrow()[0].1.last_used_at, Some(written));
    }
    let response = send(
        &app,
        with_key(HttpRequest::new(Method::Get, "/api/v1/api-keys")),
    )
    .await;
    assert_eq!(response.status, 403, "a key does not manage keys");

    let listed = get_as_ann(&app, "/api/v1/api-keys").await;
    assert_eq!(listed.body["keys"][0]["role"], "member");
    assert!(listed.body["keys"][0].get("key").is_none());
    let other = send(
        &app,
        as_user(
            "zoe",
            HttpRequest::new(Method::Delete, &format!("/api/v1/api-keys/{key_id}")),
        ),
    )
    .await;
    assert_eq!(other.status, 404, "another organization's key");
    let mine = send(
        &app,
        as_user("meg", HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(mine.status, 403, "members do not make keys");
    let owner_key = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "x", "role": "superuser"})),
    )
    .await;
    assert_eq!(owner_key.status, 403, "no role the creator does not hold");

    assert_eq!(
        send(
            &app,
            as_ann(HttpRequest::new(
                Method::Delete,
                &format!("/api/v1/api-keys/{key_id}")
            ))
        )
        .await
        .status,
        204
    );
    let response = send(
        &app,
        with_key(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
            .with_json(&json!({"content": "x"})),
    )
    .await;
    assert_eq!(response.status, 401, "a revoked key");
}
