//! One line of the table: a stack started with the line's consumer batch size, warmed, then
//! [`ROUNDS`] rounds of the pipeline alternating with local-ai raw (and the platform's floor at
//! batch 100), each side keeping its best.

use std::time::{Duration, Instant};

use e2e::bench::{run_model, Error};
use e2e::{Client, Floor, Options, Stack};
use serde_json::Value;

use crate::floor::{floor_round, OnFloor};
use crate::jobs::{enqueue_all, enqueue_one, wait_acknowledged};
use crate::rounds::{round, Counts, Round, ROUNDS};
use crate::{Enqueue, Row, MODEL};

/// `n` texts of `kind` (a sentence, or a paragraph of eight), each beginning with `run`.
fn texts(kind: &str, run: &str, n: usize) -> Vec<String> {
    const SUBJECTS: [&str; 5] = [
        "The council",
        "Police",
        "Researchers",
        "The court",
        "Residents",
    ];
    const EVENTS: [&str; 5] = [
        "approved the harbour plan",
        "reported three arrests",
        "questioned the rent rise",
        "postponed the railway works",
        "welcomed the flood defences",
    ];
    (0..n)
        .map(|i| {
            let sentence = |k: usize| {
                format!(
                    "{} {} on day {}, item {i}-{k}.",
                    SUBJECTS[(i + k) % 5],
                    EVENTS[(i / 5 + k) % 5],
                    i % 28 + 1
                )
            };
            match kind {
                "sentence" => format!("{run} {}", sentence(0)),
                _ => format!(
                    "{run} {}",
                    (0..8).map(sentence).collect::<Vec<_>>().join(" ")
                ),
            }
        })
        .collect()
}

/// The line of `n` jobs of `kind` texts enqueued by `enqueue`, at consumer batch `batch`.
pub(crate) fn run(
    enqueue: Enqueue,
    kind: &'static str,
    batch: u32,
    n: usize,
) -> Result<Row, Error> {
    eprintln!("==> {kind} texts, consumer batch {batch}, {n} jobs, {enqueue:?}");
    // The lines at batch 100 are timed beside the platform's floor of them.
    let floored = batch == 100;
    let stack = Stack::start(Options {
        consumer_batch_size: Some(batch),
        floor: floored.then_some(Floor::Pipeline),
        ..Options::default()
    })?;
    let gateway = stack.client();
    let local_ai = Client::new(&stack.local_ai_url);
    let cookie = stack.tenant("ann").cookie;
    let run = format!("run-{}", uuid::Uuid::new_v4().simple());
    // Warm both paths with a full batch: the runtime compiles a worker's hot code to its optimising
    // tier as it runs, and a first batch would pay for that in the time measured (about 80 ms of
    // CPU beside a run of 1,000 sentences), where a long backfill pays it once.
    let warm_texts = texts(kind, &format!("warm-{run}"), batch.min(100) as usize);
    raw_throughput(&local_ai, &warm_texts, batch)?;
    enqueue_all(&warm_texts, |text| enqueue_one(&gateway, &cookie, text))?;
    // Done once their batches have logged, and the count of acknowledged jobs below starts after.
    wait_acknowledged(
        |from| stack.consumer_batches_from(from),
        0,
        warm_texts.len(),
        Duration::from_mins(1),
    )?;
    // The floor's rounds, each of an organization of its own: `round` names it.
    let on_floor = |round: &str, texts: &[String]| {
        let org = format!("org_floor_{}_{round}", &run[4..12]);
        let on_floor = floor_round(&stack, enqueue, texts, &org)?;
        eprintln!(
            "    {round}: the platform's floor {:.1} jobs/s",
            on_floor.pipeline
        );
        Ok::<OnFloor, Error>(on_floor)
    };
    if floored {
        on_floor("warming", &warm_texts)?;
    }

    let (mut best, mut raw, mut floor) = (None::<Round>, 0.0f64, None::<OnFloor>);
    let mut counts = Counts::default();
    for (i, user) in ROUNDS.into_iter().enumerate() {
        let texts = texts(kind, &format!("{run}-{i}"), n);
        let round = round(
            &stack,
            &stack.tenant(user),
            enqueue,
            &texts,
            &format!("{run}-{i}"),
        )?;
        let round_raw = raw_throughput(&local_ai, &texts, batch)?;
        eprintln!(
            "    round {i}: pipeline {:.1} jobs/s, raw {round_raw:.1} texts/s, {} AI calls",
            round.pipeline, round.counts.calls
        );
        if floored {
            let round = on_floor(&format!("round{i}"), &texts)?;
            if floor.is_none_or(|best| round.pipeline > best.pipeline) {
                floor = Some(round);
            }
        }
        counts = counts.add(round.counts);
        raw = raw.max(round_raw);
        if best.as_ref().is_none_or(|b| round.pipeline > b.pipeline) {
            best = Some(round);
        }
    }
    let best = best.ok_or("no round ran")?;
    Ok(Row {
        enqueue,
        texts: kind,
        batch,
        jobs: n,
        pipeline: best.pipeline,
        raw,
        calls_per_job: counts.calls as f64 / (n * ROUNDS.len()) as f64,
        counts,
        workers_cpu_ms: best.workers_cpu_ms,
        per_job: best.per_job,
        floor,
    })
}

/// Texts per second that local-ai embeds when called directly, one call after another, with
/// `batch` texts a call (100 at most, as Workers AI takes).
fn raw_throughput(local_ai: &Client, texts: &[String], batch: u32) -> Result<f64, Error> {
    let started = Instant::now();
    for chunk in texts.chunks(batch.clamp(1, 100) as usize) {
        let (_, answer) = run_model(local_ai, MODEL, chunk)?;
        let shape: Value = answer["result"]["shape"].clone();
        if shape[0].as_u64() != Some(chunk.len() as u64) {
            return Err(format!("local-ai answered shape {shape}").into());
        }
    }
    Ok(texts.len() as f64 / started.elapsed().as_secs_f64())
}
