//! `GET /api/v1/health`: the gateway itself, D1, and search-worker over the service binding.

use serde::Serialize;
use worker_kit::http::HttpResponse;

use crate::ports::{App, Ports, SearchService, Store};

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

pub(crate) async fn health(app: &App<impl Ports>) -> HttpResponse {
    let d1 = Check::from_result(
        app.store
            .ping()
            .await
            .map(|()| None)
            .map_err(|e| e.to_string()),
    );
    // Anyone may read this route: of search-worker it tells only that it answers, never its
    // caches' counters, which would say what someone searched and when.
    let search = Check::from_result(match app.search.call("/health", None).await {
        Ok((200, body)) => Ok(Some(serde_json::json!({ "worker": body["worker"] }))),
        Ok((status, body)) => Err(format!("search-worker answered {status}: {body}")),
        Err(e) => Err(e.to_string()),
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
