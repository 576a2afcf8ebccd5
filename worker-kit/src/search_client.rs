//! The Rust client of search-worker, for any workers-rs Worker bound to it: the gateway's one
//! way in, and an application's. Calls are Workers RPC over the service binding (see
//! [`shared::rpc`] for the methods and the outcome each answers with); each method here takes
//! and returns the HTTP API's own types.
//!
//! ```ignore
//! let search = SearchClient::new(ServiceBinding::from_env(&env, "SEARCH")?);
//! let matches = search
//!     .search(&organization_id, "claimSimilarity", &SearchRequest::text("Police arrested three"))
//!     .await?;
//! ```
//!
//! A binding that throws (search-worker down, or deployed without a method) is a
//! [`Fault`], logged here and answered as `unavailable`: the caller sees one error type,
//! [`ApiError`], whatever failed.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use shared::rpc::{self, method, EnqueueRequest, Enqueued};
use shared::search::{
    EmbedRequest, EmbedResponse, GrayZoneRequest, GrayZoneResponse, Match, QueryAnswer,
    QueryRequest, SearchRequest,
};
use shared::ApiError;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::{Array, Function, Promise, Reflect};
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::Fault;

/// How a call reaches search-worker: the service binding in a Worker, a fake under test.
// A Worker runs on one thread: no caller needs the future to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Transport {
    /// Calls `method` with `args` and returns its outcome as it came back.
    async fn call(&self, method: &'static str, args: Vec<Value>) -> Result<Value, Fault>;
}

/// A service binding to search-worker, called over Workers RPC.
#[derive(Debug, Clone)]
pub struct ServiceBinding(JsValue);

impl ServiceBinding {
    pub fn from_env(env: &Env, binding: &str) -> Result<Self, Fault> {
        crate::binding(env, binding).map(ServiceBinding)
    }
}

impl Transport for ServiceBinding {
    async fn call(&self, method: &'static str, args: Vec<Value>) -> Result<Value, Fault> {
        let fault = |what: &str, error: &JsValue| {
            let message = error
                .dyn_ref::<worker::js_sys::Error>()
                .map_or_else(|| format!("{error:?}"), |e| String::from(e.message()));
            Fault(format!("search-worker `{method}`: {what}: {message}"))
        };
        let function: Function = Reflect::get(&self.0, &JsValue::from_str(method))
            .map_err(|e| fault("no such method", &e))?
            .unchecked_into();
        let arguments = args
            .iter()
            .map(crate::to_plain)
            .collect::<Result<Array, Fault>>()?;
        // `Reflect.apply`, not `function.apply(…)`: the stub answers any property, `apply`
        // included, as a remote method of that name.
        let pending = Reflect::apply(&function, &self.0, &arguments)
            .map_err(|e| fault("the call threw", &e))?;
        // An RPC call answers with a thenable, not a `Promise`: resolving it makes one.
        let answer = JsFuture::from(Promise::resolve(&pending))
            .await
            .map_err(|e| fault("the call failed", &e))?;
        serde_wasm_bindgen::from_value(answer).map_err(|e| {
            Fault(format!(
                "search-worker `{method}` answered a non-JSON value: {e}"
            ))
        })
    }
}

/// search-worker's methods, typed.
#[derive(Debug, Clone)]
pub struct SearchClient<T> {
    transport: T,
}

impl<T: Transport> SearchClient<T> {
    pub fn new(transport: T) -> Self {
        SearchClient { transport }
    }

    /// The transport, for a test to look at what was sent.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// A search service's nearest records to `request.text`, each classified.
    pub async fn search(
        &self,
        organization_id: &str,
        service: &str,
        request: &SearchRequest,
    ) -> Result<Vec<Match>, ApiError> {
        let args = vec![text(organization_id), text(service), value(request)?];
        self.call(method::SEARCH, args).await
    }

    /// The same matches, split into the confident and those in the service's gray zone.
    pub async fn gray_zone(
        &self,
        organization_id: &str,
        service: &str,
        request: &GrayZoneRequest,
    ) -> Result<GrayZoneResponse, ApiError> {
        let args = vec![text(organization_id), text(service), value(request)?];
        self.call(method::GRAY_ZONE, args).await
    }

    /// The raw vector of a text.
    pub async fn embed(
        &self,
        organization_id: &str,
        request: &EmbedRequest,
    ) -> Result<EmbedResponse, ApiError> {
        let args = vec![text(organization_id), value(request)?];
        self.call(method::EMBED, args).await
    }

