//! search-worker's RPC methods, run in wasm with a fake store, embedder, index and queue.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::{json, Value};
use shared::ai::{EmbeddingResult, FailureKind};
use shared::models::ModelSpec;
use shared::search::QueryMatch;
use shared::Config;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::embedder::{EmbedError, Embedder};
use worker_kit::vectorize::QueryOptions;
use worker_kit::Fault;

use shared::message::EmbeddingJob;
use shared::rpc::EnqueueRequest;

use shared::quantized::Quantized;
use shared::sets::VectorSet;
use shared::topk::normalized;

use crate::ports::{
    ActiveSet, App, CatchUp, ExactRow, JobQueue, Metadata, Pending, Room, Store, VectorIndexes,
    VectorRow, FILL_CHUNK,
};
use crate::rpc;

mod bound;
mod health;

/// A row of the fake's vector store: its organization, table, set (`None`: whichever set is
/// asked for) and the row.
type FakeRow = (String, String, Option<VectorSet>, VectorRow);

/// A record's new vector: its organization, table, id and vector.
type FakeWrite = (String, String, String, Vec<f32>);

/// The D1 vector store: rows by organization and table, each with its seq. A row holds its codes
/// and its exact vector both, as D1's does; the catch-up reads the exact vector only of a row
/// without codes.
#[derive(Default)]
struct FakeStore {
    down: bool,
    rows: RefCell<Vec<FakeRow>>,
    /// Each table's active set, when a test sets one (else the table has none yet).
    active: RefCell<HashMap<(String, String), ActiveSet>>,
    reads: Cell<usize>,
    /// The exact vectors asked for, one list a read.
    exact_reads: RefCell<Vec<Vec<String>>>,
    /// Chunks of exact vectors read beside catch-ups, not counting empty ones.
    filled: Cell<usize>,
    /// Written (organization, table, id, vector) just before the next exact read answers: a
    /// write that lands while a search runs.
    write_before_exact: RefCell<Option<FakeWrite>>,
    /// Rows put from now on have no codes, as rows written before codes were.
    without_codes: Cell<bool>,
    /// Made active just before the next exact read answers, the rows of the set active until
    /// then deleted: a switch and its clean-up, while a search runs.
    switch_before_exact: RefCell<Option<(String, String, ActiveSet)>>,
    /// The rows each catch-up handed over, by organization, and the bytes they take as D1
    /// counts them: one entry a catch-up.
    handed: RefCell<Vec<(String, usize, usize)>>,
}

impl FakeStore {
    fn put(&self, org: &str, table: &str, id: &str, vector: Option<&[f32]>, metadata: &Value) {
        self.put_in(None, org, table, id, vector, metadata);
    }

    fn put_in(
        &self,
        set: Option<VectorSet>,
        org: &str,
        table: &str,
        id: &str,
        vector: Option<&[f32]>,
        metadata: &Value,
    ) {
        let mut rows = self.rows.borrow_mut();
        let seq = i64::try_from(rows.len()).unwrap() + 1;
        rows.push((
            org.into(),
            table.into(),
            set,
            VectorRow {
                seq,
                record_id: id.into(),
                codes: vector
                    .filter(|_| !self.without_codes.get())
                    .map(|v| Quantized::of(&normalized(v))),
                vector_hex: vector.map(|v| shared::hex(&shared::vector::encode(v)).to_uppercase()),
                metadata: metadata.as_object().cloned().unwrap_or_default(),
            },
        ));
    }
}

/// What a catch-up's row takes as D1 counts it (`bindings::row_bytes!`): its codes and
/// overhead, its id and its metadata's text; a tombstone nothing.
fn d1_bytes(row: &VectorRow, room: Room) -> usize {
    if row.codes.is_none() && row.metadata.is_empty() {
        return 0;
    }
    room.row_cost + row.record_id.len() + Value::Object(row.metadata.clone()).to_string().len()
}

impl FakeStore {
    /// The rows of one set written after `after`, as the catch-up's statement reads them: each
    /// record's current row only, as D1 holds one row a record.
    fn vectors_since(
        &self,
        org: &str,
        table: &str,
        set: &VectorSet,
        after: i64,
    ) -> Result<Vec<VectorRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        self.reads.set(self.reads.get() + 1);
        let rows = self.rows.borrow();
        let of_set: Vec<&VectorRow> = rows
            .iter()
            .filter(|(o, t, s, _)| o == org && t == table && s.as_ref().is_none_or(|s| s == set))
            .map(|(_, _, _, r)| r)
            .collect();
        let current: HashMap<&str, i64> = of_set
            .iter()
            .map(|r| (r.record_id.as_str(), r.seq))
            .collect();
        Ok(of_set
            .into_iter()
            .filter(|r| r.seq > after && current[r.record_id.as_str()] == r.seq)
            .map(|r| VectorRow {
                vector_hex: r.vector_hex.clone().filter(|_| r.codes.is_none()),
                ..r.clone()
            })
            .collect())
    }

    /// A chunk of exact vectors after `after`, as the catch-up's fourth statement reads it.
    fn exact_since(
        &self,
        org: &str,
        table: &str,
        set: &VectorSet,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExactRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        let chunk: Vec<ExactRow> = self
            .rows
            .borrow()
            .iter()
            .filter(|(o, t, s, r)| {
                o == org && t == table && s.as_ref().is_none_or(|s| s == set) && r.seq > after
            })
            .take(limit)
            .map(|(_, _, _, r)| ExactRow {
                seq: r.seq,
                record_id: r.record_id.clone(),
                vector_hex: r.vector_hex.clone(),
            })
            .collect();
        if !chunk.is_empty() {
            self.filled.set(self.filled.get() + 1);
        }
        Ok(chunk)
    }
}

