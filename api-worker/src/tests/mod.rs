//! The gateway's request handling, run in wasm against in-memory fakes of its ports.

mod fakes;
mod health;
mod status;

use serde_json::{json, Value};
use shared::api_key;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use crate::ports::App;
use fakes::{app, as_ann, as_user, claim, cookie, send, FakeIndexes, FakeSearch, Fakes, NOW};
use worker_kit::index_sync::RecordKey;

#[wasm_bindgen_test]
async fn enqueue_writes_the_job_then_sends_the_message() {
    let app = app();
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(
        &json!({"content": "Three suspects were arrested", "table": "claims", "id": "clm_1"}),
    );
    let response = send(&app, request).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response
            .body
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        vec!["id", "jobId", "model", "queued", "table"],
        "the reference page's fields, no more"
    );
    assert_eq!(response.body["model"], "@cf/baai/bge-base-en-v1.5");

    let sent = app.queue.sent.borrow();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].job_id.to_string(), response.body["jobId"]);
    assert_eq!(sent[0].organization_id, "org_a");
    assert_eq!(
        sent[0].record_hash,
        Some(shared::message::content_hash(
            &sent[0].model,
            "Police arrested three suspects"
        )),
        "the record's current text, not the content, decides staleness"
    );
    let jobs = app.store.jobs.borrow();
    assert_eq!(
        (jobs[0].status.as_str(), jobs[0].organization_id.as_str()),
        ("queued", "org_a")
    );
}

#[wasm_bindgen_test]
async fn a_failed_send_marks_the_job_failed_and_answers_503() {
    let mut app = app();
    app.queue.down = true;
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
        .with_json(&json!({"content": "hello"}));
    let response = send(&app, request).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["error"]["code"], "unavailable");
    let jobs = app.store.jobs.borrow();
    assert_eq!(jobs.len(), 1, "the job row is kept, with its failure");
    assert_eq!(jobs[0].status, "failed");
    assert!(jobs[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("queue down"));
}

