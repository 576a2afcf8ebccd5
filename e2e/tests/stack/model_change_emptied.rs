//! A record whose text was emptied behind the API's back (the app wrote D1 itself) keeps its old
//! vector in the active set, and has nothing a model change could embed: such a record is no
//! record to cover (`TableConfig::has_text`, `shared::sets::needs_job`), so the change still
//! switches, and the new set holds no vector for it.

use std::time::{Duration, Instant};

use e2e::{Stack, Variant};
use libtest_mimic::Failed;

use super::model_change::{create, model_change_stack, with_log_tail, BGE_BASE, NOTES};
use super::{check, expect, wait_final_on, Ctx, Test};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "model_change_switches_though_a_records_text_was_emptied_behind_the_api",
    a_model_change_switches_though_a_records_text_was_emptied,
)];

/// Records notes holds when its model changes; one of them is emptied.
const RECORDS: usize = 12;

fn a_model_change_switches_though_a_records_text_was_emptied(_: &Ctx) -> Result<(), Failed> {
    let (stack, variant) = model_change_stack()?;
    emptied(&stack, &variant).map_err(|e| with_log_tail(&stack, &e))
}

fn emptied(stack: &Stack, variant: &Variant) -> Result<(), Failed> {
    let ann = stack.tenant("ann");
    let client = stack.client();
    let mut ids = Vec::new();
    for n in 0..RECORDS {
        let (id, _, job) = create(&client, &ann.cookie, &NOTES, n)?;
        let ended = wait_final_on(&client, &ann.cookie, &job, Duration::from_mins(2))?;
        check(ended["status"] == "done", || {
            format!("a seeded job: {ended}")
        })?;
        ids.push(id);
    }
    // Blank, not null: white space, as `str::trim` knows it, in both embedded fields.
    let blank = &ids[RECORDS / 2];
    stack.sql(&format!(
        "UPDATE notes SET title = '', body = ' ' || char(10) || char(160)
         WHERE id = '{blank}' AND organization_id = '{}'",
        ann.organization_id
    ))?;

    stack.restart_workers(variant)?;
    let client = stack.client();
    let reply = client.post(
        "/api/v1/embeddings/tables/notes/migration",
        Some(&ann.cookie),
        "{}",
    )?;
    expect(&reply, 202, "the migration command starts notes' change")?;

    let started = Instant::now();
    loop {
        let status = client.get("/api/v1/embeddings/status/notes", Some(&ann.cookie))?;
        expect(&status, 200, "notes' status")?;
        let body = &status.body;
        if body["active"]["model"] == BGE_BASE
            && body["migration"].is_null()
            && body["removing"].as_array().is_some_and(Vec::is_empty)
        {
            break;
        }
        check(started.elapsed() < Duration::from_mins(3), || {
            format!("notes' change did not switch though one record has no text: {body}")
        })?;
        std::thread::sleep(Duration::from_millis(500));
    }

    let live = stack.sql(&format!(
        "SELECT record_id FROM embedding_vectors
         WHERE organization_id = '{}' AND table_name = 'notes' AND model = '{BGE_BASE}'
           AND vector IS NOT NULL ORDER BY record_id",
        ann.organization_id
    ))?;
    let live: Vec<&str> = live
        .iter()
        .filter_map(|row| row["record_id"].as_str())
        .collect();
    let mut expected: Vec<&str> = ids
        .iter()
        .filter(|id| *id != blank)
        .map(String::as_str)
        .collect();
    expected.sort_unstable();
    check(live == expected, || {
        format!("the new set holds every record with text, and not `{blank}`: {live:?}")
    })
}
