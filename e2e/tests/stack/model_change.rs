//! Changing tables' models under live data: a stack of its own (restarting the suite's would
//! change every later test's models) restarts its workers with the ones built from the
//! model-change variant of embeddings.toml (`scripts/variant-config model-change`: notes from
//! bge-small to bge-base in D1, evidence from bge-base in the 768-dimension Vectorize index to
//! bge-small in the 384-dimension one; claims changes too, and holds nothing here), over the
//! same D1 state and stand-ins, as a deploy would.
//!
//! While both tables move, a seeded client writes (creates, edits the embedded text, deletes)
//! and searches without pause. It holds, against an oracle of the live records:
//! - no search fails, and none returns a record that is not live;
//! - each table's searches switch from the old model to the new once, never back;
//! - after the switch and its clean-up, every live record's vector (the set's row and the
//!   record's embedding column) is the new model's, made from its current text; the old set is
//!   gone from D1; and a search for each record's text finds it first: no write was lost.
//!
//! And on another stack of its own: the migration command sent ten times in a row starts one
//! chain of steps, whose backfill enqueues each record once (`shared::sets`, "One chain per
//! set").

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::{Client, Options, Stack, Variant};
use libtest_mimic::Failed;
use serde_json::{json, Value};
use shared::message::content_hash;

use super::rng::Rng;
use super::{check, expect, wait_final_on, Ctx, Test};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "model_change_keeps_every_search_whole_and_loses_no_write_on_both_backends",
    a_model_change_keeps_every_search_whole_and_loses_no_write,
)];

const BGE_SMALL: &str = "@cf/baai/bge-small-en-v1.5";
pub(crate) const BGE_BASE: &str = "@cf/baai/bge-base-en-v1.5";
/// Records each table holds when its model changes.
const SEEDED: usize = 300;
/// How long both changes may take, writes and searches going on throughout.
const WITHIN: Duration = Duration::from_mins(4);

/// One table under test: its search service, its models and where its new vectors go.
pub(crate) struct Moving {
    table: &'static str,
    service: &'static str,
    from: &'static str,
    to: &'static str,
    location: &'static str,
    /// The record's fields, for its `n`th text.
    fields: fn(usize, &str) -> Value,
    /// The embedded text of those fields, as the config joins them.
    text: fn(&Value) -> String,
}

pub(crate) const NOTES: Moving = Moving {
    table: "notes",
    service: "noteSearch",
    from: BGE_SMALL,
    to: BGE_BASE,
    location: "d1",
    fields: |n, words| json!({"title": format!("Note {n}"), "body": words, "topic": "t"}),
    text: |r| {
        format!(
            "{}\n{}",
            r["title"].as_str().unwrap_or_default(),
            r["body"].as_str().unwrap_or_default()
        )
    },
};

const EVIDENCE: Moving = Moving {
    table: "evidence",
    service: "evidenceSearch",
    from: BGE_BASE,
    to: BGE_SMALL,
    location: "vectorize:VECTORIZE_384",
    fields: |n, words| json!({"content": format!("Exhibit {n}: {words}"), "story_id": "s1"}),
    text: |r| r["content"].as_str().unwrap_or_default().to_owned(),
};

/// Distinct words for the `n`th text, so that each record's text is its own nearest match.
fn words(n: usize) -> String {
    const WORDS: &[&str] = &[
        "harbour", "council", "budget", "river", "school", "rail", "court", "forest", "market",
        "bridge", "museum", "clinic", "airport", "library", "stadium", "factory",
    ];
    let mut n = n + 1;
    let mut out = Vec::new();
    while n > 0 {
        out.push(WORDS[n % WORDS.len()]);
        n /= WORDS.len();
    }
    format!("the {} report", out.join(" "))
}

fn a_model_change_keeps_every_search_whole_and_loses_no_write(_: &Ctx) -> Result<(), Failed> {
    let (stack, variant) = model_change_stack()?;
    change_models(&stack, &variant).map_err(|e| with_log_tail(&stack, &e))
}

/// A stack of its own for a model change, and the variant it changes to.
pub(crate) fn model_change_stack() -> Result<(Stack, Variant), Failed> {
    // Before starting anything: a missing build says how to make it.
    let variant = Variant::model_change()?;
    let stack = Stack::start(Options {
        retry_base_delay_seconds: Some(1),
        vectorize_delay_ms: Some(400),
        ..Options::default()
    })?;
    Ok((stack, variant))
}

/// The live records of one table, by id: their fields as last written.
type Oracle = BTreeMap<String, Value>;

