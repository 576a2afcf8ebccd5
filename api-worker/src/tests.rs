//! The gateway's request handling, run in wasm with fake bindings.

use std::cell::RefCell;

use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::message::EmbeddingJob;
use shared::session::sign_token;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, HttpResponse, Method};
use worker_kit::Fault;

use crate::ports::{App, JobQueue, JobRow, Record, SearchService, SessionRow, Store};
use crate::routes::handle;

const SECRET: &str = "test-secret-0123456789abcdefghijkl";
const NOW: i64 = 1_795_615_199_000;

#[derive(Default)]
struct FakeStore {
    sessions: Vec<(String, SessionRow)>,
    members: Vec<(String, String, String)>,
    /// (table, organization, id, content)
    records: Vec<(String, String, String, String)>,
    jobs: RefCell<Vec<JobRow>>,
    down: bool,
}

impl Store for FakeStore {
    async fn ping(&self) -> Result<(), Fault> {
        if self.down {
            Err(Fault("D1 down".into()))
        } else {
            Ok(())
        }
    }
    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault> {
        Ok(self
            .sessions
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, s)| s.clone()))
    }
    async fn member_role(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, Fault> {
        Ok(self
            .members
            .iter()
            .find(|(o, u, _)| o == organization_id && u == user_id)
            .map(|(_, _, role)| role.clone()))
    }
    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault> {
        Ok(self
            .records
            .iter()
            .find(|(t, o, i, _)| *t == table.name && o == organization_id && i == id)
            .map(|(_, o, i, content)| {
                let row = json!({"id": i, "organization_id": o, "content": content});
                row.as_object().unwrap().clone()
            }))
    }
    async fn insert_job(&self, job: &JobRow) -> Result<(), Fault> {
        self.jobs.borrow_mut().push(job.clone());
        Ok(())
    }
    async fn mark_job_failed(
        &self,
        organization_id: &str,
        job_id: Uuid,
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault> {
        for job in self
            .jobs
            .borrow_mut()
            .iter_mut()
            .filter(|j| j.id == job_id.to_string() && j.organization_id == organization_id)
        {
            job.status = "failed".into();
            job.last_error = Some(error.into());
            job.completed_at = Some(now_ms);
        }
        Ok(())
    }
    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault> {
        Ok(self
            .jobs
            .borrow()
            .iter()
            .find(|j| j.id == job_id.to_string() && j.organization_id == organization_id)
            .cloned())
    }
    async fn requeue_job(
        &self,
        organization_id: &str,
        job_id: Uuid,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        let mut jobs = self.jobs.borrow_mut();
        let job = jobs.iter_mut().find(|j| {
            j.id == job_id.to_string()
                && j.organization_id == organization_id
                && (j.status == "dead" || j.status == "failed")
        });
        Ok(job.is_some_and(|job| {
            job.status = "queued".into();
            job.updated_at = now_ms;
            job.completed_at = None;
            true
        }))
    }
}

#[derive(Default)]
struct FakeQueue {
    sent: RefCell<Vec<EmbeddingJob>>,
    down: bool,
}

impl JobQueue for FakeQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue down".into()));
        }
        self.sent.borrow_mut().push(job.clone());
        Ok(())
    }
}

/// Answers every call the same way and records what it was sent.
struct FakeSearch {
    answer: Result<(u16, Value), Fault>,
    calls: RefCell<Vec<(String, Option<Value>)>>,
}

impl FakeSearch {
    fn answering(answer: Result<(u16, Value), Fault>) -> Self {
        FakeSearch {
            answer,
            calls: RefCell::default(),
        }
    }
}

impl SearchService for FakeSearch {
    async fn call(&self, path: &str, body: Option<&Value>) -> Result<(u16, Value), Fault> {
        self.calls
            .borrow_mut()
            .push((path.to_owned(), body.cloned()));
        self.answer.clone()
    }
}

fn session(user: &str, org: Option<&str>, expires_at: &str) -> SessionRow {
    SessionRow {
        user_id: user.into(),
        active_organization_id: org.map(Into::into),
        expires_at: expires_at.into(),
    }
}

