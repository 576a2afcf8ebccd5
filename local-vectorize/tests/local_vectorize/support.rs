//! The stand-in on a free port in a background runtime, and a client for its REST API.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use local_vectorize::{serve, Settings};
use serde_json::{json, Value};

pub const ACCOUNT: &str = "/client/v4/accounts/acc/vectorize/v2/indexes";

pub struct Server {
    pub base: String,
    agent: ureq::Agent,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// An answer: its status and its JSON body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    pub fn result(&self) -> &Value {
        assert!(
            self.body["success"] == json!(true),
            "expected a success, got {} {}",
            self.status,
            self.body
        );
        &self.body["result"]
    }

    /// The refusal's code and message, checking the envelope on the way.
    pub fn refusal(&self) -> (u16, u64, String) {
        assert_eq!(self.body["success"], json!(false), "{}", self.body);
        assert_eq!(self.body["result"], Value::Null, "{}", self.body);
        let error = &self.body["errors"][0];
        (
            self.status,
            error["code"].as_u64().expect("an error code"),
            error["message"]
                .as_str()
                .expect("an error message")
                .to_owned(),
        )
    }

    /// The refusal's status and code.
    pub fn refused(&self) -> (u16, u64) {
        let (status, code, _) = self.refusal();
        (status, code)
    }

    pub fn messages(&self) -> Vec<String> {
        self.body["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .map(|m| m["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Server {
    pub fn start(settings: Settings) -> Server {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                serve(listener, settings, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let addr = addr_rx.recv().expect("the server starts");
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_mins(1)))
            .build()
            .into();
        Server {
            base: format!("http://{addr}"),
            agent,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn in_memory() -> Server {
        Server::start(Settings::default())
    }

    pub fn with_delay(ms: u64) -> Server {
        Server::start(Settings {
            data_dir: None,
            visibility_delay: Duration::from_millis(ms),
        })
    }

    /// Stops the server and waits until it has let go of its data directory.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        // Idle keep-alive connections would hold a graceful shutdown open.
        self.agent = ureq::Agent::new_with_defaults();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the server thread ends cleanly");
        }
    }

    fn reply(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        let mut response = response.expect("the request reaches the server");
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_json()
            .unwrap_or(Value::Null);
        Reply { status, body }
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::reply(self.agent.get(format!("{}{path}", self.base)).call())
    }

    pub fn delete(&self, path: &str) -> Reply {
        Self::reply(self.agent.delete(format!("{}{path}", self.base)).call())
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, "application/json", body.to_string().as_bytes(), &[])
    }

    pub fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .header("authorization", "Bearer any-token");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::reply(request.send(body))
    }

    pub fn create_index(&self, name: &str, dimensions: usize, metric: &str) -> Value {
        let reply = self.post_json(
            ACCOUNT,
            &json!({"name": name, "config": {"dimensions": dimensions, "metric": metric}}),
        );
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.result().clone()
    }

    pub fn create_metadata_index(&self, index: &str, property: &str, kind: &str) -> String {
        let reply = self.post_json(
            &format!("{ACCOUNT}/{index}/metadata_index/create"),
            &json!({"propertyName": property, "indexType": kind}),
        );
        mutation_id(&reply)
    }

    /// Writes vectors as raw NDJSON (`upsert` or `insert`), answering the mutation id.
    pub fn write(&self, index: &str, operation: &str, vectors: &[Value]) -> String {
        let reply = self.write_reply(index, operation, vectors, &[]);
        mutation_id(&reply)
    }

    pub fn write_reply(
        &self,
        index: &str,
        operation: &str,
        vectors: &[Value],
        headers: &[(&str, &str)],
    ) -> Reply {
        let body: Vec<String> = vectors.iter().map(Value::to_string).collect();
        let body = body.join("\n");
        self.post_raw(
            &format!("{ACCOUNT}/{index}/{operation}"),
            "application/x-ndjson",
            body.as_bytes(),
            headers,
        )
    }

    pub fn upsert(&self, index: &str, vectors: &[Value]) -> String {
        self.write(index, "upsert", vectors)
    }

    pub fn query(&self, index: &str, body: &Value) -> Reply {
        self.post_json(&format!("{ACCOUNT}/{index}/query"), body)
    }

    /// The ids a query matched, in order.
    pub fn query_ids(&self, index: &str, body: &Value) -> Vec<String> {
        let reply = self.query(index, body);
        reply.result()["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn stats(&self) -> Value {
        let reply = self.get("/stats");
        assert_eq!(reply.status, 200);
        reply.body
    }

    /// Waits until every accepted mutation is visible, as the end-to-end suite does.
    pub fn settle(&self) {
        let started = Instant::now();
        loop {
            let pending: u64 = self.stats()["indexes"]
                .as_object()
                .unwrap()
                .values()
                .map(|i| i["pendingMutations"].as_u64().unwrap())
                .sum();
            if pending == 0 {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "still {pending} pending"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

pub fn mutation_id(reply: &Reply) -> String {
    let id = reply.result()["mutationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no mutationId in {}", reply.body))
        .to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "not a UUID: {id}");
    id
}

/// A vector `{id, values}` with optional extras merged in.
pub fn vector(id: &str, values: &[f32], extra: &Value) -> Value {
    let mut v = json!({"id": id, "values": values});
    if let Some(extra) = extra.as_object() {
        for (k, value) in extra {
            v[k] = value.clone();
        }
    }
    v
}

/// Deterministic pseudo-random values in [-1, 1) (a 64-bit LCG), so that runs repeat.
pub fn random_values(seed: u64, dimensions: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..dimensions)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let top = u32::try_from(state >> 40).unwrap();
            f32::from(u16::try_from(top >> 8).unwrap()) / 32_768.0 - 1.0
        })
        .collect()
}

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "local-vectorize-test-{}-{label}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
