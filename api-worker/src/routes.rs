//! The route table. A path is matched to a route (404 for none, 405 for a method the route does
//! not take) before anything else; every route but health and the `OpenAPI` document then passes
//! authentication, and counts against its organization's rate limit for its kind of route
//! (`shared::rate`).

use shared::rate::RouteClass;
use shared::{ApiError, ErrorCode};
use worker_kit::http::{HttpRequest, HttpResponse, Method};

use crate::auth::{authenticate, Caller};
use crate::error::Result;
use crate::ports::{App, Ports, RateLimits};
use crate::{backfill, embeddings, health, jobs, keys, openapi, records, search, status};

pub(crate) async fn handle(app: &App<impl Ports>, request: &HttpRequest) -> HttpResponse {
    let response = route(app, request)
        .await
        .unwrap_or_else(crate::error::Error::into_response);
    response.log(request);
    response
}

/// What a path names.
enum Route<'a> {
    Health,
    OpenApi,
    Enqueue,
    Tables,
    Status,
    TableStatus(&'a str),
    Migration(&'a str),
    Jobs,
    Job(&'a str),
    RetryJob(&'a str),
    Backfill,
    Embed,
    Query,
    Service { route: &'a str, service: &'a str },
    ApiKeys,
    ApiKey(&'a str),
    Records(&'a str),
    Record(&'a str, &'a str),
}

impl<'a> Route<'a> {
    fn of(segments: &[&'a str]) -> Option<Self> {
        let rest = segments.strip_prefix(&["api", "v1"])?;
        Some(match *rest {
            ["health"] => Route::Health,
            ["openapi.json"] => Route::OpenApi,
            ["embeddings"] => Route::Enqueue,
            ["embeddings", "tables"] => Route::Tables,
            ["embeddings", "status"] => Route::Status,
            ["embeddings", "status", table] => Route::TableStatus(table),
            ["embeddings", "tables", table, "migration"] => Route::Migration(table),
            ["embeddings", "jobs"] => Route::Jobs,
            ["embeddings", "jobs", id] => Route::Job(id),
            ["embeddings", "jobs", id, "retry"] => Route::RetryJob(id),
            ["embeddings", "backfill"] => Route::Backfill,
            ["embeddings", "embed"] => Route::Embed,
            ["embeddings", "query"] => Route::Query,
            ["embeddings", route @ ("search" | "gray-zone"), service] => {
                Route::Service { route, service }
            }
            ["api-keys"] => Route::ApiKeys,
            ["api-keys", id] => Route::ApiKey(id),
            ["embeddings", ..] => return None,
            [table] => Route::Records(table),
            [table, id] => Route::Record(table, id),
            _ => return None,
        })
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::Health
            | Route::OpenApi
            | Route::Tables
            | Route::Status
            | Route::TableStatus(_)
            | Route::Jobs
            | Route::Job(_) => &[Method::Get],
            Route::Migration(_)
            | Route::Enqueue
            | Route::RetryJob(_)
            | Route::Backfill
            | Route::Embed
            | Route::Query
            | Route::Service { .. } => &[Method::Post],
            Route::ApiKeys | Route::Records(_) => &[Method::Get, Method::Post],
            Route::ApiKey(_) => &[Method::Delete],
            Route::Record(..) => &[Method::Get, Method::Patch, Method::Delete],
        }
    }

    /// Which of the organization's rate limits a request of this route counts against.
    fn class(&self, method: Method) -> RouteClass {
        match self {
            Route::Backfill | Route::Migration(_) => RouteClass::Bulk,
            Route::Embed | Route::Query | Route::Service { .. } => RouteClass::Search,
            Route::Enqueue | Route::RetryJob(_) | Route::ApiKey(_) => RouteClass::Write,
            Route::ApiKeys | Route::Records(_) | Route::Record(..) if method != Method::Get => {
                RouteClass::Write
            }
            _ => RouteClass::Read,
        }
    }
}

/// Counts the request against its organization's limit for `class` (`shared::rate`): 429 with
/// `Retry-After` past it. A limiter that cannot answer lets the request through: a fault of
/// the counting must not take the API down with it (it is logged).
async fn within_rate(
    app: &App<impl Ports>,
    caller: &Caller,
    class: RouteClass,
) -> std::result::Result<(), HttpResponse> {
    match app
        .limits
        .allow(class, &RouteClass::key(&caller.organization_id))
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(organization_id = %caller.organization_id, class = class.as_str(), "rate limited");
            let (error, retry_after) = class.refusal();
            Err(HttpResponse::error(&error).with_header("retry-after", &retry_after.to_string()))
        }
        Err(fault) => {
            tracing::error!(class = class.as_str(), error = %fault, "rate limiter failed; request let through");
            Ok(())
        }
    }
}

async fn route(app: &App<impl Ports>, request: &HttpRequest) -> Result<HttpResponse> {
    let segments = request.segments();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let route = Route::of(&segments).ok_or_else(no_route)?;
    // A table route names a configured table, or there is no such route.
    let table = match route {
        Route::Records(name) | Route::Record(name, _) => Some(records::table(app, name)?),
        _ => None,
    };
    let methods = route.methods();
    if !methods.contains(&request.method) {
        let names: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
        let refused = ApiError::new(
            ErrorCode::MethodNotAllowed,
            format!("use {} on this route", names.join(" or ")),
        );
        // RFC 9110 (15.5.6): a 405 names the methods the route does take.
        return Ok(HttpResponse::error(&refused).with_header("allow", &names.join(", ")));
    }
    match route {
        Route::Health => return Ok(health::health(app, request).await),
        Route::OpenApi => return Ok(HttpResponse::ok(&openapi::document(app.config))),
        _ => {}
    }
    let caller = authenticate(app, request).await?;
    let method = request.method;
    if let Err(limited) = within_rate(app, &caller, route.class(method)).await {
        return Ok(limited);
    }
    match (route, table) {
        (Route::Enqueue, _) => embeddings::enqueue(app, &caller, request).await,
        (Route::Tables, _) => embeddings::tables(app, &caller),
        (Route::Status, _) => status::all(app, &caller).await,
        (Route::TableStatus(name), _) => status::one(app, &caller, name).await,
        (Route::Migration(name), _) => status::migrate(app, &caller, name).await,
        (Route::Jobs, _) => jobs::jobs(app, &caller, request).await,
        (Route::Job(id), _) => jobs::job(app, &caller, id).await,
        (Route::RetryJob(id), _) => jobs::retry(app, &caller, id).await,
        (Route::Backfill, _) => backfill::backfill(app, &caller, request).await,
        (Route::Embed, _) => search::embed(app, &caller, request).await,
        (Route::Query, _) => search::query(app, &caller, request).await,
        (Route::Service { route, service }, _) => {
            search::service_route(app, &caller, route, service, request).await
        }
        (Route::ApiKeys, _) if method == Method::Post => keys::create(app, &caller, request).await,
        (Route::ApiKeys, _) => keys::list(app, &caller).await,
        (Route::ApiKey(id), _) => keys::revoke(app, &caller, id).await,
        (Route::Records(_), Some(table)) if method == Method::Post => {
            records::create(app, &caller, table, request).await
        }
        (Route::Records(_), Some(table)) => records::list(app, &caller, table, request).await,
        (Route::Record(_, id), Some(table)) => match method {
            Method::Patch => records::update(app, &caller, table, id, request).await,
            Method::Delete => records::delete(app, &caller, table, id).await,
            _ => records::get(app, &caller, table, id, request).await,
        },
        (Route::Health | Route::OpenApi | Route::Records(_) | Route::Record(..), _) => {
            Err(no_route())
        }
    }
}

fn no_route() -> crate::error::Error {
    ApiError::not_found("no such route").into()
}
