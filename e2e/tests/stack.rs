//! The end-to-end suite. It starts the real local stack once (see `e2e::Stack`), runs every
//! test against it over HTTP, and stops it whether the tests pass or not. Tests run one at a
//! time: some break local-ai on purpose, and count its calls.
//!
//! - this file: health, the queue round trip, guards, the embed route;
//! - [`gateway`]: every route against every kind of bad credential, and each route's happy path;
//! - [`chunked`]: a body without a length, held to the same cap as one with;
//! - [`consumer`]: the pipeline from the queue to stored vectors, under faults;
//! - [`search`]: classified search, filters, the gray zone and vector queries, on both backends;
//! - [`keywords`]: keyword and hybrid search, and the keyword index kept in step by every write;
//! - [`backends`]: the two search backends (D1 and the Vectorize stand-in);
//! - [`vectorize`]: what only a running Vectorize shows;
//! - [`tenancy`]: another tenant's data reads as absent data; nobody sees another's searches;
//! - [`limits`]: metadata bounds, rate limits and the bulk queue (docs/limits.md);
//! - [`checker`]: seeded random histories on both backends, checked against an oracle;
//! - [`app`]: the example application Worker: better-auth sign-ups, and search over RPC;
//! - [`app_roles`]: what each role gets from the example app's routes;
//! - [`model_change`]: tables change model under live data (a stack of its own, restarted with
//!   workers built from another config);
//! - [`model_change_command`]: the model-change command, sent again and again;
//! - [`model_change_emptied`]: a record emptied behind the API's back keeps no change waiting;
//! - [`model_change_rollback`]: a deploy rolled back mid-change leaves no old vector in a column;
//! - [`fuzz`]: schemathesis against the `OpenAPI` document the gateway serves.

#[path = "stack/app.rs"]
mod app;
#[path = "stack/app_roles.rs"]
mod app_roles;
#[path = "stack/backends.rs"]
mod backends;
#[path = "stack/budget.rs"]
mod budget;
#[path = "stack/checker/mod.rs"]
mod checker;
#[path = "stack/chunked.rs"]
mod chunked;
#[path = "stack/consumer.rs"]
mod consumer;
#[path = "stack/fuzz.rs"]
mod fuzz;
#[path = "stack/gateway.rs"]
mod gateway;
#[path = "stack/keywords.rs"]
mod keywords;
#[path = "stack/limits.rs"]
mod limits;
#[path = "stack/model_change.rs"]
mod model_change;
#[path = "stack/model_change_command.rs"]
mod model_change_command;
#[path = "stack/model_change_emptied.rs"]
mod model_change_emptied;
#[path = "stack/model_change_rollback.rs"]
mod model_change_rollback;
#[path = "stack/rng.rs"]
mod rng;
#[path = "stack/search.rs"]
mod search;
#[path = "stack/tenancy.rs"]
mod tenancy;
#[path = "stack/vectorize.rs"]
mod vectorize;

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{Client, Options, Reply, Stack};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{json, Value};
use shared::vector::cosine;

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let options = Options {
        pipeline: true,
        retry_base_delay_seconds: Some(1),
        // Vectorize's writes become visible only after a while; so do the stand-in's here.
        vectorize_delay_ms: Some(400),
        example_app: true,
        ..Options::default()
    };
    let stack = match Stack::start(options) {
        Ok(stack) => Arc::new(stack),
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            std::process::exit(1);
        }
    };
    let trials = tests(&stack);
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        for log in [
            "wrangler-dev.log",
            "example-app.log",
            "local-ai.log",
            "local-vectorize.log",
        ] {
            eprintln!("--- last lines of {log} ---\n{}", stack.log_tail(log, 60));
        }
        // Again, last: a CI log is often read from its end, where the logs above would bury
        // what failed.
        for (name, message) in FAILURES.lock().map(|f| f.clone()).unwrap_or_default() {
            let head: Vec<&str> = message.lines().take(40).collect();
            eprintln!("--- {name} failed ---\n{}", head.join("\n"));
        }
    }
    // The trials, and their handles on the stack, are gone: this stops it.
    drop(stack);
    conclusion.exit();
}

