//! One timed round of the pipeline: jobs enqueued as a tenant and timed until the consumer has
//! acknowledged the last of them, with what its logged batches did (AI calls, D1 statements,
//! where the time went) and the CPU `wrangler dev` spent.

use std::time::{Duration, Instant};

use e2e::bench::Error;
use e2e::{Client, Stack, Tenant};
use serde_json::Value;

use crate::jobs::{
    backfill_jobs, count_done, enqueue_all, enqueue_one, seed_notes, wait_acknowledged, wait_done,
};
use crate::Enqueue;

/// What the consumer's batches of a run did, from its log lines.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counts {
    /// AI calls, and what the batches allow: `ceil(n / 100)` for a batch of `n` jobs, summed
    /// over the batches logged (Queues may deliver a partial batch on its timeout).
    pub(crate) calls: u64,
    pub(crate) allowed_calls: u64,
    pub(crate) batches: usize,
    /// The batch that prepared the most D1 statements (its `d1_statements`).
    pub(crate) most_statements: Statements,
}

impl Counts {
    /// Both runs' counts together.
    pub(crate) fn add(self, other: Counts) -> Counts {
        Counts {
            calls: self.calls + other.calls,
            allowed_calls: self.allowed_calls + other.allowed_calls,
            batches: self.batches + other.batches,
            most_statements: self.most_statements.max(other.most_statements),
        }
    }
}

/// A batch's D1 statements and its jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Statements {
    pub(crate) statements: u64,
    pub(crate) jobs: u64,
}

impl Statements {
    /// The batch of the most statements (of the most jobs, between equals) among `batches`,
    /// as the consumer logged them.
    fn most(batches: &[Value]) -> Self {
        batches
            .iter()
            .map(|b| Statements {
                statements: b["d1_statements"].as_u64().unwrap_or(u64::MAX),
                jobs: b["jobs"].as_u64().unwrap_or(0),
            })
            .max()
            .unwrap_or_default()
    }
}

/// Milliseconds per job, by part of the pipeline.
pub(crate) struct Split {
    pub(crate) read: f64,
    pub(crate) embed: f64,
    pub(crate) write: f64,
    pub(crate) rest: f64,
}

/// One timed round of a line: `n` jobs enqueued and embedded, as the clock and the logs saw it.
pub(crate) struct Round {
    /// Jobs per second, enqueue to `done`.
    pub(crate) pipeline: f64,
    pub(crate) counts: Counts,
    pub(crate) workers_cpu_ms: f64,
    pub(crate) per_job: Split,
}

/// Each side of a line is timed [`ROUNDS`] times, alternating (pipeline, raw, pipeline, ...),
/// and keeps its best round, as `bench/local_ai.py` does: the best round is the one least
/// disturbed by the rest of the machine, and alternating gives both sides the same chances.
/// Each pipeline round is another organization's, so that a backfill finds only its own
/// records to embed.
pub(crate) const ROUNDS: [&str; 2] = ["ann", "bob"];

/// Enqueues `texts` as `tenant` (`enqueue`: a request each, or a backfill of notes seeded with
/// them) and times them to `done`; `run` begins every text, so that they can be counted.
pub(crate) fn round(
    stack: &Stack,
    tenant: &Tenant,
    enqueue: Enqueue,
    texts: &[String],
    run: &str,
) -> Result<Round, Error> {
    let n = texts.len();
    let (gateway, cookie) = (stack.client(), &tenant.cookie);
    let local_ai = Client::new(&stack.local_ai_url);
    if enqueue == Enqueue::Backfill {
        seed_notes(stack, tenant.organization_id, texts)?;
        // The seed wrote D1 from another process (`wrangler d1 execute`), and the local D1's
        // first read after that pays for it (16 ms for a session read, against 1 to 2 ms): paid
        // here, by a read of the table, not by the backfill's first call.
        let reply = gateway.get("/api/v1/notes?limit=1", Some(cookie))?;
        if reply.status != 200 {
            return Err(format!("the notes list answered {} {}", reply.status, reply.body).into());
        }
    }
    let log_start = stack.log("wrangler-dev.log").len();
    let calls_before = stat(&local_ai, "calls")?;
    let cpu_before = stack.cpu_time("wrangler-dev.log")?;
    let started = Instant::now();
    let (mut job_ids, backfill_ids) = match enqueue {
        Enqueue::Requests => (
            enqueue_all(texts, |text| enqueue_one(&gateway, cookie, text))?,
            Vec::new(),
        ),
        Enqueue::Backfill => (Vec::new(), gateway.backfill_all(cookie, "notes")?),
    };
    wait_acknowledged(
        |from| stack.consumer_batches_from(from),
        log_start,
        n,
        Duration::from_mins(10),
    )?;
    let mut elapsed = started.elapsed();
    if count_done(stack, run)? < n {
        // A batch acknowledged a job it did not finish: wait for every job, and count the time.
        if enqueue == Enqueue::Backfill {
            job_ids = backfill_jobs(&gateway, cookie, &backfill_ids)?;
        }
        wait_done(&gateway, cookie, &job_ids, Duration::from_mins(10))?;
        elapsed = started.elapsed();
    }
    let calls = stat(&local_ai, "calls")? - calls_before;
    let batches = stack.consumer_batches(log_start);
    let allowed_calls = batches
        .iter()
        .map(|b| b["jobs"].as_u64().unwrap_or(0).div_ceil(100))
        .sum();
    let workers_cpu = stack
        .cpu_time("wrangler-dev.log")?
        .saturating_sub(cpu_before);
    let part = |name: &str| batches.iter().filter_map(|b| b[name].as_f64()).sum::<f64>() / n as f64;
    let (read, embed, write) = (part("read_ms"), part("embed_ms"), part("write_ms"));
    Ok(Round {
        pipeline: n as f64 / elapsed.as_secs_f64(),
        counts: Counts {
            calls,
            allowed_calls,
            batches: batches.len(),
            most_statements: Statements::most(&batches),
        },
        workers_cpu_ms: workers_cpu.as_secs_f64() * 1000.0 / n as f64,
        per_job: Split {
            read,
            embed,
            write,
            rest: elapsed.as_secs_f64() * 1000.0 / n as f64 - read - embed - write,
        },
    })
}

/// One of local-ai's counters at `/stats`.
fn stat(local_ai: &Client, name: &str) -> Result<u64, Error> {
    let reply = local_ai.get("/stats", None)?;
    Ok(reply.body[name].as_u64().ok_or("no stats")?)
}
