//! A deploy rolled back while a model change is being built: workers configured for the old
//! model write a record into both sets, and once a later deploy finishes the change, the
//! record's embedding column holds the new model's vector, as its set does. The column follows
//! the sets' roles as each batch commits, never the writing worker's config
//! (`worker_kit::vector_rows::column_follows`): the new set's row covers the record, so nothing
//! else writes its column before the switch, which writes none.
//!
//! Notes moves from bge-small to bge-base in D1 (the model-change variant), and back to
//! bge-small in the models-back variant, on a stack of its own.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{Client, Stack, Variant};
use libtest_mimic::Failed;
use serde_json::json;
use shared::message::content_hash;

use super::model_change::{create, model_change_stack, with_log_tail, BGE_BASE, NOTES};
use super::{check, expect, wait_final_on, Ctx, Test};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "model_change_rolled_back_mid_change_leaves_the_new_models_vector_in_the_column",
    a_rollback_mid_change_leaves_the_new_models_vector_in_the_column,
)];

/// bge-small's and bge-base's dimensions: local-ai's bge-base is its bge-small zero-padded, so
/// only the length tells them apart.
const SMALL_DIMENSIONS: u64 = 384;
const BASE_DIMENSIONS: u64 = 768;

/// How long `POST .../migration` waits before it takes a chain for stopped
/// (`shared::sets::COMMAND_RESUMES_AFTER_MS`).
const STOPPED_MS: i64 = 120_000;

fn a_rollback_mid_change_leaves_the_new_models_vector_in_the_column(_: &Ctx) -> Result<(), Failed> {
    // Before starting anything: a missing build says how to make it.
    let back = Variant::models_back()?;
    let (stack, forward) = model_change_stack()?;
    rollback(&stack, &forward, &back).map_err(|e| with_log_tail(&stack, &e))
}

fn rollback(stack: &Stack, forward: &Variant, back: &Variant) -> Result<(), Failed> {
    let ann = stack.tenant("ann");
    let (org, cookie) = (ann.organization_id, ann.cookie.as_str());
    let client = stack.client();
    let (id, _, job) = create(&client, cookie, &NOTES, 0)?;
    let ended = wait_final_on(&client, cookie, &job, Duration::from_mins(2))?;
    check(ended["status"] == "done", || {
        format!("the note's job: {ended}")
    })?;
    check(
        column_length(stack, org, &id)? == Some(SMALL_DIMENSIONS),
        || "the note's column holds bge-small's vector before any change".into(),
    )?;

    // The change to bge-base starts; local-ai fails every call, so that no job of its
    // backfill can write the note into the new set.
    let local_ai = Client::new(&stack.local_ai_url);
    let faults = json!({"failRate": 1.0, "failStatuses": [500]});
    expect(
        &local_ai.put("/faults", &faults.to_string())?,
        200,
        "local-ai fails every call",
    )?;
    stack.restart_workers(forward)?;
    let reply = command(stack, cookie)?;
    expect(&reply, 202, "the migration command starts notes' change")?;
    check(reply.body["migration"]["to"]["model"] == BGE_BASE, || {
        format!("notes' change goes to bge-base: {}", reply.body)
    })?;

    // A deploy back to bge-small, within the minute the bge-base set is kept for a config
    // that no longer names it: its workers write both sets, and give nothing up.
    stack.restart_workers(back)?;
    expect(
        &local_ai.put("/faults", "{}")?,
        200,
        "local-ai's faults cleared",
    )?;
    stack.sql(&format!(
        "UPDATE embedding_sets SET vouched_at = {now}
         WHERE organization_id = '{org}' AND table_name = 'notes' AND model = '{BGE_BASE}'
           AND role = 'building'",
        now = now_ms()
    ))?;
    edit_into_the_building_set(stack, org, cookie, &id)?;

    // The deploy to bge-base again. The change's steps were lost with the restarts: the
    // command resumes a chain that has not moved for two minutes.
    stack.restart_workers(forward)?;
    stack.sql(&format!(
        "UPDATE embedding_sets SET updated_at = updated_at - {STOPPED_MS}
         WHERE organization_id = '{org}' AND table_name = 'notes' AND model = '{BGE_BASE}'
           AND role = 'building'"
    ))?;
    let reply = command(stack, cookie)?;
    expect(&reply, 202, "the migration command resumes notes' change")?;
    wait_until_switched_and_cleaned_up(&stack.client(), cookie)?;

    let length = column_length(stack, org, &id)?;
    check(length == Some(BASE_DIMENSIONS), || {
        format!(
            "once notes switched to bge-base, the edited note's column holds {length:?} \
             dimensions, not bge-base's {BASE_DIMENSIONS}"
        )
    })
}

