//! The isolate's caches seen through searches: current as soon as a write lands, the query's
//! vector reused, the same question of an unchanged table answered again.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{at, claim_search, handle, ids, seeded};

#[wasm_bindgen_test]
async fn the_cache_catches_up_on_writes_and_reuses_query_vectors() {
    let app = seeded();
    let search = || claim_search("org_a", json!({"text": "query", "limit": 1}));
    assert_eq!(ids(&handle(&app, &search()).await.body), vec!["c1"]);
    // The consumer writes a new best match and deletes c1.
    app.store
        .put("org_a", "claims", "c7", Some(&at(0.0)), &json!({}));
    app.store.put("org_a", "claims", "c1", None, &json!({}));
    let response = handle(&app, &search()).await;
    assert_eq!(
        ids(&response.body),
        vec!["c7"],
        "current as soon as it is written"
    );
    let response = handle(
        &app,
        &claim_search("org_a", json!({"text": "query", "limit": 10})),
    )
    .await;
    assert!(
        !ids(&response.body).contains(&"c1"),
        "a deleted record is gone"
    );
    assert_eq!(
        app.embedder.calls.get(),
        1,
        "one AI call for one text searched three times"
    );
    assert_eq!(app.caches.queries.stats().hits, 2);
}

#[wasm_bindgen_test]
async fn the_same_question_of_an_unchanged_table_is_answered_again_and_a_write_answers_it_anew() {
    let app = seeded();
    let ask = |request: Value| claim_search("org_a", request);
    let answered = || app.caches.vectors.stats().answered;
    let first = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(ids(&first.body), vec!["c1", "c2", "c3"]);
    assert_eq!(answered(), 0);
    let again = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(again.body, first.body, "the same answer, to the bit");
    assert_eq!(answered(), 1, "given from the snapshot");

    // Another limit, or a filter, is another question.
    let two = handle(&app, &ask(json!({"text": "query", "limit": 2}))).await;
    assert_eq!(ids(&two.body), vec!["c1", "c2"]);
    let filtered = handle(
        &app,
        &ask(json!({"text": "query", "limit": 3, "filters": {"story_id": "s2"}})),
    )
    .await;
    assert_eq!(ids(&filtered.body), vec!["c2", "c4"]);
    assert_eq!(answered(), 1);

    // A metadata-only write, and a deletion, are in the next answer.
    app.store.put(
        "org_a",
        "claims",
        "c2",
        Some(&at(0.92f32.acos())),
        &json!({"story_id": "s9"}),
    );
    app.store.put("org_a", "claims", "c1", None, &json!({}));
    let after = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(ids(&after.body), vec!["c2", "c3", "c4"]);
    assert_eq!(after.body[0]["metadata"]["story_id"], "s9");
    let filtered = handle(
        &app,
        &ask(json!({"text": "query", "limit": 3, "filters": {"story_id": "s2"}})),
    )
    .await;
    assert_eq!(ids(&filtered.body), vec!["c4"]);
    assert_eq!(answered(), 1, "nothing kept before the writes was given");
    let again = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(again.body, after.body);
    assert_eq!(answered(), 2);
}
