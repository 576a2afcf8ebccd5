//! Metadata indexes: their API, their limit, and that a filter sees only vectors written after
//! the metadata index of its property existed.

use serde_json::json;

use crate::support::{vector, Server, ACCOUNT};

fn list(server: &Server, index: &str) -> serde_json::Value {
    server
        .get(&format!("{ACCOUNT}/{index}/metadata_index/list"))
        .result()["metadataIndexes"]
        .clone()
}

#[test]
fn metadata_indexes_are_created_listed_and_deleted_as_mutations() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    assert_eq!(list(&server, "docs"), json!([]));
    server.create_metadata_index("docs", "url", "string");
    server.create_metadata_index("docs", "year", "number");
    server.create_metadata_index("docs", "draft", "boolean");
    assert_eq!(
        list(&server, "docs"),
        json!([
            {"propertyName": "url", "indexType": "string"},
            {"propertyName": "year", "indexType": "number"},
            {"propertyName": "draft", "indexType": "boolean"},
        ])
    );
    // The same again changes nothing; another type for the property is refused.
    server.create_metadata_index("docs", "url", "string");
    let clash = server.post_json(
        &format!("{ACCOUNT}/docs/metadata_index/create"),
        &json!({"propertyName": "url", "indexType": "number"}),
    );
    assert_eq!(clash.refused(), (400, 49012));
    let bad_type = server.post_json(
        &format!("{ACCOUNT}/docs/metadata_index/create"),
        &json!({"propertyName": "x", "indexType": "date"}),
    );
    assert_eq!(bad_type.refused(), (400, 49012));
    let deleted = server.post_json(
        &format!("{ACCOUNT}/docs/metadata_index/delete"),
        &json!({"propertyName": "year"}),
    );
    crate::support::mutation_id(&deleted);
    assert_eq!(list(&server, "docs").as_array().unwrap().len(), 2);
    let missing = server.post_json(
        &format!("{ACCOUNT}/docs/metadata_index/delete"),
        &json!({"propertyName": "year"}),
    );
    assert_eq!(missing.refused(), (400, 49012));
}

#[test]
fn at_most_ten_metadata_indexes() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    for i in 0..10 {
        server.create_metadata_index("docs", &format!("p{i}"), "string");
    }
    let eleventh = server.post_json(
        &format!("{ACCOUNT}/docs/metadata_index/create"),
        &json!({"propertyName": "p10", "indexType": "string"}),
    );
    let (status, code, message) = eleventh.refusal();
    assert_eq!((status, code), (400, 49012));
    assert!(message.contains("max is 10"), "{message}");
}

#[test]
fn a_filter_ignores_vectors_written_before_the_metadata_index() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let tagged = json!({"metadata": {"kind": "a"}});
    server.upsert("docs", &[vector("before", &[1.0, 0.0], &tagged)]);
    server.create_metadata_index("docs", "kind", "string");
    server.upsert("docs", &[vector("after", &[1.0, 0.1], &tagged)]);
    let filtered = json!({"vector": [1.0, 0.0], "filter": {"kind": "a"}});
    assert_eq!(server.query_ids("docs", &filtered), ["after"]);
    // Both are there without a filter, with their metadata.
    let all = server.query(
        "docs",
        &json!({"vector": [1.0, 0.0], "returnMetadata": "all"}),
    );
    let matches = all.result()["matches"].as_array().unwrap().clone();
    assert_eq!(matches.len(), 2);
    assert!(matches
        .iter()
        .all(|m| m["metadata"] == json!({"kind": "a"})));
    // Written again, the older vector is indexed too.
    server.upsert("docs", &[vector("before", &[1.0, 0.0], &tagged)]);
    assert_eq!(server.query_ids("docs", &filtered), ["before", "after"]);
}

#[test]
fn a_filter_on_a_property_without_a_metadata_index_matches_nothing_and_says_why() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.upsert(
        "docs",
        &[vector(
            "a",
            &[1.0, 0.0],
            &json!({"metadata": {"kind": "a"}}),
        )],
    );
    let reply = server.query(
        "docs",
        &json!({"vector": [1.0, 0.0], "filter": {"kind": "a"}}),
    );
    assert_eq!(reply.result()["count"], 0);
    let messages = reply.messages();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("`kind` has no metadata index")),
        "{messages:?}"
    );
}

#[test]
fn deleting_a_metadata_index_drops_what_vectors_held_in_it() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.create_metadata_index("docs", "kind", "string");
    server.upsert(
        "docs",
        &[vector(
            "a",
            &[1.0, 0.0],
            &json!({"metadata": {"kind": "a"}}),
        )],
    );
    let filtered = json!({"vector": [1.0, 0.0], "filter": {"kind": "a"}});
    assert_eq!(server.query_ids("docs", &filtered), ["a"]);
    server.post_json(
        &format!("{ACCOUNT}/docs/metadata_index/delete"),
        &json!({"propertyName": "kind"}),
    );
    assert!(server.query_ids("docs", &filtered).is_empty());
    // Created again, it holds nothing of the vectors already written.
    server.create_metadata_index("docs", "kind", "string");
    assert!(server.query_ids("docs", &filtered).is_empty());
}

#[test]
fn a_value_of_another_type_than_the_index_is_not_indexed() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.create_metadata_index("docs", "year", "number");
    server.upsert(
        "docs",
        &[
            vector("number", &[1.0, 0.0], &json!({"metadata": {"year": 2024}})),
            vector(
                "string",
                &[1.0, 0.0],
                &json!({"metadata": {"year": "2024"}}),
            ),
        ],
    );
    let ids = server.query_ids(
        "docs",
        &json!({"vector": [1.0, 0.0], "filter": {"year": {"$gte": 2000}}}),
    );
    assert_eq!(ids, ["number"]);
    let ids = server.query_ids(
        "docs",
        &json!({"vector": [1.0, 0.0], "filter": {"year": "2024"}}),
    );
    assert!(ids.is_empty());
}
