//! CRUD of the embedding tables: writes and the embeddings they start, tenant scoping, ids and
//! cursors, and what a write does to the stored vector and the index.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};
use worker_kit::index_sync::RecordKey;

use super::fakes::FakeIndexes;
use super::fixtures::{add_claim, app, as_ann, as_user, get_as_ann, send};
use crate::ports::App;

#[wasm_bindgen_test]
async fn writes_take_writable_fields_and_embed_on_insert_and_watched_changes() {
    let app = app();
    let create = as_user(
        "meg",
        HttpRequest::new(Method::Post, "/api/v1/claims").with_json(
            &json!({"id": "clm_new", "content": "The bridge reopened", "story_id": "s9"}),
        ),
    );
    let response = send(&app, create).await;
    assert_eq!(response.status, 201, "{}", response.body);
    assert_eq!(response.body["record"]["organization_id"], "org_a");
    assert_eq!(response.body["job"]["status"], "queued");
    assert_eq!(app.queue.sent.borrow().len(), 1, "embedded on insert");
    assert!(app.queue.bulk.borrow().is_empty(), "a write is live work");
    let huge_story = json!({"content": "x", "story_id": "s".repeat(5_000)});
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/claims")).with_json(&huge_story),
    )
    .await;
    assert_eq!(response.status, 400, "{}", response.body);
    let message = response.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("metadata field `story_id`"), "{message}");
    assert_eq!(app.queue.sent.borrow().len(), 1, "nothing enqueued for it");

    for (body, needle) in [
        (
            json!({"content": "x", "organization_id": "org_b"}),
            "organization_id",
        ),
        (json!({"content": "x", "embedding": "[]"}), "embedding"),
    ] {
        let response = send(
            &app,
            as_ann(HttpRequest::new(Method::Post, "/api/v1/claims")).with_json(&body),
        )
        .await;
        assert_eq!(response.status, 400);
        assert!(response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(needle));
    }
    let again = as_ann(
        HttpRequest::new(Method::Post, "/api/v1/claims")
            .with_json(&json!({"id": "clm_new", "content": "x"})),
    );
    assert_eq!(send(&app, again).await.status, 409);

    let patch = |body: Value| {
        as_ann(HttpRequest::new(Method::Patch, "/api/v1/claims/clm_new")).with_json(&body)
    };
    let response = send(&app, patch(json!({"story_id": "s10"}))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(
        response.body["job"].is_null(),
        "a field that is not watched: no job"
    );
    let response = send(&app, patch(json!({"content": "The bridge reopened"}))).await;
    assert!(response.body["job"].is_null(), "the same text: no job");
    let response = send(&app, patch(json!({"content": "The bridge closed again"}))).await;
    assert_eq!(response.body["job"]["status"], "queued");
    assert_eq!(app.queue.sent.borrow().len(), 2);
}

#[wasm_bindgen_test]
async fn reads_and_deletes_see_only_the_callers_organization() {
    let app = app();
    add_claim(&app, "org_a", "clm_new", "The bridge closed again");
    let get = get_as_ann(&app, "/api/v1/claims/clm_new").await;
    assert_eq!(get.body["content"], "The bridge closed again");
    let list = get_as_ann(&app, "/api/v1/claims?limit=1").await;
    assert_eq!(list.body["records"].as_array().unwrap().len(), 1);
    let cursor = list.body["nextCursor"].as_str().unwrap();
    assert_eq!(
        cursor,
        list.body["records"][0]["id"].as_str().unwrap(),
        "a page's cursor is its last id"
    );
    let next = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/claims?cursor={cursor}"),
        )),
    )
    .await;
    assert_eq!(next.body["records"][0]["id"], "clm_new");
    assert!(
        !next.body.to_string().contains("clm_b1"),
        "another organization's records are never listed"
    );
    let final_page = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/claims?limit=1&cursor={cursor}"),
        )),
    )
    .await;
    assert_eq!(final_page.body["records"][0]["id"], "clm_new");
    assert!(
        final_page.body["nextCursor"].is_null(),
        "a full page that takes the last record offers no next page: {}",
        final_page.body
    );

    // Another tenant's record is a 404 on every verb.
    for method in [Method::Get, Method::Patch, Method::Delete] {
        let request = as_ann(HttpRequest::new(method, "/api/v1/claims/clm_b1"))
            .with_json(&json!({"content": "x"}));
        assert_eq!(send(&app, request).await.status, 404, "{method:?}");
    }
    let delete = |user: &str| {
        as_user(
            user,
            HttpRequest::new(Method::Delete, "/api/v1/claims/clm_new"),
        )
    };
    assert_eq!(
        send(&app, delete("meg")).await.status,
        403,
        "members may not delete by default"
    );
    assert_eq!(send(&app, delete("ann")).await.status, 204);
    assert_eq!(send(&app, delete("ann")).await.status, 404);
    let viewer = as_user(
        "vic",
        HttpRequest::new(Method::Post, "/api/v1/claims").with_json(&json!({"content": "x"})),
    );
    assert_eq!(
        send(&app, viewer).await.status,
        403,
        "a viewer may not create"
    );
}

