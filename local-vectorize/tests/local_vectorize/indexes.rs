//! Indexes: create, list, get, delete, and their refusals.

use serde_json::json;

use crate::support::{Server, ACCOUNT};

#[test]
fn an_index_is_created_listed_got_and_deleted() {
    let server = Server::in_memory();
    let reply = server.post_json(
        ACCOUNT,
        &json!({"name": "docs", "description": "the docs", "config": {"dimensions": 32, "metric": "euclidean"}}),
    );
    assert_eq!(reply.status, 201);
    let created = reply.result();
    assert_eq!(created["name"], "docs");
    assert_eq!(created["description"], "the docs");
    assert_eq!(
        created["config"],
        json!({"dimensions": 32, "metric": "euclidean"})
    );
    assert!(created["created_on"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["created_on"], created["modified_on"]);

    server.create_index("other", 8, "cosine");
    let list = server.get(ACCOUNT);
    let names: Vec<&str> = list
        .result()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs", "other"]);

    let got = server.get(&format!("{ACCOUNT}/docs"));
    assert_eq!(got.result(), created);

    let deleted = server.delete(&format!("{ACCOUNT}/docs"));
    assert_eq!(deleted.status, 200);
    deleted.result();
    let (status, code, message) = server.get(&format!("{ACCOUNT}/docs")).refusal();
    assert_eq!((status, code), (404, 3000));
    assert_eq!(message, "vectorize.index.not_found - Index name \"docs\"");
    assert_eq!(server.delete(&format!("{ACCOUNT}/docs")).refusal().1, 3000);
    // A deleted index's name may be used again.
    server.create_index("docs", 4, "cosine");
}

#[test]
fn a_second_index_of_a_name_is_refused() {
    let server = Server::in_memory();
    server.create_index("docs", 4, "cosine");
    let reply = server.post_json(
        ACCOUNT,
        &json!({"name": "docs", "config": {"dimensions": 4, "metric": "cosine"}}),
    );
    let (status, code, message) = reply.refusal();
    assert_eq!((status, code), (409, 3002));
    assert_eq!(
        message,
        "vectorize.index.duplicate_name - Index name \"docs\""
    );
}

#[test]
fn names_and_configs_outside_the_rules_are_refused() {
    let server = Server::in_memory();
    let config = json!({"dimensions": 4, "metric": "cosine"});
    for name in ["Docs", "1docs", "under_score", "", &"a".repeat(65)] {
        let reply = server.post_json(ACCOUNT, &json!({"name": name, "config": config}));
        assert_eq!(reply.refused(), (400, 49010), "{name}");
    }
    for config in [
        json!({"dimensions": 0, "metric": "cosine"}),
        json!({"dimensions": 1537, "metric": "cosine"}),
        json!({"dimensions": 4, "metric": "hamming"}),
        json!({"dimensions": 4}),
        json!({"preset": "@cf/unknown/model"}),
        json!(null),
    ] {
        let reply = server.post_json(ACCOUNT, &json!({"name": "x", "config": config}));
        let (status, code, message) = reply.refusal();
        assert_eq!((status, code), (400, 49011), "{config}");
        assert!(
            message.starts_with("vectorize.index.invalid_config - "),
            "{message}"
        );
    }
    assert_eq!(
        server
            .post_json(ACCOUNT, &json!({"config": config}))
            .refusal()
            .1,
        40026
    );
    assert_eq!(
        server
            .post_raw(ACCOUNT, "application/json", b"{not json", &[])
            .refusal()
            .1,
        40026
    );
    server.create_index("widest", 1536, "dot-product");
    server.create_index("narrowest", 1, "cosine");
}

#[test]
fn presets_configure_the_bge_models() {
    let server = Server::in_memory();
    for (preset, dimensions) in [
        ("@cf/baai/bge-small-en-v1.5", 384),
        ("@cf/baai/bge-base-en-v1.5", 768),
        ("@cf/baai/bge-large-en-v1.5", 1024),
    ] {
        let name = format!("p{dimensions}");
        let reply = server.post_json(
            ACCOUNT,
            &json!({"name": name, "config": {"preset": preset}}),
        );
        assert_eq!(reply.status, 201);
        assert_eq!(
            reply.result()["config"],
            json!({"dimensions": dimensions, "metric": "cosine"})
        );
    }
}

#[test]
fn every_route_of_an_unknown_index_is_a_404() {
    let server = Server::in_memory();
    let base = format!("{ACCOUNT}/nowhere");
    let replies = [
        server.get(&format!("{base}/info")),
        server.get(&format!("{base}/metadata_index/list")),
        server.post_json(
            &format!("{base}/metadata_index/create"),
            &json!({"propertyName": "p", "indexType": "string"}),
        ),
        server.post_json(&format!("{base}/query"), &json!({"vector": [1.0]})),
        server.post_json(&format!("{base}/get_by_ids"), &json!({"ids": ["a"]})),
        server.post_json(&format!("{base}/delete_by_ids"), &json!({"ids": ["a"]})),
        server.post_raw(
            &format!("{base}/upsert"),
            "application/x-ndjson",
            b"{\"id\":\"a\",\"values\":[1]}",
            &[],
        ),
    ];
    for reply in replies {
        assert_eq!(reply.refused(), (404, 3000));
    }
    let (status, code, _) = server
        .get("/client/v4/accounts/acc/vectorize/v2/nothing")
        .refusal();
    assert_eq!((status, code), (404, 7000));
    assert_eq!(server.get("/health").status, 200);
}
