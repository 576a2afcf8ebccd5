//! The route table. Every route but health passes authentication first.

use shared::{ApiError, ErrorCode};
use worker_kit::http::{HttpRequest, HttpResponse, Method};

use crate::auth::authenticate;
use crate::error::Result;
use crate::ports::{App, JobQueue, SearchService, Store};
use crate::{embeddings, health, search};

pub(crate) async fn handle<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    request: &HttpRequest,
) -> HttpResponse {
    let response = route(app, request)
        .await
        .unwrap_or_else(crate::error::Error::into_response);
    response.log(request);
    response
}

async fn route<S: Store, Q: JobQueue, X: SearchService>(
    app: &App<S, Q, X>,
    request: &HttpRequest,
) -> Result<HttpResponse> {
    let segments = request.segments();
    let Some(rest) = segments.strip_prefix(&["api", "v1"]) else {
        return Err(no_route());
    };
    if rest == ["health"] {
        only(request, Method::Get)?;
        return Ok(health::health(app).await);
    }
    let Some(rest) = rest.strip_prefix(&["embeddings"]) else {
        return Err(no_route());
    };
    // Known routes only past this point, so an unknown path is a 404 even without credentials.
    let allowed = match rest {
        [] | ["embed"] | ["jobs", _, "retry"] => Method::Post,
        ["tables"] | ["jobs", _] => Method::Get,
        _ => return Err(no_route()),
    };
    only(request, allowed)?;
    let caller = authenticate(app, request).await?;
    match rest {
        [] => embeddings::enqueue(app, &caller, request).await,
        ["tables"] => Ok(embeddings::tables(app)),
        ["jobs", job_id] => embeddings::job_status(app, &caller, job_id).await,
        ["jobs", job_id, "retry"] => embeddings::retry_job(app, &caller, job_id).await,
        ["embed"] => search::embed(app, &caller, request).await,
        _ => Err(no_route()),
    }
}

fn only(request: &HttpRequest, method: Method) -> Result<()> {
    if request.method == method {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("use {} on this route", method.as_str()),
        )
        .into())
    }
}

fn no_route() -> crate::error::Error {
    ApiError::not_found("no such route").into()
}
