//! `health(organizationId)`: an organization sees what its own tables and query vectors take
//! in the isolate's caches, and nothing another organization does moves it.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{self, app, claim_search, handle, health, health_of, seeded, TestApp};
use crate::cache::budget::DEFAULT_VECTOR_BUDGET;
use crate::cache::queries::{DEFAULT_QUERY_BUDGET, QUERY_TTL_MS};
use crate::ports::App;

async fn caches_of(app: &TestApp, org: &str) -> Value {
    let reply = handle(app, &health_of(org)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["caches"]["organizationId"], org);
    reply.body["caches"].clone()
}

async fn search(app: &TestApp, org: &str, text: &str) {
    let reply = handle(app, &claim_search(org, json!({"text": text}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

fn nothing() -> Value {
    json!({
        "vectors": {"tables": 0, "vectors": 0, "bytes": 0, "budgetBytes": DEFAULT_VECTOR_BUDGET},
        "queries": {"entries": 0, "bytes": 0, "budgetBytes": DEFAULT_QUERY_BUDGET},
    })
}

fn figures(caches: &Value) -> Value {
    json!({"vectors": caches["vectors"], "queries": caches["queries"]})
}

#[wasm_bindgen_test]
async fn an_organization_sees_its_own_caches_and_nothing_of_anothers() {
    let app = seeded();
    search(&app, "org_a", "query").await;
    search(&app, "org_a", "another question").await;
    let a = caches_of(&app, "org_a").await;
    assert_eq!(
        (&a["vectors"]["tables"], &a["vectors"]["vectors"]),
        (&json!(1), &json!(6))
    );
    assert_eq!(a["queries"]["entries"], 2);
    assert!(a["vectors"]["bytes"].as_u64().unwrap() > 6 * 768);
    assert!(a["queries"]["bytes"].as_u64().unwrap() > 2 * 768 * 4);

    // Org B has a record, and has searched nothing: none of org_a's figures are its.
    assert_eq!(figures(&caches_of(&app, "org_b").await), nothing());
    search(&app, "org_a", "a third question").await;
    assert_eq!(figures(&caches_of(&app, "org_b").await), nothing());

    // Its own search of org_a's text shows as its own entry and table, and moves nothing of
    // org_a's.
    search(&app, "org_b", "query").await;
    let b = caches_of(&app, "org_b").await;
    assert_eq!(
        (
            &b["vectors"]["tables"],
            &b["vectors"]["vectors"],
            &b["queries"]["entries"]
        ),
        (&json!(1), &json!(1), &json!(1))
    );
    let a_now = caches_of(&app, "org_a").await;
    assert_eq!(a_now["vectors"], a["vectors"]);
    assert_eq!(a_now["queries"]["entries"], 3);

    // Expired query vectors are no longer its figures, whenever they go.
    let later = App {
        caches: app.caches,
        now_ms: QUERY_TTL_MS,
        ..fixtures::app()
    };
    assert_eq!(caches_of(&later, "org_b").await["queries"]["entries"], 0);
}

#[wasm_bindgen_test]
async fn health_without_an_organization_shows_no_caches_and_a_blank_one_is_refused() {
    let app = seeded();
    search(&app, "org_a", "query").await;
    let reply = handle(&app, &health()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!({"worker": "search-worker", "d1": true}));
    let older = handle(&app, &("health", Vec::new())).await;
    assert_eq!(older.body, reply.body, "a caller that gives no argument");
    for blank in [json!(" "), json!(7)] {
        let reply = handle(&app, &("health", vec![blank])).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }
}

#[wasm_bindgen_test]
async fn health_names_the_worker_and_checks_d1() {
    let response = handle(&app(), &health()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["worker"], "search-worker");
    let mut down = app();
    down.store.down = true;
    let response = handle(&down, &health()).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["error"]["code"], "unavailable");
    let response = handle(&down, &claim_search("org_a", json!({"text": "x"}))).await;
    assert_eq!(response.status, 503, "a store that is down is a clear 503");
}
