//! Writes and reads by id: insert against upsert, delete, getByIds, queryById.

use serde_json::json;

use crate::support::{vector, Server, ACCOUNT};

fn get(server: &Server, ids: &[&str]) -> serde_json::Value {
    server
        .post_json(&format!("{ACCOUNT}/docs/get_by_ids"), &json!({"ids": ids}))
        .result()
        .clone()
}

#[test]
fn insert_keeps_an_existing_vector_and_upsert_replaces_it_in_full() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.write(
        "docs",
        "insert",
        &[vector(
            "v",
            &[1.0, 0.0],
            &json!({"metadata": {"a": 1, "b": 2}}),
        )],
    );
    server.write(
        "docs",
        "insert",
        &[vector("v", &[0.0, 1.0], &json!({"metadata": {"a": 9}}))],
    );
    assert_eq!(
        get(&server, &["v"]),
        json!([{"id": "v", "values": [1.0, 0.0], "metadata": {"a": 1, "b": 2}}])
    );
    server.upsert(
        "docs",
        &[vector("v", &[0.0, 1.0], &json!({"metadata": {"a": 9}}))],
    );
    // No merge: the metadata is the new vector's only.
    assert_eq!(
        get(&server, &["v"]),
        json!([{"id": "v", "values": [0.0, 1.0], "metadata": {"a": 9}}])
    );
    // Within one insert, the first of an id wins; within one upsert, the last.
    server.write(
        "docs",
        "insert",
        &[
            vector("w", &[1.0, 0.0], &json!({})),
            vector("w", &[0.0, 1.0], &json!({})),
        ],
    );
    assert_eq!(get(&server, &["w"])[0]["values"], json!([1.0, 0.0]));
    server.upsert(
        "docs",
        &[
            vector("x", &[1.0, 0.0], &json!({})),
            vector("x", &[0.0, 1.0], &json!({})),
        ],
    );
    assert_eq!(get(&server, &["x"])[0]["values"], json!([0.0, 1.0]));
}

#[test]
fn get_by_ids_answers_the_vectors_found_in_the_order_asked() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.upsert(
        "docs",
        &[
            vector(
                "a",
                &[0.1, 0.2],
                &json!({"namespace": "ns", "metadata": {"k": "v"}}),
            ),
            vector("b", &[0.3, 0.4], &json!({})),
        ],
    );
    let got = get(&server, &["b", "missing", "a", "b"]);
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0],
        json!({"id": "b", "values": [f64::from(0.3f32), f64::from(0.4f32)]})
    );
    assert_eq!(got[1]["id"], "a");
    assert_eq!(got[1]["namespace"], "ns");
    assert_eq!(got[1]["metadata"], json!({"k": "v"}));
}

#[test]
fn delete_by_ids_removes_the_vectors() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let vectors: Vec<_> = (0..10u8)
        .map(|i| vector(&format!("v{i}"), &[1.0, f32::from(i)], &json!({})))
        .collect();
    server.upsert("docs", &vectors);
    let reply = server.post_json(
        &format!("{ACCOUNT}/docs/delete_by_ids"),
        &json!({"ids": ["v3", "v7", "absent"]}),
    );
    crate::support::mutation_id(&reply);
    assert_eq!(
        server.get(&format!("{ACCOUNT}/docs/info")).result()["vectorCount"],
        8
    );
    assert_eq!(get(&server, &["v3", "v7"]), json!([]));
    // The rows that moved to fill the holes are intact.
    for i in [0u8, 1, 2, 4, 5, 6, 8, 9] {
        assert_eq!(
            get(&server, &[&format!("v{i}")])[0]["values"],
            json!([1.0, f64::from(i)])
        );
    }
    let ids = server.query_ids("docs", &json!({"vector": [1.0, 9.0], "topK": 100}));
    assert_eq!(ids.len(), 8);
    assert!(!ids.contains(&"v3".to_owned()));
}

#[test]
fn query_by_id_searches_near_a_stored_vector() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "euclidean");
    server.upsert(
        "docs",
        &[
            vector("origin", &[0.0, 0.0], &json!({})),
            vector("near", &[0.0, 1.0], &json!({})),
            vector("far", &[5.0, 5.0], &json!({})),
        ],
    );
    // As the binding sends it, to `query` with `vectorId`, and at the named route.
    let by_query = server.query_ids("docs", &json!({"vectorId": "origin", "topK": 2}));
    assert_eq!(by_query, ["origin", "near"]);
    let by_route = server.post_json(
        &format!("{ACCOUNT}/docs/query_by_id"),
        &json!({"vectorId": "near", "topK": 2}),
    );
    let ids: Vec<&str> = by_route.result()["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["near", "origin"]);
    let missing = server.query("docs", &json!({"vectorId": "nobody"}));
    assert_eq!(missing.result(), &json!({"count": 0, "matches": []}));
    assert_eq!(
        server
            .post_json(&format!("{ACCOUNT}/docs/query_by_id"), &json!({"topK": 2}))
            .refused(),
        (400, 40026)
    );
}

#[test]
fn the_bindings_own_route_names_work_too() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.upsert("docs", &[vector("a", &[1.0, 0.0], &json!({}))]);
    let got = server.post_json(&format!("{ACCOUNT}/docs/getByIds"), &json!({"ids": ["a"]}));
    assert_eq!(got.result()[0]["id"], "a");
    let deleted = server.post_json(
        &format!("{ACCOUNT}/docs/deleteByIds"),
        &json!({"ids": ["a"]}),
    );
    crate::support::mutation_id(&deleted);
    assert_eq!(
        server.get(&format!("{ACCOUNT}/docs/info")).result()["vectorCount"],
        0
    );
}
