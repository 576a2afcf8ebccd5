//! The consumer against the real stack: batched AI calls, stored vectors, duplicates, stale and
//! dead jobs, injected faults, the dead-letter queue and replay.

use std::collections::BTreeSet;

use e2e::concurrent::in_threads;
use shared::message::EmbeddingJob;
use shared::models::DEFAULT_MODEL;
use shared::quantized::Quantized;
use shared::topk::normalized;
use shared::vector::decode_hex;

use super::backends::select;
use super::{check, cosine, embed, enqueue, expect, job_id, wait_final, Ctx, Test};
use super::{json, Duration, Failed, Instant, Value};

pub(crate) const TESTS: &[(&str, Test)] = &[
    (
        "a_record_of_any_length_is_embedded_and_never_blocks_a_backfill",
        a_record_of_any_length_is_embedded_and_never_blocks_a_backfill,
    ),
    (
        "two_hundred_jobs_are_embedded_in_ceil_n_over_100_calls_per_batch",
        two_hundred_jobs_are_embedded_in_ceil_n_over_100_calls_per_batch,
    ),
    (
        "the_same_message_delivered_twice_is_embedded_once",
        the_same_message_delivered_twice_is_embedded_once,
    ),
    (
        "a_job_for_a_missing_record_or_a_tampered_message_is_dead_at_once",
        a_job_for_a_missing_record_or_a_tampered_message_is_dead_at_once,
    ),
    (
        "two_quick_embeddings_of_one_record_leave_the_last",
        two_quick_embeddings_of_one_record_leave_the_last,
    ),
    (
        "with_ai_failing_30_percent_every_job_ends_and_none_is_embedded_twice",
        with_ai_failing_30_percent_every_job_ends_and_none_is_embedded_twice,
    ),
    (
        "a_refused_text_is_dead_at_once_without_retries",
        a_refused_text_is_dead_at_once_without_retries,
    ),
    (
        "a_job_out_of_retries_goes_through_the_dead_letter_queue_and_replays",
        a_job_out_of_retries_goes_through_the_dead_letter_queue_and_replays,
    ),
];

/// Inserts claims of `org_a` straight into D1, as an app writing its own table would.
pub(crate) fn seed_claims(
    ctx: &Ctx,
    prefix: &str,
    n: usize,
) -> Result<Vec<(String, String)>, Failed> {
    let claims: Vec<(String, String)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}-{i}"),
                format!("Claim {i} of {prefix}: the council voted on budget line {i}"),
            )
        })
        .collect();
    for chunk in claims.chunks(100) {
        let values: Vec<String> = chunk
            .iter()
            .map(|(id, content)| format!("('{id}', 'org_a', '{prefix}', '{content}', 0, 0)"))
            .collect();
        ctx.stack.sql(&format!(
            "INSERT INTO claims (id, organization_id, story_id, content, created_at, updated_at) VALUES {}",
            values.join(", ")
        ))?;
    }
    Ok(claims)
}

fn enqueue_claim(ctx: &Ctx, id: &str, content: &str) -> Result<String, Failed> {
    job_id(&enqueue(
        ctx,
        &ctx.ann,
        &json!({"content": content, "table": "claims", "id": id}),
    )?)
}

/// Enqueues every claim, four requests at a time.
fn enqueue_claims(ctx: &Ctx, claims: &[(String, String)]) -> Result<Vec<String>, Failed> {
    in_threads(claims, 4, |(id, content)| {
        enqueue_claim(ctx, id, content).map_err(|e| format!("{e:?}"))
    })
    .map_err(Failed::from)
}

pub(crate) fn wait_all_final(
    ctx: &Ctx,
    job_ids: &[String],
    within: Duration,
) -> Result<Vec<Value>, Failed> {
    let deadline = Instant::now() + within;
    job_ids
        .iter()
        .map(|id| wait_final(ctx, id, deadline.saturating_duration_since(Instant::now())))
        .collect()
}

