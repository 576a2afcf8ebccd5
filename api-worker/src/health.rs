//! `GET /api/v1/health`: the gateway itself, D1, and search-worker over RPC.

use serde::Serialize;
use serde_json::{json, Value};
use shared::access::Action;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::authenticate;
use crate::ports::{App, Database, Ports};

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

/// Public, and more for a caller who may administer its organization: the memory its own
/// tables and query vectors take in search-worker's caches (of the isolate that answered),
/// against the budgets. Never another organization's figures, nor the isolate's as a whole,
/// nor hit and miss counts: those would tell one tenant what others search.
pub(crate) async fn health(app: &App<impl Ports>, request: &HttpRequest) -> HttpResponse {
    let d1 = Check::from_result(
        app.store
            .ping()
            .await
            .map(|()| None)
            .map_err(|e| e.to_string()),
    );
    // Without credentials this is refused before any read; bad ones only lose the detail.
    let administered = authenticate(app, request)
        .await
        .ok()
        .filter(|caller| caller.require(app, None, Action::Admin).is_ok())
        .map(|caller| caller.organization_id);
    let search = Check::from_result(match app.search.health(administered.as_deref()).await {
        Ok(body) => {
            let mut detail = json!({ "worker": body["worker"] });
            if let Some(caches) = administered.as_deref().and_then(|org| caches(&body, org)) {
                detail["caches"] = caches;
            }
            Ok(Some(detail))
        }
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

/// The caches' memory use of `organization_id`, from search-worker's health: sizes and
/// budgets only, and only when search-worker says they are that organization's (an older
/// search-worker answers the whole isolate's, which no tenant may see).
fn caches(body: &Value, organization_id: &str) -> Option<Value> {
    let caches = &body["caches"];
    if caches["organizationId"].as_str() != Some(organization_id) {
        tracing::warn!("search-worker's health named no organization's caches: not shown");
        return None;
    }
    let (vectors, queries) = (&caches["vectors"], &caches["queries"]);
    Some(json!({
        "vectors": { "tables": vectors["tables"], "vectors": vectors["vectors"],
                     "bytes": vectors["bytes"], "budgetBytes": vectors["budgetBytes"] },
        "queries": { "entries": queries["entries"], "bytes": queries["bytes"],
                     "budgetBytes": queries["budgetBytes"] },
    }))
}
