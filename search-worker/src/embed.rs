//! Query vectors: `embed`, and the vector of every search's text. Both go through the
//! isolate's query cache, so the same text and model within the window make one AI call.

use shared::ai::FailureKind;
use shared::models::ModelSpec;
use shared::search::{EmbedRequest, EmbedResponse};
use shared::{ApiError, ErrorCode};
use worker_kit::embedder::Embedder;

use crate::ports::{App, Store, VectorIndexes};

pub(crate) async fn embed<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    request: &EmbedRequest,
) -> Result<EmbedResponse, ApiError> {
    let mut model = request.resolve(app.config)?;
    // A service's vectors are its table's active set's: while a model change builds a new set,
    // the old model's, so that what `embed` answers can be `query`'d.
    if let Some(table) = request
        .service
        .as_deref()
        .and_then(|s| app.config.service(s))
        .and_then(|s| app.config.table(&s.table))
    {
        let active = app
            .store
            .active_set(organization_id, &table.name)
            .await
            .map_err(|fault| {
                tracing::error!(error = %fault, table = %table.name, "reading the active set failed");
                ApiError::unavailable("the vector store is unavailable; retry later")
            })?;
        if let Some(active) = active.and_then(|a| shared::models::model(&a.set.model)) {
            model = active;
        }
    }
    let vector = vector_of(app, organization_id, model, &request.text).await?;
    Ok(EmbedResponse {
        model: model.name.to_owned(),
        dimensions: vector.len(),
        vector,
    })
}

/// The vector of `text` under `model`, from the organization's cache or the model.
pub(crate) async fn vector_of<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    organization_id: &str,
    model: &ModelSpec,
    text: &str,
) -> Result<Vec<f32>, ApiError> {
    let queries = &app.caches.queries;
    if let Some(vector) = queries.get(organization_id, model.name, text, app.now_ms) {
        return Ok(vector);
    }
    let mut vectors = app
        .embedder
        .embed(model, &[text.to_owned()])
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
    queries.put(
        organization_id,
        model.name,
        text,
        vector.clone(),
        app.now_ms,
    );
    Ok(vector)
}
