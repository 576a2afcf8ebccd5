//! Changing tables' models under live data: a stack of its own (restarting the suite's would
//! change every later test's models) restarts its workers with the ones built from the
//! model-change variant of embeddings.toml (`scripts/variant-config`: notes on bge-base, evidence
//! on bge-small in the 384-dimension Vectorize index), over the same D1 state and stand-ins.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{Client, Options, Stack, Variant};
use libtest_mimic::Failed;
use serde_json::{json, Value};

use super::{check, expect, wait_final_on, Ctx, Test};

pub(crate) const TESTS: &[(&str, Test)] = &[(
    "model_change_smoke_the_restarted_workers_serve_the_variant_over_the_same_data",
    the_restarted_workers_serve_the_variant_over_the_same_data,
)];

const BGE_SMALL: &str = "@cf/baai/bge-small-en-v1.5";
const BGE_BASE: &str = "@cf/baai/bge-base-en-v1.5";

/// A smoke test of the restart itself; the migration's own checks belong here.
fn the_restarted_workers_serve_the_variant_over_the_same_data(_: &Ctx) -> Result<(), Failed> {
    // Before starting anything: a missing build says how to make it.
    let variant = Variant::model_change()?;
    let mut stack = Stack::start(Options::default())?;
    restart_with_a_note(&mut stack, &variant).map_err(|e| with_log_tail(&stack, &e))
}

fn restart_with_a_note(stack: &mut Stack, variant: &Variant) -> Result<(), Failed> {
    let ann = stack.tenant("ann").cookie;
    let models = table_models(&stack.client(), &ann)?;
    check(models["notes"] == BGE_SMALL, || {
        format!("notes start on bge-small: {models:?}")
    })?;
    let note = create_embedded(
        &stack.client(),
        &ann,
        "notes",
        &json!({"title": "Harbour plan", "body": "The council approved it", "topic": "harbour"}),
    )?;

    stack.restart_workers(variant)?;

    let client = stack.client();
    expect(&client.get("/api/v1/health", None)?, 200, "health")?;
    let models = table_models(&client, &ann)?;
    check(
        models["notes"] == BGE_BASE && models["evidence"] == BGE_SMALL,
        || format!("the variant's models: {models:?}"),
    )?;
    let id = note["id"].as_str().ok_or("the note has no id")?;
    let read = client.get(&format!("/api/v1/notes/{id}"), Some(&ann))?;
    expect(&read, 200, "the note written before the restart")?;
    check(
        read.body["title"] == note["title"] && read.body["body"] == note["body"],
        || format!("the same note: {} (written: {note})", read.body),
    )?;
    // Evidence now goes to the 384-dimension index, which the restart created in the stand-in.
    create_embedded(
        &client,
        &ann,
        "evidence",
        &json!({"content": "Court records list three defendants", "story_id": "s1"}),
    )
    .map(drop)
}

/// A failure on a test's own stack, with the end of its workers' log (the stack, and its logs,
/// are gone once the test returns).
pub(crate) fn with_log_tail(stack: &Stack, failed: &Failed) -> Failed {
    format!(
        "{}\n--- last lines of its wrangler-dev.log ---\n{}",
        failed.message().unwrap_or("failed"),
        stack.log_tail("wrangler-dev.log", 40)
    )
    .into()
}

/// Creates a record of `table` as `cookie` and waits until its embedding job is done; returns
/// the record.
pub(crate) fn create_embedded(
    client: &Client,
    cookie: &str,
    table: &str,
    fields: &Value,
) -> Result<Value, Failed> {
    let created = client.post(
        &format!("/api/v1/{table}"),
        Some(cookie),
        &fields.to_string(),
    )?;
    expect(&created, 201, &format!("create a record of {table}"))?;
    let job = created.body["job"]["jobId"]
        .as_str()
        .ok_or_else(|| format!("the record's job was not queued: {}", created.body))?;
    let ended = wait_final_on(client, cookie, job, Duration::from_secs(30))?;
    check(ended["status"] == "done", || {
        format!("the {table} record is embedded: {ended}")
    })?;
    Ok(created.body["record"].clone())
}

/// Each table's model, as `GET /api/v1/embeddings/tables` reports it to `cookie`.
pub(crate) fn table_models(
    client: &Client,
    cookie: &str,
) -> Result<BTreeMap<String, String>, Failed> {
    let reply = client.get("/api/v1/embeddings/tables", Some(cookie))?;
    expect(&reply, 200, "tables")?;
    reply.body["tables"]
        .as_array()
        .ok_or_else(|| format!("no tables: {}", reply.body))?
        .iter()
        .map(|t| match (t["name"].as_str(), t["model"].as_str()) {
            (Some(name), Some(model)) => Ok((name.to_owned(), model.to_owned())),
            _ => Err(format!("a table without name or model: {t}").into()),
        })
        .collect()
}