#[wasm_bindgen_test]
async fn credentials_are_checked_before_anything_else() {
    let app = app();
    // Ann's live session token with the signature of another token: only the signature check
    // can refuse it.
    let forged = format!(
        "better-auth.session_token=tok_ann.{}",
        cookie("tok_dan").rsplit_once('.').unwrap().1
    );
    let cases = [
        (None, None, 401),
        (Some(forged), None, 401),
        (Some(cookie("tok_nobody")), None, 401),
        (Some(cookie("tok_bob")), None, 401),
        (Some(cookie("tok_cid")), None, 403),
        (Some(cookie("tok_dan")), None, 403),
        (None, Some("Bearer emb_short".to_owned()), 401),
        (
            None,
            Some(format!(
                "Bearer {}",
                api_key::generate(Uuid::nil(), Uuid::nil())
            )),
            401,
        ),
    ];
    for (cookie, authorization, status) in cases {
        let mut request = HttpRequest::new(Method::Post, "/api/v1/embeddings")
            .with_json(&json!({"content": "x"}));
        if let Some(cookie) = &cookie {
            request = request.with_header("cookie", cookie);
        }
        if let Some(authorization) = &authorization {
            request = request.with_header("authorization", authorization);
        }
        let response = send(&app, request).await;
        assert_eq!(
            response.status, status,
            "{cookie:?} {authorization:?}: {}",
            response.body
        );
    }
    assert!(
        app.queue.sent.borrow().is_empty(),
        "nothing is enqueued before authentication"
    );
    assert!(app.store.jobs.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn bad_requests_get_a_clear_4xx() {
    let app = app();
    let cases = [
        (
            json!({"content": "x", "table": "claims", "id": "clm_404"}),
            404,
            "not_found",
        ),
        (
            json!({"content": "x", "table": "claims", "id": "clm_b1"}),
            404,
            "not_found",
        ),
        (
            json!({"content": "x", "table": "stories", "id": "s1"}),
            404,
            "not_found",
        ),
        (
            json!({"content": "x", "table": "claims"}),
            400,
            "invalid_request",
        ),
        (
            json!({"content": "x", "id": "clm_1"}),
            400,
            "invalid_request",
        ),
        (
            json!({"content": "x", "model": "@cf/meta/llama"}),
            400,
            "unknown_model",
        ),
        (
            json!({"content": "x", "table": "claims", "id": "clm_1", "model": "@cf/baai/bge-small-en-v1.5"}),
            400,
            "invalid_request",
        ),
        (
            json!({"content": "x", "table": "claims", "id": "bad id'"}),
            400,
            "invalid_request",
        ),
        (json!({"content": 7}), 400, "invalid_request"),
        (
            json!({"content": "x", "colour": "red"}),
            400,
            "invalid_request",
        ),
        (json!({}), 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let response = send(
            &app,
            as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(&body),
        )
        .await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let mut request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"));
    request.body = b"{not json".to_vec();
    let response = send(&app, request).await;
    assert_eq!(
        (response.status, response.body["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    assert!(app.queue.sent.borrow().is_empty());
}

async fn enqueue_plain(app: &App<Fakes>, content: &str) -> String {
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
        .with_json(&json!({"content": content}));
    send(app, request).await.body["jobId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[wasm_bindgen_test]
async fn jobs_are_scoped_listed_by_status_and_paged() {
    let mut app = app();
    let mut ids = Vec::new();
    for i in 0..3 {
        app.now_ms = NOW + i;
        ids.push(enqueue_plain(&app, &format!("job {i}")).await);
    }
    app.store.jobs.borrow_mut()[0].status = "dead".into();
    let get = |path: &str| as_ann(HttpRequest::new(Method::Get, path));

    let response = send(&app, get(&format!("/api/v1/embeddings/jobs/{}", ids[1]))).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["status"], "queued");

    let page = send(&app, get("/api/v1/embeddings/jobs?limit=2")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let first: Vec<&str> = page.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["jobId"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        vec![ids[2].as_str(), ids[1].as_str()],
        "newest first"
    );
    let cursor = page.body["nextCursor"].as_str().unwrap();
    let rest = send(
        &app,
        get(&format!("/api/v1/embeddings/jobs?limit=2&cursor={cursor}")),
    )
    .await;
    assert_eq!(rest.body["jobs"][0]["jobId"], ids[0].as_str());
    assert!(rest.body["nextCursor"].is_null());
    let whole = send(&app, get("/api/v1/embeddings/jobs?limit=3")).await;
    assert_eq!(whole.body["jobs"].as_array().unwrap().len(), 3);
    assert!(
        whole.body["nextCursor"].is_null(),
        "a page that takes the last job offers no next page: {}",
        whole.body
    );

    let dead = send(&app, get("/api/v1/embeddings/jobs?status=dead")).await;
    assert_eq!(dead.body["jobs"].as_array().unwrap().len(), 1);
    for bad in ["status=gone", "limit=0", "cursor=%%%", "colour=red"] {
        let response = send(&app, get(&format!("/api/v1/embeddings/jobs?{bad}"))).await;
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
    }

    app.store.jobs.borrow_mut()[1].organization_id = "org_b".into();
    let response = send(&app, get(&format!("/api/v1/embeddings/jobs/{}", ids[1]))).await;
    assert_eq!(
        response.status, 404,
        "another tenant's job is not found, not forbidden"
    );
    let listed = send(&app, get("/api/v1/embeddings/jobs")).await;
    assert_eq!(listed.body["jobs"].as_array().unwrap().len(), 2);
    let response = send(&app, get("/api/v1/embeddings/jobs/not-a-uuid")).await;
    assert_eq!(response.status, 400);
}

#[wasm_bindgen_test]
async fn only_a_dead_or_failed_job_is_replayed_under_its_own_id() {
    let app = app();
    let job_id = enqueue_plain(&app, "replay me").await;
    let retry = || {
        as_ann(HttpRequest::new(
            Method::Post,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        ))
    };
    let response = send(&app, retry()).await;
    assert_eq!(
        response.status, 409,
        "a queued job is not replayed: {}",
        response.body
    );
    assert_eq!(response.body["error"]["code"], "conflict");

    app.store.jobs.borrow_mut()[0].status = "dead".into();
    let response = send(&app, retry()).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(response.body["jobId"], job_id.as_str());
    assert_eq!(app.store.jobs.borrow()[0].status, "queued");
    let sent = app.queue.sent.borrow().clone();
    assert_eq!(
        (sent.len(), sent[1].job_id.to_string(), sent[1].attempt),
        (2, job_id.clone(), 0)
    );

    app.store.jobs.borrow_mut()[0].organization_id = "org_b".into();
    assert_eq!(
        send(&app, retry()).await.status,
        404,
        "another tenant's job"
    );
}

#[wasm_bindgen_test]
async fn tables_unknown_routes_and_methods() {
    let app = app();
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/embeddings/tables")),
    )
    .await;
    assert_eq!(
        response.body,
        json!({"tables": [
            {"name": "claims", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"},
            {"name": "notes", "embeddingColumn": "embedding", "model": "@cf/baai/bge-small-en-v1.5"},
            {"name": "evidence", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"}
        ]})
    );
    for path in [
        "/api/v1/nothing",
        "/api/v1/embeddings/nothing",
        "/api/v2/claims",
        "/api/v1/claims/a/b",
    ] {
        let response = send(&app, HttpRequest::new(Method::Get, path)).await;
        assert_eq!(response.status, 404, "{path}");
    }
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Delete,
            "/api/v1/embeddings/tables",
        )),
    )
    .await;
    assert_eq!(response.status, 405);
    // RFC 9110: a 405 says which methods the route takes.
    assert_eq!(
        response.headers,
        vec![("allow".to_owned(), "GET".to_owned())]
    );
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Other, "/api/v1/claims/clm_1")),
    )
    .await;
    assert_eq!(response.status, 405);
    assert_eq!(
        response.headers,
        vec![("allow".to_owned(), "GET, PATCH, DELETE".to_owned())]
    );
}

#[wasm_bindgen_test]
async fn search_routes_are_checked_then_forwarded_with_the_organization() {
    let mut app = app();
    let found =
        json!({"id": "clm_1", "score": 0.875, "classification": "CONFIRMS", "metadata": {}});
    app.search = FakeSearch::answering(&[
        ("search", json!([found])),
        (
            "grayZone",
            json!({"high_confidence": [found], "gray_zone": []}),
        ),
        ("query", json!({"count": 0, "matches": []})),
    ]);
    let body = json!({"text": "hello", "limit": 3});
    let query = json!({"vector": vec![0.125; 768], "topK": 3, "table": "claims"});
    let sent_query =
        json!({"vector": vec![0.125; 768], "topK": 3, "table": "claims", "returnMetadata": true});
    for (path, method, args, answer) in [
        (
            "/api/v1/embeddings/search/claimSimilarity",
            "search",
            vec![json!("org_a"), json!("claimSimilarity"), body.clone()],
            json!([found]),
        ),
        (
            "/api/v1/embeddings/gray-zone/claimSimilarity",
            "grayZone",
            vec![json!("org_a"), json!("claimSimilarity"), body.clone()],
            json!({"high_confidence": [found], "gray_zone": []}),
        ),
        (
            "/api/v1/embeddings/query",
            "query",
            vec![json!("org_a"), sent_query.clone()],
            json!({"count": 0, "matches": []}),
        ),
    ] {
        let body = if method == "query" { &query } else { &body };
        let response = send(
            &app,
            as_user("vic", HttpRequest::new(Method::Post, path)).with_json(body),
        )
        .await;
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        assert_eq!(
            response.body, answer,
            "{path}: the answer as search-worker gave it"
        );
        let calls = app.search.transport().calls.borrow();
        assert_eq!(calls.last().unwrap(), &(method.to_owned(), args));
    }
    let before = app.search.transport().calls.borrow().len();
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/search/nope",
        ))
        .with_json(&body),
    )
    .await;
    assert_eq!(response.status, 404);
    let response = send(
        &app,
        as_user(
            "vic",
            HttpRequest::new(Method::Post, "/api/v1/embeddings/embed"),
        )
        .with_json(&json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status, 403, "a viewer may search but not embed");
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings/embed"))
            .with_json(&json!({"text": ""})),
    )
    .await;
    assert_eq!(response.status, 400);
    assert_eq!(
        app.search.transport().calls.borrow().len(),
        before,
        "nothing refused reaches search-worker"
    );
}

#[wasm_bindgen_test]
async fn a_sign_out_or_a_removal_takes_effect_within_the_sessions_trust() {
    use crate::auth::SESSION_TRUST_MS;
    let mut app = app();
    let list = || HttpRequest::new(Method::Get, "/api/v1/claims");
    assert_eq!(send(&app, as_ann(list())).await.status, 200);
    assert_eq!(send(&app, as_user("meg", list())).await.status, 200);
    // Ann signs out (her session row is gone); Meg is removed from the organization.
    app.store.sessions.retain(|(token, _)| token != "tok_ann");
    for (token, session) in &mut app.store.sessions {
        if token == "tok_meg" {
            session.role = None;
        }
    }
    let start = app.now_ms;
    for (elapsed, ann, meg) in [
        (0, 200, 200),
        (SESSION_TRUST_MS - 1, 200, 200),
        (SESSION_TRUST_MS, 401, 403),
    ] {
        app.now_ms = start + elapsed;
        let statuses = (
            send(&app, as_ann(list())).await.status,
            send(&app, as_user("meg", list())).await.status,
        );
        assert_eq!(statuses, (ann, meg), "{elapsed} ms after the change");
    }
    // A forged cookie is refused however recently its token was read.
    app.now_ms = start;
    app.store.sessions.push((
        "tok_ann".into(),
        fakes::session("ann", Some("org_a"), fakes::LIVE, Some("owner")),
    ));
    assert_eq!(send(&app, as_ann(list())).await.status, 200);
    let forged = list().with_header("cookie", "better-auth.session_token=tok_ann.forged");
    assert_eq!(send(&app, forged).await.status, 401);
}

#[wasm_bindgen_test]
async fn a_search_search_worker_would_refuse_is_refused_without_the_hop() {
    let app = app();
    for (route, body) in [
        (
            "search",
            json!({"text": "x", "filters": {"story_id": {"$bogus": 1}}}),
        ),
        (
            "gray-zone",
            json!({"text": "x", "filters": {"story_id": {"$in": 5}}}),
        ),
        ("search", json!({"text": "x", "limit": 1000})),
        ("gray-zone", json!({"text": "x", "min": 2})),
    ] {
        let response = send(
            &app,
            as_ann(HttpRequest::new(
                Method::Post,
                &format!("/api/v1/embeddings/{route}/claimSimilarity"),
            ))
            .with_json(&body),
        )
        .await;
        assert_eq!(response.status, 400, "{body}: {}", response.body);
    }
    assert!(app.search.transport().calls.borrow().is_empty());
}

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
    app.store
        .records
        .borrow_mut()
        .push(claim("org_a", "clm_new", "The bridge closed again"));
    let get = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/claims/clm_new")),
    )
    .await;
    assert_eq!(get.body["content"], "The bridge closed again");
    let list = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/claims?limit=1")),
    )
    .await;
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