    /// A vector query, as Vectorize takes one.
    pub async fn query(
        &self,
        organization_id: &str,
        request: &QueryRequest,
    ) -> Result<QueryAnswer, ApiError> {
        let args = vec![text(organization_id), value(request)?];
        self.call(method::QUERY, args).await
    }

    /// An embedding job on the queue.
    pub async fn enqueue(
        &self,
        organization_id: &str,
        request: &EnqueueRequest,
    ) -> Result<Enqueued, ApiError> {
        let args = vec![text(organization_id), value(request)?];
        self.call(method::ENQUEUE, args).await
    }

    /// search-worker's own health: D1 reachable and, for an organization, what its own tables
    /// and query vectors take in the isolate's caches (nothing of another's). Give one only for
    /// a caller who may administer it.
    pub async fn health(&self, organization_id: Option<&str>) -> Result<Value, ApiError> {
        let args = vec![organization_id.map_or(Value::Null, text)];
        self.call(method::HEALTH, args).await
    }

    async fn call<R: DeserializeOwned>(
        &self,
        method: &'static str,
        args: Vec<Value>,
    ) -> Result<R, ApiError> {
        let answer = self.transport.call(method, args).await.map_err(|fault| {
            tracing::error!(method, error = %fault, "search-worker call failed");
            ApiError::unavailable("search is unavailable; retry later")
        })?;
        rpc::from_outcome(answer).inspect_err(|error| {
            if error.code == shared::ErrorCode::Internal {
                tracing::error!(method, error = %error, "search-worker answered an error");
            }
        })
    }
}

fn text(value: &str) -> Value {
    Value::String(value.to_owned())
}

fn value(request: &impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(request).map_err(|_| ApiError::internal())
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;
    use shared::ErrorCode;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    /// Answers every call with `answer` and records what it was sent.
    struct Fake {
        answer: Result<Value, Fault>,
        sent: RefCell<Vec<(&'static str, Vec<Value>)>>,
    }

    impl Transport for Fake {
        async fn call(&self, method: &'static str, args: Vec<Value>) -> Result<Value, Fault> {
            self.sent.borrow_mut().push((method, args));
            self.answer.clone()
        }
    }

    fn client(answer: Result<Value, Fault>) -> SearchClient<Fake> {
        SearchClient::new(Fake {
            answer,
            sent: RefCell::default(),
        })
    }

    fn request() -> SearchRequest {
        SearchRequest {
            text: "query".into(),
            filters: Some(json!({"story_id": "s1"})),
            limit: Some(3),
            threshold: None,
            mode: None,
        }
    }

    #[wasm_bindgen_test]
    async fn a_call_sends_the_organization_first_and_reads_the_value() {
        let found = json!([{"id": "c1", "score": 0.5, "classification": "NEW", "metadata": {}}]);
        let search = client(Ok(json!({"ok": true, "value": found})));
        let matches = search
            .search("org_a", "claimSimilarity", &request())
            .await
            .unwrap();
        assert_eq!(matches[0].id, "c1");
        assert_eq!(
            search.transport().sent.borrow()[0],
            (
                "search",
                vec![
                    json!("org_a"),
                    json!("claimSimilarity"),
                    json!({"text": "query", "filters": {"story_id": "s1"}, "limit": 3})
                ]
            )
        );
    }

    #[wasm_bindgen_test]
    async fn errors_keep_their_code_and_a_failed_call_is_unavailable() {
        let refused = client(Ok(
            json!({"ok": false, "error": {"code": "not_found", "status": 404, "message": "no such service"}}),
        ));
        let error = refused.search("org_a", "x", &request()).await.unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (ErrorCode::NotFound, "no such service")
        );

        let down = client(Err(Fault("the binding threw".into())));
        let error = down.health(None).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unavailable);
        assert!(
            !error.message.contains("threw"),
            "a fault's detail stays in the logs"
        );

        let odd = client(Ok(json!({"value": 1})));
        assert_eq!(
            odd.health(Some("org_a")).await.unwrap_err().code,
            ErrorCode::Internal
        );
    }

    #[wasm_bindgen_test]
    fn values_cross_as_plain_js_values_even_past_two_to_the_53() {
        let value = json!({"n": 1_036_846_076_197_336_320_u64, "list": [1.5, "x", null]});
        let plain = crate::to_plain(&value).unwrap();
        let back: Value = serde_wasm_bindgen::from_value(plain).unwrap();
        assert_eq!(back["n"].as_f64(), Some(1_036_846_076_197_336_320_f64));
        assert_eq!(back["list"], json!([1.5, "x", null]));
        assert!(
            value
                .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
                .is_err(),
            "what the transport used to do, and why it no longer does"
        );
    }
}
