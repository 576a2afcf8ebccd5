//! `keyword` and `hybrid` searches: the keyword index's matches within the organization, each
//! classified by its exact vector score, ordered by the mode, narrowed by filters; and every
//! match says where each search placed it.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{claim_search, handle, ids, seeded, TestApp};
use crate::search::keyword::FILTERED_CANDIDATES;

/// `seeded()` (`org_a`'s c1…c6 at cosines 1.0, 0.92, 0.87, 0.80, 0.65, 0.30 to "query"), with the
/// keyword index finding, whatever the words: c6 best, then c4, then `org_b`'s b1, then c1.
fn with_keyword_hits() -> TestApp {
    let app = seeded();
    for (org, id, score) in [
        ("org_a", "c6", 9.0),
        ("org_a", "c4", 4.0),
        ("org_b", "b1", 3.0),
        ("org_a", "c1", 1.5),
    ] {
        app.store
            .keyword_hits
            .borrow_mut()
            .push((org.into(), "claims".into(), id.into(), score));
    }
    app
}

fn field<'a>(body: &'a Value, key: &str) -> Vec<&'a Value> {
    body.as_array().unwrap().iter().map(|m| &m[key]).collect()
}

#[wasm_bindgen_test]
async fn a_keyword_search_ranks_by_the_index_and_classifies_by_the_vector_score() {
    let app = with_keyword_hits();
    let response = handle(
        &app,
        &claim_search("org_a", json!({"text": "query XQ-7734", "mode": "keyword"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    // Only org_a's hits; b1 (org_b's) is never seen.
    assert_eq!(ids(&response.body), vec!["c6", "c4", "c1"]);
    assert_eq!(
        field(&response.body, "classification"),
        vec![&json!("NEW"), &json!("RELATED"), &json!("DUPLICATE")]
    );
    assert!((response.body[0]["score"].as_f64().unwrap() - 0.30).abs() < 1e-5);
    assert_eq!(
        field(&response.body, "keyword_rank"),
        vec![&json!(1), &json!(2), &json!(3)]
    );
    assert_eq!(response.body[0]["keyword_score"], json!(9.0));
    assert!(response.body[0].get("vector_rank").is_none());
    assert!(response.body[0].get("fused_score").is_none());
    assert_eq!(response.body[0]["metadata"], json!({"story_id": "s1"}));
    // The text's words, each one quoted phrase: no character is read as FTS5's syntax.
    assert_eq!(
        app.store.keyword_queries.borrow()[0],
        ("\"query\" OR \"XQ-7734\"".to_owned(), 5, true)
    );
}

#[wasm_bindgen_test]
async fn a_hybrid_search_fuses_both_rankings() {
    let app = with_keyword_hits();
    let response = handle(
        &app,
        &claim_search("org_a", json!({"text": "query", "mode": "hybrid"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    // Vector ranks c1…c6 as 1…6; keyword c6, c4, c1 as 1, 2, 3. c1 (1 and 3) and c4 (4 and 2)
    // are found by both; c6 is first for words only.
    assert_eq!(ids(&response.body), vec!["c1", "c4", "c6", "c2", "c3"]);
    let first = &response.body[0];
    assert_eq!(
        (first["vector_rank"].clone(), first["keyword_rank"].clone()),
        (json!(1), json!(3))
    );
    let fused = first["fused_score"].as_f64().unwrap();
    assert!((fused - (1.0 / 61.0 + 1.0 / 63.0)).abs() < 1e-12, "{fused}");
    assert_eq!(response.body[3]["keyword_rank"], Value::Null);
    // Each search ranked the fusion's depth, not only the limit.
    assert_eq!(app.store.keyword_queries.borrow()[0].1, 50);
}

#[wasm_bindgen_test]
async fn a_semantic_search_says_only_its_vector_ranks_and_asks_no_index() {
    let app = with_keyword_hits();
    let response = handle(&app, &claim_search("org_a", json!({"text": "query"}))).await;
    assert_eq!(ids(&response.body), vec!["c1", "c2", "c3", "c4", "c5"]);
    assert_eq!(
        field(&response.body, "vector_rank"),
        vec![&json!(1), &json!(2), &json!(3), &json!(4), &json!(5)]
    );
    assert!(response.body[0].get("keyword_rank").is_none());
    assert!(app.store.keyword_queries.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn filters_and_the_threshold_hold_in_every_mode() {
    let app = with_keyword_hits();
    for mode in ["keyword", "hybrid"] {
        let response = handle(
            &app,
            &claim_search(
                "org_a",
                json!({"text": "query", "mode": mode, "filters": {"story_id": "s1"}, "threshold": 0.5}),
            ),
        )
        .await;
        assert_eq!(response.status, 200, "{}", response.body);
        let expected = if mode == "keyword" {
            vec!["c1"]
        } else {
            vec!["c1", "c3", "c5"]
        };
        assert_eq!(ids(&response.body), expected, "{mode}");
    }
    // A filter may reject what the index ranks first: it is asked for more, without their
    // vectors, and the vectors of those that pass are read after.
    let asked: Vec<(usize, bool)> = app
        .store
        .keyword_queries
        .borrow()
        .iter()
        .map(|q| (q.1, q.2))
        .collect();
    assert_eq!(
        asked,
        vec![(FILTERED_CANDIDATES, false), (FILTERED_CANDIDATES, false)]
    );
    let exact_reads = app.store.exact_reads.borrow();
    assert!(
        exact_reads.iter().any(|ids| ids == &["c6", "c1"]),
        "the keyword side reads the vectors of the records that pass: {exact_reads:?}"
    );
}

#[wasm_bindgen_test]
async fn a_text_without_words_finds_nothing_by_keyword_and_asks_no_index() {
    let app = with_keyword_hits();
    let response = handle(
        &app,
        &claim_search("org_a", json!({"text": "-- ?", "mode": "keyword"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(ids(&response.body), Vec::<&str>::new());
    assert!(app.store.keyword_queries.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn an_unknown_mode_is_refused() {
    let app = with_keyword_hits();
    let response = handle(
        &app,
        &claim_search("org_a", json!({"text": "query", "mode": "fuzzy"})),
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.body);
    let message = response.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fuzzy") && message.contains("hybrid"),
        "{message}"
    );
}
