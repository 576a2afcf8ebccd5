//! The model-change command sent ten times while a table's change runs: one change, and each
//! record enqueued by its backfill once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use e2e::{Stack, Variant};
use libtest_mimic::Failed;

use super::model_change::{create, model_change_stack, with_log_tail, BGE_BASE, NOTES};
use super::{check, expect, wait_final_on, Ctx, Test};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "model_change_command_sent_ten_times_enqueues_each_record_once",
    the_command_sent_ten_times_enqueues_each_record_once,
)];

/// Records notes holds when the command is sent ten times.
const COMMANDED: usize = 120;

fn the_command_sent_ten_times_enqueues_each_record_once(_: &Ctx) -> Result<(), Failed> {
    let (stack, variant) = model_change_stack()?;
    ten_commands(&stack, &variant).map_err(|e| with_log_tail(&stack, &e))
}

fn ten_commands(stack: &Stack, variant: &Variant) -> Result<(), Failed> {
    let ann = stack.tenant("ann").cookie;
    let client = stack.client();
    let mut seeded = BTreeSet::new();
    let mut jobs = Vec::new();
    for n in 0..COMMANDED {
        let (id, _, job) = create(&client, &ann, &NOTES, n)?;
        seeded.insert(id);
        jobs.push(job);
    }
    for job in &jobs {
        let ended = wait_final_on(&client, &ann, job, Duration::from_mins(2))?;
        check(ended["status"] == "done", || {
            format!("a seeded job: {ended}")
        })?;
    }

    stack.restart_workers(variant)?;
    let client = stack.client();
    // No write touches notes: its change starts with the first command, and the nine others
    // come while its steps run.
    let mut changes = BTreeSet::new();
    for _ in 0..10 {
        let reply = client.post(
            "/api/v1/embeddings/tables/notes/migration",
            Some(&ann),
            "{}",
        )?;
        expect(
            &reply,
            202,
            "the migration command, while notes' change runs",
        )?;
        let id = reply.body["migration"]["migrationId"]
            .as_str()
            .ok_or_else(|| format!("no change under way: {}", reply.body))?;
        changes.insert(id.to_owned());
    }
    check(changes.len() == 1, || format!("one change: {changes:?}"))?;
    let migration_id = changes.pop_first().unwrap_or_default();

    let started = Instant::now();
    loop {
        let status = client.get("/api/v1/embeddings/status/notes", Some(&ann))?;
        expect(&status, 200, "notes' status")?;
        let body = &status.body;
        if body["active"]["model"] == BGE_BASE
            && body["migration"].is_null()
            && body["removing"].as_array().is_some_and(Vec::is_empty)
        {
            break;
        }
        check(started.elapsed() < Duration::from_mins(3), || {
            format!("notes' change did not end: {body}")
        })?;
        std::thread::sleep(Duration::from_millis(500));
    }

    // The change's backfill, page by page.
    let mut enqueued: BTreeMap<String, usize> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!(
                "/api/v1/embeddings/jobs?backfillId={migration_id}&limit=100&cursor={cursor}"
            ),
            None => format!("/api/v1/embeddings/jobs?backfillId={migration_id}&limit=100"),
        };
        let page = client.get(&path, Some(&ann))?;
        expect(&page, 200, "the change's backfill jobs")?;
        for job in page.body["jobs"].as_array().ok_or("a list of jobs")? {
            let record = job["id"].as_str().unwrap_or_default().to_owned();
            *enqueued.entry(record).or_default() += 1;
        }
        match page.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let twice: Vec<(&String, &usize)> = enqueued.iter().filter(|(_, n)| **n > 1).collect();
    let jobs: usize = enqueued.values().sum();
    check(jobs == COMMANDED && twice.is_empty(), || {
        format!(
            "{jobs} backfill jobs for {COMMANDED} records; {} enqueued more than once, as {:?}",
            twice.len(),
            twice.iter().take(3).collect::<Vec<_>>()
        )
    })?;
    check(
        enqueued.keys().cloned().collect::<BTreeSet<_>>() == seeded,
        || "the backfill's records are not notes' records".to_owned(),
    )?;
    Ok(())
}