fn change_models(stack: &Stack, variant: &Variant) -> Result<(), Failed> {
    let ann = stack.tenant("ann").cookie;
    let mut oracles = [Oracle::new(), Oracle::new()];
    let mut next = seed(&stack.client(), &ann, &mut oracles)?;
    let models = table_models(&stack.client(), &ann)?;
    check(
        models["notes"] == BGE_SMALL && models["evidence"] == BGE_BASE,
        || format!("the models before: {models:?}"),
    )?;

    stack.restart_workers(variant)?;
    let client = stack.client();
    let restarted = Instant::now();

    // notes' change starts with its first write; evidence's by the one command.
    let started = client.post(
        "/api/v1/embeddings/tables/evidence/migration",
        Some(&ann),
        "{}",
    )?;
    expect(&started, 202, "start evidence's model change")?;
    check(
        started.body["migration"]["to"]["model"] == BGE_SMALL,
        || format!("the change is evidence's to bge-small: {}", started.body),
    )?;

    let mut rng = Rng(0x5EED_0015);
    let mut searched = Searched::default();
    let mut switched_at: [Option<Duration>; 2] = [None, None];
    let mut last_jobs = Vec::new();
    loop {
        check(restarted.elapsed() < WITHIN, || {
            format!("the model changes took over {WITHIN:?}: {searched:?}")
        })?;
        for (i, moving) in [&NOTES, &EVIDENCE].into_iter().enumerate() {
            if let Some(job) = write(&client, &ann, moving, &mut oracles[i], &mut rng, &mut next)? {
                last_jobs.push((i, job));
            }
            let model = active_model(&client, &ann, moving)?;
            let migrating = model.as_deref() != Some(moving.to) || switched_at[i].is_none();
            search(
                &client,
                &ann,
                moving,
                &oracles[i],
                &mut rng,
                &mut searched,
                migrating,
            )?;
            match (model.as_deref(), switched_at[i]) {
                (Some(m), None) if m == moving.to => switched_at[i] = Some(restarted.elapsed()),
                (Some(m), Some(_)) if m != moving.to => {
                    return Err(
                        format!("{} went back to {m} after its switch", moving.table).into(),
                    )
                }
                (Some(m), None) if m != moving.from => {
                    return Err(format!("{} is searched with {m} mid-change", moving.table).into())
                }
                _ => {}
            }
        }
        if switched_at.iter().all(Option::is_some) && cleaned_up(&client, &ann)? {
            break;
        }
    }
    let took = restarted.elapsed();
    for (i, (job, id)) in &last_jobs {
        let ended = wait_final_on(&client, &ann, job, Duration::from_mins(1))?;
        // A job whose record the history deleted before it ran is dead, as any such job is.
        let deleted = !oracles[*i].contains_key(id)
            && ended["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("no longer exists"));
        check(
            matches!(ended["status"].as_str(), Some("done" | "stale" | "skipped"))
                || (ended["status"] == "dead" && deleted),
            || format!("a write during the change ended {ended}"),
        )?;
    }
    for (moving, oracle) in [&NOTES, &EVIDENCE].into_iter().zip(&oracles) {
        every_vector_is_the_new_models(stack, moving, oracle)?;
        every_record_is_found_by_its_text(&client, &ann, moving, oracle)?;
    }
    let status = client.get("/api/v1/embeddings/status/notes", Some(&ann))?;
    expect(&status, 200, "notes' status")?;
    check(
        status.body["active"]["model"] == BGE_BASE
            && status.body["migration"].is_null()
            && status.body["records"] == oracles[0].len()
            && status.body["embedded"] == oracles[0].len(),
        || format!("notes' status after the change: {}", status.body),
    )?;
    check(searched.during_change >= 5, || {
        format!("the client searched too little while the models changed: {searched:?}")
    })?;
    let mut latencies = searched.latencies_ms.clone();
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    eprintln!(
        "model changes of {SEEDED} records each: both switched and cleaned up in {took:?} (notes \
         switched after {:?}, evidence after {:?}); {} searches, {} during a change, none \
         failed, p99 {p99} ms",
        switched_at[0], switched_at[1], searched.all, searched.during_change
    );
    Ok(())
}

/// Writes [`SEEDED`] records to each table, and waits until they are embedded; answers the
/// number of the next text.
fn seed(client: &Client, cookie: &str, oracles: &mut [Oracle; 2]) -> Result<usize, Failed> {
    let mut next = 0;
    for (moving, oracle) in [&NOTES, &EVIDENCE].into_iter().zip(oracles) {
        let mut jobs = Vec::new();
        for _ in 0..SEEDED {
            let (id, record, job) = create(client, cookie, moving, next)?;
            next += 1;
            oracle.insert(id, record);
            jobs.push(job);
        }
        for job in &jobs {
            let ended = wait_final_on(client, cookie, job, Duration::from_mins(2))?;
            check(ended["status"] == "done", || {
                format!("a seeded job: {ended}")
            })?;
        }
    }
    Ok(next)
}

/// Searches made, and how they went.
#[derive(Default)]
struct Searched {
    all: usize,
    /// While a table's model change ran.
    during_change: usize,
    /// Their latencies, for the p99.
    latencies_ms: Vec<u128>,
}

impl std::fmt::Debug for Searched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} searches, {} during a change",
            self.all, self.during_change
        )
    }
}