impl Store for FakeStore {
    async fn ping(&self) -> Result<(), Fault> {
        if self.down {
            Err(Fault("D1 down".into()))
        } else {
            Ok(())
        }
    }
    async fn active_set(&self, org: &str, table: &str) -> Result<Option<ActiveSet>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        Ok(self
            .active
            .borrow()
            .get(&(org.to_owned(), table.to_owned()))
            .cloned())
    }

    async fn catch_up(
        &self,
        org: &str,
        table: &str,
        guess: &VectorSet,
        after: i64,
        room: Room,
        fill: Option<i64>,
    ) -> Result<CatchUp, Fault> {
        // Four reads where D1 makes one round trip: each as its statement would answer.
        let active = self.active_set(org, table).await?;
        let since = self.vectors_since(org, table, guess, after)?;
        let sizes: Vec<usize> = since.iter().map(|row| d1_bytes(row, room)).collect();
        let pending = Pending {
            rows: since.len(),
            bytes: sizes.iter().sum(),
        };
        let limit = if room.paged {
            room.bytes
        } else {
            room.bytes.min(room.page)
        };
        let mut rows = Vec::new();
        if pending.bytes <= limit {
            let mut before = 0;
            for (row, bytes) in since.into_iter().zip(sizes) {
                if room.paged && before >= room.page {
                    break;
                }
                before += bytes;
                rows.push(row);
            }
        }
        let handed: usize = rows.iter().map(|row| d1_bytes(row, room)).sum();
        self.handed
            .borrow_mut()
            .push((org.to_owned(), rows.len(), handed));
        let exact = match fill {
            Some(from) => self.exact_since(org, table, guess, from, FILL_CHUNK)?,
            None => Vec::new(),
        };
        Ok(CatchUp {
            active,
            pending,
            rows,
            exact,
        })
    }

    async fn exact_vectors(
        &self,
        org: &str,
        table: &str,
        set: &VectorSet,
        record_ids: &[&str],
    ) -> Result<Vec<ExactRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        if let Some((o, t, id, vector)) = self.write_before_exact.borrow_mut().take() {
            self.put(&o, &t, &id, Some(&vector), &json!({}));
        }
        if let Some((o, t, next)) = self.switch_before_exact.borrow_mut().take() {
            let key = (o.clone(), t.clone());
            if let Some(before) = self.active.borrow_mut().insert(key, next) {
                self.rows.borrow_mut().retain(|(ro, rt, rs, _)| {
                    !(*ro == o && *rt == t && rs.as_ref() == Some(&before.set))
                });
            }
        }
        self.exact_reads
            .borrow_mut()
            .push(record_ids.iter().map(|id| (*id).to_owned()).collect());
        // The last row of each record is its current one.
        let mut current: HashMap<&str, ExactRow> = HashMap::new();
        let rows = self.rows.borrow();
        for (_, _, _, row) in rows.iter().filter(|(o, t, s, r)| {
            o == org
                && t == table
                && s.as_ref().is_none_or(|s| s == set)
                && record_ids.contains(&r.record_id.as_str())
        }) {
            current.insert(
                &row.record_id,
                ExactRow {
                    seq: row.seq,
                    record_id: row.record_id.clone(),
                    vector_hex: row.vector_hex.clone(),
                },
            );
        }
        Ok(current.into_values().collect())
    }

    async fn live_records(
        &self,
        org: &str,
        table: &str,
        _location: &str,
        vector_ids: &[String],
    ) -> Result<HashMap<String, (String, Metadata)>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        // The last row of each record is its current state.
        let mut current: HashMap<String, Option<(String, Metadata)>> = HashMap::new();
        for (_, _, _, row) in self
            .rows
            .borrow()
            .iter()
            .filter(|(o, t, _, _)| o == org && t == table)
        {
            let vector_id = shared::vector::vector_id(org, table, &row.record_id);
            if !vector_ids.contains(&vector_id) {
                continue;
            }
            let live = row
                .vector_hex
                .as_ref()
                .map(|_| (row.record_id.clone(), row.metadata.clone()));
            current.insert(vector_id, live);
        }
        Ok(current
            .into_iter()
            .filter_map(|(id, live)| Some((id, live?)))
            .collect())
    }
}

