//! `search`, `grayZone` and `query`: matches best first within the organization, classified by
//! the service, narrowed by filters; on Vectorize, by namespace, checked against D1.

use serde_json::{json, Value};
use shared::Config;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{claim_search, handle, ids, post, seeded};
use crate::ports::App;

#[wasm_bindgen_test]
async fn search_classifies_matches_best_first_within_the_organization() {
    let app = seeded();
    let response = handle(&app, &claim_search("org_a", json!({"text": "query"}))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        ids(&response.body),
        vec!["c1", "c2", "c3", "c4", "c5"],
        "the service's limit of 5"
    );
    let classes: Vec<&str> = response
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["classification"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        vec!["DUPLICATE", "DUPLICATE", "CONFIRMS", "RELATED", "NEW"]
    );
    assert_eq!(response.body[0]["metadata"], json!({"story_id": "s1"}));
    assert!((response.body[1]["score"].as_f64().unwrap() - 0.92).abs() < 1e-5);

    let response = handle(
        &app,
        &claim_search(
            "org_a",
            json!({"text": "query", "threshold": 0.85, "limit": 10}),
        ),
    )
    .await;
    assert_eq!(
        ids(&response.body),
        vec!["c1", "c2", "c3"],
        "none below the threshold"
    );
    let response = handle(&app, &claim_search("org_b", json!({"text": "query"}))).await;
    assert_eq!(
        ids(&response.body),
        vec!["b1"],
        "another organization sees only its own"
    );
}

#[wasm_bindgen_test]
async fn filters_narrow_and_bad_ones_are_refused() {
    let app = seeded();
    let response = handle(
        &app,
        &claim_search(
            "org_a",
            json!({"text": "query", "filters": {"story_id": "s2"}}),
        ),
    )
    .await;
    assert_eq!(ids(&response.body), vec!["c2", "c4"]);
    let response = handle(
        &app,
        &claim_search(
            "org_a",
            json!({"text": "query", "filters": {"story_id": {"$nin": ["s1"]}}, "limit": 1}),
        ),
    )
    .await;
    assert_eq!(ids(&response.body), vec!["c2"]);
    for filters in [
        json!({"organization_id": "org_b"}),
        json!({"story_id": {"$like": "s"}}),
    ] {
        let response = handle(
            &app,
            &claim_search("org_b", json!({"text": "query", "filters": filters})),
        )
        .await;
        assert_eq!(response.status, 400, "{filters}");
    }
}

#[wasm_bindgen_test]
async fn the_gray_zone_splits_at_max_and_drops_below_min() {
    let app = seeded();
    let response = handle(
        &app,
        &post(
            "/gray-zone/claimSimilarity",
            "org_a",
            json!({"text": "query", "limit": 10}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        ids(&response.body["high_confidence"]),
        vec!["c1", "c2", "c3"],
        "score >= 0.85"
    );
    assert_eq!(
        ids(&response.body["gray_zone"]),
        vec!["c4", "c5"],
        "0.60 <= score < 0.85"
    );
    assert_eq!(response.body["gray_zone"][0]["classification"], "RELATED");
    let response = handle(
        &app,
        &post(
            "/gray-zone/claimSimilarity",
            "org_a",
            json!({"text": "query", "min": 0.7, "max": 0.9}),
        ),
    )
    .await;
    assert_eq!(ids(&response.body["high_confidence"]), vec!["c1", "c2"]);
    assert_eq!(ids(&response.body["gray_zone"]), vec!["c3", "c4"]);
}

#[wasm_bindgen_test]
async fn a_vector_query_returns_scores_and_metadata() {
    let app = seeded();
    let mut vector = vec![0.0; 768];
    vector[0] = 1.0;
    let response = handle(
        &app,
        &post(
            "/query",
            "org_a",
            json!({"vector": vector, "topK": 2, "table": "claims", "filter": {"story_id": "s1"}}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["count"], 2);
    assert_eq!(ids(&response.body["matches"]), vec!["c1", "c3"]);
    assert_eq!(response.body["matches"][1]["metadata"]["story_id"], "s1");
    let response = handle(
        &app,
        &post("/query", "org_a", json!({"vector": [1.0, 0.0]})),
    )
    .await;
    assert_eq!(response.status, 400, "no table has 2-dimension vectors");
}

#[wasm_bindgen_test]
async fn vectorize_tables_query_by_namespace_and_say_their_limit() {
    let config: &'static Config = Box::leak(Box::new(
        Config::parse(
            r#"
[[table]]
name = "notes"
columns = ["id", "organization_id", "topic", "body", "embedding"]
[table.embeddings]
fields = ["body"]
metadata = ["topic"]
vector_index = { backend = "vectorize", binding = "VECTORIZE_768" }
[[search]]
name = "noteSearch"
table = "notes"
"#,
        )
        .unwrap(),
    ));
    let app = App { config, ..seeded() };
    let search = |filters: Value| {
        post(
            "/search/noteSearch",
            "org_a",
            json!({"text": "query", "filters": filters}),
        )
    };
    // Vectorize answers n1, but D1 has not (or no longer) got it: it is left out.
    let response = handle(&app, &search(json!({"topic": "t"}))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, json!([]), "a match D1 does not hold");
    // Live in D1 with the metadata Vectorize has.
    app.store
        .put("org_a", "notes", "n1", Some(&[1.0]), &json!({"topic": "t"}));
    let response = handle(&app, &search(json!({"topic": "t"}))).await;
    assert_eq!(response.body[0]["id"], "n1");
    assert_eq!(response.body[0]["metadata"], json!({"topic": "t"}));
    // Its topic changed in D1, Vectorize not yet: the answer follows D1, filter included.
    app.store
        .put("org_a", "notes", "n1", Some(&[1.0]), &json!({"topic": "u"}));
    let response = handle(&app, &search(json!({"topic": "t"}))).await;
    assert_eq!(response.body, json!([]), "no longer passes the filter");
    let response = handle(&app, &search(json!({}))).await;
    assert_eq!(response.body[0]["metadata"], json!({"topic": "u"}));
    // Deleted in D1 (a tombstone): gone at once, whatever Vectorize still answers.
    app.store.put("org_a", "notes", "n1", None, &json!({}));
    let response = handle(&app, &search(json!({}))).await;
    assert_eq!(response.body, json!([]), "a deleted record");
    let (binding, options) = app.indexes.queries.borrow()[0].clone();
    assert_eq!(
        (binding.as_str(), options.namespace.as_str()),
        ("VECTORIZE_768", "org_a")
    );
    assert_eq!(
        options.filter,
        Some(json!({"topic": "t", "table": "notes"}))
    );
    // No metadata comes back (D1 supplies it), so a query may ask for as many as on D1.
    assert_eq!((options.return_metadata, options.top_k), ("none", 10));
    let response = handle(
        &app,
        &post(
            "/search/noteSearch",
            "org_a",
            json!({"text": "query", "limit": 100}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.indexes.queries.borrow().last().unwrap().1.top_k, 100);
}