/// `claims`, with `story_id` as metadata, kept in Vectorize.
fn vectorize_claims() -> &'static shared::Config {
    Box::leak(Box::new(
        shared::Config::parse(
            r#"
[[table]]
name = "claims"
columns = ["id", "organization_id", "story_id", "content", "embedding"]
writable = ["story_id", "content"]
[table.embeddings]
fields = ["content"]
metadata = ["story_id"]
vector_index = { backend = "vectorize", binding = "VECTORIZE_768" }
"#,
        )
        .unwrap(),
    ))
}

#[wasm_bindgen_test]
async fn deleting_a_record_of_a_vectorize_table_deletes_its_vector_from_the_index() {
    let config = vectorize_claims();
    let app = App { config, ..app() };
    let delete = |path: &str| as_ann(HttpRequest::new(Method::Delete, path));
    assert_eq!(send(&app, delete("/api/v1/claims/clm_1")).await.status, 204);
    let key = RecordKey {
        organization_id: "org_a".into(),
        table: "claims".into(),
        record_id: "clm_1".into(),
    };
    assert_eq!(
        *app.indexes.synced.borrow(),
        vec![vec![key.clone()]],
        "after D1's tombstone, the index is brought in line with it"
    );
    // A DELETE again is a 404, and still clears the index (a retry after a 503 needs that).
    assert_eq!(send(&app, delete("/api/v1/claims/clm_1")).await.status, 404);
    assert_eq!(app.indexes.synced.borrow().len(), 2);

    let down = App {
        config,
        indexes: FakeIndexes {
            down: true,
            ..FakeIndexes::default()
        },
        ..super::fixtures::app()
    };
    let reply = send(&down, delete("/api/v1/claims/clm_2")).await;
    assert_eq!(
        reply.status, 503,
        "the caller learns the index still has it"
    );
}

