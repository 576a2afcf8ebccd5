//! Authentication and the organization firewall: sessions, API keys acting within their creator's
//! role, and a table's own access rules.

use serde_json::json;
use shared::api_key;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fixtures::{app, as_ann, as_user, cookie, get_as_ann, send};
use crate::ports::App;

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
        super::fixtures::session("ann", Some("org_a"), super::fixtures::LIVE, Some("owner")),
    ));
    assert_eq!(send(&app, as_ann(list())).await.status, 200);
    let forged = list().with_header("cookie", "better-auth.session_token=tok_ann.forged");
    assert_eq!(send(&app, forged).await.status, 401);
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
        let mut app = super::fixtures::app();
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
    let listed = get_as_ann(&app, "/api/v1/embeddings/jobs").await;
    assert_eq!(
        listed.body["jobs"].as_array().unwrap().len(),
        1,
        "the owner sees it"
    );
}