#[wasm_bindgen_test]
async fn a_backfill_enqueues_what_lacks_a_current_embedding_in_batches() {
    let mut app = app();
    for i in 0..150 {
        app.store.records.borrow_mut().push(claim(
            "org_a",
            &format!("bulk_{i:03}"),
            &format!("text {i}"),
        ));
    }
    let model = "@cf/baai/bge-base-en-v1.5";
    app.store.vectors = vec![(
        "org_a".into(),
        "claims".into(),
        "bulk_000".into(),
        shared::message::content_hash(model, "text 0"),
    )];
    let backfill = |user: &str, body: Value| {
        as_user(
            user,
            HttpRequest::new(Method::Post, "/api/v1/embeddings/backfill"),
        )
        .with_json(&body)
    };
    assert_eq!(
        send(&app, backfill("meg", json!({"table": "claims"})))
            .await
            .status,
        403
    );
    let response = send(&app, backfill("ann", json!({"table": "claims"}))).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response.body["count"], 150,
        "clm_1 and 149 bulk records; bulk_000 is current"
    );
    assert_eq!(*app.queue.batches.borrow(), vec![100, 50]);
    let sent: Vec<Uuid> = app.queue.sent.borrow().iter().map(|j| j.job_id).collect();
    assert_eq!(
        *app.queue.bulk.borrow(),
        sent,
        "a backfill's jobs travel on the bulk lane, every one of them"
    );
    assert_eq!(
        app.queue.most_in_flight.get(),
        2,
        "a backfill's sendBatch calls are under way together, not one after another"
    );
    let backfill_id = response.body["backfillId"].as_str().unwrap();
    let progress = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/embeddings/jobs?backfillId={backfill_id}&limit=100"),
        )),
    )
    .await;
    assert_eq!(progress.body["jobs"].as_array().unwrap().len(), 100);
    assert!(progress.body["nextCursor"].is_string());

    let all = send(
        &app,
        backfill("ann", json!({"table": "claims", "all": true})),
    )
    .await;
    assert_eq!(all.body["count"], 151);
    assert_eq!(
        send(&app, backfill("ann", json!({"table": "nope"})))
            .await
            .status,
        404
    );
}