#[wasm_bindgen_test]
async fn a_metadata_edit_reaches_the_stored_vector_without_an_embedding() {
    let config = vectorize_claims();
    let mut app = App { config, ..app() };
    app.store.vectors.push((
        "org_a".into(),
        "claims".into(),
        "clm_1".into(),
        "hash".into(),
    ));
    let patch = |body: Value| {
        as_ann(HttpRequest::new(Method::Patch, "/api/v1/claims/clm_1")).with_json(&body)
    };
    let reply = send(&app, patch(json!({"story_id": "finance"}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body["job"].is_null(),
        "no new embedding: {}",
        reply.body
    );
    let key = RecordKey {
        organization_id: "org_a".into(),
        table: "claims".into(),
        record_id: "clm_1".into(),
    };
    assert_eq!(
        *app.store.refreshed.borrow(),
        vec![(
            key.organization_id.clone(),
            key.table.clone(),
            key.record_id.clone()
        )]
    );
    assert_eq!(
        *app.indexes.synced.borrow(),
        vec![vec![key]],
        "the index is brought in line with D1's new metadata"
    );
    // A change to the text alone leaves the metadata as it is.
    send(
        &app,
        patch(json!({"content": "Police arrested four suspects"})),
    )
    .await;
    assert_eq!(app.store.refreshed.borrow().len(), 1);
}

#[wasm_bindgen_test]
async fn another_tenants_record_id_is_as_free_as_one_nobody_used() {
    let app = app();
    let create = |id: &str| {
        as_user(
            "zoe",
            HttpRequest::new(Method::Post, "/api/v1/claims")
                .with_json(&json!({"id": id, "content": "Zoe's own claim"})),
        )
    };
    let read = |id: &str| {
        as_user(
            "zoe",
            HttpRequest::new(Method::Get, &format!("/api/v1/claims/{id}")),
        )
    };
    // Ann's clm_1 and an id nobody used read the same to Zoe, and both are hers to take.
    let theirs = send(&app, read("clm_1")).await;
    let nobodys = send(&app, read("clm_free")).await;
    assert_eq!((theirs.status, nobodys.status), (404, 404));
    assert_eq!(
        theirs.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("clm_1", "ID"),
        nobodys.body["error"]["message"]
            .as_str()
            .unwrap()
            .replace("clm_free", "ID")
    );
    assert_eq!(
        send(&app, create("clm_1")).await.status,
        201,
        "no 409 for another tenant's id"
    );
    assert_eq!(
        send(&app, create("clm_1")).await.status,
        409,
        "her own id is taken now"
    );
    let ann = get_as_ann(&app, "/api/v1/claims/clm_1").await;
    assert_eq!(
        ann.body["content"], "Police arrested three suspects",
        "Ann's record is untouched"
    );
}

#[wasm_bindgen_test]
async fn a_patch_decides_on_what_it_really_replaced() {
    // Another PATCH changed clm_1's text to W after this one could have read it as V; this one
    // sets V again. A read apart from the update sees "V, unchanged" and makes no job, leaving
    // W's vector on a record whose text is V.
    let app = app();
    let read_before_the_other_patch = {
        let mut record = app.store.records.borrow()[0].1.clone();
        record.insert("content".into(), json!("V"));
        record
    };
    app.store.records.borrow_mut()[0]
        .1
        .insert("content".into(), json!("W"));
    *app.store.stale_read.borrow_mut() = Some(read_before_the_other_patch);
    let reply = send(
        &app,
        as_ann(HttpRequest::new(Method::Patch, "/api/v1/claims/clm_1"))
            .with_json(&json!({"content": "V"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(
        reply.body["job"]["jobId"].is_string(),
        "W was replaced by V: a job, {}",
        reply.body
    );
}

#[wasm_bindgen_test]
async fn a_percent_encoded_id_is_the_id_and_any_cursor_is_a_place_to_start() {
    let app = app();
    add_claim(&app, "org_a", "clm:7", "An id with a colon");
    let get = get_as_ann(&app, "/api/v1/claims/clm%3A7").await;
    assert_eq!(
        (get.status, &get.body["id"]),
        (200, &json!("clm:7")),
        "{}",
        get.body
    );
    // Any string is a cursor for records: the page starts after it.
    for cursor in ["clm%3A6", "%F0%9F%98%80", ""] {
        let list = send(
            &app,
            as_ann(HttpRequest::new(
                Method::Get,
                &format!("/api/v1/claims?cursor={cursor}"),
            )),
        )
        .await;
        assert_eq!(list.status, 200, "{cursor}: {}", list.body);
    }
    let after = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            "/api/v1/claims?cursor=clm%3A7",
        )),
    )
    .await;
    assert!(
        after.body["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"].as_str().unwrap() > "clm:7"),
        "{}",
        after.body
    );
    // A job cursor has a shape; anything of that shape is a place, anything else a 400.
    for (cursor, status) in [
        ("0%3Aabc", 200),
        ("17%3Aabc-def", 200),
        ("abc", 400),
        ("", 400),
    ] {
        let jobs = send(
            &app,
            as_ann(HttpRequest::new(
                Method::Get,
                &format!("/api/v1/embeddings/jobs?cursor={cursor}"),
            )),
        )
        .await;
        assert_eq!(jobs.status, status, "{cursor}: {}", jobs.body);
    }
}
