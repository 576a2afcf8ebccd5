//! local-ai against its contract: vectors equal to sentence-transformers', the Workers AI
//! envelope, padding per BGE name, errors, batching, liveness, fault injection, real weights
//! under a name. The model comes from the directory scripts/setup fills.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use local_ai::batcher::{BatchPolicy, Batcher};
use local_ai::catalogue::Catalogue;
use local_ai::encoder::Encoder;
use local_ai::faults::{FaultPlan, Faults};
use local_ai::server::{router, AppState, STAND_IN_HEADER};
use local_ai::stats::Stats;
use serde_json::{json, Value};
use shared::models::Pooling;
use shared::vector::cosine;

fn model_dir() -> PathBuf {
    let dir = local_ai::default_model_dir();
    assert!(
        dir.join("model.safetensors").exists(),
        "no model at {} (scripts/setup fetches it)",
        dir.display()
    );
    dir
}

struct Server {
    base: String,
    agent: ureq::Agent,
}

struct Options {
    policy: BatchPolicy,
    faults: FaultPlan,
    seed: u64,
    serve: Vec<(String, PathBuf)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: BatchPolicy {
                max_batch: 32,
                window: Duration::from_millis(2),
            },
            faults: FaultPlan::default(),
            seed: 0,
            serve: Vec::new(),
        }
    }
}

/// Starts local-ai on a free port in a background runtime; it lives until the test ends.
fn start(options: Options) -> Server {
    let catalogue = Catalogue::load(&model_dir(), &options.serve).expect("model loads");
    let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let stats = Arc::new(Stats::default());
            let app = AppState {
                catalogue: Arc::new(catalogue),
                batcher: Batcher::start(options.policy, Arc::clone(&stats)),
                stats,
                faults: Arc::new(Faults::new(options.faults, options.seed)),
            };
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, router(app)).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_mins(2)))
        .build()
        .into();
    Server {
        base: format!("http://{addr}"),
        agent,
    }
}

struct Reply {
    status: u16,
    stand_in: Option<String>,
    body: Value,
}