#[wasm_bindgen_test]
async fn a_backfill_offers_a_cursor_only_while_records_remain() {
    async fn backfill(app: &App<Fakes>, cursor: Option<String>) -> worker_kit::http::HttpResponse {
        let request = as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/backfill",
        ))
        .with_json(&json!({"table": "claims", "cursor": cursor}));
        send(app, request).await
    }
    // `clm_1` is seeded: with these, the organization has exactly one call's worth, then one more.
    for extra in [0, 1] {
        let app = app();
        let records = crate::backfill::MAX_RECORDS as usize - 1 + extra;
        for i in 0..records {
            app.store.records.borrow_mut().push(claim(
                "org_a",
                &format!("bulk_{i:04}"),
                &format!("text {i}"),
            ));
        }
        let first = backfill(&app, None).await;
        assert_eq!(first.status, 202, "{}", first.body);
        assert_eq!(first.body["count"], crate::backfill::MAX_RECORDS);
        if extra == 0 {
            assert!(first.body["nextCursor"].is_null(), "{}", first.body);
            continue;
        }
        let cursor = first.body["nextCursor"].as_str().map(str::to_owned);
        assert!(cursor.is_some(), "{}", first.body);
        let rest = backfill(&app, cursor).await;
        assert_eq!(rest.body["count"], 1, "{}", rest.body);
        assert!(rest.body["nextCursor"].is_null(), "{}", rest.body);
    }
}

