//! The data directory: indexes, metadata indexes and vectors survive a restart, including
//! mutations accepted but not yet visible when the server stopped.

use std::io::Write;
use std::time::Duration;

use local_vectorize::Settings;
use serde_json::{json, Value};

use crate::support::{vector, Server, TempDir, ACCOUNT};

fn start(dir: &TempDir, delay_ms: u64) -> Server {
    Server::start(Settings {
        data_dir: Some(dir.path().to_owned()),
        visibility_delay: Duration::from_millis(delay_ms),
    })
}

/// What a client can see of the `docs` index.
fn observe(server: &Server) -> Value {
    let ids = ["early", "late", "ns", "deleted", "after-restart"];
    json!({
        "indexes": server.get(ACCOUNT).result().clone(),
        "metadataIndexes": server.get(&format!("{ACCOUNT}/docs/metadata_index/list")).result().clone(),
        "vectors": server.post_json(&format!("{ACCOUNT}/docs/get_by_ids"), &json!({"ids": ids})).result().clone(),
        "filtered": server.query_ids("docs", &json!({"vector": [1.0, 0.0, 0.0, 0.0], "topK": 10, "filter": {"kind": "a"}})),
        "inNamespace": server.query_ids("docs", &json!({"vector": [1.0, 0.0, 0.0, 0.0], "namespace": "org"})),
        "info": server.get(&format!("{ACCOUNT}/docs/info")).result().clone(),
    })
}

#[test]
fn indexes_and_vectors_survive_restarts() {
    let dir = TempDir::new("restart");
    let first = start(&dir, 0);
    first.create_index("docs", 4, "cosine");
    first.create_index("gone", 4, "cosine");
    let tagged = json!({"metadata": {"kind": "a", "n": 1}});
    first.upsert("docs", &[vector("early", &[1.0, 0.0, 0.0, 0.25], &tagged)]);
    first.create_metadata_index("docs", "kind", "string");
    first.upsert(
        "docs",
        &[
            vector("late", &[0.5, 0.5, 0.0, -1.5], &tagged),
            vector(
                "ns",
                &[0.1, 0.2, 0.3, 0.4],
                &json!({"namespace": "org", "metadata": {"kind": "b"}}),
            ),
            vector("deleted", &[0.0, 0.0, 1.0, 0.0], &json!({})),
        ],
    );
    first.post_json(
        &format!("{ACCOUNT}/docs/delete_by_ids"),
        &json!({"ids": ["deleted"]}),
    );
    first.delete(&format!("{ACCOUNT}/gone"));
    let seen = observe(&first);
    // Vectors written before the metadata index stay out of it across restarts.
    assert_eq!(seen["filtered"], json!(["late"]));
    assert_eq!(seen["info"]["vectorCount"], 3);
    first.stop();

    let second = start(&dir, 0);
    assert_eq!(observe(&second), seen);
    let mutation = second.upsert(
        "docs",
        &[vector("after-restart", &[0.0, 1.0, 0.0, 0.0], &tagged)],
    );
    let seen = observe(&second);
    assert_eq!(seen["filtered"], json!(["late", "after-restart"]));
    second.stop();

    // The third start reads the snapshot the second wrote, then the second's log.
    let third = start(&dir, 0);
    assert_eq!(observe(&third), seen);
    assert_eq!(seen["info"]["processedUpToMutation"], mutation.as_str());
}

#[test]
fn a_mutation_accepted_but_not_yet_visible_survives_a_stop() {
    let dir = TempDir::new("pending");
    let first = start(&dir, 60_000);
    first.create_index("docs", 2, "cosine");
    let mutation = first.upsert("docs", &[vector("v", &[1.0, 0.0], &json!({}))]);
    assert!(first
        .query_ids("docs", &json!({"vector": [1.0, 0.0]}))
        .is_empty());
    assert_eq!(first.stats()["indexes"]["docs"]["pendingMutations"], 1);
    first.stop();

    // Pending mutations are applied at once after a restart, whatever the delay.
    let second = start(&dir, 60_000);
    assert_eq!(second.stats()["indexes"]["docs"]["pendingMutations"], 0);
    assert_eq!(
        second.query_ids("docs", &json!({"vector": [1.0, 0.0]})),
        ["v"]
    );
    let info = second.get(&format!("{ACCOUNT}/docs/info")).result().clone();
    assert_eq!(info["processedUpToMutation"], mutation.as_str());
}

#[test]
fn a_torn_last_log_line_loses_only_itself() {
    let dir = TempDir::new("torn");
    let first = start(&dir, 0);
    first.create_index("docs", 2, "cosine");
    first.upsert("docs", &[vector("kept", &[1.0, 0.0], &json!({}))]);
    first.stop();
    let log = dir.path().join("indexes/docs/log.ndjson");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    file.write_all(b"{\"seq\":2,\"id\":\"torn\",\"kind\":\"ups")
        .unwrap();
    drop(file);

    let second = start(&dir, 0);
    assert_eq!(
        second.query_ids("docs", &json!({"vector": [1.0, 0.0]})),
        ["kept"]
    );
    second.upsert("docs", &[vector("new", &[0.0, 1.0], &json!({}))]);
    second.stop();
    let third = start(&dir, 0);
    let mut ids = third.query_ids("docs", &json!({"vector": [1.0, 0.0]}));
    ids.sort();
    assert_eq!(ids, ["kept", "new"]);
}

#[test]
fn without_a_data_directory_nothing_is_kept() {
    let first = Server::in_memory();
    first.create_index("docs", 2, "cosine");
    first.stop();
    let second = Server::in_memory();
    assert_eq!(second.get(ACCOUNT).result(), &json!([]));
}
