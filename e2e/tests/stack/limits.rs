//! Limits and fairness (docs/limits.md), against the real local stack: a
//! metadata value over its bound is refused by name and cannot fail another tenant's jobs, an
//! organization past its rate gets 429 while others go on, and bulk work travels its own queue.

use std::fmt::Write as _;

use super::{check, expect, job_id, json, raw_request, wait_final_as, Ctx, Duration, Failed};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "limits_a_metadata_value_over_its_bound_is_refused_by_name_and_poisons_no_batch",
        a_metadata_value_over_its_bound_is_refused_by_name_and_poisons_no_batch,
    ),
    (
        "limits_an_organization_past_its_rate_gets_429_with_retry_after_and_others_go_on",
        an_organization_past_its_rate_gets_429_with_retry_after_and_others_go_on,
    ),
    (
        "limits_a_backfill_travels_the_bulk_queue_and_a_write_the_live_one",
        a_backfill_travels_the_bulk_queue_and_a_write_the_live_one,
    ),
];

fn a_metadata_value_over_its_bound_is_refused_by_name_and_poisons_no_batch(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    // Through the gateway: 400, the field named, nothing written.
    let huge = "t".repeat(20_000);
    let refused = ctx.client.post(
        "/api/v1/notes",
        Some(&ctx.ann),
        &json!({"id": format!("big_{}", &unique[..8]), "title": "t", "body": "b", "topic": huge})
            .to_string(),
    )?;
    check(refused.status == 400, || {
        format!(
            "a note with a 20,000-character topic answered {}",
            refused.status
        )
    })?;
    let message = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    check(message.contains("metadata field `topic`"), || {
        format!("the refusal does not name the field: {message}")
    })?;

    // Written to D1 by an app behind the gateway's back, in the Vectorize table, and enqueued in
    // the same moment as another tenant's ordinary record: the old consumer sent Vectorize an
    // upsert it refused for both. Now both are embedded, and the outsized value is left out of
    // the vector's metadata.
    let poisoned = format!("ev_big_{}", &unique[..8]);
    ctx.stack.sql(&format!(
        "INSERT INTO evidence (id, organization_id, story_id, content, created_at, updated_at) \
         VALUES ('{poisoned}', 'org_b', '{}', 'A record with an outsized story id', 0, 0)",
        "s".repeat(20_000)
    ))?;
    let ordinary = format!("ev_ok_{}", &unique[..8]);
    let created = ctx.client.post(
        "/api/v1/evidence",
        Some(&ctx.ann),
        &json!({"id": ordinary, "content": format!("Ordinary evidence {unique}"), "story_id": "s1"})
            .to_string(),
    )?;
    let poisoned_job = job_id(&super::enqueue(
        ctx,
        &ctx.bob,
        &json!({"table": "evidence", "id": poisoned, "content": "A record with an outsized story id"}),
    )?)?;
    expect(&created, 201, "an ordinary evidence record")?;
    let ordinary_job = created.body["job"]["jobId"]
        .as_str()
        .ok_or("the create made no job")?
        .to_owned();
    let ordinary_view = wait_final_as(ctx, &ctx.ann, &ordinary_job, Duration::from_mins(1))?;
    check(ordinary_view["status"] == "done", || {
        format!("another tenant's ordinary job ended {ordinary_view}")
    })?;
    let poisoned_view = wait_final_as(ctx, &ctx.bob, &poisoned_job, Duration::from_mins(1))?;
    check(poisoned_view["status"] == "done", || {
        format!("the outsized record's job ended {poisoned_view}")
    })?;
    let rows = ctx.stack.sql(&format!(
        "SELECT metadata FROM embedding_vectors WHERE organization_id = 'org_b' \
         AND table_name = 'evidence' AND record_id = '{poisoned}' AND vector IS NOT NULL"
    ))?;
    let metadata = rows.first().map(|row| row["metadata"].clone());
    check(metadata == Some(json!("{}")), || {
        format!("the outsized record's vector row carries {metadata:?}, not empty metadata")
    })?;
    Ok(())
}

