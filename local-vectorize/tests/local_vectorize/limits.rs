//! Vectorize's limits, each refused with its error rather than cut silently.

use serde_json::{json, Value};

use crate::support::{vector, Server, ACCOUNT};

fn index_of(count: usize) -> Server {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let vectors: Vec<Value> = (0..count)
        .map(|i| {
            vector(
                &format!("v{i}"),
                &[1.0, f32::from(u16::try_from(i).unwrap()) / 1000.0],
                &json!({}),
            )
        })
        .collect();
    server.upsert("docs", &vectors);
    server
}

#[test]
fn top_k_is_at_most_100_and_50_with_values_or_all_metadata() {
    let server = index_of(120);
    let count = |body: Value| {
        server.query("docs", &body).result()["count"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(json!({"vector": [1.0, 0.0]})), 5);
    assert_eq!(count(json!({"vector": [1.0, 0.0], "topK": 100})), 100);
    assert_eq!(
        count(json!({"vector": [1.0, 0.0], "topK": 100, "returnMetadata": "indexed"})),
        100
    );
    let (status, code, message) = server
        .query("docs", &json!({"vector": [1.0, 0.0], "topK": 101}))
        .refusal();
    assert_eq!(
        (status, code, message.as_str()),
        (400, 40025, "max top K is 100, but got 101")
    );
    for heavy in [
        json!({"returnValues": true}),
        json!({"returnMetadata": "all"}),
    ] {
        let mut body = heavy.clone();
        body["vector"] = json!([1.0, 0.0]);
        body["topK"] = json!(50);
        assert_eq!(count(body.clone()), 50, "{heavy}");
        body["topK"] = json!(51);
        let (status, code, message) = server.query("docs", &body).refusal();
        assert_eq!((status, code), (400, 40025), "{heavy}");
        assert_eq!(
            message,
            "with returnValues=true or returnMetadata=all, max top K is 50, but got 51; for a top K up to 100, retry with returnValues=false and returnMetadata=indexed"
        );
    }
    assert_eq!(
        server
            .query("docs", &json!({"vector": [1.0, 0.0], "topK": 0}))
            .refused(),
        (400, 49005)
    );
}

#[test]
fn return_metadata_takes_the_three_levels_and_true_but_not_false() {
    let server = index_of(3);
    for ok in [json!("none"), json!("indexed"), json!("all"), json!(true)] {
        assert_eq!(
            server
                .query("docs", &json!({"vector": [1.0, 0.0], "returnMetadata": ok}))
                .status,
            200
        );
    }
    let (status, code, message) = server
        .query(
            "docs",
            &json!({"vector": [1.0, 0.0], "returnMetadata": false}),
        )
        .refusal();
    assert_eq!((status, code), (400, 40026));
    assert!(
        message.starts_with(
            "Failed to parse the request body as JSON: returnMetadata: expected value"
        ),
        "{message}"
    );
}

#[test]
fn ids_are_at_most_64_bytes() {
    let server = index_of(0);
    server.upsert("docs", &[vector(&"i".repeat(64), &[1.0, 0.0], &json!({}))]);
    let reply = server.write_reply(
        "docs",
        "upsert",
        &[vector(&"i".repeat(65), &[1.0, 0.0], &json!({}))],
        &[],
    );
    let (status, code, message) = reply.refusal();
    assert_eq!((status, code), (400, 40008));
    assert_eq!(message, "id too long; max is 64 bytes, got 65 bytes");
    assert_eq!(
        server
            .write_reply(
                "docs",
                "insert",
                &[vector("", &[1.0, 0.0], &json!({}))],
                &[]
            )
            .refused(),
        (400, 40008)
    );
}

#[test]
fn a_vector_of_another_dimension_is_refused() {
    let server = index_of(0);
    let reply = server.write_reply(
        "docs",
        "upsert",
        &[vector("v", &[1.0, 0.0, 0.0], &json!({}))],
        &[],
    );
    let (status, code, message) = reply.refusal();
    assert_eq!((status, code), (400, 40012));
    assert_eq!(
        message,
        "invalid vector for id=\"v\", expected 2 dimensions, and got 3 dimensions"
    );
    let (status, code, message) = server.query("docs", &json!({"vector": [1.0]})).refusal();
    assert_eq!((status, code), (400, 40006));
    assert_eq!(
        message,
        "invalid query vector, expected 2 dimensions, and got 1 dimensions"
    );
    // Nothing of a refused write lands.
    let mixed = [
        vector("ok", &[1.0, 0.0], &json!({})),
        vector("bad", &[1.0], &json!({})),
    ];
    assert_eq!(
        server.write_reply("docs", "upsert", &mixed, &[]).refused(),
        (400, 40012)
    );
    assert_eq!(
        server.get(&format!("{ACCOUNT}/docs/info")).result()["vectorCount"],
        0
    );
}

#[test]
fn a_worker_writes_at_most_1000_vectors_at_once_and_the_http_api_5000() {
    let server = index_of(0);
    let batch = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| vector(&format!("v{i}"), &[1.0, 0.5], &json!({})))
            .collect()
    };
    let worker = [("x-local-vectorize-caller", "worker")];
    assert_eq!(
        server
            .write_reply("docs", "upsert", &batch(1000), &worker)
            .status,
        200
    );
    let (status, code, message) = server
        .write_reply("docs", "upsert", &batch(1001), &worker)
        .refusal();
    assert_eq!((status, code), (413, 49004));
    assert_eq!(
        message,
        "too many vectors in one upsert; max is 1000 from a Worker binding, got 1001"
    );
    assert_eq!(
        server
            .write_reply("docs", "insert", &batch(1001), &worker)
            .refused(),
        (413, 49004)
    );
    assert_eq!(
        server
            .write_reply("docs", "upsert", &batch(5000), &[])
            .status,
        200
    );
    assert_eq!(
        server
            .write_reply("docs", "upsert", &batch(5001), &[])
            .refused(),
        (413, 49004)
    );
}