/// Answers known texts with their vector, padded to the model's dimension; any other text with
/// a vector whose first value is its length.
#[derive(Default)]
struct FakeEmbedder {
    fails: Option<FailureKind>,
    dimensions: Option<usize>,
    known: HashMap<String, Vec<f32>>,
    calls: Cell<usize>,
}

impl Embedder for FakeEmbedder {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        self.calls.set(self.calls.get() + 1);
        if let Some(kind) = self.fails {
            return Err(EmbedError {
                kind,
                message: "fake failure".into(),
            });
        }
        let dimensions = self.dimensions.unwrap_or(model.dimensions);
        #[allow(clippy::cast_precision_loss)]
        let data = texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0; dimensions];
                match self.known.get(t) {
                    Some(known) => v[..known.len()].copy_from_slice(known),
                    None => v[0] = t.len() as f32,
                }
                v
            })
            .collect();
        Ok(EmbeddingResult {
            shape: vec![texts.len(), dimensions],
            data,
            pooling: None,
        })
    }
}

#[derive(Default)]
struct FakeIndexes {
    queries: RefCell<Vec<(String, QueryOptions)>>,
}

impl VectorIndexes for FakeIndexes {
    async fn query(
        &self,
        binding: &str,
        _vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault> {
        self.queries
            .borrow_mut()
            .push((binding.into(), options.clone()));
        Ok(vec![QueryMatch {
            id: "org_a:notes:n1".into(),
            score: 0.95,
            metadata:
                json!({"table": "notes", "recordId": "n1", "organizationId": "org_a", "topic": "t"})
                    .as_object()
                    .cloned(),
        }])
    }
}

type TestApp = App<'static, FakeStore, FakeEmbedder, FakeIndexes>;

fn app() -> TestApp {
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
fn at(angle: f32) -> Vec<f32> {
    let mut v = vec![0.0; 768];
    v[0] = angle.cos();
    v[1] = angle.sin();
    v
}

/// Claims of `org_a` at known cosines from the query text "query": 1.0, 0.92, 0.87, 0.80, 0.65,
/// 0.30; one of `org_b` identical to the query.
fn seeded() -> TestApp {
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

/// The queue `enqueue` sends on: records each job, or refuses when down.
#[derive(Default)]
struct FakeQueue {
    down: bool,
    sent: RefCell<Vec<EmbeddingJob>>,
}

impl JobQueue for FakeQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue down".into()));
        }
        self.sent.borrow_mut().push(job.clone());
        Ok(())
    }
}

