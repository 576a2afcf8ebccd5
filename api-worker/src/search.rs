//! The search routes: checked here (the caller's role, the service, the whole body), then
//! passed to search-worker over RPC (`worker_kit::search_client`) with the caller's
//! organization. search-worker's answer, or its error, goes back as the HTTP API's.

use shared::access::Action;
use shared::search::{EmbedRequest, GrayZoneRequest, QueryRequest, SearchRequest};
use shared::ApiError;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, Ports};

/// `POST /api/v1/embeddings/embed`.
pub(crate) async fn embed(
    app: &App<impl Ports>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    caller.require(app, None, Action::Embed)?;
    let body: EmbedRequest = request.json()?;
    body.resolve(app.config)?;
    let answer = app.search.embed(&caller.organization_id, &body).await?;
    Ok(HttpResponse::ok(&answer))
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
    let organization_id = &caller.organization_id;
    // Checked here in full (text, limit, bounds, filters), as search-worker checks it: bad input
    // is refused without the hop.
    Ok(if route == "gray-zone" {
        let body: GrayZoneRequest = request.json()?;
        body.plan(app.config, service)?;
        let answer = app
            .search
            .gray_zone(organization_id, service, &body)
            .await?;
        HttpResponse::ok(&answer)
    } else {
        let body: SearchRequest = request.json()?;
        body.plan(app.config, service)?;
        HttpResponse::ok(&app.search.search(organization_id, service, &body).await?)
    })
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
    let body: QueryRequest = request.json()?;
    // The table queried (named, or the one whose model has the vector's dimension) decides
    // whose search rule applies: a table's own `[table.access]` is never bypassed here.
    let (table, _) = body.plan(app.config)?;
    caller.require(app, Some(table), Action::Search)?;
    let answer = app.search.query(&caller.organization_id, &body).await?;
    Ok(HttpResponse::ok(&answer))
}
