//! Scores and order for each metric, against a brute force computed here in f64; and the scan's
//! speed at the sizes the product reaches.

use std::time::{Duration, Instant};

use local_vectorize::config::Metric;
use local_vectorize::search::{search, Scan};
use local_vectorize::store::Store;
use local_vectorize::vector::{NewVector, VectorId};
use serde_json::{json, Value};

use crate::support::{random_values, vector, Server};

/// The score Vectorize documents for each metric ("Create indexes", Distance metrics), and
/// whether higher is closer.
fn expected_score(metric: &str, query: &[f32], stored: &[f32]) -> f64 {
    let dot: f64 = query
        .iter()
        .zip(stored)
        .map(|(a, b)| f64::from(*a) * f64::from(*b))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    match metric {
        "cosine" => dot / (norm(query) * norm(stored)),
        "euclidean" => query
            .iter()
            .zip(stored)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
            .sum::<f64>()
            .sqrt(),
        "dot-product" => -dot,
        _ => unreachable!(),
    }
}

#[test]
fn each_metric_scores_and_orders_as_documented() {
    const DIMENSIONS: usize = 33;
    for metric in ["cosine", "euclidean", "dot-product"] {
        let server = Server::in_memory();
        server.create_index("docs", DIMENSIONS, metric);
        let stored: Vec<Vec<f32>> = (0..300).map(|i| random_values(i, DIMENSIONS)).collect();
        let vectors: Vec<Value> = stored
            .iter()
            .enumerate()
            .map(|(i, values)| vector(&format!("v{i}"), values, &json!({})))
            .collect();
        server.upsert("docs", &vectors);
        let query = random_values(9999, DIMENSIONS);
        let mut expected: Vec<(String, f64)> = stored
            .iter()
            .enumerate()
            .map(|(i, values)| (format!("v{i}"), expected_score(metric, &query, values)))
            .collect();
        // Cosine: higher is closer. Euclidean distance and the negative dot product: lower.
        if metric == "cosine" {
            expected.sort_by(|a, b| b.1.total_cmp(&a.1));
        } else {
            expected.sort_by(|a, b| a.1.total_cmp(&b.1));
        }
        let reply = server.query("docs", &json!({"vector": query, "topK": 40}));
        let matches = reply.result()["matches"].as_array().unwrap();
        assert_eq!(matches.len(), 40);
        for (got, (id, score)) in matches.iter().zip(&expected) {
            assert_eq!(got["id"], id.as_str(), "{metric}");
            let got = got["score"].as_f64().unwrap();
            assert!(
                (got - score).abs() <= 1e-5 * score.abs().max(1.0),
                "{metric}: {got} against {score}"
            );
        }
    }
}

#[test]
fn small_cases_by_hand() {
    let server = Server::in_memory();
    for metric in ["cosine", "euclidean", "dot-product"] {
        let name = format!("m-{metric}");
        server.create_index(&name, 2, metric);
        server.upsert(
            &name,
            &[
                vector("one", &[1.0, 0.0], &json!({})),
                vector("two", &[2.0, 0.0], &json!({})),
                vector("up", &[0.0, 3.0], &json!({})),
            ],
        );
    }
    let check = |metric: &str, expected: &[(&str, f64)]| {
        let reply = server.query(
            &format!("m-{metric}"),
            &json!({"vector": [1.0, 0.0], "topK": 3}),
        );
        let matches = reply.result()["matches"].as_array().unwrap().clone();
        assert_eq!(matches.len(), expected.len(), "{metric}");
        for (got, (id, score)) in matches.iter().zip(expected) {
            assert_eq!(got["id"], *id, "{metric}");
            let got = got["score"].as_f64().unwrap();
            assert!(
                (got - score).abs() < 1e-6,
                "{metric} {id}: {got} against {score}"
            );
        }
    };
    // Equal scores come in id order.
    check("cosine", &[("one", 1.0), ("two", 1.0), ("up", 0.0)]);
    check(
        "euclidean",
        &[("one", 0.0), ("two", 1.0), ("up", 10f64.sqrt())],
    );
    check("dot-product", &[("two", -2.0), ("one", -1.0), ("up", 0.0)]);
}

fn store_of(count: u64, dimensions: usize) -> Store {
    let mut store = Store::new(dimensions);
    let vectors: Vec<NewVector> = (0..count)
        .map(|i| NewVector {
            id: VectorId::parse(format!("v{i}")).unwrap(),
            values: random_values(i, dimensions),
            namespace: None,
            metadata: None,
        })
        .collect();
    store.upsert(&vectors);
    store
}

/// The best of five scans, so that one unlucky schedule does not decide.
fn best_scan(store: &Store, dimensions: usize) -> Duration {
    let query = random_values(u64::MAX, dimensions);
    (0..5)
        .map(|_| {
            let started = Instant::now();
            let hits = search(
                store,
                Metric::Cosine,
                &Scan {
                    vector: &query,
                    top_k: 20,
                    namespace: None,
                    filter: None,
                },
            );
            assert_eq!(hits.len(), 20);
            started.elapsed()
        })
        .min()
        .unwrap()
}

#[test]
fn a_scan_of_50_000_vectors_takes_milliseconds() {
    for (count, dimensions, budget_ms) in [(10_000, 384, 10), (50_000, 768, 50)] {
        let store = store_of(count, dimensions);
        let took = best_scan(&store, dimensions);
        eprintln!("scan of {count} x {dimensions}: {took:?}");
        assert!(
            took < Duration::from_millis(budget_ms),
            "{count} x {dimensions} took {took:?}"
        );
    }
}
