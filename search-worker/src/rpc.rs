//! search-worker's RPC methods ([`shared::rpc`]), served. Each reads its arguments the way the
//! HTTP API reads a body, runs, and answers with an outcome: its errors are one type,
//! [`ApiError`], turned into data in this one place.

use serde::Serialize;
use serde_json::Value;
use shared::message::EmbeddingJob;
use shared::rpc::{self, argument, method, EnqueueRequest, Enqueued};
use shared::search::{EmbedRequest, GrayZoneRequest, QueryRequest, SearchRequest};
use shared::{enqueue, ApiError, Config, ErrorCode};
use uuid::Uuid;
use worker_kit::embedder::Embedder;

use crate::embed::embed;
use crate::health::health;
use crate::ports::{App, JobQueue, Store, VectorIndexes};
use crate::search::{gray_zone, query, search};

/// Runs `method` with `args` and answers with its outcome; one log line per call that fails (a
/// success writes none, as `HttpResponse::log` says why).
pub(crate) async fn call<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    queue: &impl JobQueue,
    method: &str,
    args: Vec<Value>,
) -> Value {
    let result = dispatch(app, queue, method, args).await;
    if let Err(error) = &result {
        if error.code == ErrorCode::Internal || error.status() >= 500 {
            tracing::warn!(method, outcome = error.code.as_str(), error = %error.message, "rpc");
        } else {
            tracing::info!(method, outcome = error.code.as_str(), "rpc");
        }
    }
    rpc::outcome(result)
}

async fn dispatch<S: Store, E: Embedder, V: VectorIndexes>(
    app: &App<'_, S, E, V>,
    queue: &impl JobQueue,
    method: &str,
    args: Vec<Value>,
) -> Result<Value, ApiError> {
    let mut args = args.into_iter();
    let mut next = || args.next().unwrap_or(Value::Null);
    match method {
        method::SEARCH => {
            let organization_id = organization(next())?;
            let service: String = argument("service", next())?;
            let request: SearchRequest = argument("request", next())?;
            answer(search(app, &organization_id, &service, &request).await?)
        }
        method::GRAY_ZONE => {
            let organization_id = organization(next())?;
            let service: String = argument("service", next())?;
            let request: GrayZoneRequest = argument("request", next())?;
            answer(gray_zone(app, &organization_id, &service, &request).await?)
        }
        method::EMBED => {
            let organization_id = organization(next())?;
            let request: EmbedRequest = argument("request", next())?;
            answer(embed(app, &organization_id, &request).await?)
        }
        method::QUERY => {
            let organization_id = organization(next())?;
            let request: QueryRequest = argument("request", next())?;
            answer(query(app, &organization_id, &request).await?)
        }
        method::ENQUEUE => {
            let organization_id = organization(next())?;
            let request: EnqueueRequest = argument("request", next())?;
            let job = job(app.config, &organization_id, &request, Uuid::new_v4())?;
            queue.send(&job).await.map_err(|fault| {
                tracing::error!(job_id = %job.job_id, error = %fault, "queue send failed");
                ApiError::unavailable("the queue is unavailable; retry later")
            })?;
            tracing::info!(job_id = %job.job_id, organization_id, model = %job.model, "job enqueued");
            answer(Enqueued {
                job_id: job.job_id,
                model: job.model,
            })
        }
        method::HEALTH => {
            // Optional: without one, D1's answer alone.
            let organization_id = match next() {
                Value::Null => None,
                given => Some(organization(given)?),
            };
            health(app, organization_id.as_deref()).await
        }
        other => Err(ApiError::not_found(format!(
            "search-worker has no method `{other}`"
        ))),
    }
}

fn answer(value: impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(|_| ApiError::internal())
}

/// The organization a call is scoped to. search-worker trusts it (only bound Workers reach
/// it), but it must be one: a non-blank string.
fn organization(value: Value) -> Result<String, ApiError> {
    match value {
        Value::String(id) if !id.trim().is_empty() => Ok(id),
        _ => Err(ApiError::invalid(
            "`organizationId` must be a non-blank string",
        )),
    }
}

/// The job `enqueue` sends, resolved by the enqueue rule ([`enqueue::resolve`]) with no access
/// check of its own: search-worker trusts the Workers bound to it. It is sent as a custom
/// pipeline's job: the consumer writes its row.
pub(crate) fn job(
    config: &Config,
    organization_id: &str,
    request: &EnqueueRequest,
    job_id: Uuid,
) -> Result<EmbeddingJob, ApiError> {
    let resolved = enqueue::resolve(config, request.asked(), enqueue::trusted)?;
    Ok(EmbeddingJob::new(
        job_id,
        organization_id,
        resolved.model.name,
        request.text.as_str(),
        resolved.target.map(|target| target.names()),
    ))
}
