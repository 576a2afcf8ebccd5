//! `scripts/bench fairness`: does one organization's bulk work slow another's live writes?
//!
//! Organization B creates one note a second and times each from its 201 to the moment a search
//! of B's finds it. That is measured twice on one stack, one after the other: with A idle (the
//! reference), then while A backfills 20,000 notes written to D1 behind the API's back, as an
//! app's own writes would be. The target (issue "Hostile neighbours"): B's p95 with A busy at
//! most 1.5 times B's p95 with A idle. Only B's notes made while A still had jobs open (read
//! from the status route just before each) count in the busy figure; fewer than [`MEASURED`]
//! such notes is no measurement, and the run fails.

use std::thread::sleep;
use std::time::{Duration, Instant};

use e2e::bench::{percentile, table_header, Error};
use e2e::seed::note_sql;
use e2e::verdict::{summary, Bound};
use e2e::{Client, Options, Stack};
use serde_json::json;

/// A's backfill.
const BACKLOG: usize = 20_000;
/// B's notes in each phase, one a second.
const NOTES: usize = 40;
/// Of B's notes in the busy phase, how many at least must be made while A's backlog lasts.
const MEASURED: usize = 20;
/// The goal: B's p95 with A busy over B's p95 with A idle.
const TARGET: Bound = Bound::AtMost(1.5);
/// How long one note may take to become searchable before the run gives up.
const PATIENCE: Duration = Duration::from_mins(2);

fn main() {
    if let Err(e) = run() {
        eprintln!("bench fairness failed: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let stack = Stack::start(Options::default())?;
    let gateway = stack.client();
    let (a, b) = (stack.tenant("ann"), stack.tenant("bob"));
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let idle_a = || Ok(0);
    // One note first, so that neither phase pays for the workers' first compilation.
    live_notes(&gateway, &b.cookie, &format!("warm-{run}"), 1, idle_a)?;

    eprintln!("==> B creates {NOTES} notes, one a second, with A idle");
    let idle: Vec<f64> = live_notes(&gateway, &b.cookie, &format!("idle-{run}"), NOTES, idle_a)?
        .into_iter()
        .map(|(ms, _)| ms)
        .collect();

    eprintln!("==> A backfills {BACKLOG} notes; B creates a note a second meanwhile");
    seed_notes(&stack, a.organization_id, &run)?;
    gateway.backfill_all(&a.cookie, "notes")?;
    let a_pending = || pending(&gateway, &a.cookie);
    let measured = live_notes(
        &gateway,
        &b.cookie,
        &format!("busy-{run}"),
        NOTES,
        a_pending,
    )?;
    // Only the notes B made while A still had jobs open measure B beside A's backlog.
    let busy: Vec<f64> = measured
        .iter()
        .filter(|(_, backlog)| *backlog > 0)
        .map(|(ms, _)| *ms)
        .collect();
    let backlog = measured.first().map_or(0, |(_, n)| *n);
    let lasted = match measured.iter().position(|(_, n)| *n == 0) {
        Some(i) => format!("drained before B's note {}", i + 1),
        None => format!("{} still open at B's last note", measured[NOTES - 1].1),
    };
    if busy.len() < MEASURED {
        return Err(format!(
            "only {} of B's notes were made while A's backlog lasted ({lasted}): raise BACKLOG",
            busy.len()
        )
        .into());
    }

    let (idle_p50, idle_p95) = (percentile(&idle, 50), percentile(&idle, 95));
    let (busy_p50, busy_p95) = (percentile(&busy, 50), percentile(&busy, 95));
    let ratio = busy_p95 / idle_p95;
    table_header(&[
        "organization A",
        "B's notes",
        "B: 201 to searchable, p50 ms",
        "p95 ms",
    ]);
    println!("| idle | {} | {idle_p50:.0} | {idle_p95:.0} |", idle.len());
    println!(
        "| backfilling {BACKLOG} notes ({backlog} jobs open as B began; {lasted}) | {} | \
         {busy_p50:.0} | {busy_p95:.0} |",
        busy.len()
    );
    println!();
    summary(
        format!(
            "fairness: B's p95 from 201 to searchable, A backfilling {BACKLOG} / A idle ({busy_p95:.0} / {idle_p95:.0} ms)"
        ),
        TARGET.shown(ratio, 2),
        "<= 1.5",
        TARGET.verdict(ratio),
    );
    Ok(())
}

/// Creates `n` notes, one a second, each timed from its 201 until a search finds it first, with
/// what `backlog` read just before it was created.
fn live_notes(
    gateway: &Client,
    cookie: &str,
    run: &str,
    n: usize,
    backlog: impl Fn() -> Result<u64, Error>,
) -> Result<Vec<(f64, u64)>, Error> {
    let mut timings = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        let open = backlog()?;
        let id = format!("fair_{run}_{i:03}");
        let body = format!(
            "Fairness probe {run} number {i}: the ferry timetable changes on {} {}.",
            ["Monday", "Tuesday", "Friday"][i % 3],
            i * 7919 % 1000
        );
        let created = gateway.post(
            "/api/v1/notes",
            Some(cookie),
            &json!({"id": id, "title": "probe", "body": body}).to_string(),
        )?;
        if created.status != 201 {
            let answer = format!(
                "creating a note answered {} {}",
                created.status, created.body
            );
            return Err(answer.into());
        }
        let accepted = Instant::now();
        loop {
            let found = gateway.post(
                "/api/v1/embeddings/search/noteSearch",
                Some(cookie),
                &json!({"text": format!("probe\n{body}"), "limit": 1}).to_string(),
            )?;
            if found.body[0]["id"] == id.as_str() {
                break;
            }
            if accepted.elapsed() > PATIENCE {
                return Err(format!("note {id} was not searchable after {PATIENCE:?}").into());
            }
            sleep(Duration::from_millis(20));
        }
        timings.push((accepted.elapsed().as_secs_f64() * 1000.0, open));
        if let Some(rest) = Duration::from_secs(1).checked_sub(started.elapsed()) {
            sleep(rest);
        }
    }
    Ok(timings)
}

/// Writes [`BACKLOG`] notes for `organization_id` straight into D1.
fn seed_notes(stack: &Stack, organization_id: &str, run: &str) -> Result<(), Error> {
    use std::fmt::Write as _;
    for chunk in 0..BACKLOG.div_ceil(1_000) {
        let mut sql = String::new();
        for i in chunk * 1_000..((chunk + 1) * 1_000).min(BACKLOG) {
            let id = format!("bulk_{run}_{i:05}");
            let body = format!(
                "Record {i} of the archive: the harbour board met on day {} and approved item {}.",
                i % 365,
                i * 31 % 997
            );
            let _ = writeln!(
                sql,
                "{}",
                note_sql(&id, organization_id, "bulk", "Backlog", &body)
            );
        }
        stack.sql_script(&sql)?;
    }
    Ok(())
}

/// The caller's jobs of the notes table not yet final, as the status route counts them.
fn pending(gateway: &Client, cookie: &str) -> Result<u64, Error> {
    let status = gateway.get("/api/v1/embeddings/status/notes", Some(cookie))?;
    status.body["jobs"]["pending"]
        .as_u64()
        .ok_or_else(|| format!("no pending count in {}", status.body).into())
}
