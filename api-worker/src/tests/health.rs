//! `GET /api/v1/health`: public, and for an organization's administrators the memory their own
//! organization takes in search-worker's caches, never anyone else's.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fakes::FakeSearch;
use super::fixtures::{app, as_ann, as_user, send};

fn health() -> HttpRequest {
    HttpRequest::new(Method::Get, "/api/v1/health")
}

/// search-worker's answer for `organization`: its own caches, named with it.
fn answer_for(organization: &str) -> Value {
    json!({"worker": "search-worker", "d1": true,
           "caches": {"organizationId": organization,
                      "vectors": {"tables": 1, "vectors": 10, "bytes": 4096, "budgetBytes": 67_108_864},
                      "queries": {"entries": 3, "bytes": 900, "budgetBytes": 8_388_608}}})
}

/// What the gateway asked search-worker's `health` for, call by call: the organization given.
fn asked(app: &crate::ports::App<super::fakes::Fakes>) -> Vec<Vec<Value>> {
    app.search
        .transport()
        .calls
        .borrow()
        .iter()
        .filter(|(method, _)| method == "health")
        .map(|(_, args)| args.clone())
        .collect()
}

#[wasm_bindgen_test]
async fn health_reports_d1_and_search_worker() {
    let mut app = app();
    let response = send(&app, health()).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["status"], "ok");
    assert_eq!(response.body["search"]["detail"]["worker"], "search-worker");
    assert!(response.body["search"]["detail"].get("caches").is_none());

    app.search = FakeSearch::down();
    let response = send(&app, health()).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["status"], "degraded");
    assert_eq!(response.body["search"]["ok"], false);
    assert_eq!(response.body["d1"]["ok"], true);
}

/// An owner's health asks search-worker for the owner's organization, and shows what it
/// answers for it; everyone else's asks for none.
#[wasm_bindgen_test]
async fn an_owner_sees_the_caches_of_their_own_organization_only() {
    let mut app = app();
    app.search = FakeSearch::answering(&[("health", answer_for("org_a"))]);
    let owner = send(&app, as_ann(health())).await;
    assert_eq!(
        owner.body["search"]["detail"]["caches"],
        json!({"vectors": {"tables": 1, "vectors": 10, "bytes": 4096, "budgetBytes": 67_108_864},
               "queries": {"entries": 3, "bytes": 900, "budgetBytes": 8_388_608}}),
        "{}",
        owner.body
    );
    assert_eq!(asked(&app), vec![vec![json!("org_a")]]);

    for request in [
        as_user("meg", health()),
        health(),
        health().with_header("cookie", "better-auth.session_token=forged.x"),
    ] {
        let reply = send(&app, request).await;
        assert_eq!(
            reply.status, 200,
            "bad credentials do not fail a health check"
        );
        assert!(
            reply.body["search"]["detail"].get("caches").is_none(),
            "{}",
            reply.body
        );
    }
    assert!(
        asked(&app)[1..]
            .iter()
            .all(|args| args == &vec![Value::Null]),
        "no organization is named for a caller who may not administer it: {:?}",
        asked(&app)
    );
}

/// Figures search-worker does not say are the caller's organization's (another's, or an older
/// search-worker's of the whole isolate, with its hit counts) are never shown.
#[wasm_bindgen_test]
async fn caches_not_named_for_the_callers_organization_are_not_shown() {
    let isolate_wide = json!({"worker": "search-worker", "d1": true,
        "vectorCache": {"tables": 2, "vectors": 2126, "bytes": 4096, "budget": 67_108_864},
        "queryCache": {"hits": 5, "misses": 3, "size": 141, "bytes": 900, "budget": 8_388_608}});
    for answer in [answer_for("org_a"), isolate_wide] {
        let mut app = app();
        app.search = FakeSearch::answering(&[("health", answer.clone())]);
        // Zoe owns org_b.
        let reply = send(&app, as_user("zoe", health())).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(asked(&app), vec![vec![json!("org_b")]]);
        let detail = &reply.body["search"]["detail"];
        assert_eq!(detail, &json!({"worker": "search-worker"}), "for {answer}");
    }
}
