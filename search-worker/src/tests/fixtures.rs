//! What the tests build their cases from: the app over the fakes, seeded claims, the calls the
//! gateway makes and its reading of their outcomes, and an exact scan to hold answers to.

use serde_json::{json, Value};
use shared::sets::VectorSet;
use shared::topk::normalized;

use super::fakes::{FakeEmbedder, FakeIndexes, FakeQueue, FakeStore};
use crate::ports::App;
use crate::rpc;

pub(super) type TestApp = App<'static, FakeStore, FakeEmbedder, FakeIndexes>;

pub(super) fn app() -> TestApp {
    App {
        store: FakeStore::default(),
        embedder: FakeEmbedder::default(),
        indexes: FakeIndexes::default(),
        config: worker_kit::config::config(),
        caches: Box::leak(Box::default()),
        now_ms: 0,
    }
}

/// A 768-dimension unit vector at `angle` radians in its first two dimensions: the cosine
/// between two is the cosine of the angle between them.
pub(super) fn at(angle: f32) -> Vec<f32> {
    let mut v = vec![0.0; 768];
    v[0] = angle.cos();
    v[1] = angle.sin();
    v
}

/// Claims of `org_a` at known cosines from the query text "query": 1.0, 0.92, 0.87, 0.80, 0.65,
/// 0.30; one of `org_b` identical to the query.
pub(super) fn seeded() -> TestApp {
    let mut app = app();
    app.embedder.known.insert("query".into(), at(0.0));
    for (id, cosine, story) in [
        ("c1", 1.0f32, "s1"),
        ("c2", 0.92, "s2"),
        ("c3", 0.87, "s1"),
        ("c4", 0.80, "s2"),
        ("c5", 0.65, "s1"),
        ("c6", 0.30, "s1"),
    ] {
        app.store.put(
            "org_a",
            "claims",
            id,
            Some(&at(cosine.acos())),
            &json!({"story_id": story}),
        );
    }
    app.store.put(
        "org_b",
        "claims",
        "b1",
        Some(&at(0.0)),
        &json!({"story_id": "s1"}),
    );
    app
}

/// A method and its arguments.
pub(super) type Call = (&'static str, Vec<Value>);

/// A call's outcome, read the way the gateway reads it: a value (200) or an error's status with
/// the HTTP API's error body.
pub(super) struct Reply {
    pub(super) status: u16,
    pub(super) body: Value,
}

pub(super) async fn call_with(app: &TestApp, queue: &FakeQueue, (method, args): &Call) -> Reply {
    let outcome = rpc::call(app, queue, method, args.clone()).await;
    if outcome["ok"] == true {
        Reply {
            status: 200,
            body: outcome["value"].clone(),
        }
    } else {
        let status = u16::try_from(outcome["error"]["status"].as_u64().unwrap()).unwrap();
        Reply {
            status,
            body: json!({ "error": outcome["error"] }),
        }
    }
}

pub(super) async fn handle(app: &TestApp, call: &Call) -> Reply {
    call_with(app, &FakeQueue::default(), call).await
}

/// The call the gateway makes for a route: `post("/search/claimSimilarity", org, request)`.
// By value, so that a call reads like the request it builds: `post(path, org, json!(…))`.
#[allow(clippy::needless_pass_by_value)]
pub(super) fn post(path: &str, org: &str, request: Value) -> Call {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["search", service] => ("search", vec![json!(org), json!(service), request]),
        ["gray-zone", service] => ("grayZone", vec![json!(org), json!(service), request]),
        ["embed"] => ("embed", vec![json!(org), request]),
        ["query"] => ("query", vec![json!(org), request]),
        _ => panic!("no route {path}"),
    }
}

/// A search of `org`'s claims through the `claimSimilarity` service.
pub(super) fn claim_search(org: &str, request: Value) -> Call {
    post("/search/claimSimilarity", org, request)
}

/// A query of `org_a`'s claims for the `k` records nearest to `vector`.
pub(super) fn query_claims(vector: &[f32], k: usize) -> Call {
    post(
        "/query",
        "org_a",
        json!({"vector": vector, "topK": k, "table": "claims"}),
    )
}

pub(super) fn health() -> Call {
    ("health", vec![Value::Null])
}

/// `health` for an organization: what its administrators see.
pub(super) fn health_of(org: &str) -> Call {
    ("health", vec![json!(org)])
}

pub(super) fn ids(matches: &Value) -> Vec<&str> {
    matches
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

/// `org_a`'s claims in two sets: bge-small's (configured before, 384 dimensions), holding
/// `old_only`, and bge-base's (configured now), holding `new_only`. Neither is active yet.
pub(super) fn two_sets(app: &TestApp) -> (VectorSet, VectorSet) {
    let small = VectorSet {
        model: "@cf/baai/bge-small-en-v1.5".into(),
        location: "d1".into(),
    };
    let base = VectorSet {
        model: "@cf/baai/bge-base-en-v1.5".into(),
        location: "d1".into(),
    };
    let mut old = vec![0.0; 384];
    old[0] = 1.0;
    app.store.put_in(
        Some(small.clone()),
        "org_a",
        "claims",
        "old_only",
        Some(&old),
        &json!({}),
    );
    app.store.put_in(
        Some(base.clone()),
        "org_a",
        "claims",
        "new_only",
        Some(&at(0.0)),
        &json!({}),
    );
    (small, base)
}

/// `n` pseudo-random 768-dimension vectors (not unit length: the store holds what the model
/// returned), from a fixed seed.
pub(super) fn random_vectors(seed: u64, n: usize) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
        unit * 2.0 - 1.0
    };
    (0..n).map(|_| (0..768).map(|_| next()).collect()).collect()
}

/// The exact scan of every live vector of `org_a`'s claims, in the snapshot's order (the order
/// the rows were first written), as the search worker ranked before codes: ids and score bits.
pub(super) fn brute_force(
    vectors: &[(String, Vec<f32>)],
    query: &[f32],
    k: usize,
) -> Vec<(String, u32)> {
    let units: Vec<Vec<f32>> = vectors.iter().map(|(_, v)| normalized(v)).collect();
    shared::topk::top_k(
        &normalized(query),
        units.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
        k,
        -1.0,
    )
    .into_iter()
    .map(|(i, score)| (vectors[i].0.clone(), score.to_bits()))
    .collect()
}

pub(super) fn answer(body: &Value) -> Vec<(String, u32)> {
    body["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            #[allow(clippy::cast_possible_truncation)]
            let score = m["score"].as_f64().unwrap() as f32;
            (m["id"].as_str().unwrap().to_owned(), score.to_bits())
        })
        .collect()
}