fn stats(ctx: &Ctx) -> Result<Value, Failed> {
    let reply = ctx.local_ai.get("/stats", None)?;
    expect(&reply, 200, "local-ai stats")?;
    Ok(reply.body)
}

fn counter(stats: &Value, name: &str) -> Result<u64, Failed> {
    Ok(stats[name]
        .as_u64()
        .ok_or_else(|| format!("no `{name}` in {stats}"))?)
}

/// Changes local-ai's fault plan; every test that sets one puts the default back.
fn set_faults(ctx: &Ctx, plan: &Value) -> Result<(), Failed> {
    let reply = ctx.local_ai.put("/faults", &plan.to_string())?;
    expect(&reply, 200, "set local-ai faults")
}

fn no_faults(ctx: &Ctx) -> Result<(), Failed> {
    set_faults(ctx, &json!({}))
}

fn vector_rows(ctx: &Ctx, story: &str) -> Result<Value, Failed> {
    let rows = select(ctx, &format!(
        "SELECT count(*) AS n, count(DISTINCT v.record_id) AS records, min(length(v.vector)) AS min_bytes,
                max(length(v.vector)) AS max_bytes, min(json_array_length(c.embedding)) AS column_dims
         FROM embedding_vectors v JOIN claims c ON c.id = v.record_id AND c.organization_id = v.organization_id
         WHERE v.organization_id = 'org_a' AND v.table_name = 'claims' AND c.story_id = '{story}'"
    ))?;
    Ok(rows.first().cloned().unwrap_or(Value::Null))
}

fn two_hundred_jobs_are_embedded_in_ceil_n_over_100_calls_per_batch(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let claims = seed_claims(ctx, "bulk", 200)?;
    let log_start = ctx.stack.log("wrangler-dev.log").len();
    let before = stats(ctx)?;
    let job_ids = enqueue_claims(ctx, &claims)?;
    let jobs = wait_all_final(ctx, &job_ids, Duration::from_mins(2))?;
    let not_done: Vec<&Value> = jobs.iter().filter(|j| j["status"] != "done").collect();
    check(not_done.is_empty(), || {
        format!("jobs not done: {not_done:?}")
    })?;

    let rows = vector_rows(ctx, "bulk")?;
    check(
        rows["n"] == 200
            && rows["records"] == 200
            && rows["min_bytes"] == 768 * 4
            && rows["max_bytes"] == 768 * 4
            && rows["column_dims"] == 768,
        || format!("every record has one compact 768-dim vector and its JSON column: {rows}"),
    )?;
    // The D1 backend's search copy: each vector's codes, exactly as search-worker would make
    // them from the exact vector (which it does only for rows written before codes were).
    let stored = select(
        ctx,
        "SELECT v.record_id, hex(v.vector) AS hex, v.codes FROM embedding_vectors v
         JOIN claims c ON c.id = v.record_id AND c.organization_id = v.organization_id
         WHERE v.organization_id = 'org_a' AND v.table_name = 'claims' AND c.story_id = 'bulk'",
    )?;
    for row in &stored {
        let exact = decode_hex(row["hex"].as_str().unwrap_or_default())?;
        let expected = Quantized::of(&normalized(&exact)).to_text();
        check(row["codes"].as_str() == Some(expected.as_str()), || {
            format!(
                "record {} has codes {} for its vector",
                row["record_id"], row["codes"]
            )
        })?;
    }
    check(stored.len() == 200, || {
        format!("{} rows with codes", stored.len())
    })?;

    let after = stats(ctx)?;
    let calls = counter(&after, "calls")? - counter(&before, "calls")?;
    let texts = counter(&after, "texts")? - counter(&before, "texts")?;
    let batches = ctx.stack.consumer_batches(log_start);
    let logged_calls: u64 = batches.iter().filter_map(|b| b["ai_calls"].as_u64()).sum();
    let logged_texts: u64 = batches
        .iter()
        .filter_map(|b| b["texts_embedded"].as_u64())
        .sum();
    check(!batches.is_empty(), || "no batch log lines".into())?;
    for batch in &batches {
        let jobs = batch["jobs"].as_u64().unwrap_or(0);
        check(
            batch["d1_statements"].as_u64().is_some_and(|n| n <= 10),
            || format!("a batch of {jobs} jobs of one table ran over 10 D1 statements: {batch}"),
        )?;
        check(
            batch["ai_calls"].as_u64() == Some(jobs.div_ceil(100)),
            || {
                format!(
                    "a batch of {jobs} same-model jobs made other than ceil(n/100) calls: {batch}"
                )
            },
        )?;
    }
    check(
        calls == logged_calls && texts == 200 && logged_texts == 200,
        || {
            format!(
            "local-ai saw {calls} calls and {texts} texts; the consumer logged {logged_calls} calls \
             and {logged_texts} texts over {} batches",
            batches.len()
        )
        },
    )
}

