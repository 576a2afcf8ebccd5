//! The HTTP side: Vectorize's REST API under `/client/v4/accounts/{account}/vectorize/v2`
//! (any account, any bearer token), and the stand-in's own `/health` and `/stats`.

mod admin;
mod body;
mod envelope;
mod indexes;
mod metadata_indexes;
mod query;
mod vectors;

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use envelope::Refused;

use crate::catalog::Catalog;
use crate::error::{Error, Kind};

/// The header the Workers binding adapter sends, so that its writes get the Workers limit.
pub const CALLER_HEADER: &str = "x-local-vectorize-caller";

pub type AppState = Arc<Catalog>;

pub fn router(catalog: AppState) -> Router {
    let index = "/client/v4/accounts/{account}/vectorize/v2/indexes/{name}";
    Router::new()
        .route(
            "/client/v4/accounts/{account}/vectorize/v2/indexes",
            get(indexes::list).post(indexes::create),
        )
        .route(index, get(indexes::get).delete(indexes::delete))
        .route(&format!("{index}/info"), get(indexes::info))
        .route(
            &format!("{index}/metadata_index/create"),
            post(metadata_indexes::create),
        )
        .route(
            &format!("{index}/metadata_index/list"),
            get(metadata_indexes::list),
        )
        .route(
            &format!("{index}/metadata_index/delete"),
            post(metadata_indexes::delete),
        )
        .route(&format!("{index}/insert"), post(vectors::insert))
        .route(&format!("{index}/upsert"), post(vectors::upsert))
        .route(&format!("{index}/query"), post(query::query))
        // The REST API has no such route (the binding sends `vectorId` to `query`); kept for
        // callers that name the operation.
        .route(&format!("{index}/query_by_id"), post(query::query_by_id))
        // The binding's own names for these two, as the Workers runtime sends them.
        .route(&format!("{index}/get_by_ids"), post(vectors::get_by_ids))
        .route(&format!("{index}/getByIds"), post(vectors::get_by_ids))
        .route(
            &format!("{index}/delete_by_ids"),
            post(vectors::delete_by_ids),
        )
        .route(
            &format!("{index}/deleteByIds"),
            post(vectors::delete_by_ids),
        )
        .route("/health", get(admin::health))
        .route("/stats", get(admin::stats))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(middleware::from_fn(log_refusals))
        .with_state(catalog)
}

async fn no_route(request: Request) -> Response {
    Error::new(
        Kind::NoRoute,
        format!(
            "No route for that URI: {} {}",
            request.method(),
            request.uri().path()
        ),
    )
    .into_response()
}

/// One log line per refused request.
async fn log_refusals(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(refused) = response.extensions().get::<Refused>() {
        tracing::warn!(
            %method,
            path,
            status = response.status().as_u16(),
            code = refused.code,
            message = %refused.message,
            "request refused"
        );
    }
    response
}
