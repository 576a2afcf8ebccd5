//! D1's query budget, against the real local stack: D1 counts each statement of a `batch()` as
//! a query, 50 per invocation on the Free plan, and a consumer batch of one table keeps within
//! 10 (docs/pipeline.md), whatever its jobs ask of it.

use e2e::seed::story_row_sql;
use shared::message::EmbeddingJob;
use shared::models::DEFAULT_MODEL;

use super::backends::select;
use super::consumer::{pipeline_send, seed_claims, wait_pipeline_job};
use super::{check, json, Ctx, Duration, Failed, Instant, Value};

pub(crate) const TESTS: &[(&str, super::Test)] = &[
    (
        "a_mixed_batch_stays_within_d1s_query_budget",
        a_mixed_batch_stays_within_d1s_query_budget,
    ),
    (
        "a_batch_that_makes_a_tables_first_set_stays_within_10_statements",
        a_batch_that_makes_a_tables_first_set_stays_within_10_statements,
    ),
];

fn record_job(org: &str, table: &str, id: &str, content: &str) -> EmbeddingJob {
    EmbeddingJob::new(
        uuid::Uuid::new_v4(),
        org,
        DEFAULT_MODEL,
        content,
        Some((table.into(), id.into())),
    )
    .with_record_text(content)
}

/// The batch log lines since `log_start`, each checked to have run at most `most` statements.
fn within(ctx: &Ctx, log_start: usize, most: u64, what: &str) -> Result<Vec<Value>, Failed> {
    let batches = ctx.stack.consumer_batches(log_start);
    check(!batches.is_empty(), || "no batch log lines".into())?;
    for batch in &batches {
        check(
            batch["d1_statements"].as_u64().is_some_and(|n| n <= most),
            || format!("{what} ran over {most} D1 statements: {batch}"),
        )?;
    }
    Ok(batches)
}

/// A batch of every kind of job (records of a D1 table and of a Vectorize table, free text, a
/// duplicate, a missing record, a tampered message) must stay within it, as one table's must
/// stay within 10.
fn a_mixed_batch_stays_within_d1s_query_budget(ctx: &Ctx) -> Result<(), Failed> {
    let claims = seed_claims(ctx, "mixed", 30)?;
    let evidence: Vec<(String, String)> = (0..30)
        .map(|i| {
            (
                format!("mixed-ev-{i}"),
                format!("Exhibit {i}: the ledger of budget line {i}"),
            )
        })
        .collect();
    let rows: String = evidence
        .iter()
        .map(|(id, content)| story_row_sql("evidence", id, "org_a", "mixed", content))
        .collect();
    ctx.stack.sql_script(&rows)?;
    let mut jobs: Vec<EmbeddingJob> = claims
        .iter()
        .map(|(id, content)| record_job("org_a", "claims", id, content))
        .chain(
            evidence
                .iter()
                .map(|(id, content)| record_job("org_a", "evidence", id, content)),
        )
        .chain((0..30).map(|i| {
            EmbeddingJob::new(
                uuid::Uuid::new_v4(),
                "org_a",
                DEFAULT_MODEL,
                format!("Free text {i}"),
                None,
            )
        }))
        .collect();
    jobs.push(record_job(
        "org_a",
        "claims",
        "mixed-missing",
        "A claim nobody wrote",
    ));
    let mut messages: Vec<Value> = jobs.iter().map(|job| json!(job)).collect();
    messages.push(json!(jobs[0]));
    let mut tampered = json!(jobs[1].clone());
    tampered["content"] = json!("not what was hashed");
    let tampered_job = uuid::Uuid::new_v4();
    tampered["jobId"] = json!(tampered_job.to_string());
    messages.push(tampered);

    let log_start = ctx.stack.log("wrangler-dev.log").len();
    pipeline_send(ctx, &messages)?;
    for job in &jobs {
        let view = wait_pipeline_job(ctx, job)?;
        check(
            matches!(view["status"].as_str(), Some("done" | "dead")),
            || format!("job {} ended {view}", job.job_id),
        )?;
    }
    let batches = within(ctx, log_start, 50, "a mixed batch")?;
    let jobs_seen: u64 = batches.iter().filter_map(|b| b["jobs"].as_u64()).sum();
    // The duplicate is one job with its original; the tampered message is no job.
    check(jobs_seen == jobs.len() as u64, || {
        format!(
            "the batches saw {jobs_seen} jobs, not {}: {batches:?}",
            jobs.len()
        )
    })?;
    Ok(())
}

/// An organization's first records of a table make its first set: the batch reads the sets,
/// decides (`shared::sets::plan`) and applies only what the decision writes, within one table's
/// 10 statements.
fn a_batch_that_makes_a_tables_first_set_stays_within_10_statements(
    ctx: &Ctx,
) -> Result<(), Failed> {
    let org = format!(
        "org_first_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let claims: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("first-{i}"),
                format!("First claim {i}: the ferry timetable"),
            )
        })
        .collect();
    let rows: String = claims
        .iter()
        .map(|(id, content)| story_row_sql("claims", id, &org, "first", content))
        .collect();
    ctx.stack.sql_script(&rows)?;
    let messages: Vec<Value> = claims
        .iter()
        .map(|(id, content)| json!(record_job(&org, "claims", id, content)))
        .collect();
    let log_start = ctx.stack.log("wrangler-dev.log").len();
    pipeline_send(ctx, &messages)?;
    let started = Instant::now();
    loop {
        let done = select(
            ctx,
            &format!(
                "SELECT COUNT(*) AS n FROM embedding_jobs
                 WHERE organization_id = '{org}' AND status = 'done'"
            ),
        )?;
        if done.first().and_then(|row| row["n"].as_u64()) == Some(claims.len() as u64) {
            break;
        }
        check(started.elapsed() < Duration::from_mins(1), || {
            format!("the jobs of {org} did not all end done: {done:?}")
        })?;
        std::thread::sleep(Duration::from_millis(300));
    }
    let sets = select(
        ctx,
        &format!("SELECT role FROM embedding_sets WHERE organization_id = '{org}'"),
    )?;
    check(sets.len() == 1 && sets[0]["role"] == "active", || {
        format!("{org}'s claims have other than one active set: {sets:?}")
    })?;
    within(ctx, log_start, 10, "a batch that made a table's first set")?;
    Ok(())
}
