//! What a run prints: the table of every line, and the targets at batch 100 as summary lines.

use e2e::bench::table_header;
use e2e::verdict::{rounded_down, said, summary, Bound};

use crate::rounds::ROUNDS;
use crate::{Enqueue, Row};

/// The table: a line for each way of enqueueing, kind of text and batch size.
pub(crate) fn print_table(rows: &[Row]) {
    table_header(&[
        "enqueued by",
        "texts",
        "consumer batch",
        "jobs",
        "pipeline jobs/s",
        "local-ai raw texts/s",
        "ratio",
        "AI calls/job",
        "wrangler dev CPU ms/job",
        "ms/job: D1 read, AI, writes, rest",
    ]);
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {} | {:.3} | {:.2} | {:.2}, {:.2}, {:.2}, {:.2} |",
            r.how(),
            r.texts,
            r.batch,
            r.jobs,
            r.pipeline,
            r.raw,
            rounded_down(r.ratio(), 2),
            r.calls_per_job,
            r.workers_cpu_ms,
            r.per_job.read,
            r.per_job.embed,
            r.per_job.write,
            r.per_job.rest
        );
    }
}

/// The targets at batch 100, as summary lines: AI calls per job, and pipeline ÷ raw of at least
/// 0.90 for backfills and 0.80 for a request per job with paragraphs. A request per job with
/// short texts has no bound of its own: the gateway's work per request shares the two cores with
/// the model, so its ratio is reported beside that work's CPU time (the `wrangler dev` CPU per
/// job with a request per job, less the same with a backfill of the same texts).
pub(crate) fn print_targets(rows: &[Row]) {
    for r in rows.iter().filter(|r| r.batch == 100) {
        let c = r.counts;
        summary(
            format!(
                "AI calls, consumer batch 100, {} rounds of {} jobs ({}, {}): {} calls in {} batches, {:.3} a job",
                ROUNDS.len(),
                r.jobs,
                r.texts,
                r.how(),
                c.calls,
                c.batches,
                r.calls_per_job
            ),
            c.calls,
            format!("= ceil(n/100) per batch of n: {}", c.allowed_calls),
            said(c.calls == c.allowed_calls && c.batches > 0),
        );
    }
    // Every batch of every line holds jobs of one table (notes), up to 100 of them.
    if let Some(most) = rows.iter().map(|r| r.counts.most_statements).max() {
        summary(
            format!(
                "D1 statements per consumer batch of up to 100 jobs of one table: the most in any of the {} batches above (it held {} jobs)",
                rows.iter().map(|r| r.counts.batches).sum::<usize>(),
                most.jobs
            ),
            most.statements,
            "<= 10",
            said(most.statements <= 10),
        );
    }
    let find = |enqueue: Enqueue, texts: &str| {
        rows.iter()
            .find(|r| r.batch == 100 && r.enqueue == enqueue && r.texts == texts)
    };
    for (enqueue, texts, bound) in [
        (Enqueue::Backfill, "paragraph", Some(0.90)),
        (Enqueue::Backfill, "sentence", Some(0.90)),
        (Enqueue::Requests, "paragraph", Some(0.80)),
        (Enqueue::Requests, "sentence", None),
    ] {
        let Some(r) = find(enqueue, texts) else {
            continue;
        };
        let (figure, target, verdict) = match bound {
            Some(bound) => {
                let floor = Bound::AtLeast(bound);
                (
                    floor.shown(r.ratio(), 2),
                    format!(">= {bound:.2}"),
                    floor.verdict(r.ratio()),
                )
            }
            None => (
                rounded_down(r.ratio(), 2),
                "(beside the gateway's CPU per request)".to_owned(),
                "-",
            ),
        };
        summary(
            format!(
                "pipeline ÷ local-ai raw, batch 100, enqueued by {}, {}s",
                r.how(),
                r.texts
            ),
            figure,
            target,
            verdict,
        );
        if let Some(floor) = r.floor {
            summary(
                format!(
                    "the platform's floor of that line: a minimal JavaScript pipeline (bench/floor/pipeline.js) through the same local Queues, D1 and local-ai, ÷ local-ai raw ({:.1} jobs/s; its wrangler dev CPU {:.2} ms a job, the pipeline's {:.2})",
                    floor.pipeline,
                    floor.cpu_ms,
                    r.workers_cpu_ms
                ),
                rounded_down(floor.pipeline / r.raw, 2),
                "(no target)",
                "-",
            );
        }
    }
    for texts in ["sentence", "paragraph"] {
        if let (Some(requests), Some(backfill)) = (
            find(Enqueue::Requests, texts),
            find(Enqueue::Backfill, texts),
        ) {
            summary(
                format!(
                    "the gateway's CPU per request ({texts}s): wrangler dev CPU per job, a request per job ({:.2} ms) less a backfill ({:.2} ms)",
                    requests.workers_cpu_ms,
                    backfill.workers_cpu_ms
                ),
                format!("{:.2} ms", requests.workers_cpu_ms - backfill.workers_cpu_ms),
                "(no target)",
                "-",
            );
        }
    }
}
