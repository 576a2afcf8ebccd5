//! `scripts/bench consumer`: the pipeline's throughput, enqueue to `done`, against local-ai's raw
//! throughput on the same texts and call size, measured side by side in one run.
//!
//! For each consumer batch size (1, 10, 100) it starts the real local stack with that
//! `max_batch_size`, enqueues jobs and times them until every one is `done` (the clock stops at
//! the consumer's log line for the batch that wrote the last of them, so the bench's own polling
//! is neither timed nor competing for the cores); then it sends the same texts straight to
//! local-ai in calls of the same size. Each side runs twice, alternating, and keeps its best
//! round ([`ROUNDS`]). Jobs are enqueued two ways: one
//! `POST /api/v1/embeddings` per job (eight clients at once), and a backfill of records already
//! in D1 (`sendBatch`, 100 messages a call). It prints jobs/s, AI calls per job, the ratio and
//! the CPU time `wrangler dev` spent per job; the targets at batch 100 are a ratio of at least
//! 0.90 for backfills and 0.80 for a request per job with paragraphs.
//!
//! Each line at batch 100 also times, in every round, the platform's floor of it
//! (`bench/floor/pipeline.js`, in a `wrangler dev` of its own on the same local D1 and local-ai):
//! a minimal JavaScript producer and consumer doing what any pipeline of this design must, with
//! the same texts enqueued the same way. Its ratio to local-ai raw is what the local platform
//! leaves of the model's time before any of the consumer's own work.
//!
//! - `lines`: one line of the table: a stack of its own, its rounds, and local-ai raw;
//! - `rounds`: one timed round of the pipeline, and what the consumer's log says of it;
//! - `jobs`: jobs enqueued (a request each, or a backfill), and waited for;
//! - `floor`: the platform's floor of a line;
//! - `report`: the table and the summary lines.

// Counts of a few thousand are exact in f64.
#![allow(clippy::cast_precision_loss)]

mod floor;
mod jobs;
mod lines;
mod report;
mod rounds;

use floor::OnFloor;
use lines::run;
use report::{print_table, print_targets};
use rounds::{Counts, Split};

/// The model the benchmarked table (notes) embeds with.
pub(crate) const MODEL: &str = "@cf/baai/bge-small-en-v1.5";
/// Threads enqueueing a request per job at once.
pub(crate) const CLIENTS: usize = 8;

/// How the jobs reach the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enqueue {
    /// One `POST /api/v1/embeddings` per job.
    Requests,
    /// `POST /api/v1/embeddings/backfill` over records written to D1 first.
    Backfill,
}

/// One row of the table.
pub(crate) struct Row {
    pub(crate) enqueue: Enqueue,
    pub(crate) texts: &'static str,
    pub(crate) batch: u32,
    pub(crate) jobs: usize,
    pub(crate) pipeline: f64,
    pub(crate) raw: f64,
    pub(crate) calls_per_job: f64,
    /// What the consumer's batches did, over every round.
    pub(crate) counts: Counts,
    /// CPU time of `wrangler dev` (the workers, the runtime and its proxy) per job, from the
    /// first enqueue to the last job done, in the best round.
    pub(crate) workers_cpu_ms: f64,
    /// Where a batch's time went, summed over the batches and divided by the jobs: the D1 read,
    /// the AI calls, the writes (the consumer's own `read_ms`, `embed_ms`, `write_ms`), and the
    /// rest of the run: enqueueing, deliveries, and the time between batches.
    pub(crate) per_job: Split,
    /// The platform's floor of the line (`bench/floor/pipeline.js`), its best round: what a
    /// minimal pipeline gets through the same local Queues, D1 and local-ai.
    pub(crate) floor: Option<OnFloor>,
}

impl Row {
    pub(crate) fn how(&self) -> &'static str {
        match self.enqueue {
            Enqueue::Requests => "a request per job",
            Enqueue::Backfill => "backfill",
        }
    }

    pub(crate) fn ratio(&self) -> f64 {
        self.pipeline / self.raw
    }
}

fn main() {
    let runs: [(Enqueue, &'static str, u32, usize); 6] = [
        (Enqueue::Requests, "paragraph", 1, 100),
        (Enqueue::Requests, "paragraph", 10, 300),
        (Enqueue::Requests, "paragraph", 100, 1_000),
        (Enqueue::Requests, "sentence", 100, 1_000),
        (Enqueue::Backfill, "paragraph", 100, 1_000),
        (Enqueue::Backfill, "sentence", 100, 1_000),
    ];
    // `bench-consumer [backfill|requests] [sentence|paragraph]`: only the lines that match.
    let only: Vec<String> = std::env::args().skip(1).collect();
    if let Some(word) = only
        .iter()
        .find(|w| !["backfill", "requests", "sentence", "paragraph"].contains(&w.as_str()))
    {
        eprintln!(
            "bench consumer: `{word}` names no line (backfill, requests, sentence, paragraph)"
        );
        std::process::exit(2);
    }
    let mut rows = Vec::new();
    for (enqueue, texts, batch, jobs) in runs {
        let words = [
            match enqueue {
                Enqueue::Requests => "requests",
                Enqueue::Backfill => "backfill",
            },
            texts,
        ];
        if !only.iter().all(|word| words.contains(&word.as_str())) {
            continue;
        }
        match run(enqueue, texts, batch, jobs) {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("bench consumer ({texts}, batch {batch}) failed: {e}");
                std::process::exit(1);
            }
        }
    }
    print_table(&rows);
    print_targets(&rows);
}
