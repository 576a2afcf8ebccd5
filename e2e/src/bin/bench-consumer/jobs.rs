//! Jobs into the pipeline and through it: notes seeded behind the API's back, jobs enqueued by
//! request from several clients at once or by backfill, and the waits until they are done.

use std::time::{Duration, Instant};

use e2e::bench::Error;
use e2e::concurrent::in_threads;
use e2e::seed::note_sql;
use e2e::{Client, Stack};
use serde_json::{json, Value};

use crate::{CLIENTS, MODEL};

/// Writes one note per text straight into D1 for `organization_id`, as an app's own writes
/// would.
pub(crate) fn seed_notes(
    stack: &Stack,
    organization_id: &str,
    texts: &[String],
) -> Result<(), Error> {
    use std::fmt::Write as _;
    let mut sql = String::new();
    for (i, text) in texts.iter().enumerate() {
        let id = format!("bench_{organization_id}_{i:05}");
        let _ = writeln!(sql, "{}", note_sql(&id, organization_id, "bench", "", text));
    }
    stack.sql_script(&sql)?;
    Ok(())
}

/// The job ids the backfills enqueued, page by page.
pub(crate) fn backfill_jobs(
    gateway: &Client,
    cookie: &str,
    backfill_ids: &[String],
) -> Result<Vec<String>, Error> {
    let mut ids = Vec::new();
    for backfill_id in backfill_ids {
        let mut page: Option<String> = None;
        loop {
            let mut path = format!("/api/v1/embeddings/jobs?backfillId={backfill_id}&limit=100");
            if let Some(page) = &page {
                path.push_str("&cursor=");
                path.push_str(page);
            }
            let listed = gateway.get(&path, Some(cookie))?;
            let jobs = listed.body["jobs"].as_array().ok_or("no jobs")?;
            ids.extend(
                jobs.iter()
                    .filter_map(|j| j["jobId"].as_str().map(str::to_owned)),
            );
            match listed.body["nextCursor"].as_str() {
                Some(next) => page = Some(next.to_owned()),
                None => break,
            }
        }
    }
    Ok(ids)
}

/// Enqueues `text` as one `POST /api/v1/embeddings`: its job id.
pub(crate) fn enqueue_one(gateway: &Client, cookie: &str, text: &str) -> Result<String, Error> {
    let reply = gateway.post(
        "/api/v1/embeddings",
        Some(cookie),
        &json!({"content": text, "model": MODEL}).to_string(),
    )?;
    if reply.status != 202 {
        return Err(format!("enqueue answered {} {}", reply.status, reply.body).into());
    }
    Ok(reply.body["jobId"].as_str().ok_or("no jobId")?.to_owned())
}

/// Enqueues every one of `texts` with `one`, from [`CLIENTS`] threads at once; the job ids.
pub(crate) fn enqueue_all(
    texts: &[String],
    one: impl Fn(&str) -> Result<String, Error> + Sync,
) -> Result<Vec<String>, Error> {
    in_threads(texts, CLIENTS, |text| one(text).map_err(|e| e.to_string())).map_err(Error::from)
}

/// Until every one of `job_ids` is `done`; an error if one fails or `within` passes.
pub(crate) fn wait_done(
    gateway: &Client,
    cookie: &str,
    job_ids: &[String],
    within: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    for id in job_ids {
        loop {
            let reply = gateway.get(&format!("/api/v1/embeddings/jobs/{id}"), Some(cookie))?;
            match reply.body["status"].as_str() {
                Some("done") => break,
                Some("queued" | "processing") if started.elapsed() < within => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => return Err(format!("job {id} did not get done: {}", reply.body).into()),
            }
        }
    }
    Ok(())
}

/// Until the batches logged since byte `log_start` of a log (`batches_from` reads those after a
/// byte, and where to read from next) have acknowledged `jobs` jobs. A batch logs once its rows
/// are written, so this is when the last job is `done` in D1. Each look reads only what the log
/// gained since the last (nothing, most of the time), so the wait takes next to no CPU from the
/// model it is timing: polling local-ai's `/stats` every 10 ms instead took about 12 ms of CPU
/// per batch of 100 sentences, during the batch's AI call (perf, 2026-12-04), and polling the
/// gateway would take more.
pub(crate) fn wait_acknowledged(
    batches_from: impl Fn(usize) -> (Vec<Value>, usize),
    log_start: usize,
    jobs: usize,
    within: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    let (mut acknowledged, mut from) = (0, log_start);
    loop {
        let (batches, next) = batches_from(from);
        from = next;
        acknowledged += batches
            .iter()
            .filter_map(|b| b["outcomes"].as_str())
            .filter_map(|outcomes| serde_json::from_str::<Value>(outcomes).ok())
            .filter_map(|outcomes| outcomes["acked"].as_u64())
            .sum::<u64>();
        if acknowledged >= jobs as u64 {
            return Ok(());
        }
        if started.elapsed() > within {
            return Err(format!(
                "the consumer acknowledged {acknowledged} of {jobs} jobs within {within:?}"
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How many jobs whose content begins with `run` are `done`.
pub(crate) fn count_done(stack: &Stack, run: &str) -> Result<usize, Error> {
    let rows = stack.sql(&format!(
        "SELECT count(*) AS n FROM embedding_jobs WHERE status = 'done' AND content LIKE '{run} %'"
    ))?;
    Ok(rows
        .first()
        .and_then(|r| r["n"].as_u64())
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0))
}
