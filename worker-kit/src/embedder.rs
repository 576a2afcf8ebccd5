//! Text embedding for the workers: one trait, two implementations.
//!
//! - [`AiBinding`]: the `AI` binding, in production.
//! - [`RestEmbedder`]: the Workers AI REST API (`POST {base}/client/v4/accounts/{account}/ai/run/{model}`),
//!   chosen when the variable `AI_REST_URL` is set: locally it points at local-ai, and it can
//!   point at Cloudflare's API as well (with the secret `AI_API_TOKEN`).
//!
//! Both send at most 100 texts a call and check every answer's shape and dimension against the
//! model catalogue in `shared`.

use shared::ai::{
    check_result, check_texts, classify_binding_error, classify_status, EmbeddingRequest,
    EmbeddingResult, Envelope, FailureKind, Texts,
};
use shared::models::{ModelSpec, MAX_TEXTS_PER_CALL};
use worker::wasm_bindgen::JsValue;
use worker::{Ai, Env, Fetch, Headers, Method, Request, RequestInit};

use crate::Fault;

/// The `AI` binding.
pub const AI: &str = "AI";
/// Base URL of a Workers AI REST endpoint; when set, the REST embedder is used.
pub const AI_REST_URL: &str = "AI_REST_URL";
/// The account id in the REST path.
pub const AI_ACCOUNT_ID: &str = "AI_ACCOUNT_ID";
/// The REST API token (a secret).
pub const AI_API_TOKEN: &str = "AI_API_TOKEN";

/// A failed embedding call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EmbedError {
    pub kind: FailureKind,
    pub message: String,
}

impl EmbedError {
    /// Whether trying again later may succeed (AI 429/5xx, a timeout).
    pub fn is_transient(&self) -> bool {
        self.kind == FailureKind::Transient
    }

    fn transient(message: impl Into<String>) -> Self {
        EmbedError {
            kind: FailureKind::Transient,
            message: message.into(),
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        EmbedError {
            kind: FailureKind::Permanent,
            message: message.into(),
        }
    }
}

/// Embeds texts with a model of the catalogue.
// A worker runs on one thread: its futures need not be `Send`, so `async fn` is the plain form.
#[allow(async_fn_in_trait)]
pub trait Embedder {
    /// One call of at most [`MAX_TEXTS_PER_CALL`] texts.
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError>;

    /// Embeds any number of texts in as few calls as the 100-text limit allows; the vectors come
    /// back in order, each checked against the catalogue.
    async fn embed(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(MAX_TEXTS_PER_CALL) {
            check_texts(chunk).map_err(EmbedError::permanent)?;
            let result = self.embed_call(model, chunk).await?;
            vectors
                .extend(check_result(model, chunk.len(), result).map_err(EmbedError::permanent)?);
        }
        Ok(vectors)
    }
}

fn request(model: &ModelSpec, texts: &[String]) -> EmbeddingRequest {
    EmbeddingRequest {
        text: Texts::Many(texts.to_vec()),
        pooling: Some(model.pooling.as_str().to_owned()),
    }
}

#[derive(Debug)]
pub struct AiBinding(Ai);

impl Embedder for AiBinding {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        self.0
            .run::<_, EmbeddingResult>(model.name, request(model, texts))
            .await
            .map_err(|e| {
                let message = format!("AI binding: {e}");
                EmbedError {
                    kind: classify_binding_error(&message),
                    message,
                }
            })
    }
}

#[derive(Debug)]
pub struct RestEmbedder {
    pub base_url: String,
    pub account_id: String,
    pub api_token: Option<String>,
}

impl RestEmbedder {
    pub fn url(&self, model: &ModelSpec) -> String {
        format!(
            "{}/client/v4/accounts/{}/ai/run/{}",
            self.base_url.trim_end_matches('/'),
            self.account_id,
            model.name
        )
    }
}

impl Embedder for RestEmbedder {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        let body = serde_json::to_string(&request(model, texts))
            .map_err(|e| EmbedError::permanent(e.to_string()))?;
        let headers = Headers::new();
        let header_error = |e: worker::Error| EmbedError::permanent(format!("request header: {e}"));
        headers
            .set("content-type", "application/json")
            .map_err(header_error)?;
        if let Some(token) = &self.api_token {
            headers
                .set("authorization", &format!("Bearer {token}"))
                .map_err(header_error)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(JsValue::from_str(&body)));
        let url = self.url(model);
        let request = Request::new_with_init(&url, &init)
            .map_err(|e| EmbedError::permanent(format!("{url}: {e}")))?;
        let mut response = Fetch::Request(request)
            .send()
            .await
            .map_err(|e| EmbedError::transient(format!("{url}: {e}")))?;
        let status = response.status_code();
        // Bytes, not text: a batch's answer is about 400 KB of JSON, read once, not transcoded.
        let body = response
            .bytes()
            .await
            .map_err(|e| EmbedError::transient(format!("{url}: reading the answer: {e}")))?;
        let envelope: Option<Envelope<EmbeddingResult>> = serde_json::from_slice(&body).ok();
        match envelope {
            Some(Envelope {
                success: true,
                result: Some(result),
                ..
            }) if status == 200 => Ok(result),
            envelope => {
                let detail = envelope
                    .and_then(|e| e.errors.into_iter().next())
                    .map_or_else(
                        || String::from_utf8_lossy(&body).chars().take(200).collect(),
                        |e| format!("{}: {}", e.code, e.message),
                    );
                let kind = if status == 200 {
                    FailureKind::Permanent
                } else {
                    classify_status(status)
                };
                Err(EmbedError {
                    kind,
                    message: format!("Workers AI answered {status}: {detail}"),
                })
            }
        }
    }
}

/// The embedder the worker's configuration asks for.
#[derive(Debug)]
pub enum AnyEmbedder {
    Binding(AiBinding),
    Rest(RestEmbedder),
}

impl AnyEmbedder {
    /// The REST embedder when `AI_REST_URL` is set, else the `AI` binding.
    pub fn from_env(env: &Env) -> Result<Self, Fault> {
        if let Ok(base_url) = env.var(AI_REST_URL) {
            return Ok(AnyEmbedder::Rest(RestEmbedder {
                base_url: base_url.to_string(),
                account_id: env
                    .var(AI_ACCOUNT_ID)
                    .map_or_else(|_| "local".to_owned(), |v| v.to_string()),
                api_token: env.secret(AI_API_TOKEN).ok().map(|s| s.to_string()),
            }));
        }
        let ai = env.ai(AI).map_err(|e| {
            Fault(format!(
                "neither {AI_REST_URL} nor the `{AI}` binding is configured: {e}"
            ))
        })?;
        Ok(AnyEmbedder::Binding(AiBinding(ai)))
    }
}

impl Embedder for AnyEmbedder {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        match self {
            AnyEmbedder::Binding(binding) => binding.embed_call(model, texts).await,
            AnyEmbedder::Rest(rest) => rest.embed_call(model, texts).await,
        }
    }
}
