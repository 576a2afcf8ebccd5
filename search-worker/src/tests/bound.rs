//! One organization's table within its bound: read a page at a time, refused past it before
//! any of it is read, and never at another tenant's expense.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{
    answer, app, at, brute_force, claim_search, handle, ids, query_claims, random_vectors, seeded,
    Call, Reply, TestApp,
};
use crate::cache::json_bytes;
use crate::cache::snapshot::row_cost;

/// The rows `org` was handed over all catch-ups, and the most one catch-up handed, in bytes as
/// D1 counts them.
fn handed(app: &TestApp, org: &str) -> (usize, usize) {
    let handed = app.store.handed.borrow();
    let of_org = handed.iter().filter(|(o, _, _)| o == org);
    (
        of_org.clone().map(|(_, rows, _)| rows).sum(),
        of_org.map(|(_, _, bytes)| *bytes).max().unwrap_or(0),
    )
}

fn search(org: &str) -> Call {
    claim_search(org, json!({"text": "query", "limit": 3}))
}

fn tables(app: &TestApp, org: &str) -> usize {
    app.caches.vectors.usage(org).tables
}

/// The refusal a search of a table past its bound gets: a conflict that says what to do.
fn assert_refused(reply: &Reply) {
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "conflict");
    let message = reply.body["error"]["message"].as_str().unwrap();
    for said in [
        "`claims` is too large for the D1 backend in one isolate",
        "move it to Vectorize",
        r#"backend = "vectorize""#,
        "768 dimensions",
    ] {
        assert!(message.contains(said), "{message}");
    }
}

#[wasm_bindgen_test]
async fn a_table_past_its_bound_is_refused_before_any_of_it_is_read_and_evicts_no_one() {
    let app = seeded();
    assert_eq!(handle(&app, &search("org_b")).await.status, 200);
    assert_eq!(tables(&app, "org_b"), 1);
    // Org C's records carry metadata as long as a field may be: ten of them, 640 KB.
    let long = "x".repeat(65_536);
    for i in 0..10 {
        app.store.put(
            "org_c",
            "claims",
            &format!("c{i}"),
            Some(&at(0.1)),
            &json!({"story_id": long}),
        );
    }
    app.caches.vectors.set_table_bound(256 << 10);
    for _ in 0..2 {
        assert_refused(&handle(&app, &search("org_c")).await);
    }
    assert_eq!(handed(&app, "org_c").0, 0, "no row of it crossed");
    assert_eq!(tables(&app, "org_c"), 0, "no snapshot of it stays");
    assert_eq!(tables(&app, "org_b"), 1, "the other tenant's table stays");
    assert_eq!(app.caches.vectors.stats().evictions, 0);
    // The tenants within it search as before.
    assert_eq!(handle(&app, &search("org_a")).await.status, 200);
}

#[wasm_bindgen_test]
async fn a_table_larger_than_a_page_is_read_a_page_at_a_time_and_answers_as_a_scan() {
    let app = app();
    let vectors: Vec<(String, Vec<f32>)> = random_vectors(11, 40)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("r{i:02}"), v))
        .collect();
    for (id, vector) in &vectors {
        app.store.put(
            "org_a",
            "claims",
            id,
            Some(vector),
            &json!({"story_id": "s1"}),
        );
    }
    // A row takes about 910 bytes as D1 counts it: pages of three.
    let page = 2_000;
    app.caches.vectors.set_page_bytes(page);
    let query = &random_vectors(12, 1)[0];
    let response = handle(&app, &query_claims(query, 10)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(answer(&response.body), brute_force(&vectors, query, 10));
    let handed_over = app.store.handed.borrow().clone();
    assert_eq!(
        handed_over[0].1, 0,
        "the first read found more than a page: none"
    );
    assert!(handed_over.len() >= 14, "{handed_over:?}");
    let (rows, largest) = handed(&app, "org_a");
    assert_eq!(rows, 40, "each row once");
    let one_row = row_cost(768) + 3 + json!({"story_id": "s1"}).to_string().len();
    assert!(largest < page + one_row, "{largest}");
    assert_eq!(app.caches.vectors.usage("org_a").vectors, 40);
    // No chunk of exact vectors rode with a page (it would count rows of the pages to come as
    // filled): the next catch-up's chunk brings them all, and a new query reads none from D1.
    let reads = app.store.exact_reads.borrow().len();
    for (seed, query) in random_vectors(13, 2).iter().enumerate() {
        let response = handle(&app, &query_claims(query, 10)).await;
        assert_eq!(
            answer(&response.body),
            brute_force(&vectors, query, 10),
            "{seed}"
        );
    }
    assert_eq!(app.store.exact_reads.borrow().len(), reads);
}

