//! The exported functions worker-build makes methods of search-worker's entrypoint: each reads
//! its arguments as JSON values and answers with [`rpc::call`]'s outcome, as a plain object.

use serde_json::Value;
use shared::rpc::method;
use shared::ApiError;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::Env;

use crate::{bindings, rpc};

#[wasm_bindgen(module = "cloudflare:workers")]
extern "C" {
    /// The Worker's bindings, as the runtime offers them to any module.
    #[wasm_bindgen(thread_local_v2, js_name = env)]
    static WORKER_ENV: JsValue;
}

fn worker_env() -> Env {
    WORKER_ENV.with(|env| env.clone().unchecked_into())
}

#[wasm_bindgen]
pub async fn search(organization_id: JsValue, service: JsValue, request: JsValue) -> JsValue {
    serve(method::SEARCH, &[organization_id, service, request]).await
}

#[wasm_bindgen(js_name = grayZone)]
pub async fn gray_zone(organization_id: JsValue, service: JsValue, request: JsValue) -> JsValue {
    serve(method::GRAY_ZONE, &[organization_id, service, request]).await
}

#[wasm_bindgen]
pub async fn embed(organization_id: JsValue, request: JsValue) -> JsValue {
    serve(method::EMBED, &[organization_id, request]).await
}

#[wasm_bindgen]
pub async fn query(organization_id: JsValue, request: JsValue) -> JsValue {
    serve(method::QUERY, &[organization_id, request]).await
}

#[wasm_bindgen]
pub async fn enqueue(organization_id: JsValue, request: JsValue) -> JsValue {
    serve(method::ENQUEUE, &[organization_id, request]).await
}

/// `health(organizationId?)`: a caller that gives no organization (or an older one, which
/// gives no argument) gets D1's answer alone.
#[wasm_bindgen]
pub async fn health(organization_id: JsValue) -> JsValue {
    serve(method::HEALTH, &[organization_id]).await
}

/// Reads the arguments as JSON values, runs the method over the Worker's bindings, and hands
/// its outcome back as a plain object.
async fn serve(method: &'static str, args: &[JsValue]) -> JsValue {
    let env = worker_env();
    let outcome = match args
        .iter()
        .map(|arg| serde_wasm_bindgen::from_value::<Value>(arg.clone()))
        .collect::<std::result::Result<Vec<Value>, _>>()
    {
        Err(e) => shared::rpc::outcome::<()>(Err(ApiError::invalid(format!(
            "an argument of `{method}` is not a plain value: {e}"
        )))),
        Ok(args) => match bindings::app(&env) {
            Ok(app) => rpc::call(&app, &bindings::EnvQueue(env.clone()), method, args).await,
            Err(fault) => {
                tracing::error!(method, error = %fault, "bindings unavailable");
                shared::rpc::outcome::<()>(Err(ApiError::internal()))
            }
        },
    };
    worker_kit::to_plain(&outcome).unwrap_or(JsValue::NULL)
}
