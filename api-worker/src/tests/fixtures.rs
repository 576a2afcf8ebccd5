//! The seeded app every test runs against, and the helpers that sign its requests in.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::json;
use shared::expiring::Expiring;
use shared::record::Record;
use shared::session::session_cookie;
use worker_kit::http::{HttpRequest, HttpResponse, Method};

use super::fakes::{FakeIndexes, FakeLimits, FakeQueue, FakeSearch, FakeStore, Fakes};
use crate::ports::{App, SessionRow};
use crate::routes::handle;

pub(super) const SECRET: &str = "test-secret-0123456789abcdefghijkl";
pub(super) const NOW: i64 = 1_795_615_199_000;

pub(super) fn session(
    user: &str,
    org: Option<&str>,
    expires_at: &str,
    role: Option<&str>,
) -> SessionRow {
    SessionRow {
        user_id: user.into(),
        active_organization_id: org.map(Into::into),
        expires_at: expires_at.into(),
        role: role.map(Into::into),
    }
}

pub(super) const LIVE: &str = "2099-01-01T00:00:00.000Z";

pub(super) fn claim(org: &str, id: &str, content: &str) -> (String, Record) {
    let record = json!({"id": id, "organization_id": org, "story_id": "s1", "content": content});
    ("claims".into(), record.as_object().unwrap().clone())
}

/// Ann owns `org_a`; Meg is a member and Vic a viewer there; Bob's session is expired; Cid has no
/// active organization; Dan's active organization is one he does not belong to; Zoe owns `org_b`.
pub(super) fn app() -> App<Fakes> {
    App {
        store: FakeStore {
            sessions: vec![
                (
                    "tok_ann".into(),
                    session("ann", Some("org_a"), LIVE, Some("owner")),
                ),
                (
                    "tok_meg".into(),
                    session("meg", Some("org_a"), LIVE, Some("member")),
                ),
                (
                    "tok_vic".into(),
                    session("vic", Some("org_a"), LIVE, Some("viewer")),
                ),
                (
                    "tok_bob".into(),
                    session(
                        "bob",
                        Some("org_a"),
                        "2026-01-01T00:00:00.000Z",
                        Some("owner"),
                    ),
                ),
                ("tok_cid".into(), session("cid", None, LIVE, None)),
                ("tok_dan".into(), session("dan", Some("org_a"), LIVE, None)),
                (
                    "tok_zoe".into(),
                    session("zoe", Some("org_b"), LIVE, Some("owner")),
                ),
            ],
            records: RefCell::new(vec![
                claim("org_a", "clm_1", "Police arrested three suspects"),
                claim("org_b", "clm_b1", "Another tenant's claim"),
            ]),
            ..FakeStore::default()
        },
        queue: FakeQueue::default(),
        limits: FakeLimits::default(),
        search: FakeSearch::answering(&[(
            "health",
            json!({"worker": "search-worker", "d1": true}),
        )]),
        indexes: FakeIndexes::default(),
        auth_secret: Some(SECRET.into()),
        sessions: Rc::new(RefCell::new(Expiring::new(
            crate::auth::SESSION_TRUST_MS,
            crate::auth::SESSION_CACHE_ENTRIES,
        ))),
        config: worker_kit::config::config(),
        now_ms: NOW,
    }
}

pub(super) fn cookie(token: &str) -> String {
    session_cookie(token, SECRET.as_bytes())
}

pub(super) fn as_user(user: &str, request: HttpRequest) -> HttpRequest {
    request.with_header("cookie", &cookie(&format!("tok_{user}")))
}

pub(super) fn as_ann(request: HttpRequest) -> HttpRequest {
    as_user("ann", request)
}

pub(super) async fn send(app: &App<Fakes>, request: HttpRequest) -> HttpResponse {
    handle(app, &request).await
}

/// Ann's `GET` of `path`.
pub(super) async fn get_as_ann(app: &App<Fakes>, path: &str) -> HttpResponse {
    send(app, as_ann(HttpRequest::new(Method::Get, path))).await
}

/// Stores one more claim of `org`.
pub(super) fn add_claim(app: &App<Fakes>, org: &str, id: &str, content: &str) {
    app.store.records.borrow_mut().push(claim(org, id, content));
}