type Test = fn(&Ctx) -> Result<(), Failed>;

/// Each failed test's name and message, for the end of the run.
static FAILURES: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

/// A trial that records its failure in [`FAILURES`].
fn trial(
    name: impl Into<String>,
    test: impl FnOnce() -> Result<(), Failed> + Send + 'static,
) -> Trial {
    let name = name.into();
    Trial::test(name.clone(), move || {
        test().inspect_err(|failed| {
            let message = failed.message().unwrap_or("failed").to_owned();
            if let Ok(mut failures) = FAILURES.lock() {
                failures.push((name, message));
            }
        })
    })
}

/// What each test gets: clients, the stack, and the cookies of the seeded sessions.
#[derive(Debug, Clone)]
struct Ctx {
    stack: Arc<Stack>,
    client: Client,
    local_ai: Client,
    ann: String,
    bob: String,
    meg: String,
    vic: String,
    gus: String,
    expired: String,
    no_org: String,
    not_member: String,
    forged: String,
}

impl Ctx {
    fn new(stack: &Arc<Stack>) -> Ctx {
        let ann = stack.tenant("ann").cookie;
        Ctx {
            stack: Arc::clone(stack),
            client: stack.client(),
            local_ai: Client::new(&stack.local_ai_url),
            bob: stack.tenant("bob").cookie,
            meg: stack.tenant("meg").cookie,
            vic: stack.tenant("vic").cookie,
            gus: stack.tenant("gus").cookie,
            expired: stack.cookie("tok_expired"),
            no_org: stack.cookie("tok_no_org"),
            not_member: stack.cookie("tok_not_member"),
            // Ann's live token with Bob's signature: a real signature, but not of this token, so
            // only the signature check can refuse it.
            forged: format!(
                "better-auth.session_token=tok_ann.{}",
                stack.tenant("bob").cookie.rsplit_once('.').unwrap().1
            ),
            ann,
        }
    }
}

fn tests(stack: &Arc<Stack>) -> Vec<Trial> {
    let ctx = Ctx::new(stack);
    let tests: Vec<(&str, Test)> = vec![
        (
            "health_reaches_search_worker_over_the_binding",
            health_reaches_search_worker_over_the_binding,
        ),
        (
            "a_job_travels_the_queue_and_the_consumer_records_it",
            a_job_travels_the_queue_and_the_consumer_records_it,
        ),
        (
            "a_record_job_needs_the_record_in_the_callers_organization",
            a_record_job_needs_the_record_in_the_callers_organization,
        ),
        ("bad_input_gets_a_clear_4xx", bad_input_gets_a_clear_4xx),
        ("embedding_tables_are_listed", embedding_tables_are_listed),
        (
            "embed_goes_through_search_worker_to_local_ai",
            embed_goes_through_search_worker_to_local_ai,
        ),
    ];
    let mut trials: Vec<Trial> = tests
        .into_iter()
        .chain(gateway::TESTS.iter().copied())
        .chain(chunked::TESTS.iter().copied())
        .chain(consumer::TESTS.iter().copied())
        .chain(budget::TESTS.iter().copied())
        .chain(vectorize::TESTS.iter().copied())
        .chain(tenancy::TESTS.iter().copied())
        .chain(limits::TESTS.iter().copied())
        .chain(app::TESTS.iter().copied())
        .chain(app_roles::TESTS.iter().copied())
        .chain(model_change::TESTS.iter().copied())
        .chain(model_change_command::TESTS.iter().copied())
        .chain(model_change_emptied::TESTS.iter().copied())
        .chain(model_change_rollback::TESTS.iter().copied())
        .chain(checker::TESTS.iter().copied())
        .chain(search::D1_TESTS.iter().copied())
        .chain(keywords::PLAIN_TESTS.iter().copied())
        .map(|(name, test)| {
            let ctx = ctx.clone();
            trial(name, move || test(&ctx))
        })
        .collect();
    let checker: &[(&str, backends::BackendTest)] = &[(
        "checker_random_histories_match_the_oracle",
        checker::random_histories_match_the_oracle,
    )];
    for (name, test) in search::TESTS
        .iter()
        .chain(keywords::TESTS)
        .chain(backends::TESTS)
        .chain(tenancy::BACKEND_TESTS)
        .chain(app::BACKEND_TESTS)
        .chain(checker)
    {
        for backend in backends::BACKENDS {
            let ctx = ctx.clone();
            trials.push(trial(format!("{name}::{}", backend.name), move || {
                test(&ctx, backend)
            }));
        }
    }
    // Last: it writes whatever the schema allows.
    let fuzz = ctx.clone();
    trials.push(
        trial(
            "schemathesis_holds_the_gateway_to_its_document_with_every_check",
            move || fuzz::schemathesis(&fuzz),
        )
        .with_ignored_flag(std::env::var_os(fuzz::SCHEMATHESIS).is_none()),
    );
    trials
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
    if condition {
        Ok(())
    } else {
        Err(message().into())
    }
}

