//! The bodies of inserts and upserts: raw NDJSON, and multipart with a `vectors` file as
//! wrangler sends it; and what `unparsable-behavior` does with a line that does not parse.

use serde_json::json;

use crate::support::{mutation_id, Server, ACCOUNT};

const NDJSON: &str = "{\"id\":\"a\",\"values\":[1,0]}\r\n{\"id\":\"b\",\"values\":[0,1],\"metadata\":{\"k\":\"v\"}}\n\n";

fn ids_in(server: &Server) -> Vec<String> {
    let mut ids = server.query_ids("docs", &json!({"vector": [1.0, 1.0], "topK": 10}));
    ids.sort();
    ids
}

#[test]
fn raw_ndjson() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let reply = server.post_raw(
        &format!("{ACCOUNT}/docs/upsert"),
        "application/x-ndjson",
        NDJSON.as_bytes(),
        &[],
    );
    mutation_id(&reply);
    assert_eq!(ids_in(&server), ["a", "b"]);
}

#[test]
fn multipart_with_a_vectors_file() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let boundary = "----formdata-undici-032165417519";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"vectors\"; filename=\"vectors.ndjson\"\r\n\
         Content-Type: application/x-ndjson\r\n\r\n{NDJSON}\r\n--{boundary}--\r\n"
    );
    let content_type = format!("multipart/form-data; boundary={boundary}");
    let reply = server.post_raw(
        &format!("{ACCOUNT}/docs/insert"),
        &content_type,
        form.as_bytes(),
        &[],
    );
    mutation_id(&reply);
    assert_eq!(ids_in(&server), ["a", "b"]);

    let other = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n{NDJSON}\r\n--{boundary}--\r\n"
    );
    let reply = server.post_raw(
        &format!("{ACCOUNT}/docs/insert"),
        &content_type,
        other.as_bytes(),
        &[],
    );
    assert_eq!(reply.refused(), (400, 40023));
}

#[test]
fn an_unparsable_line_is_refused_or_discarded_as_asked() {
    let server = Server::in_memory();
    server.create_index("docs", 2, "cosine");
    let body = format!("{NDJSON}{{\"id\": \"c\", \"values\": [1, \n");
    let upsert = |query: &str| {
        server.post_raw(
            &format!("{ACCOUNT}/docs/upsert{query}"),
            "application/x-ndjson",
            body.as_bytes(),
            &[],
        )
    };
    for query in ["", "?unparsable-behavior=error"] {
        let (status, code, message) = upsert(query).refusal();
        assert_eq!((status, code), (400, 40023));
        assert!(
            message.starts_with("failed to parse upsert vectors request in json format: line 4"),
            "{message}"
        );
    }
    assert!(ids_in(&server).is_empty());
    mutation_id(&upsert("?unparsable-behavior=discard"));
    assert_eq!(ids_in(&server), ["a", "b"]);
    assert_eq!(upsert("?unparsable-behavior=skip").refused(), (400, 40026));
}
