//! Both search backends, and what only a running Vectorize shows.
//!
//! `claims` keeps its vectors in D1, `evidence` (the same shape) in Vectorize, served locally by
//! the stand-in (`local-vectorize`) through the same binding code path as production, with
//! writes that become visible only after a delay, as in production. Tests that take a
//! [`Backend`] run once on each, among them what went wrong on Vectorize first: a deleted
//! record's vector coming back. What only a running Vectorize shows is in `vectorize`.

use std::collections::HashMap;
use std::time::Instant;

use e2e::Client;
use shared::message::EmbeddingJob;
use shared::models::DEFAULT_MODEL;
use shared::vector::vector_id;

use super::consumer::wait_pipeline_job;
use super::{check, cosine, embed, expect, wait_final, wait_final_as, Ctx};
use super::{json, Duration, Failed, Value};

/// A search backend, and the example table and service kept in it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Backend {
    pub name: &'static str,
    pub table: &'static str,
    pub service: &'static str,
    /// The Vectorize index, for a table kept in Vectorize.
    pub index: Option<&'static str>,
    /// The table's model.
    pub model: &'static str,
    /// Where its set is kept, as D1's rows name it.
    pub location: &'static str,
}

pub(crate) const BACKENDS: [Backend; 2] = [
    Backend {
        name: "d1",
        table: "claims",
        service: "claimSimilarity",
        index: None,
        model: DEFAULT_MODEL,
        location: "d1",
    },
    Backend {
        name: "vectorize",
        table: "evidence",
        service: "evidenceSearch",
        index: Some("embeddings-768"),
        model: DEFAULT_MODEL,
        location: "vectorize:VECTORIZE_768",
    },
];

/// The same tables where workers built from the model-change variant of the config
/// (`scripts/variant-config model-change`) keep them: both on bge-small, evidence in the
/// 384-dimension index.
pub(crate) const CHANGED: [Backend; 2] = [
    Backend {
        model: BGE_SMALL,
        ..BACKENDS[0]
    },
    Backend {
        index: Some("embeddings-384"),
        model: BGE_SMALL,
        location: "vectorize:VECTORIZE_384",
        ..BACKENDS[1]
    },
];

const BGE_SMALL: &str = "@cf/baai/bge-small-en-v1.5";

pub(crate) const VECTORIZE: Backend = BACKENDS[1];

pub(crate) type BackendTest = fn(&Ctx, Backend) -> Result<(), Failed>;

pub(crate) const TESTS: &[(&str, BackendTest)] = &[
    (
        "inserts_updates_metadata_edits_and_deletes_reach_the_index",
        inserts_updates_metadata_edits_and_deletes_reach_the_index,
    ),
    (
        "duplicates_and_ai_faults_leave_one_current_vector_per_record",
        duplicates_and_ai_faults_leave_one_current_vector_per_record,
    ),
    (
        "a_record_deleted_while_its_job_embeds_stays_deleted",
        a_record_deleted_while_its_job_embeds_stays_deleted,
    ),
];

/// Creates records through the API as `cookie` and waits for their embeddings; returns their
/// ids. Each item is its content and story.
pub(crate) fn create_records(
    ctx: &Ctx,
    backend: Backend,
    cookie: &str,
    items: &[(&str, &str)],
) -> Result<Vec<String>, Failed> {
    let mut ids = Vec::new();
    let mut jobs = Vec::new();
    for (content, story) in items {
        let reply = ctx.client.call(
            "POST",
            &format!("/api/v1/{}", backend.table),
            &[("cookie", cookie)],
            Some(&json!({"content": content, "story_id": story}).to_string()),
        )?;
        expect(&reply, 201, "create a record")?;
        ids.push(record_id(&reply.body)?);
        jobs.push(
            reply.body["job"]["jobId"]
                .as_str()
                .ok_or("no job")?
                .to_owned(),
        );
    }
    for job in &jobs {
        let done = wait_final_as(ctx, cookie, job, Duration::from_secs(30))?;
        check(done["status"] == "done", || format!("{done}"))?;
    }
    Ok(ids)
}

fn record_id(body: &Value) -> Result<String, Failed> {
    Ok(body["record"]["id"].as_str().ok_or("no id")?.to_owned())
}