#[wasm_bindgen_test]
async fn api_keys_are_made_by_managers_shown_once_and_revocable() {
    let app = app();
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "ci"})),
    )
    .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let key = response.body["key"].as_str().unwrap().to_owned();
    let key_id = response.body["id"].as_str().unwrap().to_owned();
    assert!(
        !app.store.keys.borrow()[0].0.contains(&key),
        "only the hash is stored"
    );

    let with_key =
        |request: HttpRequest| request.with_header("authorization", &format!("Bearer {key}"));
    let response = send(
        &app,
        with_key(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
            .with_json(&json!({"content": "via key"})),
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(app.queue.sent.borrow()[0].organization_id, "org_a");
    // A use is written once a minute at most: a busy key is not a D1 write per request.
    assert_eq!(app.store.keys.borrow()[0].1.last_used_at, Some(NOW));
    let mut app = app;
    for (now, written) in [(NOW + 59_999, NOW), (NOW + 60_000, NOW + 60_000)] {
        app.now_ms = now;
        let read = send(
            &app,
            with_key(HttpRequest::new(Method::Get, "/api/v1/claims/clm_1")),
        )
        .await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(app.store.keys.borrow()[0].1.last_used_at, Some(written));
    }
    let response = send(
        &app,
        with_key(HttpRequest::new(Method::Get, "/api/v1/api-keys")),
    )
    .await;
    assert_eq!(response.status, 403, "a key does not manage keys");

    let listed = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/api-keys")),
    )
    .await;
    assert_eq!(listed.body["keys"][0]["role"], "member");
    assert!(listed.body["keys"][0].get("key").is_none());
    let other = send(
        &app,
        as_user(
            "zoe",
            HttpRequest::new(Method::Delete, &format!("/api/v1/api-keys/{key_id}")),
        ),
    )
    .await;
    assert_eq!(other.status, 404, "another organization's key");
    let mine = send(
        &app,
        as_user("meg", HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "x"})),
    )
    .await;
    assert_eq!(mine.status, 403, "members do not make keys");
    let owner_key = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "x", "role": "superuser"})),
    )
    .await;
    assert_eq!(owner_key.status, 403, "no role the creator does not hold");

    assert_eq!(
        send(
            &app,
            as_ann(HttpRequest::new(
                Method::Delete,
                &format!("/api/v1/api-keys/{key_id}")
            ))
        )
        .await
        .status,
        204
    );
    let response = send(
        &app,
        with_key(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
            .with_json(&json!({"content": "x"})),
    )
    .await;
    assert_eq!(response.status, 401, "a revoked key");
}