/// A method and its arguments.
type Call = (&'static str, Vec<Value>);

/// A call's outcome, read the way the gateway reads it: a value (200) or an error's status with
/// the HTTP API's error body.
struct Reply {
    status: u16,
    body: Value,
}

async fn call_with(app: &TestApp, queue: &FakeQueue, (method, args): &Call) -> Reply {
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

async fn handle(app: &TestApp, call: &Call) -> Reply {
    call_with(app, &FakeQueue::default(), call).await
}

/// The call the gateway makes for a route: `post("/search/claimSimilarity", org, request)`.
// By value, so that a call reads like the request it builds: `post(path, org, json!(…))`.
#[allow(clippy::needless_pass_by_value)]
fn post(path: &str, org: &str, request: Value) -> Call {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["search", service] => ("search", vec![json!(org), json!(service), request]),
        ["gray-zone", service] => ("grayZone", vec![json!(org), json!(service), request]),
        ["embed"] => ("embed", vec![json!(org), request]),
        ["query"] => ("query", vec![json!(org), request]),
        _ => panic!("no route {path}"),
    }
}

fn health() -> Call {
    ("health", vec![Value::Null])
}

/// `health` for an organization: what its administrators see.
fn health_of(org: &str) -> Call {
    ("health", vec![json!(org)])
}

fn ids(matches: &Value) -> Vec<&str> {
    matches
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[wasm_bindgen_test]
async fn search_classifies_matches_best_first_within_the_organization() {
    let app = seeded();
    let response = handle(
        &app,
        &post("/search/claimSimilarity", "org_a", json!({"text": "query"})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        ids(&response.body),
        vec!["c1", "c2", "c3", "c4", "c5"],
        "the service's limit of 5"
    );
    let classes: Vec<&str> = response
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["classification"].as_str().unwrap())
        .collect();
    assert_eq!(
        classes,
        vec!["DUPLICATE", "DUPLICATE", "CONFIRMS", "RELATED", "NEW"]
    );
    assert_eq!(response.body[0]["metadata"], json!({"story_id": "s1"}));
    assert!((response.body[1]["score"].as_f64().unwrap() - 0.92).abs() < 1e-5);

    let response = handle(
        &app,
        &post(
            "/search/claimSimilarity",
            "org_a",
            json!({"text": "query", "threshold": 0.85, "limit": 10}),
        ),
    )
    .await;
    assert_eq!(
        ids(&response.body),
        vec!["c1", "c2", "c3"],
        "none below the threshold"
    );
    let response = handle(
        &app,
        &post("/search/claimSimilarity", "org_b", json!({"text": "query"})),
    )
    .await;
    assert_eq!(
        ids(&response.body),
        vec!["b1"],
        "another organization sees only its own"
    );
}

#[wasm_bindgen_test]
async fn filters_narrow_and_bad_ones_are_refused() {
    let app = seeded();
    let response = handle(
        &app,
        &post(
            "/search/claimSimilarity",
            "org_a",
            json!({"text": "query", "filters": {"story_id": "s2"}}),
        ),
    )
    .await;
    assert_eq!(ids(&response.body), vec!["c2", "c4"]);
    let response = handle(
        &app,
        &post(
            "/search/claimSimilarity",
            "org_a",
            json!({"text": "query", "filters": {"story_id": {"$nin": ["s1"]}}, "limit": 1}),
        ),
    )
    .await;
    assert_eq!(ids(&response.body), vec!["c2"]);
    for filters in [
        json!({"organization_id": "org_b"}),
        json!({"story_id": {"$like": "s"}}),
    ] {
        let response = handle(
            &app,
            &post(
                "/search/claimSimilarity",
                "org_b",
                json!({"text": "query", "filters": filters}),
            ),
        )
        .await;
        assert_eq!(response.status, 400, "{filters}");
    }
}

#[wasm_bindgen_test]
async fn the_gray_zone_splits_at_max_and_drops_below_min() {
    let app = seeded();
    let response = handle(
        &app,
        &post(
            "/gray-zone/claimSimilarity",
            "org_a",
            json!({"text": "query", "limit": 10}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        ids(&response.body["high_confidence"]),
        vec!["c1", "c2", "c3"],
        "score >= 0.85"
    );
    assert_eq!(
        ids(&response.body["gray_zone"]),
        vec!["c4", "c5"],
        "0.60 <= score < 0.85"
    );
    assert_eq!(response.body["gray_zone"][0]["classification"], "RELATED");
    let response = handle(
        &app,
        &post(
            "/gray-zone/claimSimilarity",
            "org_a",
            json!({"text": "query", "min": 0.7, "max": 0.9}),
        ),
    )
    .await;
    assert_eq!(ids(&response.body["high_confidence"]), vec!["c1", "c2"]);
    assert_eq!(ids(&response.body["gray_zone"]), vec!["c3", "c4"]);
}

#[wasm_bindgen_test]
async fn a_vector_query_returns_scores_and_metadata() {
    let app = seeded();
    let mut vector = vec![0.0; 768];
    vector[0] = 1.0;
    let response = handle(
        &app,
        &post(
            "/query",
            "org_a",
            json!({"vector": vector, "topK": 2, "table": "claims", "filter": {"story_id": "s1"}}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["count"], 2);
    assert_eq!(ids(&response.body["matches"]), vec!["c1", "c3"]);
    assert_eq!(response.body["matches"][1]["metadata"]["story_id"], "s1");
    let response = handle(
        &app,
        &post("/query", "org_a", json!({"vector": [1.0, 0.0]})),
    )
    .await;
    assert_eq!(response.status, 400, "no table has 2-dimension vectors");
}

#[wasm_bindgen_test]
async fn the_cache_catches_up_on_writes_and_reuses_query_vectors() {
    let app = seeded();
    let search = || {
        post(
            "/search/claimSimilarity",
            "org_a",
            json!({"text": "query", "limit": 1}),
        )
    };
    assert_eq!(ids(&handle(&app, &search()).await.body), vec!["c1"]);
    // The consumer writes a new best match and deletes c1.
    app.store
        .put("org_a", "claims", "c7", Some(&at(0.0)), &json!({}));
    app.store.put("org_a", "claims", "c1", None, &json!({}));
    let response = handle(&app, &search()).await;
    assert_eq!(
        ids(&response.body),
        vec!["c7"],
        "current as soon as it is written"
    );
    let response = handle(
        &app,
        &post(
            "/search/claimSimilarity",
            "org_a",
            json!({"text": "query", "limit": 10}),
        ),
    )
    .await;
    assert!(
        !ids(&response.body).contains(&"c1"),
        "a deleted record is gone"
    );
    assert_eq!(
        app.embedder.calls.get(),
        1,
        "one AI call for one text searched three times"
    );
    assert_eq!(app.caches.queries.stats().hits, 2);
}

#[wasm_bindgen_test]
async fn the_same_question_of_an_unchanged_table_is_answered_again_and_a_write_answers_it_anew() {
    let app = seeded();
    let ask = |request: Value| post("/search/claimSimilarity", "org_a", request);
    let answered = || app.caches.vectors.stats().answered;
    let first = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(ids(&first.body), vec!["c1", "c2", "c3"]);
    assert_eq!(answered(), 0);
    let again = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(again.body, first.body, "the same answer, to the bit");
    assert_eq!(answered(), 1, "given from the snapshot");

    // Another limit, or a filter, is another question.
    let two = handle(&app, &ask(json!({"text": "query", "limit": 2}))).await;
    assert_eq!(ids(&two.body), vec!["c1", "c2"]);
    let filtered = handle(
        &app,
        &ask(json!({"text": "query", "limit": 3, "filters": {"story_id": "s2"}})),
    )
    .await;
    assert_eq!(ids(&filtered.body), vec!["c2", "c4"]);
    assert_eq!(answered(), 1);

    // A metadata-only write, and a deletion, are in the next answer.
    app.store.put(
        "org_a",
        "claims",
        "c2",
        Some(&at(0.92f32.acos())),
        &json!({"story_id": "s9"}),
    );
    app.store.put("org_a", "claims", "c1", None, &json!({}));
    let after = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(ids(&after.body), vec!["c2", "c3", "c4"]);
    assert_eq!(after.body[0]["metadata"]["story_id"], "s9");
    let filtered = handle(
        &app,
        &ask(json!({"text": "query", "limit": 3, "filters": {"story_id": "s2"}})),
    )
    .await;
    assert_eq!(ids(&filtered.body), vec!["c4"]);
    assert_eq!(answered(), 1, "nothing kept before the writes was given");
    let again = handle(&app, &ask(json!({"text": "query", "limit": 3}))).await;
    assert_eq!(again.body, after.body);
    assert_eq!(answered(), 2);
}

#[wasm_bindgen_test]
async fn vectorize_tables_query_by_namespace_and_say_their_limit() {
    let config: &'static Config = Box::leak(Box::new(
        Config::parse(
            r#"
[[table]]
name = "notes"
columns = ["id", "organization_id", "topic", "body", "embedding"]
[table.embeddings]
fields = ["body"]
metadata = ["topic"]
vector_index = { backend = "vectorize", binding = "VECTORIZE_768" }
[[search]]
name = "noteSearch"
table = "notes"
"#,
        )
        .unwrap(),
    ));
    let app = App { config, ..seeded() };
    let search = |filters: Value| {
        post(
            "/search/noteSearch",
            "org_a",
            json!({"text": "query", "filters": filters}),
        )
    };
    // Vectorize answers n1, but D1 has not (or no longer) got it: it is left out.
    let response = handle(&app, &search(json!({"topic": "t"}))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body, json!([]), "a match D1 does not hold");
    // Live in D1 with the metadata Vectorize has.
    app.store
        .put("org_a", "notes", "n1", Some(&[1.0]), &json!({"topic": "t"}));
    let response = handle(&app, &search(json!({"topic": "t"}))).await;
    assert_eq!(response.body[0]["id"], "n1");
    assert_eq!(response.body[0]["metadata"], json!({"topic": "t"}));
    // Its topic changed in D1, Vectorize not yet: the answer follows D1, filter included.
    app.store
        .put("org_a", "notes", "n1", Some(&[1.0]), &json!({"topic": "u"}));
    let response = handle(&app, &search(json!({"topic": "t"}))).await;
    assert_eq!(response.body, json!([]), "no longer passes the filter");
    let response = handle(&app, &search(json!({}))).await;
    assert_eq!(response.body[0]["metadata"], json!({"topic": "u"}));
    // Deleted in D1 (a tombstone): gone at once, whatever Vectorize still answers.
    app.store.put("org_a", "notes", "n1", None, &json!({}));
    let response = handle(&app, &search(json!({}))).await;
    assert_eq!(response.body, json!([]), "a deleted record");
    let (binding, options) = app.indexes.queries.borrow()[0].clone();
    assert_eq!(
        (binding.as_str(), options.namespace.as_str()),
        ("VECTORIZE_768", "org_a")
    );
    assert_eq!(
        options.filter,
        Some(json!({"topic": "t", "table": "notes"}))
    );
    // No metadata comes back (D1 supplies it), so a query may ask for as many as on D1.
    assert_eq!((options.return_metadata, options.top_k), ("none", 10));
    let response = handle(
        &app,
        &post(
            "/search/noteSearch",
            "org_a",
            json!({"text": "query", "limit": 100}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(app.indexes.queries.borrow().last().unwrap().1.top_k, 100);
}

#[wasm_bindgen_test]
async fn health_names_the_worker_and_checks_d1() {
    let response = handle(&app(), &health()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body["worker"], "search-worker");
    let mut down = app();
    down.store.down = true;
    let response = handle(&down, &health()).await;
    assert_eq!(response.status, 503);
    assert_eq!(response.body["error"]["code"], "unavailable");
    let response = handle(
        &down,
        &post("/search/claimSimilarity", "org_a", json!({"text": "x"})),
    )
    .await;
    assert_eq!(response.status, 503, "a store that is down is a clear 503");
}

#[wasm_bindgen_test]
async fn embed_returns_the_vector_of_the_services_model() {
    let app = app();
    let response = handle(
        &app,
        &post(
            "/embed",
            "org_a",
            json!({"text": "hello", "service": "claimSimilarity"}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.body["model"], "@cf/baai/bge-base-en-v1.5");
    assert_eq!(response.body["dimensions"], 768);
    assert_eq!(response.body["vector"][0], 5.0);
    let response = handle(
        &app,
        &post(
            "/embed",
            "org_a",
            json!({"text": "hi", "model": "@cf/baai/bge-small-en-v1.5"}),
        ),
    )
    .await;
    assert_eq!(response.body["dimensions"], 384);
}

#[wasm_bindgen_test]
async fn embed_failures_are_clear_errors() {
    let failing = |kind| App {
        embedder: FakeEmbedder {
            fails: Some(kind),
            ..FakeEmbedder::default()
        },
        ..app()
    };
    let cases = [
        (
            failing(FailureKind::Transient),
            json!({"text": "x"}),
            503,
            "unavailable",
        ),
        (
            failing(FailureKind::Permanent),
            json!({"text": "x"}),
            502,
            "model_failed",
        ),
        (
            app(),
            json!({"text": "x", "service": "nope"}),
            404,
            "not_found",
        ),
        (app(), json!({"text": ""}), 400, "invalid_request"),
    ];
    for (app, request, status, code) in cases {
        let response = handle(&app, &post("/embed", "org_a", request.clone())).await;
        assert_eq!(
            (response.status, response.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{request}"
        );
    }
    let wrong_shape = App {
        embedder: FakeEmbedder {
            dimensions: Some(12),
            ..FakeEmbedder::default()
        },
        ..app()
    };
    let response = handle(&wrong_shape, &post("/embed", "org_a", json!({"text": "x"}))).await;
    assert_eq!(
        response.status, 502,
        "an answer of the wrong dimension is refused: {}",
        response.body
    );
}

#[wasm_bindgen_test]
async fn unknown_methods_and_bad_arguments_are_errors_a_caller_can_tell_apart() {
    let app = seeded();
    let cases: [(Call, u16, &str); 6] = [
        (("nothing", vec![]), 404, "not_found"),
        (
            (
                "search",
                vec![json!(""), json!("claimSimilarity"), json!({"text": "q"})],
            ),
            400,
            "invalid_request",
        ),
        (
            (
                "search",
                vec![json!(7), json!("claimSimilarity"), json!({"text": "q"})],
            ),
            400,
            "invalid_request",
        ),
        (
            (
                "search",
                vec![json!("org_a"), json!(["x"]), json!({"text": "q"})],
            ),
            400,
            "invalid_request",
        ),
        (
            ("search", vec![json!("org_a"), json!("claimSimilarity")]),
            400,
            "invalid_request",
        ),
        (
            (
                "search",
                vec![json!("org_a"), json!("nope"), json!({"text": "q"})],
            ),
            404,
            "not_found",
        ),
    ];
    for (call, status, code) in cases {
        let reply = handle(&app, &call).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{call:?}: {}",
            reply.body
        );
    }
    assert_eq!(
        app.embedder.calls.get(),
        0,
        "nothing refused reaches the model"
    );
}

#[wasm_bindgen_test]
async fn enqueue_sends_a_checked_job_by_the_right_model() {
    let app = app();
    let queue = FakeQueue::default();
    let enqueue = |request: Value| ("enqueue", vec![json!("org_a"), request]);
    let reply = call_with(
        &app,
        &queue,
        &enqueue(json!({"text": "Three were charged", "table": "claims", "id": "clm_9"})),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let sent = queue.sent.borrow().last().cloned().unwrap();
    assert_eq!(reply.body["jobId"], sent.job_id.to_string());
    assert_eq!(
        (
            sent.organization_id.as_str(),
            sent.model.as_str(),
            sent.table.as_deref(),
            sent.id.as_deref()
        ),
        (
            "org_a",
            "@cf/baai/bge-base-en-v1.5",
            Some("claims"),
            Some("clm_9")
        ),
        "a record's job is by its table's model"
    );
    assert_eq!(
        EmbeddingJob::decode(serde_json::to_value(&sent).unwrap()),
        Ok(sent.clone()),
        "the consumer takes it"
    );

    let reply = call_with(
        &app,
        &queue,
        &enqueue(json!({"text": "a note", "service": "noteSearch"})),
    )
    .await;
    assert_eq!(
        reply.body["model"], "@cf/baai/bge-small-en-v1.5",
        "{}",
        reply.body
    );

    let refused: [(Value, u16); 6] = [
        (json!({"text": "  "}), 400),
        (json!({"text": "x", "table": "claims"}), 400),
        (json!({"text": "x", "table": "nope", "id": "a"}), 404),
        (
            json!({"text": "x", "table": "claims", "id": "a", "model": "@cf/baai/bge-small-en-v1.5"}),
            400,
        ),
        (json!({"text": "x", "model": "@cf/nope"}), 400),
        (json!({"text": "x", "extra": 1}), 400),
    ];
    let before = queue.sent.borrow().len();
    for (request, status) in refused {
        let reply = call_with(&app, &queue, &enqueue(request.clone())).await;
        assert_eq!(reply.status, status, "{request}: {}", reply.body);
    }
    assert_eq!(queue.sent.borrow().len(), before, "nothing refused is sent");

    let down = FakeQueue {
        down: true,
        ..FakeQueue::default()
    };
    let reply = call_with(&app, &down, &enqueue(json!({"text": "x"}))).await;
    assert_eq!(
        (reply.status, reply.body["error"]["code"].as_str()),
        (503, Some("unavailable"))
    );
}

#[wasm_bindgen_test]
fn an_enqueued_job_is_the_gateways_job_for_the_same_content() {
    let config = worker_kit::config::config();
    let request = EnqueueRequest {
        text: "Police arrested three suspects".into(),
        service: None,
        model: None,
        table: None,
        id: None,
    };
    let job = rpc::job(config, "org_a", &request, uuid::Uuid::nil()).unwrap();
    assert_eq!(
        job,
        EmbeddingJob::new(
            uuid::Uuid::nil(),
            "org_a",
            shared::models::default_model().name,
            "Police arrested three suspects",
            None
        )
    );
}

/// `org_a`'s claims in two sets: bge-small's (configured before, 384 dimensions), holding
/// `old_only`, and bge-base's (configured now), holding `new_only`. Neither is active yet.
fn two_sets(app: &TestApp) -> (VectorSet, VectorSet) {
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

#[wasm_bindgen_test]
async fn a_table_is_searched_in_its_active_set_only_and_follows_the_switch() {
    // claims is configured with bge-base; its active set is still bge-small's.
    let app = app();
    let (small, base) = two_sets(&app);
    let activate = |set: &VectorSet, generation| {
        app.store.active.borrow_mut().insert(
            ("org_a".into(), "claims".into()),
            ActiveSet {
                set: set.clone(),
                generation,
            },
        );
    };
    let search = post(
        "/search/claimSimilarity",
        "org_a",
        json!({"text": "query", "limit": 10}),
    );
    activate(&small, 1);
    let before = handle(&app, &search).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(
        ids(&before.body),
        vec!["old_only"],
        "the old set, whole, and nothing else"
    );
    // The query was embedded with the old model: a 768-dimension vector would not score 384.
    let raw = handle(
        &app,
        &post(
            "/embed",
            "org_a",
            json!({"text": "x", "service": "claimSimilarity"}),
        ),
    )
    .await;
    assert_eq!(raw.body["dimensions"], 384, "embed follows the active set");
    let query = handle(
        &app,
        &post(
            "/query",
            "org_a",
            json!({"vector": vec![0.5; 768], "table": "claims"}),
        ),
    )
    .await;
    assert_eq!(
        query.status, 400,
        "a new-model vector before the switch: {}",
        query.body
    );

    // The switch: the next search reads the new set, and the old snapshot goes.
    activate(&base, 2);
    let after = handle(&app, &search).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(ids(&after.body), vec!["new_only"]);
    assert_eq!(
        app.caches.vectors.stats().tables,
        1,
        "the old set's copy was dropped"
    );
}

/// `n` pseudo-random 768-dimension vectors (not unit length: the store holds what the model
/// returned), from a fixed seed.
fn random_vectors(seed: u64, n: usize) -> Vec<Vec<f32>> {
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
fn brute_force(vectors: &[(String, Vec<f32>)], query: &[f32], k: usize) -> Vec<(String, u32)> {
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

fn answer(body: &Value) -> Vec<(String, u32)> {
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

#[wasm_bindgen_test]
async fn a_search_by_codes_answers_as_an_exact_scan_to_the_bit_and_reads_each_exact_vector_once() {
    // A table too large to hold every exact vector: each search reads its shortlist's.
    let app = app();
    app.caches.vectors.set_resident_bytes(0);
    let vectors: Vec<(String, Vec<f32>)> = random_vectors(3, 600)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("c{i}"), v))
        .collect();
    for (i, (id, vector)) in vectors.iter().enumerate() {
        // A third of the rows were written before codes were: the worker makes theirs.
        app.store.without_codes.set(i % 3 == 0);
        app.store
            .put("org_a", "claims", id, Some(vector), &json!({}));
    }
    for (q, query) in random_vectors(4, 4).iter().enumerate() {
        for k in [1, 10, 100] {
            let request = json!({"vector": query, "topK": k, "table": "claims"});
            let reads = app.store.exact_reads.borrow().len();
            let response = handle(&app, &post("/query", "org_a", request.clone())).await;
            assert_eq!(response.status, 200, "{}", response.body);
            assert_eq!(
                answer(&response.body),
                brute_force(&vectors, query, k),
                "query {q}, top {k}"
            );
            let shortlisted: usize = app.store.exact_reads.borrow()[reads..]
                .iter()
                .map(Vec::len)
                .sum();
            // (Fewer than k, or none, where earlier searches read some already.)
            assert!(
                shortlisted < vectors.len() / 2,
                "query {q}, top {k}: {shortlisted} exact vectors read of {}",
                vectors.len()
            );
            let reads = app.store.exact_reads.borrow().len();
            let again = handle(&app, &post("/query", "org_a", request)).await;
            assert_eq!(again.body, response.body);
            assert_eq!(
                app.store.exact_reads.borrow().len(),
                reads,
                "the same query again reads no exact vector"
            );
        }
    }
    assert!(!app.store.exact_reads.borrow().is_empty());
}

#[wasm_bindgen_test]
async fn a_record_written_while_its_exact_vector_is_read_is_searched_as_it_is_now() {
    // A table too large to hold every exact vector: the search reads its shortlist's.
    let app = app();
    app.caches.vectors.set_resident_bytes(0);
    let vectors = random_vectors(5, 50);
    for (i, vector) in vectors.iter().enumerate() {
        app.store.put(
            "org_a",
            "claims",
            &format!("c{i}"),
            Some(vector),
            &json!({}),
        );
    }
    let query = vectors[7].clone();
    // c7 is the best match by far; as the search reads its exact vector, c7 becomes another.
    let far: Vec<f32> = query.iter().map(|x| -x).collect();
    *app.store.write_before_exact.borrow_mut() =
        Some(("org_a".into(), "claims".into(), "c7".into(), far.clone()));
    let request = json!({"vector": query, "topK": 3, "table": "claims"});
    let response = handle(&app, &post("/query", "org_a", request)).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let mut now: Vec<(String, Vec<f32>)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("c{i}"), v.clone()))
        .collect();
    now[7].1 = far;
    assert_eq!(
        answer(&response.body),
        brute_force(&now, &query, 3),
        "the answer is of one state, read after the write"
    );
    assert!(!ids(&response.body["matches"]).contains(&"c7"));
    assert_eq!(
        app.store.exact_reads.borrow().len(),
        2,
        "read again once, after catching up"
    );
}

#[wasm_bindgen_test]
async fn a_switch_and_its_clean_up_while_a_search_reads_exact_vectors_send_it_to_the_new_set() {
    let app = app();
    let (small, base) = two_sets(&app);
    app.store.active.borrow_mut().insert(
        ("org_a".into(), "claims".into()),
        ActiveSet {
            set: small,
            generation: 1,
        },
    );
    *app.store.switch_before_exact.borrow_mut() = Some((
        "org_a".into(),
        "claims".into(),
        ActiveSet {
            set: base,
            generation: 2,
        },
    ));
    let response = handle(
        &app,
        &post(
            "/search/claimSimilarity",
            "org_a",
            json!({"text": "query", "limit": 10}),
        ),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        ids(&response.body),
        vec!["new_only"],
        "the new set, whole, once the old one's exact vectors are gone"
    );
    assert_eq!(
        app.embedder.calls.get(),
        2,
        "embedded again by the new model"
    );
}

#[wasm_bindgen_test]
async fn a_small_table_holds_every_exact_vector_read_beside_its_catch_ups() {
    let app = app();
    let mut vectors: Vec<(String, Vec<f32>)> = random_vectors(6, 600)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (format!("c{i}"), v))
        .collect();
    for (id, vector) in &vectors {
        app.store
            .put("org_a", "claims", id, Some(vector), &json!({}));
    }
    let queries = random_vectors(7, 8);
    let search = |query: &Vec<f32>| {
        post(
            "/query",
            "org_a",
            json!({"vector": query, "topK": 10, "table": "claims"}),
        )
    };
    // The first search loads the codes; each next one reads a chunk (256) of exact vectors
    // beside its catch-up, so the fourth finds all 600 here.
    for query in &queries[..4] {
        let response = handle(&app, &search(query)).await;
        assert_eq!(answer(&response.body), brute_force(&vectors, query, 10));
    }
    assert_eq!(app.store.filled.get(), 3, "three chunks");
    let reads = app.store.exact_reads.borrow().len();
    for query in &queries[4..] {
        let response = handle(&app, &search(query)).await;
        assert_eq!(answer(&response.body), brute_force(&vectors, query, 10));
    }
    assert_eq!(
        app.store.exact_reads.borrow().len(),
        reads,
        "new queries read no exact vector once the layer is whole"
    );
    // A write: its exact vector comes with the next catch-up's chunk, not a read of its own.
    let best = queries[0].clone();
    app.store
        .put("org_a", "claims", "c3", Some(&best), &json!({}));
    vectors[3].1.clone_from(&best);
    let response = handle(&app, &search(&best)).await;
    assert_eq!(answer(&response.body), brute_force(&vectors, &best, 10));
    assert_eq!(ids(&response.body["matches"])[0], "c3");
    assert_eq!(app.store.exact_reads.borrow().len(), reads);
    assert_eq!(app.store.filled.get(), 4);
    let response = handle(&app, &search(&queries[5])).await;
    assert_eq!(
        answer(&response.body),
        brute_force(&vectors, &queries[5], 10)
    );
    assert_eq!(app.store.filled.get(), 4, "nothing left to fill");
}
