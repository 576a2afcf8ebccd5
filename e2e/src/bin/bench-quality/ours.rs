//! Our runs: each collection written into an organization's `claims` table of the real local
//! stack, backfilled through the API, and its queries searched through the gateway.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::seed::story_row_sql;
use e2e::{Client, Options, Stack};
use serde_json::{json, Value};

use crate::collection::{Collection, Text};

/// The search service searched: `claims`, on the D1 backend.
const SERVICE: &str = "claimSimilarity";
/// Matches asked for: as many as a search returns, for recall@100.
const LIMIT: u32 = 100;
/// Documents written to D1 in one `wrangler d1 execute`.
const WRITE_CHUNK: usize = 200;
/// How long a collection's backfill may take.
const EMBED_TIMEOUT: Duration = Duration::from_mins(45);

pub(crate) fn run(collections: &Path, runs: &Path) -> Result<(), String> {
    let dirs = Collection::dirs(collections)?;
    let stack = Stack::start(Options::default()).map_err(|e| format!("the stack: {e}"))?;
    let client = stack.client();
    for dir in dirs {
        let collection = Collection::read(&dir)?;
        let org = format!("org_quality_{}", collection.name);
        let cookie = stack
            .add_owner(&format!("quality_{}", collection.name), &org)
            .map_err(|e| format!("an owner of {org}: {e}"))?;
        let started = Instant::now();
        write(&stack, &org, &collection)?;
        client.backfill_all(&cookie, "claims")?;
        let (done, other) = wait_embedded(&stack, &org)?;
        let embedded = started.elapsed();
        println!(
            "{}: {} documents embedded ({done} jobs done, {other} not) in {:.0} s",
            collection.name,
            collection.docs.len(),
            embedded.as_secs_f64(),
        );
        let out = runs.join(&collection.name);
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        for (mode, ordered_by) in MODES {
            let started = Instant::now();
            let run = search(&client, &cookie, &collection.queries, mode, ordered_by)?;
            let file = out.join(format!("ours-{mode}.run.json"));
            std::fs::write(&file, json!(run).to_string())
                .map_err(|e| format!("{}: {e}", file.display()))?;
            println!(
                "{}: {} queries searched in {mode} mode in {:.0} s",
                collection.name,
                collection.queries.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

/// Each mode searched, with the field of a match its order follows: a run is read as scores,
/// and only in `semantic` mode is the order that of `score`.
const MODES: [(&str, &str); 3] = [
    ("semantic", "score"),
    ("keyword", "keyword_score"),
    ("hybrid", "fused_score"),
];

/// The documents as the app's own writes to `claims`, `story_id` naming the collection.
fn write(stack: &Stack, org: &str, collection: &Collection) -> Result<(), String> {
    for chunk in collection.docs.chunks(WRITE_CHUNK) {
        let sql: String = chunk
            .iter()
            .map(|doc| story_row_sql("claims", &doc.id, org, &collection.name, &doc.text))
            .collect();
        stack
            .sql_script(&sql)
            .map_err(|e| format!("writing {}'s documents: {e}", collection.name))?;
    }
    Ok(())
}

/// Waits until no job of `org` is open; returns how many ended done and how many otherwise.
fn wait_embedded(stack: &Stack, org: &str) -> Result<(u64, u64), String> {
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let rows = stack
            .sql(&format!(
                "SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'processing')) AS open,
                     COUNT(*) FILTER (WHERE status = 'done') AS done, COUNT(*) AS jobs
                 FROM embedding_jobs WHERE organization_id = '{org}'"
            ))
            .map_err(|e| format!("reading {org}'s jobs: {e}"))?;
        let count = |name: &str| rows.first().and_then(|row| row[name].as_u64()).unwrap_or(0);
        if count("jobs") > 0 && count("open") == 0 {
            return Ok((count("done"), count("jobs") - count("done")));
        }
        if started.elapsed() > EMBED_TIMEOUT {
            return Err(format!("{org}'s backfill still had jobs open: {rows:?}"));
        }
    }
}

/// Every query searched in `mode`, as a run: its matches' `ordered_by` field by document.
fn search(
    client: &Client,
    cookie: &str,
    queries: &[Text],
    mode: &str,
    ordered_by: &str,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>, String> {
    let path = format!("/api/v1/embeddings/search/{SERVICE}");
    let mut run = BTreeMap::new();
    for query in queries {
        let body = json!({ "text": query.text, "limit": LIMIT, "mode": mode }).to_string();
        let reply = loop {
            let reply = client
                .post(&path, Some(cookie), &body)
                .map_err(|e| format!("searching {}: {e}", query.id))?;
            if reply.status != 429 {
                break reply;
            }
            // Past the organization's search rate: wait a second, then ask again.
            std::thread::sleep(Duration::from_secs(1));
        };
        if reply.status != 200 {
            return Err(format!(
                "searching {} answered {} {}",
                query.id, reply.status, reply.body
            ));
        }
        let matches: BTreeMap<String, f64> = reply
            .body
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|m: &Value| Some((m["id"].as_str()?.to_owned(), m[ordered_by].as_f64()?)))
            .collect();
        run.insert(query.id.clone(), matches);
    }
    Ok(run)
}