pub(crate) fn create(
    client: &Client,
    cookie: &str,
    moving: &Moving,
    n: usize,
) -> Result<(String, Value, String), Failed> {
    let fields = (moving.fields)(n, &words(n));
    let created = client.post(
        &format!("/api/v1/{}", moving.table),
        Some(cookie),
        &fields.to_string(),
    )?;
    expect(
        &created,
        201,
        &format!("create a record of {}", moving.table),
    )?;
    let record = created.body["record"].clone();
    let id = record["id"]
        .as_str()
        .ok_or("a record without id")?
        .to_owned();
    let job = created.body["job"]["jobId"]
        .as_str()
        .ok_or_else(|| format!("no job for a new record: {}", created.body))?
        .to_owned();
    Ok((id, record, job))
}

/// One write of the client's: a new record, a new text for a record, or a delete. Returns the
/// job it queued, if any, and its record.
fn write(
    client: &Client,
    cookie: &str,
    moving: &Moving,
    oracle: &mut Oracle,
    rng: &mut Rng,
    next: &mut usize,
) -> Result<Option<(String, String)>, Failed> {
    let ids: Vec<String> = oracle.keys().cloned().collect();
    let n = *next;
    *next += 1;
    match rng.below(3) {
        0 => {
            let (id, record, job) = create(client, cookie, moving, n)?;
            oracle.insert(id.clone(), record);
            Ok(Some((job, id)))
        }
        1 => {
            let id = &ids[rng.below(ids.len())];
            let mut fields = (moving.fields)(n, &words(n));
            if let Some(fields) = fields.as_object_mut() {
                fields.remove("story_id");
                fields.remove("topic");
            }
            let reply = client.call(
                "PATCH",
                &format!("/api/v1/{}/{id}", moving.table),
                &[("cookie", cookie)],
                Some(&fields.to_string()),
            )?;
            expect(&reply, 200, "edit a record's text")?;
            oracle.insert(id.clone(), reply.body["record"].clone());
            Ok(reply.body["job"]["jobId"]
                .as_str()
                .map(|job| (job.to_owned(), id.clone())))
        }
        _ => {
            let id = &ids[rng.below(ids.len())];
            let reply = client.call(
                "DELETE",
                &format!("/api/v1/{}/{id}", moving.table),
                &[("cookie", cookie)],
                None,
            )?;
            expect(&reply, 204, "delete a record")?;
            oracle.remove(id);
            Ok(None)
        }
    }
}

/// A search for one live record's text: it answers, with live records only.
fn search(
    client: &Client,
    cookie: &str,
    moving: &Moving,
    oracle: &Oracle,
    rng: &mut Rng,
    searched: &mut Searched,
    migrating: bool,
) -> Result<(), Failed> {
    let ids: Vec<&String> = oracle.keys().collect();
    let record = &oracle[ids[rng.below(ids.len())]];
    let began = Instant::now();
    let reply = client.post(
        &format!("/api/v1/embeddings/search/{}", moving.service),
        Some(cookie),
        &json!({"text": (moving.text)(record), "limit": 10}).to_string(),
    )?;
    searched.latencies_ms.push(began.elapsed().as_millis());
    searched.all += 1;
    searched.during_change += usize::from(migrating);
    expect(
        &reply,
        200,
        &format!("search {} during its model change", moving.table),
    )?;
    let matches = reply.body.as_array().ok_or("a search answers a list")?;
    for m in matches {
        let id = m["id"].as_str().unwrap_or_default();
        check(oracle.contains_key(id), || {
            format!(
                "{} answered `{id}`, which is not live: {}",
                moving.service, reply.body
            )
        })?;
    }
    Ok(())
}

/// The model a table's searches use now.
fn active_model(client: &Client, cookie: &str, moving: &Moving) -> Result<Option<String>, Failed> {
    let status = client.get(
        &format!("/api/v1/embeddings/status/{}", moving.table),
        Some(cookie),
    )?;
    expect(&status, 200, "a table's status")?;
    Ok(status.body["active"]["model"].as_str().map(str::to_owned))
}

