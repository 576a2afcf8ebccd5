//! Metadata filters through the API: every operator, the 64-byte string rule, the 2 KiB limit,
//! and the forms Vectorize does not take.

use serde_json::{json, Value};

use crate::support::{vector, Server};

/// An index of five films, every property indexed before they are written.
fn films() -> Server {
    let server = Server::in_memory();
    server.create_index("films", 2, "cosine");
    for (property, kind) in [
        ("platform", "string"),
        ("year", "number"),
        ("hd", "boolean"),
        ("meta.rating", "number"),
    ] {
        server.create_metadata_index("films", property, kind);
    }
    let film = |id: &str, platform: &str, year: u32, hd: bool, rating: f64| {
        vector(
            id,
            &[1.0, 0.0],
            &json!({"metadata": {"platform": platform, "year": year, "hd": hd, "meta": {"rating": rating}}}),
        )
    };
    server.upsert(
        "films",
        &[
            film("1", "netflix", 2019, true, 7.5),
            film("2", "hbo", 2020, false, 8.0),
            film("3", "amazon", 2021, true, 6.0),
            film("4", "netflix", 2022, false, 9.1),
            film("5", "netflix-kids", 2023, true, 5.5),
        ],
    );
    server
}

fn matching(server: &Server, filter: &Value) -> Vec<String> {
    let mut ids = server.query_ids(
        "films",
        &json!({"vector": [1.0, 0.0], "topK": 10, "filter": filter}),
    );
    ids.sort();
    ids
}

#[test]
fn every_operator() {
    let server = films();
    let cases = [
        (json!({"platform": "netflix"}), vec!["1", "4"]),
        (json!({"platform": {"$eq": "netflix"}}), vec!["1", "4"]),
        (json!({"platform": {"$ne": "netflix"}}), vec!["2", "3", "5"]),
        (
            json!({"platform": {"$in": ["hbo", "amazon"]}}),
            vec!["2", "3"],
        ),
        (
            json!({"platform": {"$nin": ["hbo", "amazon"]}}),
            vec!["1", "4", "5"],
        ),
        (json!({"year": {"$lt": 2021}}), vec!["1", "2"]),
        (json!({"year": {"$lte": 2021}}), vec!["1", "2", "3"]),
        (json!({"year": {"$gt": 2021}}), vec!["4", "5"]),
        (json!({"year": {"$gte": 2021}}), vec!["3", "4", "5"]),
        (json!({"year": {"$gte": 2020, "$lt": 2022}}), vec!["2", "3"]),
        (json!({"year": 2020}), vec!["2"]),
        (json!({"hd": true}), vec!["1", "3", "5"]),
        (json!({"hd": {"$ne": true}}), vec!["2", "4"]),
        // Strings order lexicographically: a prefix search.
        (
            json!({"platform": {"$gte": "net", "$lt": "neu"}}),
            vec!["1", "4", "5"],
        ),
        // Keys are ANDed.
        (json!({"platform": "netflix", "hd": true}), vec!["1"]),
        // A dotted key reaches a nested property.
        (json!({"meta.rating": {"$gt": 7}}), vec!["1", "2", "4"]),
        // null is a value no indexed property holds.
        (json!({"platform": null}), vec![]),
        (json!({"platform": {"$in": [null, "hbo"]}}), vec!["2"]),
    ];
    for (filter, expected) in cases {
        assert_eq!(matching(&server, &filter), expected, "{filter}");
    }
}

#[test]
fn strings_are_indexed_and_compared_on_their_first_64_bytes() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    server.create_metadata_index("docs", "path", "string");
    let prefix = "p".repeat(64);
    // 63 ASCII bytes then a two-byte character: its index keeps the 63 bytes.
    let cut = format!("{}é-tail", "q".repeat(63));
    server.upsert(
        "docs",
        &[
            vector(
                "long-a",
                &[1.0, 0.0],
                &json!({"metadata": {"path": format!("{prefix}/a")}}),
            ),
            vector(
                "long-b",
                &[1.0, 0.0],
                &json!({"metadata": {"path": format!("{prefix}/b")}}),
            ),
            vector("cut", &[1.0, 0.0], &json!({"metadata": {"path": cut}})),
        ],
    );
    let query = |filter: Value| {
        let mut ids = server.query_ids("docs", &json!({"vector": [1.0, 0.0], "filter": filter}));
        ids.sort();
        ids
    };
    // Both long paths share their first 64 bytes: they are equal to the index.
    assert_eq!(
        query(json!({"path": format!("{prefix}/a")})),
        ["long-a", "long-b"]
    );
    assert_eq!(query(json!({"path": prefix.clone()})), ["long-a", "long-b"]);
    assert_eq!(
        query(json!({"path": {"$ne": format!("{prefix}/zzz")}})),
        ["cut"]
    );
    assert_eq!(query(json!({"path": "q".repeat(63)})), ["cut"]);
    // `indexed` metadata shows what the index holds; `all` the whole value.
    let reply = server.query(
        "docs",
        &json!({"vector": [1.0, 0.0], "filter": {"path": "q".repeat(63)}, "returnMetadata": "indexed"}),
    );
    assert_eq!(
        reply.result()["matches"][0]["metadata"],
        json!({"path": "q".repeat(63)})
    );
    let reply = server.query(
        "docs",
        &json!({"vector": [1.0, 0.0], "filter": {"path": "q".repeat(63)}, "returnMetadata": "all"}),
    );
    assert_eq!(
        reply.result()["matches"][0]["metadata"]["path"],
        format!("{}é-tail", "q".repeat(63))
    );
}

#[test]
fn a_filter_must_be_under_2048_bytes() {
    let server = films();
    // {"platform":"…"} is 15 bytes around the string.
    let under = json!({"platform": "n".repeat(2047 - 15)});
    assert_eq!(serde_json::to_vec(&under).unwrap().len(), 2047);
    assert!(
        server
            .query("films", &json!({"vector": [1.0, 0.0], "filter": under}))
            .body["success"]
            == json!(true)
    );
    let at = json!({"platform": "n".repeat(2048 - 15)});
    let reply = server.query("films", &json!({"vector": [1.0, 0.0], "filter": at}));
    let (status, code, message) = reply.refusal();
    assert_eq!((status, code), (400, 49003));
    assert!(
        message.contains("less than 2048 bytes, got 2048 bytes"),
        "{message}"
    );
}

#[test]
fn forms_vectorize_does_not_take_are_refused() {
    let server = films();
    for filter in [
        json!({"$or": [{"platform": "hbo"}, {"year": 2019}]}),
        json!({"$and": [{"platform": "hbo"}]}),
        json!({"platform": {"$regex": "net.*"}}),
        json!({"platform": {"$eq": "hbo", "$ne": "x"}}),
        json!({"year": {"$lt": 3000, "$lte": 2000}}),
        json!({"platform": ["hbo"]}),
        json!({"platform": {"$in": "hbo"}}),
        json!({"hd": {"$gt": false}}),
        json!({"meta": {"rating": 8}}),
        json!({}),
        json!("platform = hbo"),
    ] {
        let reply = server.query("films", &json!({"vector": [1.0, 0.0], "filter": filter}));
        assert_eq!(reply.refused(), (400, 49003), "{filter}");
    }
}