/// `POST .../migration` for notes.
fn command(stack: &Stack, cookie: &str) -> Result<e2e::Reply, Failed> {
    Ok(stack.client().post(
        "/api/v1/embeddings/tables/notes/migration",
        Some(cookie),
        "{}",
    )?)
}

/// Edits the note's text under the config back on bge-small, and checks that its job wrote
/// the new text into the bge-base set, still building: the set then covers the note.
fn edit_into_the_building_set(
    stack: &Stack,
    org: &str,
    cookie: &str,
    id: &str,
) -> Result<(), Failed> {
    let client = stack.client();
    let fields = json!({"body": "the ferry timetable a rolled back deploy wrote"});
    let edited = client.call(
        "PATCH",
        &format!("/api/v1/notes/{id}"),
        &[("cookie", cookie)],
        Some(&fields.to_string()),
    )?;
    expect(&edited, 200, "edit the note's text")?;
    let job = edited.body["job"]["jobId"]
        .as_str()
        .ok_or_else(|| format!("no job for the edit: {}", edited.body))?;
    let ended = wait_final_on(&client, cookie, job, Duration::from_mins(2))?;
    check(ended["status"] == "done", || {
        format!("the edit's job: {ended}")
    })?;
    let record = &edited.body["record"];
    let text = format!(
        "{}\n{}",
        record["title"].as_str().unwrap_or_default(),
        record["body"].as_str().unwrap_or_default()
    );
    let building = stack.sql(&format!(
        "SELECT s.role, v.content_hash FROM embedding_sets s
         JOIN embedding_vectors v ON v.organization_id = s.organization_id
             AND v.table_name = s.table_name AND v.model = s.model AND v.location = s.location
         WHERE s.organization_id = '{org}' AND s.table_name = 'notes' AND s.model = '{BGE_BASE}'
           AND v.record_id = '{id}' AND v.vector IS NOT NULL"
    ))?;
    check(
        building.len() == 1
            && building[0]["role"] == "building"
            && building[0]["content_hash"] == content_hash(BGE_BASE, &text).as_str(),
        || {
            format!(
                "the edit's job, under the config back on bge-small, wrote the edited text into \
                 the bge-base set, still building: {building:?}"
            )
        },
    )
}

/// Waits until notes is on bge-base with no change under way and nothing left to remove.
fn wait_until_switched_and_cleaned_up(client: &Client, cookie: &str) -> Result<(), Failed> {
    let started = Instant::now();
    loop {
        let status = client.get("/api/v1/embeddings/status/notes", Some(cookie))?;
        expect(&status, 200, "notes' status")?;
        let body = &status.body;
        if body["active"]["model"] == BGE_BASE
            && body["migration"].is_null()
            && body["removing"].as_array().is_some_and(Vec::is_empty)
        {
            return Ok(());
        }
        check(started.elapsed() < Duration::from_mins(3), || {
            format!("notes' change did not end: {body}")
        })?;
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The length of a note's embedding column, if it holds a vector.
fn column_length(stack: &Stack, org: &str, id: &str) -> Result<Option<u64>, Failed> {
    let rows = stack.sql(&format!(
        "SELECT json_array_length(embedding) AS n FROM notes
         WHERE id = '{id}' AND organization_id = '{org}'"
    ))?;
    Ok(rows.first().and_then(|row| row["n"].as_u64()))
}

/// Now, as the workers tell time.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
