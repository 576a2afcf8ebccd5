//! The platform's floor of a line (`bench/floor/pipeline.js`): a minimal JavaScript producer and
//! consumer on a queue of their own, timed as the pipeline is.

use std::time::{Duration, Instant};

use e2e::bench::Error;
use e2e::{Client, Stack, FLOOR_PIPELINE_LOG};
use serde_json::{json, Value};

use crate::jobs::{enqueue_all, seed_notes, wait_acknowledged};
use crate::{Enqueue, MODEL};

/// A round of the platform's floor of a line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OnFloor {
    /// Jobs per second, enqueue to `done`.
    pub(crate) pipeline: f64,
    /// CPU time of its `wrangler dev` per job.
    pub(crate) cpu_ms: f64,
}

/// One round of the platform's floor of a line (`bench/floor/pipeline.js`): `texts` enqueued
/// for `organization_id` through the floor's own queue as `enqueue` says (a request each, or a
/// backfill of notes seeded with them), and timed from the first request to the batch that
/// acknowledged the last job, as [`round`](crate::rounds::round) times the pipeline, and the CPU its `wrangler dev`
/// spent meanwhile; an error unless every job is `done` with its vector (and a note's vector
/// row, with its codes).
pub(crate) fn floor_round(
    stack: &Stack,
    enqueue: Enqueue,
    texts: &[String],
    organization_id: &str,
) -> Result<OnFloor, Error> {
    let n = texts.len();
    let floor = Client::new(
        stack
            .floor_url
            .as_deref()
            .ok_or("the platform's floor of the pipeline is not running")?,
    );
    let post = |path: &str, mut body: Value| {
        body["organizationId"] = json!(organization_id);
        body["model"] = json!(MODEL);
        body["aiUrl"] = json!(stack.local_ai_url);
        let reply = floor.post(path, None, &body.to_string())?;
        if !(200..300).contains(&reply.status) {
            return Err(format!(
                "the floor's {path} answered {} {}",
                reply.status, reply.body
            )
            .into());
        }
        Ok::<Value, Error>(reply.body)
    };
    if enqueue == Enqueue::Backfill {
        seed_notes(stack, organization_id, texts)?;
        // The local D1's first read after the seed pays for it, as in `round`: a page past
        // every note, which enqueues nothing.
        post("/backfill", json!({"cursor": "~"}))?;
    }
    let log_start = stack.log(FLOOR_PIPELINE_LOG).len();
    let cpu_before = stack.cpu_time(FLOOR_PIPELINE_LOG)?;
    let started = Instant::now();
    match enqueue {
        Enqueue::Requests => {
            enqueue_all(texts, |text| {
                let reply = post("/job", json!({"content": text}))?;
                Ok(reply["jobId"].as_str().ok_or("no jobId")?.to_owned())
            })?;
        }
        Enqueue::Backfill => {
            let mut cursor: Option<String> = None;
            loop {
                let reply = post("/backfill", json!({"cursor": cursor}))?;
                match reply["nextCursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
        }
    }
    // The floor retries nothing: a batch that failed is never acknowledged (a round takes
    // seconds).
    wait_acknowledged(
        |from| stack.floor_batches_from(from),
        log_start,
        n,
        Duration::from_mins(2),
    )?;
    let elapsed = started.elapsed();
    let cpu = stack
        .cpu_time(FLOOR_PIPELINE_LOG)?
        .saturating_sub(cpu_before);
    let rows = stack.sql(&format!(
        "SELECT (SELECT count(*) FROM embedding_jobs WHERE organization_id = '{organization_id}'
                   AND status = 'done'
                   AND (record_id IS NOT NULL OR length(vector) = 4 * 384)) AS done,
                (SELECT count(*) FROM embedding_vectors WHERE organization_id = '{organization_id}'
                   AND length(vector) = 4 * 384 AND codes IS NOT NULL) AS records"
    ))?;
    let count = |name: &str| rows.first().and_then(|r| r[name].as_u64()).unwrap_or(0);
    let records = if enqueue == Enqueue::Backfill {
        n as u64
    } else {
        0
    };
    if count("done") != n as u64 || count("records") != records {
        return Err(format!(
            "the platform's floor finished {} of {n} jobs and wrote {} of {records} vector rows",
            count("done"),
            count("records")
        )
        .into());
    }
    Ok(OnFloor {
        pipeline: n as f64 / elapsed.as_secs_f64(),
        cpu_ms: cpu.as_secs_f64() * 1000.0 / n as f64,
    })
}
