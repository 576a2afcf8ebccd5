//! The HTTP side: the Workers AI REST route, `/health`, `/stats`, and `/faults` (read or change
//! the fault plan while running).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use shared::ai::{check_texts, EmbeddingRequest, EmbeddingResult, Envelope, Notice};

use crate::batcher::Batcher;
use crate::catalogue::Catalogue;
use crate::faults::{FaultPlan, Faults};
use crate::stats::Stats;

/// The header that names a stand-in answer.
pub const STAND_IN_HEADER: &str = "x-local-ai-stand-in";

/// Error codes in the envelope, as the Cloudflare API numbers them.
const CODE_BAD_INPUT: u32 = 5006;
const CODE_NO_SUCH_MODEL: u32 = 5007;
const CODE_CAPACITY: u32 = 3040;
const CODE_INTERNAL: u32 = 3043;

#[derive(Debug, Clone)]
pub struct AppState {
    pub catalogue: Arc<Catalogue>,
    pub batcher: Batcher,
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/client/v4/accounts/{account}/ai/run/{*model}", post(run))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .route("/faults", get(faults).put(set_faults))
        .with_state(state)
}

fn error(status: StatusCode, code: u32, message: impl Into<String>) -> Response {
    (
        status,
        Json(Envelope::<EmbeddingResult>::error(code, message)),
    )
        .into_response()
}

async fn run(
    State(state): State<AppState>,
    Path((_account, model)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    state.stats.call();
    let response = embed(&state, &model, &body).await;
    if !response.status().is_success() {
        state.stats.error();
    }
    tracing::info!(
        model,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis(),
        "run"
    );
    response
}

async fn embed(state: &AppState, model: &str, body: &[u8]) -> Response {
    let verdict = state.faults.next();
    if let Some(delay) = verdict.delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = verdict.fail_with {
        state.stats.injected_failure();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = if status == StatusCode::TOO_MANY_REQUESTS {
            CODE_CAPACITY
        } else {
            CODE_INTERNAL
        };
        return error(
            status,
            code,
            format!("injected failure ({})", status.as_u16()),
        );
    }
    // `model` is the route's tail, which the path extractor has already percent-decoded.
    let Some(served) = state.catalogue.get(model) else {
        return error(
            StatusCode::BAD_REQUEST,
            CODE_NO_SUCH_MODEL,
            format!("no such model `{model}`"),
        );
    };
    let request: EmbeddingRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                CODE_BAD_INPUT,
                format!("bad input: {e}"),
            )
        }
    };
    let texts = request.text.into_vec();
    if let Err(message) = check_texts(&texts) {
        return error(StatusCode::BAD_REQUEST, CODE_BAD_INPUT, message);
    }
    let count = texts.len();
    let batch = match state
        .batcher
        .embed(Arc::clone(&served.encoder), texts)
        .await
    {
        Ok(batch) => batch,
        Err(message) => return error(StatusCode::INTERNAL_SERVER_ERROR, CODE_INTERNAL, message),
    };
    let data: Vec<Vec<f32>> = batch
        .vectors
        .into_iter()
        .map(|mut v| {
            v.resize(served.dimensions, 0.0);
            v
        })
        .collect();
    let mut messages = Vec::new();
    if batch.truncated > 0 {
        messages.push(Notice {
            code: 0,
            message: format!(
                "{} of {count} texts were truncated to {} tokens",
                batch.truncated,
                crate::encoder::MAX_TOKENS
            ),
        });
    }
    if let Some(note) = &served.stand_in {
        messages.push(Notice {
            code: 0,
            message: note.clone(),
        });
    }
    let envelope = Envelope::ok(
        EmbeddingResult {
            shape: vec![count, served.dimensions],
            data,
            pooling: Some(served.encoder.pooling.as_str().to_owned()),
        },
        messages,
    );
    let mut response = Json(envelope).into_response();
    if let Some(note) = &served.stand_in {
        if let Ok(value) = HeaderValue::from_str(note) {
            response.headers_mut().insert(STAND_IN_HEADER, value);
        }
    }
    response
}

async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    let models: Vec<_> = state
        .catalogue
        .iter()
        .map(|s| json!({"name": s.name, "dimensions": s.dimensions, "weights": s.encoder.label, "standIn": s.stand_in.is_some()}))
        .collect();
    Json(json!({"ok": true, "models": models}))
}

async fn stats(State(state): State<AppState>) -> Json<crate::stats::Snapshot> {
    Json(state.stats.snapshot())
}

async fn faults(State(state): State<AppState>) -> Json<FaultPlan> {
    Json(state.faults.plan())
}

async fn set_faults(State(state): State<AppState>, body: Bytes) -> Response {
    let plan = match serde_json::from_slice::<FaultPlan>(&body)
        .map_err(|e| e.to_string())
        .and_then(|plan| plan.check().map(|()| plan))
    {
        Ok(plan) => plan,
        Err(message) => return error(StatusCode::BAD_REQUEST, CODE_BAD_INPUT, message),
    };
    tracing::warn!(?plan, "fault plan changed");
    state.faults.set_plan(plan.clone());
    Json(plan).into_response()
}