pub(crate) fn pipeline_send(ctx: &Ctx, messages: &[Value]) -> Result<(), Failed> {
    let reply = ctx.client.post(
        "/__pipeline/send",
        None,
        &Value::from(messages.to_vec()).to_string(),
    )?;
    expect(&reply, 202, "the pipeline sends to embeddings-queue")
}

/// Waits for a job sent by the pipeline: it has no row until the consumer first sees it.
pub(crate) fn wait_pipeline_job(ctx: &Ctx, job: &EmbeddingJob) -> Result<Value, Failed> {
    let path = format!("/api/v1/embeddings/jobs/{}", job.job_id);
    let started = Instant::now();
    while ctx.client.get(&path, Some(&ctx.ann))?.status == 404 {
        check(started.elapsed() < Duration::from_secs(30), || {
            format!("the consumer never recorded job {}", job.job_id)
        })?;
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_final(ctx, &job.job_id.to_string(), Duration::from_secs(30))
}

fn pipeline_job(id: &str, content: &str) -> EmbeddingJob {
    EmbeddingJob::new(
        uuid::Uuid::new_v4(),
        "org_a",
        DEFAULT_MODEL,
        content,
        Some(("claims".into(), id.into())),
    )
    .with_record_text(content)
}

fn the_same_message_delivered_twice_is_embedded_once(ctx: &Ctx) -> Result<(), Failed> {
    let claims = seed_claims(ctx, "twice", 1)?;
    let (id, content) = &claims[0];
    let job = pipeline_job(id, content);
    let message = serde_json::to_value(&job)?;
    let before = counter(&stats(ctx)?, "texts")?;
    // Twice at once (one batch, or two), then once more after the job is done.
    pipeline_send(ctx, &[message.clone(), message.clone()])?;
    let first = wait_pipeline_job(ctx, &job)?;
    pipeline_send(ctx, &[message])?;
    std::thread::sleep(Duration::from_secs(3));
    let last = wait_final(ctx, &job.job_id.to_string(), Duration::from_secs(30))?;
    let texts = counter(&stats(ctx)?, "texts")? - before;
    let rows = vector_rows(ctx, "twice")?;
    check(first["status"] == "done" && last == first, || {
        format!("done once, untouched by the late copy: {first} then {last}")
    })?;
    check(texts <= 2 && rows["n"] == 1, || {
        format!("{texts} texts embedded for one job delivered three times; vector rows {rows}")
    })
}

fn a_job_for_a_missing_record_or_a_tampered_message_is_dead_at_once(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let ghost = pipeline_job("ghost-1", "A claim nobody wrote");
    let tampered = pipeline_job("ghost-2", "original text");
    let mut tampered_message = serde_json::to_value(&tampered)?;
    tampered_message["content"] = json!("edited after hashing");
    pipeline_send(ctx, &[serde_json::to_value(&ghost)?, tampered_message])?;
    let ghost = wait_pipeline_job(ctx, &ghost)?;
    check(
        ghost["status"] == "dead"
            && ghost["attempts"] == 1
            && ghost["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("ghost-1")),
        || format!("a missing record is permanent: {ghost}"),
    )?;
    let tampered = wait_pipeline_job(ctx, &tampered)?;
    check(
        tampered["status"] == "dead"
            && tampered["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("contentHash")),
        || format!("a tampered message is dead with its reason: {tampered}"),
    )
}

fn two_quick_embeddings_of_one_record_leave_the_last(ctx: &Ctx) -> Result<(), Failed> {
    let claims = seed_claims(ctx, "quick", 1)?;
    let id = &claims[0].0;
    let first = "The mayor resigned after the budget vote";
    let last = "Heavy snow closed every road into the valley";
    let jobs = [
        enqueue_claim(ctx, id, first)?,
        enqueue_claim(ctx, id, last)?,
    ];
    let ended = wait_all_final(ctx, &jobs, Duration::from_mins(1))?;
    check(
        ended
            .iter()
            .all(|j| matches!(j["status"].as_str(), Some("done" | "stale"))),
        || format!("{ended:?}"),
    )?;
    let rows = select(
        ctx,
        &format!("SELECT embedding FROM claims WHERE id = '{id}' AND organization_id = 'org_a'"),
    )?;
    let stored: Vec<f32> = serde_json::from_str(
        rows.first()
            .and_then(|r| r["embedding"].as_str())
            .ok_or("no embedding stored")?,
    )?;
    let (to_last, to_first) = (
        cosine(&stored, &embed(ctx, last)?),
        cosine(&stored, &embed(ctx, first)?),
    );
    check(to_last > 0.9999 && to_first < 0.9, || {
        format!("the stored embedding is the last content's: cosine {to_last} to it, {to_first} to the first")
    })
}

fn with_ai_failing_30_percent_every_job_ends_and_none_is_embedded_twice(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let claims = seed_claims(ctx, "faulty", 60)?;
    let before = stats(ctx)?;
    set_faults(ctx, &json!({"failRate": 0.3, "failStatuses": [500, 429]}))?;
    // Waves, so that the batches are several and some of their calls fail; more waves (of
    // claims already seeded) until a failure has been injected, so the retries are exercised.
    let mut job_ids = Vec::new();
    let outcome = (|| {
        let extra = seed_claims(ctx, "faulty-extra", 100)?;
        let mut waves = claims.chunks(10).chain(extra.chunks(10));
        let mut sent = 0;
        for wave in waves.by_ref() {
            job_ids.extend(enqueue_claims(ctx, wave)?);
            sent += 1;
            std::thread::sleep(Duration::from_millis(1_200));
            let injected = counter(&stats(ctx)?, "injected_failures")?
                > counter(&before, "injected_failures")?;
            if sent >= 6 && injected {
                break;
            }
        }
        wait_all_final(ctx, &job_ids, Duration::from_secs(150))
    })();
    no_faults(ctx)?;
    let jobs = outcome?;
    let after = stats(ctx)?;
    let injected = counter(&after, "injected_failures")? - counter(&before, "injected_failures")?;
    let texts = counter(&after, "texts")? - counter(&before, "texts")?;
    let done = jobs.iter().filter(|j| j["status"] == "done").count();
    let dead = jobs.iter().filter(|j| j["status"] == "dead").count();
    check(done + dead == jobs.len(), || {
        format!("every job done or dead: {jobs:?}")
    })?;
    check(
        injected > 0 && jobs.iter().any(|j| j["attempts"].as_u64() > Some(1)),
        || format!("{injected} injected failures; attempts must show the retries"),
    )?;
    let distinct: BTreeSet<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    let (rows, extra_rows) = (
        vector_rows(ctx, "faulty")?,
        vector_rows(ctx, "faulty-extra")?,
    );
    let count = |v: &Value, key: &str| v[key].as_u64().unwrap_or(0);
    let vectors = count(&rows, "n") + count(&extra_rows, "n");
    let records = count(&rows, "records") + count(&extra_rows, "records");
    check(
        distinct.len() == jobs.len()
            && usize::try_from(vectors) == Ok(done)
            && usize::try_from(records) == Ok(done)
            && usize::try_from(texts) == Ok(done),
        || {
            format!(
                "{done} jobs done, {texts} texts embedded by local-ai, {vectors} vector rows of {records} records"
            )
        },
    )
}

fn a_refused_text_is_dead_at_once_without_retries(ctx: &Ctx) -> Result<(), Failed> {
    set_faults(ctx, &json!({"failRate": 1.0, "failStatuses": [400]}))?;
    let outcome = (|| {
        let id = job_id(&enqueue(
            ctx,
            &ctx.ann,
            &json!({"content": "refused by the model"}),
        )?)?;
        wait_final(ctx, &id, Duration::from_secs(30))
    })();
    no_faults(ctx)?;
    let job = outcome?;
    check(
        job["status"] == "dead"
            && job["attempts"] == 1
            && job["lastError"].as_str().is_some_and(|e| e.contains("400")),
        || format!("a permanent failure is not retried: {job}"),
    )
}

fn a_job_out_of_retries_goes_through_the_dead_letter_queue_and_replays(
    ctx: &Ctx,
) -> Result<(), Failed> {
    set_faults(ctx, &json!({"failRate": 1.0, "failStatuses": [503]}))?;
    let content = "The bridge reopened after repairs";
    let outcome = (|| {
        let id = job_id(&enqueue(ctx, &ctx.ann, &json!({"content": content}))?)?;
        // Retries after 1, 2, 4, 8 and 16 seconds, then the dead-letter queue.
        Ok::<_, Failed>((id.clone(), wait_final(ctx, &id, Duration::from_secs(90))?))
    })();
    no_faults(ctx)?;
    let (id, job) = outcome?;
    check(
        job["status"] == "dead"
            && job["attempts"] == 6
            && job["lastError"]
                .as_str()
                .is_some_and(|e| e.starts_with("retries exhausted") && e.contains("503")),
        || format!("six failed deliveries, then dead through the DLQ: {job}"),
    )?;

    let path = format!("/api/v1/embeddings/jobs/{id}/retry");
    let reply = ctx.client.post(&path, Some(&ctx.bob), "")?;
    expect(&reply, 404, "bob replays ann's job")?;
    let reply = ctx.client.post(&path, Some(&ctx.ann), "")?;
    check(job_id(&reply)? == id, || "replayed under its own id".into())?;
    let job = wait_final(ctx, &id, Duration::from_secs(30))?;
    check(job["status"] == "done" && job["attempts"] == 7, || {
        format!("the replay is done: {job}")
    })?;
    let vector: Vec<f32> = serde_json::from_value(job["embedding"].clone())?;
    check(cosine(&vector, &embed(ctx, content)?) > 0.9999, || {
        "the replayed job's vector".into()
    })?;
    let reply = ctx.client.post(&path, Some(&ctx.ann), "")?;
    expect(&reply, 409, "a done job is not replayed")
}

/// 60,000 quotes in each of a note's two fields: JSON doubles them, past the queue's 128 KB for
/// one message. The message carries only what the model reads, so the job is embedded (and says
/// it was cut), and the table's backfill still goes out.
fn a_record_of_any_length_is_embedded_and_never_blocks_a_backfill(ctx: &Ctx) -> Result<(), Failed> {
    let quotes = "\"".repeat(60_000);
    let created = ctx.client.call(
        "POST",
        "/api/v1/notes",
        &[("cookie", &ctx.ann)],
        Some(&json!({"title": quotes, "body": quotes, "topic": "long"}).to_string()),
    )?;
    expect(&created, 201, "create a very long note")?;
    let job = created.body["job"]["jobId"]
        .as_str()
        .ok_or_else(|| format!("the note's job was not queued: {}", created.body))?
        .to_owned();
    let ended = wait_final(ctx, &job, Duration::from_secs(30))?;
    check(
        ended["status"] == "done" && ended["truncated"] == true,
        || format!("embedded, and cut to what the model reads: {ended}"),
    )?;
    let backfill = ctx.client.post(
        "/api/v1/embeddings/backfill",
        Some(&ctx.ann),
        &json!({"table": "notes", "all": true}).to_string(),
    )?;
    expect(&backfill, 202, "a backfill of the table holding it")
}
