//! Exact answers: a search by codes answers as an exact scan of the table, to the bit, reading
//! each exact vector once, a small table holding all of them, a record written meanwhile
//! searched as it is now.

use serde_json::json;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{answer, app, brute_force, handle, ids, post, query_claims, random_vectors};

#[wasm_bindgen_test]
async fn a_search_by_codes_answers_as_an_exact_scan_to_the_bit_and_reads_each_exact_vector_once() {
    // A table too large to hold every exact vector: each search reads its shortlist's.
    let app = app();
    app.caches.vectors.set_resident_bytes(0);
    let vectors: Vec<(String, Vec<f32>)> = random_vectors(3, 600)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("c{i}"), v))
        .collect();
    for (i, (id, vector)) in vectors.iter().enumerate() {
        // A third of the rows were written before codes were: the worker makes theirs.
        app.store.without_codes.set(i % 3 == 0);
        app.store
            .put("org_a", "claims", id, Some(vector), &json!({}));
    }
    for (q, query) in random_vectors(4, 4).iter().enumerate() {
        for k in [1, 10, 100] {
            let request = json!({"vector": query, "topK": k, "table": "claims"});
            let reads = app.store.exact_reads.borrow().len();
            let response = handle(&app, &post("/query", "org_a", request.clone())).await;
            assert_eq!(response.status, 200, "{}", response.body);
            assert_eq!(
                answer(&response.body),
                brute_force(&vectors, query, k),
                "query {q}, top {k}"
            );
            let shortlisted: usize = app.store.exact_reads.borrow()[reads..]
                .iter()
                .map(Vec::len)
                .sum();
            // (Fewer than k, or none, where earlier searches read some already.)
            assert!(
                shortlisted < vectors.len() / 2,
                "query {q}, top {k}: {shortlisted} exact vectors read of {}",
                vectors.len()
            );
            let reads = app.store.exact_reads.borrow().len();
            let again = handle(&app, &post("/query", "org_a", request)).await;
            assert_eq!(again.body, response.body);
            assert_eq!(
                app.store.exact_reads.borrow().len(),
                reads,
                "the same query again reads no exact vector"
            );
        }
    }
    assert!(!app.store.exact_reads.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn a_record_written_while_its_exact_vector_is_read_is_searched_as_it_is_now() {
    // A table too large to hold every exact vector: the search reads its shortlist's.
    let app = app();
    app.caches.vectors.set_resident_bytes(0);
    let vectors = random_vectors(5, 50);
    for (i, vector) in vectors.iter().enumerate() {
        app.store.put(
            "org_a",
            "claims",
            &format!("c{i}"),
            Some(vector),
            &json!({}),
        );
    }
    let query = vectors[7].clone();
    // c7 is the best match by far; as the search reads its exact vector, c7 becomes another.
    let far: Vec<f32> = query.iter().map(|x| -x).collect();
    *app.store.write_before_exact.borrow_mut() =
        Some(("org_a".into(), "claims".into(), "c7".into(), far.clone()));
    let request = json!({"vector": query, "topK": 3, "table": "claims"});
    let response = handle(&app, &post("/query", "org_a", request)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let mut now: Vec<(String, Vec<f32>)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("c{i}"), v.clone()))
        .collect();
    now[7].1 = far;
    assert_eq!(
        answer(&response.body),
        brute_force(&now, &query, 3),
        "the answer is of one state, read after the write"
    );
    assert!(!ids(&response.body["matches"]).contains(&"c7"));
    assert_eq!(
        app.store.exact_reads.borrow().len(),
        2,
        "read again once, after catching up"
    );
}

#[wasm_bindgen_test]
async fn a_small_table_holds_every_exact_vector_read_beside_its_catch_ups() {
    let app = app();
    let mut vectors: Vec<(String, Vec<f32>)> = random_vectors(6, 600)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("c{i}"), v))
        .collect();
    for (id, vector) in &vectors {
        app.store
            .put("org_a", "claims", id, Some(vector), &json!({}));
    }
    let queries = random_vectors(7, 8);
    let search = |query: &Vec<f32>| query_claims(query, 10);
    // The first search loads the codes; each next one reads a chunk (256) of exact vectors
    // beside its catch-up, so the fourth finds all 600 here.
    for query in &queries[..4] {
        let response = handle(&app, &search(query)).await;
        assert_eq!(answer(&response.body), brute_force(&vectors, query, 10));
    }
    assert_eq!(app.store.filled.get(), 3, "three chunks");
    let reads = app.store.exact_reads.borrow().len();
    for query in &queries[4..] {
        let response = handle(&app, &search(query)).await;
        assert_eq!(answer(&response.body), brute_force(&vectors, query, 10));
    }
    assert_eq!(
        app.store.exact_reads.borrow().len(),
        reads,
        "new queries read no exact vector once the layer is whole"
    );
    // A write: its exact vector comes with the next catch-up's chunk, not a read of its own.
    let best = queries[0].clone();
    app.store
        .put("org_a", "claims", "c3", Some(&best), &json!({}));
    vectors[3].1.clone_from(&best);
    let response = handle(&app, &search(&best)).await;
    assert_eq!(answer(&response.body), brute_force(&vectors, &best, 10));
    assert_eq!(ids(&response.body["matches"])[0], "c3");
    assert_eq!(app.store.exact_reads.borrow().len(), reads);
    assert_eq!(app.store.filled.get(), 4);
    let response = handle(&app, &search(&queries[5])).await;
    assert_eq!(
        answer(&response.body),
        brute_force(&vectors, &queries[5], 10)
    );
    assert_eq!(app.store.filled.get(), 4, "nothing left to fill");
}
