//! Writes are mutations: accepted at once, visible after the configured delay, applied in the
//! order they were accepted; `info` and `/stats` tell how far an index has got.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{vector, Server, ACCOUNT};

const DELAY_MS: u64 = 1000;

#[test]
fn a_write_is_invisible_until_the_delay_has_passed() {
    let server = Server::with_delay(DELAY_MS);
    server.create_index("docs", 2, "cosine");
    let accepted = Instant::now();
    let mutation = server.upsert("docs", &[vector("v", &[1.0, 0.0], &json!({}))]);
    let query = json!({"vector": [1.0, 0.0]});
    let info = || server.get(&format!("{ACCOUNT}/docs/info")).result().clone();
    // Right after, nothing shows: not to queries, getByIds or info.
    assert!(server.query_ids("docs", &query).is_empty());
    let got = server.post_json(
        &format!("{ACCOUNT}/docs/get_by_ids"),
        &json!({"ids": ["v"]}),
    );
    assert_eq!(got.result(), &json!([]));
    let before = info();
    assert_eq!(before["vectorCount"], 0);
    assert_eq!(before["processedUpToMutation"], json!(null));
    assert_eq!(before["processedUpToDatetime"], json!(null));
    assert_eq!(before["dimensions"], 2);
    let stats = &server.stats()["indexes"]["docs"];
    assert_eq!(stats["pendingMutations"], 1);
    assert_eq!(stats["lastMutation"], mutation.as_str());
    assert!(
        accepted.elapsed() < Duration::from_millis(DELAY_MS),
        "the checks above took too long to mean anything"
    );

    server.settle();
    assert!(accepted.elapsed() >= Duration::from_millis(DELAY_MS));
    assert_eq!(server.query_ids("docs", &query), ["v"]);
    let after = info();
    assert_eq!(after["vectorCount"], 1);
    assert_eq!(after["processedUpToMutation"], mutation.as_str());
    assert!(after["processedUpToDatetime"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        server.stats()["indexes"]["docs"]["processedUpToMutation"],
        mutation.as_str()
    );
}

#[test]
fn mutations_apply_in_the_order_they_were_accepted() {
    let server = Server::with_delay(DELAY_MS);
    server.create_index("docs", 2, "cosine");
    let accepted = Instant::now();
    server.create_metadata_index("docs", "kind", "string");
    let tagged = json!({"metadata": {"kind": "x"}});
    server.upsert(
        "docs",
        &[
            vector("a", &[1.0, 0.0], &tagged),
            vector("b", &[0.0, 1.0], &tagged),
        ],
    );
    server.post_json(
        &format!("{ACCOUNT}/docs/delete_by_ids"),
        &json!({"ids": ["a"]}),
    );
    server.upsert("docs", &[vector("a", &[0.5, 0.5], &tagged)]);
    let last = server.upsert("docs", &[vector("c", &[1.0, 1.0], &json!({}))]);
    let pending = server.stats()["indexes"]["docs"]["pendingMutations"].clone();
    if accepted.elapsed() < Duration::from_millis(DELAY_MS) {
        assert_eq!(pending, 5);
    }
    server.settle();
    let mut ids = server.query_ids(
        "docs",
        &json!({"vector": [1.0, 0.0], "topK": 10, "filter": {"kind": "x"}}),
    );
    ids.sort();
    // The metadata index came first, so every tagged vector is in it; `a` was deleted then
    // written again.
    assert_eq!(ids, ["a", "b"]);
    let got = server.post_json(
        &format!("{ACCOUNT}/docs/get_by_ids"),
        &json!({"ids": ["a"]}),
    );
    assert_eq!(got.result()[0]["values"], json!([0.5, 0.5]));
    assert_eq!(
        server.get(&format!("{ACCOUNT}/docs/info")).result()["processedUpToMutation"],
        last.as_str()
    );
}

#[test]
fn without_a_delay_a_write_is_visible_as_soon_as_it_is_accepted() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let mutation = server.upsert("docs", &[vector("v", &[1.0, 0.0], &json!({}))]);
    assert_eq!(server.stats()["indexes"]["docs"]["pendingMutations"], 0);
    assert_eq!(
        server.get(&format!("{ACCOUNT}/docs/info")).result()["processedUpToMutation"],
        mutation.as_str()
    );
}
