//! Vectorize, through a hand-written binding: `worker` has none.
//!
//! The binding object takes plain JS values: vectors as arrays of objects, metadata and filters
//! as plain objects (never JS `Map`s, which Vectorize would store as empty). Every value crosses
//! through `serde_wasm_bindgen`'s JSON-compatible serializer, which makes maps plain objects.
//!
//! Limits that shape the callers: an index has one dimension (so one index per model dimension),
//! vector ids are at most 64 bytes (`shared::vector::vector_id`), `topK` is at most 100, or 50
//! when values or all metadata are returned, `deleteByIds` takes at most 100 ids, and writes
//! become visible only after seconds.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::js_sys::Promise;
use worker::wasm_bindgen_futures::JsFuture;
use worker::Env;

use crate::Fault;

/// Most matches one query may return without metadata or values.
pub const MAX_TOP_K: u32 = 100;
/// Most matches one query may return with values or all metadata.
pub const MAX_TOP_K_WITH_METADATA: u32 = 50;

#[wasm_bindgen]
extern "C" {
    /// The JS binding object of a Vectorize index.
    #[wasm_bindgen(extends = worker::js_sys::Object)]
    #[derive(Debug, Clone)]
    pub type VectorizeSys;

    #[wasm_bindgen(method, catch)]
    fn upsert(this: &VectorizeSys, vectors: JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch)]
    fn query(this: &VectorizeSys, vector: JsValue, options: JsValue) -> Result<Promise, JsValue>;

    #[wasm_bindgen(method, catch, js_name = deleteByIds)]
    fn delete_by_ids(this: &VectorizeSys, ids: JsValue) -> Result<Promise, JsValue>;
}

/// One vector as Vectorize stores it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedVector {
    pub id: String,
    pub values: Vec<f32>,
    /// The organization: every query names one, so tenants never meet.
    pub namespace: String,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A query: `topK` nearest vectors of one namespace, filtered by metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryOptions {
    pub top_k: u32,
    pub namespace: String,
    /// `"none"`, `"indexed"` or `"all"`.
    pub return_metadata: &'static str,
    pub return_values: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<serde_json::Value>,
}

/// One match of a query.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueryMatch {
    pub id: String,
    pub score: f32,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
struct QueryResult {
    matches: Vec<QueryMatch>,
}

/// A Vectorize index, by its binding.
#[derive(Debug, Clone)]
pub struct Vectorize(VectorizeSys);

impl Vectorize {
    pub fn from_env(env: &Env, binding: &str) -> Result<Self, Fault> {
        Ok(Vectorize(crate::binding(env, binding)?.unchecked_into()))
    }

    pub async fn upsert(&self, vectors: &[IndexedVector]) -> Result<(), Fault> {
        let promise = self.0.upsert(to_js(vectors)?).map_err(js_fault)?;
        JsFuture::from(promise).await.map_err(js_fault)?;
        Ok(())
    }

    pub async fn delete(&self, ids: &[String]) -> Result<(), Fault> {
        let promise = self.0.delete_by_ids(to_js(ids)?).map_err(js_fault)?;
        JsFuture::from(promise).await.map_err(js_fault)?;
        Ok(())
    }

    pub async fn query(
        &self,
        vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault> {
        let limit = if options.return_values || options.return_metadata == "all" {
            MAX_TOP_K_WITH_METADATA
        } else {
            MAX_TOP_K
        };
        if options.top_k > limit {
            return Err(Fault(format!(
                "Vectorize returns at most {limit} matches with these options"
            )));
        }
        let promise = self
            .0
            .query(to_js(vector)?, to_js(options)?)
            .map_err(js_fault)?;
        let result = JsFuture::from(promise).await.map_err(js_fault)?;
        let result: QueryResult = serde_wasm_bindgen::from_value(result)
            .map_err(|e| Fault(format!("Vectorize answered an unexpected shape: {e}")))?;
        Ok(result.matches)
    }
}

/// The plain JS value Vectorize expects: objects, arrays, numbers and strings only.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, Fault> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| Fault(format!("building a Vectorize argument: {e}")))
}

// By value so that it reads `.map_err(js_fault)`.
#[allow(clippy::needless_pass_by_value)]
fn js_fault(error: JsValue) -> Fault {
    let message = error
        .dyn_ref::<worker::js_sys::Error>()
        .map_or_else(|| format!("{error:?}"), |e| String::from(e.message()));
    Fault(format!("Vectorize: {message}"))
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;
    use worker::js_sys::{Array, Object, Reflect};

    fn get(value: &JsValue, key: &str) -> JsValue {
        Reflect::get(value, &JsValue::from_str(key)).unwrap()
    }

    fn is_plain_object(value: &JsValue) -> bool {
        value.is_object()
            && Object::get_prototype_of(value) == Object::get_prototype_of(&Object::new())
    }

    #[wasm_bindgen_test]
    fn vectors_cross_as_plain_objects_with_plain_metadata() {
        let mut metadata = serde_json::Map::new();
        metadata.insert("table".into(), "claims".into());
        metadata.insert("storyId".into(), "story_1".into());
        metadata.insert("year".into(), 2026.into());
        let vectors = [IndexedVector {
            id: "claims:clm_1".into(),
            values: vec![0.5, -0.25],
            namespace: "org_a".into(),
            metadata,
        }];
        let js = to_js(&vectors[..]).unwrap();
        assert!(Array::is_array(&js));
        let vector = Array::from(&js).get(0);
        assert!(is_plain_object(&vector));
        assert_eq!(get(&vector, "id").as_string().unwrap(), "claims:clm_1");
        assert_eq!(get(&vector, "namespace").as_string().unwrap(), "org_a");
        let values = get(&vector, "values");
        assert!(Array::is_array(&values));
        assert_eq!(Array::from(&values).get(1).as_f64(), Some(-0.25));
        let metadata = get(&vector, "metadata");
        assert!(is_plain_object(&metadata), "metadata must not be a Map");
        assert_eq!(get(&metadata, "storyId").as_string().unwrap(), "story_1");
        assert_eq!(get(&metadata, "year").as_f64(), Some(2026.0));
    }

    #[wasm_bindgen_test]
    fn query_options_use_vectorize_names_and_plain_filters() {
        let options = QueryOptions {
            top_k: 5,
            namespace: "org_a".into(),
            return_metadata: "all",
            return_values: false,
            filter: Some(serde_json::json!({"storyId": {"$in": ["s1", "s2"]}})),
        };
        let js = to_js(&options).unwrap();
        assert_eq!(get(&js, "topK").as_f64(), Some(5.0));
        assert_eq!(get(&js, "returnMetadata").as_string().unwrap(), "all");
        assert_eq!(get(&js, "returnValues").as_bool(), Some(false));
        let filter = get(&js, "filter");
        assert!(is_plain_object(&filter));
        let story = get(&filter, "storyId");
        assert!(is_plain_object(&story));
        assert!(Array::is_array(&get(&story, "$in")));
        let without = QueryOptions {
            filter: None,
            ..options
        };
        assert!(get(&to_js(&without).unwrap(), "filter").is_undefined());
    }
}