fn expect(reply: &Reply, status: u16, what: &str) -> Result<(), Failed> {
    check(reply.status == status, || {
        format!(
            "{what}: expected {status}, got {} {}",
            reply.status, reply.body
        )
    })
}

fn enqueue(ctx: &Ctx, cookie: &str, body: &Value) -> Result<Reply, Failed> {
    Ok(ctx
        .client
        .post("/api/v1/embeddings", Some(cookie), &body.to_string())?)
}

/// Polls one of Ann's jobs until it is final or `within` passes; returns its last view.
fn wait_final(ctx: &Ctx, job_id: &str, within: Duration) -> Result<Value, Failed> {
    wait_final_as(ctx, &ctx.ann, job_id, within)
}

/// Polls a job, as the caller whose cookie is given, until it is final or `within` passes.
fn wait_final_as(ctx: &Ctx, cookie: &str, job_id: &str, within: Duration) -> Result<Value, Failed> {
    wait_final_on(&ctx.client, cookie, job_id, within)
}

/// [`wait_final_as`] through any client (a test's own stack's).
fn wait_final_on(
    client: &Client,
    cookie: &str,
    job_id: &str,
    within: Duration,
) -> Result<Value, Failed> {
    let started = Instant::now();
    loop {
        let reply = client.get(&format!("/api/v1/embeddings/jobs/{job_id}"), Some(cookie))?;
        expect(&reply, 200, "job status")?;
        if !matches!(reply.body["status"].as_str(), Some("queued" | "processing")) {
            return Ok(reply.body);
        }
        if started.elapsed() > within {
            return Err(format!("job {job_id} not final after {within:?}: {}", reply.body).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn job_id(reply: &Reply) -> Result<String, Failed> {
    expect(reply, 202, "enqueue")?;
    Ok(reply.body["jobId"].as_str().ok_or("no jobId")?.to_owned())
}

fn health_reaches_search_worker_over_the_binding(ctx: &Ctx) -> Result<(), Failed> {
    let reply = ctx.client.get("/api/v1/health", None)?;
    expect(&reply, 200, "health")?;
    check(reply.body["worker"] == "api-worker", || {
        format!("{}", reply.body)
    })?;
    check(reply.body["d1"]["ok"] == true, || {
        format!("D1 not ok: {}", reply.body)
    })?;
    check(
        reply.body["search"]["detail"]["worker"] == "search-worker",
        || format!("search-worker not reached over SEARCH: {}", reply.body),
    )?;
    // A method the route does not take, even one the runtime's own type does not know (and
    // the suite's HTTP client will not send, hence the raw request).
    for method in ["QUERY", "PROPFIND", "PUT"] {
        let status = raw_status(ctx, method, "/api/v1/health")?;
        check(status == 405, || {
            format!("{method} /api/v1/health answered {status}, not 405")
        })?;
    }
    Ok(())
}

/// The status of a bodiless request with any method, sent as raw HTTP/1.1.
fn raw_status(ctx: &Ctx, method: &str, path: &str) -> Result<u16, Failed> {
    let response = raw_request(ctx, method, path, &[], "")?;
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line in {response:?}").into())
}

/// A request as raw HTTP/1.1, with `headers` and `body` (a `Content-Length` when there is one):
/// its whole response (status line, headers, body) as text. The suite's client keeps no headers
/// and refuses methods it does not know.
fn raw_request(
    ctx: &Ctx,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<String, Failed> {
    use std::io::{Read, Write};
    let address = ctx.stack.base_url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n"
    )?;
    for (name, value) in headers {
        write!(stream, "{name}: {value}\r\n")?;
    }
    if !body.is_empty() {
        write!(stream, "Content-Length: {}\r\n", body.len())?;
    }
    write!(stream, "\r\n{body}")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

fn a_job_travels_the_queue_and_the_consumer_records_it(ctx: &Ctx) -> Result<(), Failed> {
    let reply = enqueue(
        ctx,
        &ctx.ann,
        &json!({"content": "Firefighters rescued a cat from the old oak tree"}),
    )?;
    expect(&reply, 202, "enqueue")?;
    check(reply.body["queued"] == true, || format!("{}", reply.body))?;
    check(reply.body["model"] == "@cf/baai/bge-base-en-v1.5", || {
        format!("{}", reply.body)
    })?;
    let job_id = job_id(&reply)?;
    // Only consumer-worker moves a job past `queued`: a `done` job with its vector proves the
    // message went through the queue, local-ai embedded it, the consumer wrote D1, and the
    // gateway read it back.
    let job = wait_final(ctx, &job_id, Duration::from_secs(30))?;
    check(
        job["status"] == "done" && job["attempts"] == 1 && job["truncated"] == false,
        || format!("one delivery, embedded: {job}"),
    )?;
    check(
        job["jobId"] == job_id.as_str() && job["lastError"].is_null(),
        || format!("{job}"),
    )?;
    let vector: Vec<f32> = serde_json::from_value(job["embedding"].clone())?;
    let expected = embed(ctx, "Firefighters rescued a cat from the old oak tree")?;
    check(cosine(&vector, &expected) > 0.9999, || {
        "the job's vector is the embedding of its content".into()
    })
}

fn a_record_job_needs_the_record_in_the_callers_organization(ctx: &Ctx) -> Result<(), Failed> {
    let body =
        json!({"content": "Three suspects were arrested", "table": "claims", "id": "clm_a1"});
    let reply = enqueue(ctx, &ctx.ann, &body)?;
    expect(&reply, 202, "ann enqueues for her own claim")?;
    check(
        reply.body["table"] == "claims" && reply.body["id"] == "clm_a1",
        || format!("{}", reply.body),
    )?;
    let reply = enqueue(ctx, &ctx.bob, &body)?;
    expect(&reply, 404, "bob enqueues for ann's claim")?;
    let reply = enqueue(
        ctx,
        &ctx.ann,
        &json!({"content": "x", "table": "claims", "id": "clm_missing"}),
    )?;
    expect(&reply, 404, "a missing record")
}

fn bad_input_gets_a_clear_4xx(ctx: &Ctx) -> Result<(), Failed> {
    let cases: [(&str, String, u16, &str); 6] = [
        (
            "malformed JSON",
            "{\"content\": ".into(),
            400,
            "malformed_json",
        ),
        (
            "wrong type",
            json!({"content": 42}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "unknown field",
            json!({"content": "x", "priority": 1}).to_string(),
            400,
            "invalid_request",
        ),
        (
            "unknown model",
            json!({"content": "x", "model": "@cf/x/y"}).to_string(),
            400,
            "unknown_model",
        ),
        (
            "unknown table",
            json!({"content": "x", "table": "nope", "id": "a"}).to_string(),
            404,
            "not_found",
        ),
        (
            "oversized body",
            json!({"content": "x".repeat(5 * 1024 * 1024)}).to_string(),
            413,
            "payload_too_large",
        ),
    ];
    for (what, body, status, code) in cases {
        let reply = ctx
            .client
            .post("/api/v1/embeddings", Some(&ctx.ann), &body)?;
        expect(&reply, status, what)?;
        check(reply.body["error"]["code"] == code, || {
            format!("{what}: {}", reply.body)
        })?;
    }
    Ok(())
}

fn embedding_tables_are_listed(ctx: &Ctx) -> Result<(), Failed> {
    let reply = ctx
        .client
        .get("/api/v1/embeddings/tables", Some(&ctx.ann))?;
    expect(&reply, 200, "tables")?;
    let expected = json!({"tables": [
        {"name": "claims", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"},
        {"name": "notes", "embeddingColumn": "embedding", "model": "@cf/baai/bge-small-en-v1.5"},
        {"name": "evidence", "embeddingColumn": "embedding", "model": "@cf/baai/bge-base-en-v1.5"}
    ]});
    check(reply.body == expected, || format!("{}", reply.body))
}

fn embed(ctx: &Ctx, text: &str) -> Result<Vec<f32>, Failed> {
    let body = json!({"text": text, "service": "claimSimilarity"});
    embedded(ctx, &body, shared::models::DEFAULT_MODEL)
}

/// `text` embedded with `model` through the gateway, checked to have the model's dimensions.
fn embed_with(ctx: &Ctx, model: &str, text: &str) -> Result<Vec<f32>, Failed> {
    embedded(ctx, &json!({"text": text, "model": model}), model)
}

/// The vector `POST /embeddings/embed` answers for `body`, checked to be `model`'s.
fn embedded(ctx: &Ctx, body: &Value, model: &str) -> Result<Vec<f32>, Failed> {
    let reply = ctx.client.post(
        "/api/v1/embeddings/embed",
        Some(&ctx.ann),
        &body.to_string(),
    )?;
    expect(&reply, 200, "embed")?;
    let dimensions = shared::models::model(model)
        .ok_or_else(|| format!("`{model}` is no model of the product's"))?
        .dimensions;
    check(
        reply.body["model"] == model && reply.body["dimensions"] == dimensions,
        || format!("{model} has {dimensions} dimensions: {}", reply.body),
    )?;
    Ok(serde_json::from_value(reply.body["vector"].clone())?)
}

fn embed_goes_through_search_worker_to_local_ai(ctx: &Ctx) -> Result<(), Failed> {
    let calls_before = ctx.local_ai.get("/stats", None)?.body["calls"]
        .as_u64()
        .ok_or("no stats")?;
    let arrest = embed(ctx, "Police arrested three suspects")?;
    let paraphrase = embed(ctx, "Three suspects were arrested by the police")?;
    let weather = embed(ctx, "It will be sunny and warm tomorrow")?;
    check(
        arrest.len() == 768 && arrest[384..].iter().all(|x| *x == 0.0),
        || "the 384-dimension stand-in is zero-padded to bge-base's 768".into(),
    )?;
    let (close, far) = (cosine(&arrest, &paraphrase), cosine(&arrest, &weather));
    check(close > 0.8 && far < 0.3, || {
        format!("paraphrase {close}, unrelated {far}: not a real model")
    })?;
    let calls_after = ctx.local_ai.get("/stats", None)?.body["calls"]
        .as_u64()
        .ok_or("no stats")?;
    check(calls_after == calls_before + 3, || {
        format!(
            "local-ai saw {} calls for 3 embeds",
            calls_after - calls_before
        )
    })?;
    // The same text again comes from search-worker's query cache.
    embed(ctx, "Police arrested three suspects")?;
    let calls_again = ctx.local_ai.get("/stats", None)?.body["calls"]
        .as_u64()
        .ok_or("no stats")?;
    check(calls_again == calls_after, || {
        "a text embedded a moment ago is not embedded again".into()
    })
}