fn an_organization_past_its_rate_gets_429_with_retry_after_and_others_go_on(
    ctx: &Ctx,
) -> Result<(), Failed> {
    use shared::rate::RouteClass;

    // Two organizations of their own, so that no other test shares their counts. The bulk
    // class, whose limit a test reaches in a few seconds here: the others' limits are the same
    // binding with larger figures (the gateway's unit tests cover every class).
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let owner = |name: &str| -> Result<String, Failed> {
        let org = format!("org_{name}_{}", &unique[..8]);
        Ok(ctx
            .stack
            .add_owner(&format!("{name}_{}", &unique[..8]), &org)?)
    };
    let (flooding, other) = (owner("flood")?, owner("calm")?);
    // Backfills of a table that does not exist: refused with 404, but counted all the same.
    let bulk = |cookie: &str| -> Result<String, Failed> {
        let headers = [("cookie", cookie), ("content-type", "application/json")];
        let body = r#"{"table": "nope"}"#;
        raw_request(ctx, "POST", "/api/v1/embeddings/backfill", &headers, body)
    };
    let limit = RouteClass::Bulk.limit() as usize;
    let mut statuses = Vec::new();
    for _ in 0..limit + 10 {
        let answer = bulk(&flooding)?;
        statuses.push(answer.split(' ').nth(1).unwrap_or_default().to_owned());
        if answer.starts_with("HTTP/1.1 429") {
            let retry_after = answer.lines().find_map(|line| {
                let line = line.to_ascii_lowercase();
                line.strip_prefix("retry-after:")
                    .map(|v| v.trim().to_owned())
            });
            check(retry_after.as_deref() == Some("60"), || {
                format!("Retry-After is {retry_after:?}, not the bulk class's 60 s: {answer}")
            })?;
            check(answer.contains("\"rate_limited\""), || answer.clone())?;
            break;
        }
    }
    check(statuses.last().map(String::as_str) == Some("429"), || {
        format!(
            "{} bulk requests, none refused by the rate: {statuses:?}",
            statuses.len()
        )
    })?;
    check(statuses.len() > limit, || {
        format!("refused before the limit of {limit}: {statuses:?}")
    })?;
    // The other organization, and the flooding one's other kinds of route, go on.
    let calm = bulk(&other)?;
    check(calm.starts_with("HTTP/1.1 404"), || {
        format!("another organization's bulk request: {calm}")
    })?;
    let read = ctx.client.get("/api/v1/claims?limit=1", Some(&flooding))?;
    expect(&read, 200, "a read of the organization past its bulk rate")?;
    Ok(())
}

fn a_backfill_travels_the_bulk_queue_and_a_write_the_live_one(ctx: &Ctx) -> Result<(), Failed> {
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let org = format!("org_lane_{}", &unique[..8]);
    let cookie = ctx
        .stack
        .add_owner(&format!("lane_{}", &unique[..8]), &org)?;
    let mut sql = String::new();
    for i in 0..40 {
        let _ = writeln!(
            sql,
            "INSERT INTO notes (id, organization_id, topic, title, body, created_at, updated_at) \
             VALUES ('lane_{i:02}', '{org}', 'lanes', 'Lane', 'Backfilled note {i} of {unique}', 0, 0);"
        );
    }
    ctx.stack.sql_script(&sql)?;
    let log_start = ctx.stack.log("wrangler-dev.log").len();
    let backfill = ctx.client.post(
        "/api/v1/embeddings/backfill",
        Some(&cookie),
        &json!({"table": "notes"}).to_string(),
    )?;
    expect(&backfill, 202, "backfill")?;
    let backfill_id = backfill.body["backfillId"]
        .as_str()
        .ok_or("no backfillId")?;
    let created = ctx.client.post(
        "/api/v1/notes",
        Some(&cookie),
        &json!({"id": "lane_live", "title": "Live", "body": format!("A live note {unique}")})
            .to_string(),
    )?;
    expect(&created, 201, "a live note")?;
    let live_job = created.body["job"]["jobId"]
        .as_str()
        .ok_or("no job")?
        .to_owned();
    wait_final_as(ctx, &cookie, &live_job, Duration::from_mins(1))?;
    let deadline = std::time::Instant::now() + Duration::from_mins(2);
    loop {
        let jobs = ctx.client.get(
            &format!("/api/v1/embeddings/jobs?backfillId={backfill_id}&status=done&limit=100"),
            Some(&cookie),
        )?;
        let done = jobs.body["jobs"].as_array().map_or(0, Vec::len);
        if done == 40 {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("{done} of 40 backfilled jobs done after 2 minutes").into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let batches = ctx.stack.consumer_batches(log_start);
    let on = |queue: &str| -> u64 {
        batches
            .iter()
            .filter(|b| b["queue"] == queue)
            .filter_map(|b| b["jobs"].as_u64())
            .sum()
    };
    let (bulk, live) = (on("embeddings-bulk"), on("embeddings-queue"));
    check(bulk >= 40, || {
        format!("the bulk queue's batches held {bulk} jobs, not the backfill's 40: {batches:?}")
    })?;
    check(live >= 1, || {
        format!("no batch on the live queue held the live note's job: {batches:?}")
    })?;
    Ok(())
}