#[test]
fn get_by_ids_takes_at_most_20_ids_and_delete_by_ids_100() {
    let server = index_of(0);
    let ids = |n: usize| json!({"ids": (0..n).map(|i| format!("v{i}")).collect::<Vec<_>>()});
    let get = |n| server.post_json(&format!("{ACCOUNT}/docs/get_by_ids"), &ids(n));
    let delete = |n| server.post_json(&format!("{ACCOUNT}/docs/delete_by_ids"), &ids(n));
    assert_eq!(get(20).status, 200);
    let (status, code, message) = get(21).refusal();
    assert_eq!(
        (status, code, message.as_str()),
        (
            400,
            40007,
            "too many ids in payload; max id count is 20, got 21"
        )
    );
    assert_eq!(delete(100).status, 200);
    assert_eq!(
        delete(101).refusal().2,
        "too many ids in payload; max id count is 100, got 101"
    );
}

#[test]
fn metadata_is_at_most_10_kib() {
    let server = index_of(0);
    // {"t":"…"} is 8 bytes around the string.
    let at = json!({"metadata": {"t": "x".repeat(10 * 1024 - 8)}});
    server.upsert("docs", &[vector("at", &[1.0, 0.0], &at)]);
    let over = json!({"metadata": {"t": "x".repeat(10 * 1024 - 7)}});
    let reply = server.write_reply("docs", "upsert", &[vector("over", &[1.0, 0.0], &over)], &[]);
    assert_eq!(reply.refused(), (400, 49002));
    let dotted = json!({"metadata": {"a.b": 1}});
    assert_eq!(
        server
            .write_reply("docs", "upsert", &[vector("d", &[1.0, 0.0], &dotted)], &[])
            .refused(),
        (400, 49002)
    );
}
