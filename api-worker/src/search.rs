//! The search routes: checked here (the caller's role, the service, the body's shape as far as
//! the gateway knows it), then forwarded to search-worker over the `SEARCH` binding with the
//! caller's organization attached. search-worker's answer goes back as it is.

use serde::Serialize;
use shared::access::Action;
use shared::search::{EmbedRequest, QueryRequest, Scoped};
use shared::ApiError;
use worker_kit::http::{HttpRequest, HttpResponse};
use worker_kit::Fault;

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, Ports, SearchService};

/// `POST /api/v1/embeddings/embed`.
pub(crate) async fn embed(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    caller.require(app, None, Action::Embed)?;
    let body: EmbedRequest = request.json()?;
    body.resolve(app.config)?;
    forward(app, caller, "/embed", &body).await
}

/// `POST /api/v1/embeddings/search/{service}` and `/gray-zone/{service}`.
pub(crate) async fn service_route(
    app: &App<impl Ports>,
    caller: &Caller,
    route: &str,
    service: &str,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let config = app
        .config
        .service(service)
        .ok_or_else(|| ApiError::not_found(format!("no search service `{service}`")))?;
    caller.require(app, app.config.table(&config.table), Action::Search)?;
    let body: serde_json::Value = request.json()?;
    forward(app, caller, &format!("/{route}/{service}"), &body).await
}

/// `POST /api/v1/embeddings/query`.
pub(crate) async fn query(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    // A caller who may search no table at all is refused before its body is looked at.
    if !app
        .config
        .tables
        .iter()
        .any(|table| caller.require(app, Some(table), Action::Search).is_ok())
    {
        caller.require(app, None, Action::Search)?;
    }
    let body: serde_json::Value = request.json()?;
    // The table queried (named, or the one whose model has the vector's dimension) decides
    // whose search rule applies: a table's own `[table.access]` is never bypassed here.
    let query: QueryRequest = serde_json::from_value(body.clone())
        .map_err(|e| ApiError::invalid(format!("invalid request: {e}")))?;
    let (table, _) = query.plan(app.config)?;
    caller.require(app, Some(table), Action::Search)?;
    forward(app, caller, "/query", &body).await
}

async fn forward<T: Serialize>(
    app: &App<impl Ports>,
    caller: &Caller,
    path: &str,
    request: &T,
) -> Result<HttpResponse> {
    let scoped = Scoped {
        organization_id: caller.organization_id.clone(),
        request,
    };
    let body = serde_json::to_value(&scoped).map_err(Fault::from)?;
    let (status, body) = app.search.call(path, Some(&body)).await?;
    Ok(HttpResponse::json(status, &body))
}