/// Ann is a member of `org_a` with a live session `tok_ann`; Bob's session is expired; Cid has no
/// active organization; Dan's active organization is one he does not belong to.
fn app() -> App<FakeStore, FakeQueue, FakeSearch> {
    App {
        store: FakeStore {
            sessions: vec![
                (
                    "tok_ann".into(),
                    session("ann", Some("org_a"), "2099-01-01T00:00:00.000Z"),
                ),
                (
                    "tok_bob".into(),
                    session("bob", Some("org_a"), "2026-01-01T00:00:00.000Z"),
                ),
                (
                    "tok_cid".into(),
                    session("cid", None, "2099-01-01T00:00:00.000Z"),
                ),
                (
                    "tok_dan".into(),
                    session("dan", Some("org_a"), "2099-01-01T00:00:00.000Z"),
                ),
            ],
            members: vec![
                ("org_a".into(), "ann".into(), "owner".into()),
                ("org_a".into(), "bob".into(), "member".into()),
                ("org_a".into(), "cid".into(), "member".into()),
            ],
            records: vec![(
                "claims".into(),
                "org_a".into(),
                "clm_1".into(),
                "Police arrested three suspects".into(),
            )],
            ..FakeStore::default()
        },
        queue: FakeQueue::default(),
        search: FakeSearch::answering(Ok((200, json!({"worker": "search-worker", "ok": true})))),
        auth_secret: Some(SECRET.into()),
        config: worker_kit::config::config(),
        now_ms: NOW,
    }
}

fn cookie(token: &str) -> String {
    let signed = sign_token(token, SECRET.as_bytes());
    let encoded: String = signed
        .chars()
        .map(|c| match c {
            '+' => "%2B".into(),
            '/' => "%2F".into(),
            '=' => "%3D".into(),
            c => c.to_string(),
        })
        .collect();
    format!("better-auth.session_token={encoded}")
}

fn as_ann(request: HttpRequest) -> HttpRequest {
    request.with_header("cookie", &cookie("tok_ann"))
}

async fn send<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    request: HttpRequest,
) -> HttpResponse {
    handle(app, &request).await
}

#[wasm_bindgen_test]
async fn health_reports_d1_and_search_worker() {
    let app = app();
    let response = send(&app, HttpRequest::new(Method::Get, "/api/v1/health")).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["status"], "ok");
    assert_eq!(response.body["search"]["detail"]["worker"], "search-worker");

    let mut app = app;
    app.search = FakeSearch::answering(Err(Fault("binding refused".into())));
    let response = send(&app, HttpRequest::new(Method::Get, "/api/v1/health")).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["status"], "degraded");
    assert_eq!(response.body["search"]["ok"], false);
    assert_eq!(response.body["d1"]["ok"], true);
}

#[wasm_bindgen_test]
async fn enqueue_writes_the_job_then_sends_the_message() {
    let app = app();
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(
        &json!({"content": "Police arrested three suspects", "table": "claims", "id": "clm_1"}),
    );
    let response = send(&app, request).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(response.body["queued"], true);
    assert_eq!(response.body["table"], "claims");
    assert_eq!(response.body["id"], "clm_1");
    assert_eq!(response.body["model"], "@cf/baai/bge-base-en-v1.5");

    let sent = app.queue.sent.borrow();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].job_id.to_string(), response.body["jobId"]);
    assert_eq!(sent[0].organization_id, "org_a");
    assert_eq!(
        sent[0].record_hash.as_deref(),
        Some(sent[0].content_hash.as_str()),
        "made from the record's current text"
    );
    let jobs = app.store.jobs.borrow();
    assert_eq!(jobs.len(), 1);
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
        (None, 401),
        (Some(forged), 401),
        (Some(cookie("tok_nobody")), 401),
        (Some(cookie("tok_bob")), 401),
        (Some(cookie("tok_cid")), 403),
        (Some(cookie("tok_dan")), 403),
    ];
    for (cookie, status) in cases {
        let mut request = HttpRequest::new(Method::Post, "/api/v1/embeddings")
            .with_json(&json!({"content": "x"}));
        if let Some(cookie) = &cookie {
            request = request.with_header("cookie", cookie);
        }
        let response = send(&app, request).await;
        assert_eq!(response.status, status, "{cookie:?}: {}", response.body);
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

#[wasm_bindgen_test]
async fn job_status_is_scoped_to_the_organization() {
    let app = app();
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings"))
        .with_json(&json!({"content": "hello"}));
    let job_id = send(&app, request).await.body["jobId"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/embeddings/jobs/{job_id}"),
        )),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["status"], "queued");
    assert_eq!(response.body["createdAt"], "2026-11-25T13:59:59.000Z");

    app.store.jobs.borrow_mut()[0].organization_id = "org_b".into();
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/embeddings/jobs/{job_id}"),
        )),
    )
    .await;
    assert_eq!(
        response.status, 404,
        "another tenant's job is not found, not forbidden"
    );
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            "/api/v1/embeddings/jobs/not-a-uuid",
        )),
    )
    .await;
    assert_eq!(response.status, 400);
}