/// Every route, as a request without credentials, with what a routed request answers.
fn every_route() -> Vec<(Method, String)> {
    let job = Uuid::nil();
    let mut routes: Vec<(Method, String)> = [
        (Method::Get, "/api/v1/health"),
        (Method::Get, "/api/v1/openapi.json"),
        (Method::Post, "/api/v1/embeddings"),
        (Method::Get, "/api/v1/embeddings/tables"),
        (Method::Get, "/api/v1/embeddings/status"),
        (Method::Get, "/api/v1/embeddings/jobs"),
        (Method::Post, "/api/v1/embeddings/backfill"),
        (Method::Post, "/api/v1/embeddings/embed"),
        (Method::Post, "/api/v1/embeddings/query"),
        (Method::Get, "/api/v1/api-keys"),
        (Method::Post, "/api/v1/api-keys"),
        (Method::Delete, "/api/v1/api-keys/key_1"),
    ]
    .iter()
    .map(|(m, p)| (*m, (*p).to_owned()))
    .collect();
    routes.push((Method::Get, format!("/api/v1/embeddings/jobs/{job}")));
    routes.push((Method::Post, format!("/api/v1/embeddings/jobs/{job}/retry")));
    let config = worker_kit::config::config();
    for service in &config.services {
        for route in ["search", "gray-zone"] {
            routes.push((
                Method::Post,
                format!("/api/v1/embeddings/{route}/{}", service.name),
            ));
        }
    }
    for table in &config.tables {
        routes.push((
            Method::Get,
            format!("/api/v1/embeddings/status/{}", table.name),
        ));
        routes.push((
            Method::Post,
            format!("/api/v1/embeddings/tables/{}/migration", table.name),
        ));
        routes.push((Method::Get, format!("/api/v1/{}", table.name)));
        routes.push((Method::Post, format!("/api/v1/{}", table.name)));
        for method in [Method::Get, Method::Patch, Method::Delete] {
            routes.push((method, format!("/api/v1/{}/rec_1", table.name)));
        }
    }
    routes
}

/// Whether a concrete path fits a document path, `{name}` matching one segment.
fn fits(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t.starts_with('{') || t == p)
}

