//! `POST /embed`: the raw vector of a text.

use shared::ai::FailureKind;
use shared::search::{EmbedRequest, EmbedResponse, Scoped};
use shared::{ApiError, ErrorCode};
use worker_kit::embedder::Embedder;
use worker_kit::http::{HttpRequest, HttpResponse};

use crate::ports::{App, Store};

pub(crate) async fn embed<S: Store, E: Embedder>(
    app: &App<S, E>,
    request: &HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let scoped: Scoped<EmbedRequest> = request.json()?;
    let model = scoped.request.resolve(app.config)?;
    let mut vectors = app
        .embedder
        .embed(model, std::slice::from_ref(&scoped.request.text))
        .await
        .map_err(|e| {
            tracing::warn!(model = model.name, kind = ?e.kind, error = %e, "embedding failed");
            match e.kind {
                FailureKind::Transient => {
                    ApiError::unavailable("the embedding model is unavailable; retry later")
                }
                FailureKind::Permanent => ApiError::new(
                    ErrorCode::ModelFailed,
                    "the embedding model refused the text",
                ),
            }
        })?;
    let vector = vectors.pop().ok_or_else(ApiError::internal)?;
    Ok(HttpResponse::ok(&EmbedResponse {
        model: model.name.to_owned(),
        dimensions: vector.len(),
        vector,
    }))
}
