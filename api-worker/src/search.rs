//! The search routes: validated here, then forwarded to search-worker over the `SEARCH` binding
//! with the caller's organization attached. search-worker's answer goes back as it is.

use serde::Serialize;
use shared::search::{EmbedRequest, Scoped};
use worker_kit::http::{HttpRequest, HttpResponse};
use worker_kit::Fault;

use crate::auth::Caller;
use crate::error::Result;
use crate::ports::{App, JobQueue, SearchService, Store};

/// `POST /api/v1/embeddings/embed`.
pub(crate) async fn embed<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    caller: &Caller,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let body: EmbedRequest = request.json()?;
    body.resolve(app.config)?;
    forward(app, caller, "/embed", &body).await
}

async fn forward<S: Store, Q: JobQueue, X: SearchService, T: Serialize>(
    app: &App<S, Q, X>,
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
    Ok(HttpResponse { status, body })
}