#[wasm_bindgen_test]
async fn the_openapi_document_and_the_routes_agree_both_ways() {
    let app = app();
    let response = send(&app, HttpRequest::new(Method::Get, "/api/v1/openapi.json")).await;
    assert_eq!(response.status, 200);
    let document = response.body;
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();

    // Every route is documented, with its method.
    for (method, path) in every_route() {
        let verb = method.as_str().to_ascii_lowercase();
        let documented = paths
            .iter()
            .any(|(template, item)| fits(template, &path) && item.get(&verb).is_some());
        assert!(documented, "{verb} {path} is not in the document");
    }
    // Every documented operation is a route: without credentials it is refused with 401 (or
    // answered, for the public ones), never 404 or 405.
    let mut operations = 0;
    for (template, item) in paths {
        let path = template
            .replace("{jobId}", &Uuid::nil().to_string())
            .replace("{id}", "rec_1");
        for (verb, _) in item
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "parameters")
        {
            let method = match verb.as_str() {
                "get" => Method::Get,
                "post" => Method::Post,
                "patch" => Method::Patch,
                "delete" => Method::Delete,
                other => panic!("{other} {template}: a method the gateway does not route"),
            };
            operations += 1;
            let status = send(&app, HttpRequest::new(method, &path)).await.status;
            let public = item[verb.as_str()]["security"] == json!([]);
            let expected = if public { [200, 503] } else { [401, 401] };
            assert!(expected.contains(&status), "{verb} {template}: {status}");
        }
    }
    assert_eq!(operations, every_route().len(), "one operation per route");
    // Each table's write schema is its writable fields (and an id).
    let write = &document["components"]["schemas"]["Write_claims"]["properties"];
    let mut fields: Vec<&str> = write
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["content", "id", "story_id"]);
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
        ..fakes::app()
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
    let ann = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/claims/clm_1")),
    )
    .await;
    assert_eq!(
        ann.body["content"], "Police arrested three suspects",
        "Ann's record is untouched"
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
async fn an_api_key_acts_within_its_creators_role_as_it_is_now() {
    let app = app();
    let made = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/api-keys"))
            .with_json(&json!({"name": "pipeline", "role": "member"})),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let key_hash = app.store.keys.borrow()[0].0.clone();
    let key_row = app.store.keys.borrow()[0].1.clone();
    let bearer = format!("Bearer {}", made.body["key"].as_str().unwrap());
    // The same key, with Ann's membership as the test says it is now.
    let with_ann_as = |role: Option<&str>| {
        let mut app = fakes::app();
        for (_, session) in &mut app.store.sessions {
            if session.user_id == "ann" {
                session.role = role.map(Into::into);
            }
        }
        app.store
            .keys
            .borrow_mut()
            .push((key_hash.clone(), key_row.clone()));
        app
    };
    let write = || {
        HttpRequest::new(Method::Post, "/api/v1/claims")
            .with_header("authorization", &bearer)
            .with_json(&json!({"content": "with the key"}))
    };
    let read = || {
        HttpRequest::new(Method::Get, "/api/v1/claims/clm_1").with_header("authorization", &bearer)
    };
    assert_eq!(send(&with_ann_as(Some("owner")), write()).await.status, 201);
    let demoted = with_ann_as(Some("viewer"));
    assert_eq!(
        send(&demoted, write()).await.status,
        403,
        "Ann may no longer write"
    );
    assert_eq!(
        send(&demoted, read()).await.status,
        200,
        "reading is still hers"
    );
    let gone = send(&with_ann_as(None), read()).await;
    assert_eq!(gone.status, 403, "Ann left: the key acts for nobody");
    assert!(gone.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no longer a member"));
}

#[wasm_bindgen_test]
async fn a_tables_own_access_rules_hold_on_every_route_that_reaches_it() {
    // Project-wide a member may read, search and embed; `claims` keeps all three for owners.
    let config: &'static shared::Config = Box::leak(Box::new(
        shared::Config::parse(
            r#"
[[table]]
name = "claims"
columns = ["id", "organization_id", "story_id", "content", "embedding"]
writable = ["story_id", "content"]
[table.embeddings]
fields = ["content"]
[table.access]
read = ["owner"]
search = ["owner"]
update = ["owner"]
"#,
        )
        .unwrap(),
    ));
    let app = App { config, ..app() };
    let as_meg = |method, path: &str| as_user("meg", HttpRequest::new(method, path));
    let query = json!({"vector": vec![0.1; 768], "topK": 3});
    let reply = send(
        &app,
        as_meg(Method::Post, "/api/v1/embeddings/query").with_json(&query),
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "a vector query of claims: {}",
        reply.body
    );

    let replace = json!({"content": "another text", "table": "claims", "id": "clm_1"});
    let reply = send(
        &app,
        as_meg(Method::Post, "/api/v1/embeddings").with_json(&replace),
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "replacing a claim's vector is an update: {}",
        reply.body
    );

    // Ann's job of claims: Meg may read jobs, but not that table's.
    let made = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(&replace),
    )
    .await;
    assert_eq!(made.status, 202, "{}", made.body);
    let job = made.body["jobId"].as_str().unwrap();
    let reply = send(
        &app,
        as_meg(Method::Get, &format!("/api/v1/embeddings/jobs/{job}")),
    )
    .await;
    assert_eq!(reply.status, 403, "a job of claims: {}", reply.body);
    let listed = send(&app, as_meg(Method::Get, "/api/v1/embeddings/jobs")).await;
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.body["jobs"],
        json!([]),
        "claims' jobs are left out of the list"
    );
    let listed = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/embeddings/jobs")),
    )
    .await;
    assert_eq!(
        listed.body["jobs"].as_array().unwrap().len(),
        1,
        "the owner sees it"
    );
}

