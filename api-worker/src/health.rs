//! `GET /api/v1/health`: the gateway itself, D1, and search-worker over RPC.

use serde::Serialize;
use serde_json::{json, Value};
use shared::access::Action;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::authenticate;
use crate::ports::{App, Ports, Store};

#[derive(Debug, Serialize)]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<serde_json::Value>,
}

impl Check {
    fn from_result(result: Result<Option<serde_json::Value>, String>) -> Self {
        match result {
            Ok(detail) => Check {
                ok: true,
                error: None,
                detail,
            },
            Err(error) => Check {
                ok: false,
                error: Some(error),
                detail: None,
            },
        }
    }
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    worker: &'static str,
    version: &'static str,
    d1: Check,
    search: Check,
}

/// Public, and more for a caller who may administer its organization: the memory search-worker's
/// caches take against their budgets (of the isolate that answered). Never their hit and miss
/// counts, nor anything per organization: those would tell one tenant what others search.
pub(crate) async fn health(app: &App<impl Ports>, request: &HttpRequest) -> HttpResponse {
    let d1 = Check::from_result(
        app.store
            .ping()
            .await
            .map(|()| None)
            .map_err(|e| e.to_string()),
    );
    // Without credentials this is refused before any read; bad ones only lose the detail.
    let administrator = authenticate(app, request)
        .await
        .is_ok_and(|caller| caller.require(app, None, Action::Admin).is_ok());
    let search = Check::from_result(match app.search.health().await {
        Ok(body) if administrator => Ok(Some(json!({
            "worker": body["worker"],
            "caches": caches(&body),
        }))),
        Ok(body) => Ok(Some(json!({ "worker": body["worker"] }))),
        Err(e) => Err(format!("search-worker: {}", e.message)),
    });
    let healthy = d1.ok && search.ok;
    if !healthy {
        tracing::warn!(d1 = d1.ok, search = search.ok, "health check failed");
    }
    let health = Health {
        status: if healthy { "ok" } else { "degraded" },
        worker: "api-worker",
        version: env!("CARGO_PKG_VERSION"),
        d1,
        search,
    };
    HttpResponse::json(if healthy { 200 } else { 503 }, &health)
}

/// The caches' memory use, from search-worker's health: sizes and budgets only.
fn caches(body: &Value) -> Value {
    let (vectors, queries) = (&body["vectorCache"], &body["queryCache"]);
    json!({
        "vectors": { "tables": vectors["tables"], "vectors": vectors["vectors"],
                     "bytes": vectors["bytes"], "budgetBytes": vectors["budget"] },
        "queries": { "entries": queries["size"], "bytes": queries["bytes"],
                     "budgetBytes": queries["budget"] },
    })
}