/// Waits until every write the backend accepted is visible to searches: at once on D1; on
/// Vectorize once the stand-in has applied every mutation it accepted.
pub(crate) fn settle(ctx: &Ctx, backend: Backend) -> Result<(), Failed> {
    if backend.index.is_none() {
        return Ok(());
    }
    let stand_in = Client::new(&ctx.stack.local_vectorize_url);
    let started = Instant::now();
    loop {
        let stats = stand_in.get("/stats", None)?;
        expect(&stats, 200, "the Vectorize stand-in's stats")?;
        let pending: u64 = stats.body["indexes"]
            .as_object()
            .ok_or_else(|| format!("no indexes in {}", stats.body))?
            .values()
            .filter_map(|index| index["pendingMutations"].as_u64())
            .sum();
        if pending == 0 {
            return Ok(());
        }
        check(started.elapsed() < Duration::from_secs(30), || {
            format!("Vectorize still has {pending} mutations pending after 30 s")
        })?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the backend's index holds for a record of Ann's organization: its vector, or `None`.
pub(crate) fn stored_vector(
    ctx: &Ctx,
    backend: Backend,
    id: &str,
) -> Result<Option<Vec<f32>>, Failed> {
    stored_vector_of(ctx, backend, "org_a", id)
}

/// What the backend's index holds for a record: its vector, or `None`.
pub(crate) fn stored_vector_of(
    ctx: &Ctx,
    backend: Backend,
    organization_id: &str,
    id: &str,
) -> Result<Option<Vec<f32>>, Failed> {
    Ok(stored_vectors_of(ctx, backend, organization_id, &[id])?.remove(id))
}

/// What the backend's index holds for some records of one organization, by record id (a record
/// with no vector is absent), in one read: on D1 the rows search reads, on Vectorize the index
/// itself, through the REST API (at most 20 ids, its `get_by_ids` limit).
pub(crate) fn stored_vectors_of(
    ctx: &Ctx,
    backend: Backend,
    organization_id: &str,
    ids: &[&str],
) -> Result<HashMap<String, Vec<f32>>, Failed> {
    let mut found = HashMap::new();
    let Some(index) = backend.index else {
        let list: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
        let rows = select(
            ctx,
            &format!(
                "SELECT record_id, hex(vector) AS hex FROM embedding_vectors
             WHERE organization_id = '{organization_id}' AND table_name = '{}'
               AND model = '{}' AND location = 'd1'
               AND record_id IN ({}) AND vector IS NOT NULL",
                backend.table,
                backend.model,
                list.join(", ")
            ),
        )?;
        for row in rows {
            let (Some(id), Some(hex)) = (row["record_id"].as_str(), row["hex"].as_str()) else {
                continue;
            };
            found.insert(id.to_owned(), shared::vector::decode_hex(hex)?);
        }
        return Ok(found);
    };
    let by_vector_id: HashMap<String, &str> = ids
        .iter()
        .map(|id| (vector_id(organization_id, backend.table, id), *id))
        .collect();
    let reply = Client::new(&ctx.stack.local_vectorize_url).post(
        &format!("/client/v4/accounts/local/vectorize/v2/indexes/{index}/get_by_ids"),
        None,
        &json!({"ids": by_vector_id.keys().collect::<Vec<_>>()}).to_string(),
    )?;
    expect(&reply, 200, "get_by_ids")?;
    let vectors = reply.body["result"]
        .as_array()
        .ok_or_else(|| format!("get_by_ids answered {}", reply.body))?;
    for vector in vectors {
        let Some(id) = vector["id"].as_str().and_then(|v| by_vector_id.get(v)) else {
            continue;
        };
        found.insert(
            (*id).to_owned(),
            serde_json::from_value(vector["values"].clone())?,
        );
    }
    Ok(found)
}

/// Checks that the backend holds, for each record, the embedding of its text.
fn holds_embeddings_of(
    ctx: &Ctx,
    backend: Backend,
    records: &[(&str, &str)],
) -> Result<(), Failed> {
    for (id, text) in records {
        let stored = stored_vector(ctx, backend, id)?
            .ok_or_else(|| format!("`{id}` has no vector on {}", backend.name))?;
        let similarity = cosine(&stored, &embed(ctx, text)?);
        check(similarity > 0.9999, || {
            format!(
                "`{id}` on {} is not the embedding of {text:?}: cosine {similarity}",
                backend.name
            )
        })?;
    }
    Ok(())
}

fn search_ids(ctx: &Ctx, backend: Backend, body: &Value) -> Result<Vec<String>, Failed> {
    let reply = ctx.client.post(
        &format!("/api/v1/embeddings/search/{}", backend.service),
        Some(&ctx.ann),
        &body.to_string(),
    )?;
    expect(&reply, 200, "search")?;
    Ok(reply
        .body
        .as_array()
        .ok_or("a search answers an array")?
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect())
}

fn delete_as_ann(ctx: &Ctx, backend: Backend, id: &str) -> Result<e2e::Reply, Failed> {
    Ok(ctx.client.call(
        "DELETE",
        &format!("/api/v1/{}/{id}", backend.table),
        &[("cookie", &ctx.ann)],
        None,
    )?)
}

fn patch(ctx: &Ctx, backend: Backend, id: &str, body: &Value) -> Result<Value, Failed> {
    let reply = ctx.client.call(
        "PATCH",
        &format!("/api/v1/{}/{id}", backend.table),
        &[("cookie", &ctx.ann)],
        Some(&body.to_string()),
    )?;
    expect(&reply, 200, "patch")?;
    Ok(reply.body)
}

/// A record's life through the API: created, its text changed, its metadata changed (no new
/// embedding: the text is the same), deleted. After each step, once the backend has settled,
/// it holds exactly what D1 says, and filtered searches follow.
fn inserts_updates_metadata_edits_and_deletes_reach_the_index(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    let first = "The tram line to the airport opens in May";
    let second = "The tram line to the airport is delayed until autumn";
    let ids = create_records(ctx, backend, &ctx.ann, &[(first, "s-life-econ")])?;
    let id = ids[0].as_str();
    settle(ctx, backend)?;
    holds_embeddings_of(ctx, backend, &[(id, first)])?;

    let job = patch(ctx, backend, id, &json!({"content": second}))?["job"]["jobId"]
        .as_str()
        .ok_or("a changed text makes a job")?
        .to_owned();
    let ended = wait_final(ctx, &job, Duration::from_secs(30))?;
    check(ended["status"] == "done", || format!("{ended}"))?;
    settle(ctx, backend)?;
    holds_embeddings_of(ctx, backend, &[(id, second)])?;

    // Only the metadata: no job, yet filtered searches follow at once.
    let edited = patch(ctx, backend, id, &json!({"story_id": "s-life-finance"}))?;
    check(edited["job"].is_null(), || {
        format!("no embedding for a metadata edit: {edited}")
    })?;
    settle(ctx, backend)?;
    let by_new = search_ids(
        ctx,
        backend,
        &json!({"text": second, "filters": {"story_id": "s-life-finance"}}),
    )?;
    let by_old = search_ids(
        ctx,
        backend,
        &json!({"text": second, "filters": {"story_id": "s-life-econ"}}),
    )?;
    check(by_new == [id] && by_old.is_empty(), || {
        format!(
            "after the edit, the new story finds it ({by_new:?}) and the old does not ({by_old:?})"
        )
    })?;

    expect(&delete_as_ann(ctx, backend, id)?, 204, "delete")?;
    // Searches leave it out at once, before the index has caught up.
    let after = search_ids(ctx, backend, &json!({"text": second, "limit": 20}))?;
    check(!after.iter().any(|found| found == id), || {
        format!("a deleted record is never found: {after:?}")
    })?;
    settle(ctx, backend)?;
    check(stored_vector(ctx, backend, id)?.is_none(), || {
        format!("`{id}` keeps a vector on {} after its delete", backend.name)
    })
}

/// A record's job delivered twice at once and once more later, and a wave of records embedded
/// while local-ai fails a third of its calls: each record ends with exactly its own current
/// vector, embedded once.
fn duplicates_and_ai_faults_leave_one_current_vector_per_record(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    let text = "A landslide blocked the mountain pass overnight";
    let ids = create_records(ctx, backend, &ctx.ann, &[(text, "s-dup")])?;
    let id = ids[0].as_str();
    let job = EmbeddingJob::new(
        uuid::Uuid::new_v4(),
        "org_a",
        DEFAULT_MODEL,
        text,
        Some((backend.table.into(), id.into())),
    )
    .with_record_text(text);
    let message = serde_json::to_value(&job)?;
    let reply = ctx.client.post(
        "/__pipeline/send",
        None,
        &Value::from(vec![message.clone(), message.clone(), message]).to_string(),
    )?;
    expect(&reply, 202, "the pipeline sends one job three times")?;
    let ended = wait_pipeline_job(ctx, &job)?;
    check(ended["status"] == "skipped", || {
        format!("the same text as the stored vector is skipped, however often it comes: {ended}")
    })?;

    let texts: Vec<String> = (0..12)
        .map(|i| format!("Road works on bridge number {i} start next week"))
        .collect();
    set_faults(ctx, &json!({"failRate": 0.25, "failStatuses": [500, 429]}))?;
    let items: Vec<(&str, &str)> = texts.iter().map(|t| (t.as_str(), "s-faults")).collect();
    let created = create_records(ctx, backend, &ctx.ann, &items);
    set_faults(ctx, &json!({}))?;
    let created = created?;
    settle(ctx, backend)?;
    let pairs: Vec<(&str, &str)> = created
        .iter()
        .map(String::as_str)
        .zip(texts.iter().map(String::as_str))
        .collect();
    holds_embeddings_of(ctx, backend, &[(id, text)])?;
    holds_embeddings_of(ctx, backend, &pairs)
}

fn set_faults(ctx: &Ctx, plan: &Value) -> Result<(), Failed> {
    let reply = ctx.local_ai.put("/faults", &plan.to_string())?;
    expect(&reply, 200, "set local-ai faults")
}

/// A job is loaded (its record exists), then the record is deleted while the model works: the
/// job must not put the deleted record's vector back, in D1 or in the index.
fn a_record_deleted_while_its_job_embeds_stays_deleted(
    ctx: &Ctx,
    backend: Backend,
) -> Result<(), Failed> {
    set_faults(ctx, &json!({"delayMs": 3000, "delayRate": 1.0}))?;
    let outcome = (|| {
        let reply = ctx.client.call(
            "POST",
            &format!("/api/v1/{}", backend.table),
            &[("cookie", &ctx.ann)],
            Some(
                &json!({"content": "The bridge reopened after repairs", "story_id": "s-del"})
                    .to_string(),
            ),
        )?;
        expect(&reply, 201, "create")?;
        let id = record_id(&reply.body)?;
        let job = reply.body["job"]["jobId"]
            .as_str()
            .ok_or("no job")?
            .to_owned();
        // Wait until the consumer has loaded the job (the record still exists then).
        let started = Instant::now();
        loop {
            let view = ctx
                .client
                .get(&format!("/api/v1/embeddings/jobs/{job}"), Some(&ctx.ann))?;
            if view.body["status"] == "processing" {
                break;
            }
            check(started.elapsed() < Duration::from_secs(20), || {
                format!("the job never started: {}", view.body)
            })?;
            std::thread::sleep(Duration::from_millis(50));
        }
        expect(
            &delete_as_ann(ctx, backend, &id)?,
            204,
            "delete while the job embeds",
        )?;
        Ok::<_, Failed>((id, job))
    })();
    set_faults(ctx, &json!({}))?;
    let (id, job) = outcome?;
    let ended = wait_final(ctx, &job, Duration::from_secs(30))?;
    check(ended["status"] != "done", || {
        format!("a job for a deleted record cannot be done: {ended}")
    })?;
    settle(ctx, backend)?;
    let left = stored_vector(ctx, backend, &id)?;
    check(left.is_none(), || {
        format!(
            "the deleted record `{id}` still has a vector on {}",
            backend.name
        )
    })?;
    let found = ctx.client.post(
        &format!("/api/v1/embeddings/search/{}", backend.service),
        Some(&ctx.ann),
        &json!({"text": "The bridge reopened after repairs", "limit": 20}).to_string(),
    )?;
    expect(&found, 200, "search")?;
    check(
        found
            .body
            .as_array()
            .is_some_and(|m| m.iter().all(|m| m["id"] != id.as_str())),
        || format!("search still finds the deleted record: {}", found.body),
    )
}

/// One SELECT on the stack's D1, through the suite's pipeline worker (a `wrangler d1` process
/// per read would take seconds).
pub(crate) fn select(ctx: &Ctx, sql: &str) -> Result<Vec<Value>, Failed> {
    let reply = ctx
        .client
        .post("/__d1/select", None, &json!({ "sql": sql }).to_string())?;
    expect(&reply, 200, "a SELECT on D1")?;
    Ok(reply.body.as_array().cloned().unwrap_or_default())
}