#[wasm_bindgen_test]
async fn a_dead_record_job_replays_with_the_records_text_as_it_is_now() {
    let app = app();
    let enqueued = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(
            &json!({"content": "an old text of the claim", "table": "claims", "id": "clm_1"}),
        ),
    )
    .await;
    assert_eq!(enqueued.status, 202, "{}", enqueued.body);
    let job_id = enqueued.body["jobId"].as_str().unwrap().to_owned();
    app.store.jobs.borrow_mut()[0].status = "dead".into();
    let replayed = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Post,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        )),
    )
    .await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    let sent = app.queue.sent.borrow().last().unwrap().clone();
    let current = "Police arrested three suspects";
    assert_eq!(
        sent.content, current,
        "the vector written must be of the text the record has"
    );
    assert_eq!(
        sent.content_hash,
        shared::message::content_hash(&sent.model, current)
    );
    assert_eq!(
        app.store.jobs.borrow()[0].content,
        current,
        "the job row says what was embedded"
    );
}

#[wasm_bindgen_test]
async fn a_job_stuck_open_can_be_replayed_once_it_has_not_moved_for_a_while() {
    let app = app();
    let job_id = enqueue_plain(&app, "lost in the queue").await;
    let retry = || {
        as_ann(HttpRequest::new(
            Method::Post,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        ))
    };
    app.store.jobs.borrow_mut()[0].status = "processing".into();
    assert_eq!(
        send(&app, retry()).await.status,
        409,
        "a job still moving is left alone"
    );
    app.store.jobs.borrow_mut()[0].updated_at = NOW - shared::job::STUCK_AFTER_MS;
    let replayed = send(&app, retry()).await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    assert_eq!(app.store.jobs.borrow()[0].status, "queued");
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
    app.store
        .records
        .borrow_mut()
        .push(claim("org_a", "clm:7", "An id with a colon"));
    let get = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/claims/clm%3A7")),
    )
    .await;
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

#[wasm_bindgen_test]
async fn each_organization_has_its_own_rate_per_kind_of_route_and_past_it_gets_429() {
    use shared::rate::RouteClass;

    let mut app = app();
    app.limits.limits.borrow_mut().push((RouteClass::Write, 3));
    let create = |user: &str, i: usize| {
        as_user(user, HttpRequest::new(Method::Post, "/api/v1/claims"))
            .with_json(&json!({"id": format!("rate_{user}_{i}"), "content": "text"}))
    };
    for i in 0..3 {
        assert_eq!(send(&app, create("ann", i)).await.status, 201);
    }
    // Past the rate a write is refused before it is read: a malformed one as well.
    let malformed =
        as_ann(HttpRequest::new(Method::Post, "/api/v1/claims")).with_json(&json!({"nope": 1}));
    assert_eq!(send(&app, malformed).await.status, 429);
    let refused = send(&app, create("ann", 3)).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "rate_limited");
    assert!(refused
        .headers
        .contains(&("retry-after".into(), "10".into())));
    assert_eq!(
        app.queue.sent.borrow().len(),
        3,
        "nothing enqueued past the rate"
    );
    // Another kind of route, and another organization, keep their own counts.
    let read = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/claims")),
    )
    .await;
    assert_eq!(read.status, 200);
    assert_eq!(send(&app, create("zoe", 0)).await.status, 201);

    // A limiter that cannot answer lets requests through.
    app.limits.down = true;
    assert_eq!(send(&app, create("ann", 4)).await.status, 201);
}

#[wasm_bindgen_test]
fn the_rate_limits_are_the_wrangler_configs() {
    use shared::rate::RouteClass;

    let toml = include_str!("../../../wrangler/api-worker.toml");
    for class in RouteClass::ALL {
        let binding = format!("name = \"{}\"\nnamespace_id = \"", class.binding());
        let at = toml.find(&binding).unwrap_or_else(|| panic!("{binding}"));
        let simple = format!(
            "simple = {{ limit = {}, period = {} }}",
            class.limit(),
            class.period_seconds()
        );
        let rest = &toml[at..];
        let end = rest.find("\n\n").unwrap_or(rest.len());
        assert!(
            rest[..end].contains(&simple),
            "{}: {simple}",
            class.binding()
        );
    }
}