#[wasm_bindgen_test]
async fn tables_and_unknown_routes() {
    let app = app();
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Get, "/api/v1/embeddings/tables")),
    )
    .await;
    assert_eq!(
        response.body,
        json!({"tables": [{"name": "claims", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"}]})
    );
    let response = send(&app, HttpRequest::new(Method::Get, "/api/v1/nothing")).await;
    assert_eq!(response.status, 404);
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Delete,
            "/api/v1/embeddings/tables",
        )),
    )
    .await;
    assert_eq!(response.status, 405);
}

#[wasm_bindgen_test]
async fn embed_is_validated_then_forwarded_with_the_organization() {
    let mut app = app();
    app.search = FakeSearch::answering(Ok((
        200,
        json!({"model": "m", "dimensions": 1, "vector": [1.0]}),
    )));
    let body = json!({"text": "hello", "service": "claimSimilarity"});
    let response = send(
        &app,
        as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings/embed")).with_json(&body),
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["vector"], json!([1.0]));
    let calls = app.search.calls.borrow().clone();
    assert_eq!(
        calls,
        vec![(
            "/embed".to_owned(),
            Some(json!({"organizationId": "org_a", "request": body}))
        )]
    );

    for (body, status) in [
        (json!({"text": "x", "service": "nope"}), 404),
        (json!({"text": "x", "model": "@cf/x"}), 400),
        (json!({"text": ""}), 400),
        (json!({"txt": "x"}), 400),
    ] {
        let response = send(
            &app,
            as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings/embed")).with_json(&body),
        )
        .await;
        assert_eq!(response.status, status, "{body}");
    }
    assert_eq!(
        app.search.calls.borrow().len(),
        1,
        "nothing invalid reaches search-worker"
    );
    let response = send(
        &app,
        HttpRequest::new(Method::Post, "/api/v1/embeddings/embed").with_json(&json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status, 401);
}

#[wasm_bindgen_test]
async fn only_a_dead_or_failed_job_is_replayed_under_its_own_id() {
    let app = app();
    let request = as_ann(HttpRequest::new(Method::Post, "/api/v1/embeddings")).with_json(
        &json!({"content": "Police arrested three suspects", "table": "claims", "id": "clm_1"}),
    );
    let job_id = send(&app, request).await.body["jobId"]
        .as_str()
        .unwrap()
        .to_owned();
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
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].job_id.to_string(), job_id);
    assert_eq!(sent[1].attempt, 0);
    assert_eq!(sent[1].content_hash, sent[0].content_hash);

    app.store.jobs.borrow_mut()[0].organization_id = "org_b".into();
    assert_eq!(
        send(&app, retry()).await.status,
        404,
        "another tenant's job"
    );
    let response = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/embeddings/jobs/{job_id}/retry"),
        )),
    )
    .await;
    assert_eq!(response.status, 405);
}