#[wasm_bindgen_test]
async fn a_table_that_grows_past_its_bound_goes_and_is_searched_again_once_it_fits() {
    let app = seeded();
    assert_eq!(handle(&app, &search("org_b")).await.status, 200);
    // Room for eight of org_a's claims as D1 counts them (six now).
    let row = row_cost(768) + 2 + json!({"story_id": "s1"}).to_string().len();
    app.caches.vectors.set_table_bound(8 * row + row / 2);
    assert_eq!(handle(&app, &search("org_a")).await.status, 200);
    for i in 0..4 {
        app.store.put(
            "org_a",
            "claims",
            &format!("n{i}"),
            Some(&at(1.0)),
            &json!({"story_id": "s1"}),
        );
    }
    assert_refused(&handle(&app, &search("org_a")).await);
    assert_eq!(tables(&app, "org_a"), 0, "its copy went");
    assert_eq!(tables(&app, "org_b"), 1);
    for i in 0..3 {
        app.store
            .put("org_a", "claims", &format!("n{i}"), None, &json!({}));
    }
    let response = handle(&app, &search("org_a")).await;
    assert_eq!(response.status, 200, "seven claims fit: {}", response.body);
    assert_eq!(ids(&response.body), vec!["c1", "c2", "c3"]);
    assert_eq!(app.caches.vectors.usage("org_a").vectors, 7);
}

/// D1 counts metadata by its text, the isolate by `json_bytes`, which counts a number as 8:
/// a table D1 lets through may still pass the bound in the isolate. It is refused there, its
/// copy dropped, and the other tenant's table (which the budget would have evicted to make
/// room for it) stays.
#[wasm_bindgen_test]
async fn a_table_the_isolate_finds_past_its_bound_goes_without_evicting_another() {
    let app = seeded();
    assert_eq!(handle(&app, &search("org_b")).await.status, 200);
    let metadata = json!({"a": 1, "b": 2, "c": 3, "d": 4});
    let fields = metadata.as_object().unwrap();
    let (as_text, as_counted) = (metadata.to_string().len(), json_bytes(fields));
    assert!(as_counted > as_text + 20, "{as_counted} {as_text}");
    for i in 0..40 {
        app.store.put(
            "org_c",
            "claims",
            &format!("c{i:02}"),
            Some(&at(0.2)),
            &metadata,
        );
    }
    let per_row = row_cost(768) + 3;
    let (d1_counts, isolate_counts) = (40 * (per_row + as_text), 40 * (per_row + as_counted));
    app.caches
        .vectors
        .set_table_bound(usize::midpoint(d1_counts, isolate_counts));
    let org_b = app.caches.vectors.usage("org_b").bytes;
    app.caches.vectors.set_budget(org_b + d1_counts / 2);
    assert_refused(&handle(&app, &search("org_c")).await);
    assert!(handed(&app, "org_c").0 > 0, "D1 let it through");
    assert_eq!(tables(&app, "org_c"), 0);
    assert_eq!(tables(&app, "org_b"), 1, "not evicted for it");
    assert_eq!(app.caches.vectors.stats().evictions, 0);
}
