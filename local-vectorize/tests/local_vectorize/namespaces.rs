//! Namespaces: a vector belongs to at most one; a query with a namespace sees only it.

use serde_json::json;

use crate::support::{vector, Server, ACCOUNT};

#[test]
fn a_query_with_a_namespace_sees_only_that_namespace() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.upsert(
        "docs",
        &[
            vector("a1", &[1.0, 0.0], &json!({"namespace": "org_a"})),
            vector("a2", &[0.9, 0.1], &json!({"namespace": "org_a"})),
            vector("b1", &[1.0, 0.0], &json!({"namespace": "org_b"})),
            vector("none", &[1.0, 0.0], &json!({})),
        ],
    );
    let query = |namespace: Option<&str>| {
        let mut body = json!({"vector": [1.0, 0.0], "topK": 10});
        if let Some(ns) = namespace {
            body["namespace"] = json!(ns);
        }
        let mut ids = server.query_ids("docs", &body);
        ids.sort();
        ids
    };
    assert_eq!(query(Some("org_a")), ["a1", "a2"]);
    assert_eq!(query(Some("org_b")), ["b1"]);
    assert!(query(Some("org_c")).is_empty());
    // Without a namespace, the whole index.
    assert_eq!(query(None), ["a1", "a2", "b1", "none"]);
    // Matches name their namespace.
    let reply = server.query("docs", &json!({"vector": [1.0, 0.0], "namespace": "org_b"}));
    assert_eq!(reply.result()["matches"][0]["namespace"], "org_b");
}

#[test]
fn a_vector_moves_namespace_when_upserted_into_another() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.upsert(
        "docs",
        &[vector("v", &[1.0, 0.0], &json!({"namespace": "one"}))],
    );
    server.upsert(
        "docs",
        &[vector("v", &[1.0, 0.0], &json!({"namespace": "two"}))],
    );
    assert!(server
        .query_ids("docs", &json!({"vector": [1.0, 0.0], "namespace": "one"}))
        .is_empty());
    assert_eq!(
        server.query_ids("docs", &json!({"vector": [1.0, 0.0], "namespace": "two"})),
        ["v"]
    );
    let got = server.post_json(
        &format!("{ACCOUNT}/docs/get_by_ids"),
        &json!({"ids": ["v"]}),
    );
    assert_eq!(got.result()[0]["namespace"], "two");
}

#[test]
fn namespace_names_are_at_most_64_bytes() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.upsert(
        "docs",
        &[vector(
            "ok",
            &[1.0, 0.0],
            &json!({"namespace": "n".repeat(64)}),
        )],
    );
    let long = "n".repeat(65);
    let write = server.write_reply(
        "docs",
        "upsert",
        &[vector("v", &[1.0, 0.0], &json!({"namespace": long}))],
        &[],
    );
    assert_eq!(write.refused(), (400, 49001));
    let query = server.query("docs", &json!({"vector": [1.0, 0.0], "namespace": long}));
    assert_eq!(query.refused(), (400, 49001));
}