impl Server {
    fn run(&self, model: &str, body: &str) -> Reply {
        let mut response = self
            .agent
            .post(format!(
                "{}/client/v4/accounts/acc/ai/run/{model}",
                self.base
            ))
            .header("content-type", "application/json")
            .send(body)
            .unwrap();
        let stand_in = response
            .headers()
            .get(STAND_IN_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        Reply {
            status: response.status().as_u16(),
            stand_in,
            body: response.body_mut().read_json().unwrap(),
        }
    }

    fn get(&self, path: &str) -> Value {
        self.agent
            .get(format!("{}{path}", self.base))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }
}

fn vectors(body: &Value) -> Vec<Vec<f32>> {
    serde_json::from_value(body["result"]["data"].clone()).unwrap()
}

#[test]
fn matches_the_sentence_transformers_reference() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/reference.json")).unwrap();
    let sentences = fixture["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 20);
    let texts: Vec<&str> = sentences
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    let expected: Vec<Vec<f32>> = sentences
        .iter()
        .map(|s| serde_json::from_value(s["embedding"].clone()).unwrap())
        .collect();
    let encoder = Encoder::load(&model_dir()).unwrap();
    // One text at a time, and all in one packed batch: a text's vector must not depend on the
    // texts packed beside it (each attends to its own tokens only).
    let batched = encoder.embed(&texts).unwrap();
    assert_eq!(
        batched.truncated.len(),
        1,
        "exactly one reference text is past 512 tokens"
    );
    for (i, text) in texts.iter().enumerate() {
        let alone = encoder.embed(&[text]).unwrap().vectors.remove(0);
        let apart = alone
            .iter()
            .zip(&batched.vectors[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            apart < 1e-5,
            "alone and batched differ by {apart} for {text:?}"
        );
        for (how, vector) in [("alone", &alone), ("batched", &batched.vectors[i])] {
            let cos = cosine(vector, &expected[i]);
            assert!(cos >= 0.9999, "{how}: cosine {cos} for {text:?}");
        }
    }
}

/// `[CLS]` pooling (the BGE models' own) reads each packed text's first row, whatever the texts
/// beside it: batched, every vector is the one the text gets alone.
#[test]
fn cls_pooling_reads_each_packed_texts_own_first_token() {
    let mut encoder = Encoder::load(&model_dir()).unwrap();
    let texts = [
        "Police arrested three suspects",
        "A much longer text about the council, which met late into the evening to vote",
        "Rain",
    ];
    let mean = encoder.embed(&texts).unwrap().vectors;
    encoder.pooling = Pooling::Cls;
    let batched = encoder.embed(&texts).unwrap().vectors;
    for (i, text) in texts.iter().enumerate() {
        let alone = encoder.embed(&[text]).unwrap().vectors.remove(0);
        let apart = alone
            .iter()
            .zip(&batched[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            apart < 1e-5,
            "CLS alone and batched differ by {apart} for {text:?}"
        );
        assert!(
            cosine(&batched[i], &mean[i]) < 0.9999,
            "CLS is not the mean for {text:?}"
        );
    }
}

#[test]
fn answers_the_workers_ai_envelope_padded_to_each_bge_dimension() {
    let server = start(Options::default());
    let texts = json!({"text": ["Police arrested three suspects", "Three suspects were arrested"]})
        .to_string();
    let mut previous: Option<Vec<Vec<f32>>> = None;
    for (model, dims) in [
        ("@cf/baai/bge-small-en-v1.5", 384),
        ("@cf/baai/bge-base-en-v1.5", 768),
        ("@cf/baai/bge-large-en-v1.5", 1024),
    ] {
        let reply = server.run(model, &texts);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["success"], true);
        assert_eq!(reply.body["errors"], json!([]));
        assert_eq!(reply.body["result"]["shape"], json!([2, dims]));
        let data = vectors(&reply.body);
        assert!(data
            .iter()
            .all(|v| v.len() == dims && v[384..].iter().all(|x| *x == 0.0)));
        let note = reply.stand_in.expect("a stand-in says so in a header");
        assert!(
            note.contains("all-MiniLM-L6-v2") && note.contains(model),
            "{note}"
        );
        assert!(reply.body["messages"]
            .to_string()
            .contains("not BGE vectors"));
        if let Some(previous) = &previous {
            assert!(
                (cosine(&previous[0][..384], &data[0][..384]) - 1.0).abs() < 1e-6,
                "same vector, padded"
            );
        }
        previous = Some(data);
    }
    let one = server.run(
        "@cf/baai/bge-small-en-v1.5",
        r#"{"text": "just one", "pooling": "mean"}"#,
    );
    assert_eq!(one.body["result"]["shape"], json!([1, 384]));
}

#[test]
fn refuses_bad_input_in_the_envelope() {
    let server = start(Options::default());
    let small = "@cf/baai/bge-small-en-v1.5";
    let too_many = json!({"text": vec!["x"; 101]}).to_string();
    let cases = [
        (small, too_many.as_str(), "at most 100"),
        (small, r#"{"text": ["fine", ""]}"#, "text 1 is empty"),
        (small, r#"{"text": []}"#, "at least one"),
        (small, r#"{"text": 5}"#, "bad input"),
        (small, "{not json", "bad input"),
        ("@cf/meta/llama-3", r#"{"text": "x"}"#, "no such model"),
    ];
    for (model, body, needle) in cases {
        let reply = server.run(model, body);
        assert_eq!(reply.status, 400, "{body}");
        assert_eq!(reply.body["success"], false);
        assert!(
            reply.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains(needle),
            "{}",
            reply.body
        );
    }
    let stats = server.get("/stats");
    assert_eq!(
        (stats["calls"].as_u64(), stats["errors"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(stats["forward_passes"], 0);
}

#[test]
fn serves_real_weights_under_a_name_without_the_stand_in_note() {
    let server = start(Options {
        serve: vec![("@cf/test/minilm".into(), model_dir())],
        ..Options::default()
    });
    let body = r#"{"text": "Police arrested three suspects"}"#;
    let real = server.run("@cf/test/minilm", body);
    assert_eq!(real.status, 200);
    assert_eq!(real.stand_in, None);
    assert_eq!(real.body["messages"], json!([]));
    assert_eq!(real.body["result"]["shape"], json!([1, 384]));
    let stand_in = server.run("@cf/baai/bge-small-en-v1.5", body);
    assert!(cosine(&vectors(&real.body)[0], &vectors(&stand_in.body)[0]) > 0.99999);
}

#[test]
fn requests_that_arrive_together_share_forward_passes() {
    let server = Arc::new(start(Options {
        policy: BatchPolicy {
            max_batch: 64,
            window: Duration::from_millis(200),
        },
        ..Options::default()
    }));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let server = Arc::clone(&server);
            std::thread::spawn(move || {
                server.run(
                    "@cf/baai/bge-small-en-v1.5",
                    &json!({"text": format!("text {i}")}).to_string(),
                )
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap().status, 200);
    }
    let stats = server.get("/stats");
    assert_eq!(stats["calls"], 8);
    assert_eq!(stats["texts"], 8);
    let batches = stats["batches"].as_u64().unwrap();
    assert!(
        batches < 8,
        "8 concurrent calls were embedded in {batches} separate batches"
    );
}

#[test]
fn health_answers_while_a_long_pass_runs() {
    let server = Arc::new(start(Options::default()));
    let long = "word ".repeat(600);
    let body = json!({"text": vec![long; 24]}).to_string();
    let worker = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.run("@cf/baai/bge-small-en-v1.5", &body))
    };
    while server.get("/stats")["calls"] == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let health = server.get("/health");
    assert!(
        !worker.is_finished(),
        "health answered only after the pass ended"
    );
    assert_eq!(health["ok"], true);
    let reply = worker.join().unwrap();
    assert_eq!(reply.status, 200);
    assert!(reply.body["messages"]
        .to_string()
        .contains("24 of 24 texts were truncated"));
    assert_eq!(server.get("/stats")["truncated_texts"], 24);
}

#[test]
fn injected_failures_follow_a_seeded_plan() {
    let plan = || FaultPlan {
        fail_rate: 0.5,
        fail_statuses: vec![500, 429],
        ..FaultPlan::default()
    };
    let statuses = |seed| {
        let server = start(Options {
            faults: plan(),
            seed,
            ..Options::default()
        });
        let statuses: Vec<u16> = (0..40)
            .map(|_| {
                server
                    .run("@cf/baai/bge-small-en-v1.5", r#"{"text": "x"}"#)
                    .status
            })
            .collect();
        (statuses, server.get("/stats"))
    };
    let (first, stats) = statuses(11);
    let failed = first.iter().filter(|s| **s != 200).count();
    assert!((10..=30).contains(&failed), "{failed} of 40 failed at 50%");
    assert!(first.contains(&500) && first.contains(&429) && first.contains(&200));
    assert_eq!(stats["injected_failures"].as_u64(), Some(failed as u64));
    assert_eq!(
        stats["errors"].as_u64(),
        Some(failed as u64),
        "each failed call counts once"
    );
    assert_eq!(statuses(11).0, first, "the same seed repeats the run");
}