/// Whether no table is changing its model, or removing an old set.
fn cleaned_up(client: &Client, cookie: &str) -> Result<bool, Failed> {
    let status = client.get("/api/v1/embeddings/status", Some(cookie))?;
    expect(&status, 200, "status")?;
    let done = status.body["tables"].as_array().is_some_and(|t| {
        t.iter().all(|t| {
            t["migration"].is_null() && t["removing"].as_array().is_some_and(Vec::is_empty)
        })
    });
    Ok(done)
}

fn every_vector_is_the_new_models(
    stack: &Stack,
    moving: &Moving,
    oracle: &Oracle,
) -> Result<(), Failed> {
    let table = moving.table;
    // The clean-up runs after the switch: wait for the old set to go.
    let started = Instant::now();
    loop {
        let old = stack.sql(&format!(
            "SELECT COUNT(*) AS n FROM embedding_vectors
             WHERE organization_id = 'org_a' AND table_name = '{table}' AND model != '{}'",
            moving.to
        ))?;
        if old.first().is_some_and(|r| r["n"] == 0) {
            break;
        }
        check(started.elapsed() < Duration::from_mins(1), || {
            format!("{table}'s old vectors are still in D1: {old:?}")
        })?;
        std::thread::sleep(Duration::from_millis(500));
    }
    let dims = if moving.to == BGE_BASE { 768 } else { 384 };
    let rows = stack.sql(&format!(
        "SELECT v.record_id, v.model, v.location, v.content_hash, length(v.vector) AS bytes,
                json_array_length(r.embedding) AS column_dims
         FROM embedding_vectors v JOIN {table} r ON r.organization_id = v.organization_id
             AND r.id = v.record_id
         WHERE v.organization_id = 'org_a' AND v.table_name = '{table}' AND v.vector IS NOT NULL"
    ))?;
    let stored: BTreeMap<&str, &Value> = rows
        .iter()
        .filter_map(|r| Some((r["record_id"].as_str()?, r)))
        .collect();
    check(stored.len() == oracle.len(), || {
        format!(
            "{table}: {} live records, {} live vectors",
            oracle.len(),
            stored.len()
        )
    })?;
    for (id, record) in oracle {
        let row = stored
            .get(id.as_str())
            .ok_or_else(|| format!("{table}: record `{id}` has no vector"))?;
        let hash = content_hash(moving.to, &(moving.text)(record));
        check(
            row["model"] == moving.to
                && row["location"] == moving.location
                && row["bytes"] == dims * 4
                && row["column_dims"] == dims
                && row["content_hash"] == hash.as_str(),
            || format!("{table}: `{id}`'s vector is not the new model's of its text: {row}"),
        )?;
    }
    Ok(())
}

fn every_record_is_found_by_its_text(
    client: &Client,
    cookie: &str,
    moving: &Moving,
    oracle: &Oracle,
) -> Result<(), Failed> {
    // Vectorize shows a write a moment after it takes it.
    let started = Instant::now();
    for (id, record) in oracle {
        loop {
            let reply = client.post(
                &format!("/api/v1/embeddings/search/{}", moving.service),
                Some(cookie),
                &json!({"text": (moving.text)(record), "limit": 1}).to_string(),
            )?;
            expect(&reply, 200, "search after the change")?;
            if reply.body[0]["id"] == id.as_str() {
                break;
            }
            check(started.elapsed() < Duration::from_mins(1), || {
                format!(
                    "{}: `{id}` is not found by its own text: {}",
                    moving.service, reply.body
                )
            })?;
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// A failure on a test's own stack, with the end of its workers' log (the stack, and its logs,
/// are gone once the test returns).
pub(crate) fn with_log_tail(stack: &Stack, failed: &Failed) -> Failed {
    let log = stack.log("wrangler-dev.log");
    let steps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("model change") || l.contains("\"ERROR\""))
        .take(60)
        .collect();
    format!(
        "{}\n--- its model change steps and errors ---\n{}\n--- last lines of its wrangler-dev.log ---\n{}",
        failed.message().unwrap_or("failed"),
        steps.join("\n"),
        stack.log_tail("wrangler-dev.log", 40)
    )
    .into()
}

/// Each table's model, as `GET /api/v1/embeddings/tables` reports it to `cookie`.
pub(crate) fn table_models(
    client: &Client,
    cookie: &str,
) -> Result<BTreeMap<String, String>, Failed> {
    let reply = client.get("/api/v1/embeddings/tables", Some(cookie))?;
    expect(&reply, 200, "tables")?;
    reply.body["tables"]
        .as_array()
        .ok_or_else(|| format!("no tables: {}", reply.body))?
        .iter()
        .map(|t| match (t["name"].as_str(), t["model"].as_str()) {
            (Some(name), Some(model)) => Ok((name.to_owned(), model.to_owned())),
            _ => Err(format!("a table without name or model: {t}").into()),
        })
        .collect()
}
