//! `scripts/bench search`: search latency through the gateway on both backends, against a native
//! brute-force scan of the same vectors, side by side in one run.
//!
//! For 1,000, then 10,000 (and on D1 50,000) vectors of one organization, on each backend (the `notes` table: D1
//! backend, 384 dimensions; the `evidence` table: Vectorize, here the local stand-in, 768
//! dimensions), it writes the vectors into the real stack (D1's rows, and for Vectorize the index
//! through its REST API, as a backfill would leave them), warms search-worker with one search,
//! then times searches of distinct texts (each embedded by local-ai) and of one text again (the
//! query cache), through `POST /api/v1/embeddings/search/{service}`. The floor is `shared::topk`
//! scanning the same vectors natively for the same query vectors; the top ten of both must be the
//! same records. Targets (D1 backend) at 10,000: p50 <= 25 ms, p99 <= 60 ms; overhead (search
//! p50 minus local-ai's own p50 for the same texts, each called directly right after its
//! search) <= 5 ms; the same text again p50 <= 5 ms; the first search of an organization
//! <= 100 ms, the median of the first searches of five new organizations of 10,000 vectors
//! each, each by a member whose session is read for it (`bench-search first`: those alone).
//! Beside the same text again it times an authenticated request search-worker takes no part in
//! (the table list), and counts the CPU time `wrangler dev` spends per request of each.
//!
//! After the searches of each kind it times as many of the platform's floor of them
//! (`bench/floor/`, in a `wrangler dev` of its own): a minimal JavaScript gateway that calls a
//! minimal search worker over RPC, which makes search-worker's D1 batch of every search (the
//! catch-up's two reads; every row, for a first search) and, for a new text, its REST call to
//! local-ai, and scores nothing. No search through `wrangler dev` here can take less; the bench
//! prints how far above it the real path is.
//!
//! Beside each gateway search it times one through the example app (`example-app/`,
//! `POST /app/search/{service}`, better-auth's session and `d1-embeddings-client` over RPC), with
//! texts of its own so that neither path answers from the other's query cache: the same
//! search-worker method reached by the gateway's Rust client and by the TypeScript client.

// Counts and millisecond figures are far inside f64's exact range.
#![allow(clippy::cast_precision_loss)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use e2e::seed::{random_unit_vectors, VectorRow};
use e2e::verdict::{said, Bound};
use e2e::{Client, Floor, Options, Stack};
use serde_json::json;
use shared::topk::{normalized, top_k};

const SEARCHES: usize = 200;
/// Requests of the table list, and searches of one text again, timed (and their CPU counted).
const REPEATS: usize = 100;
/// Organizations whose first search is timed with nothing of theirs cached, each over 10,000
/// vectors: the figure is their median, since a single first search moves most.
const COLD_ORGANIZATIONS: usize = 5;
/// The organization whose table is searched: `ann`'s.
const ORGANIZATION: &str = "org_a";
const CHECKED: usize = 20;
const LIMIT: usize = 10;

/// A backend and the table benchmarked on it.
#[derive(Debug, Clone, Copy)]
struct Backend {
    name: &'static str,
    table: &'static str,
    service: &'static str,
    model: &'static str,
    dims: usize,
    metadata_field: &'static str,
    /// The Vectorize index and its binding, for a table kept in Vectorize.
    index: Option<(&'static str, &'static str)>,
    /// How many vectors the organization holds in each run, in order.
    sizes: &'static [usize],
}

const BACKENDS: [Backend; 2] = [
    Backend {
        name: "D1",
        table: "notes",
        service: "noteSearch",
        model: "@cf/baai/bge-small-en-v1.5",
        dims: 384,
        metadata_field: "topic",
        index: None,
        sizes: &[1_000, 10_000, 50_000],
    },
    Backend {
        name: "Vectorize (stand-in)",
        table: "evidence",
        service: "evidenceSearch",
        model: "@cf/baai/bge-base-en-v1.5",
        dims: 768,
        metadata_field: "story_id",
        index: Some(("embeddings-768", "VECTORIZE_768")),
        sizes: &[1_000, 10_000],
    },
];

struct Row {
    backend: Backend,
    vectors: usize,
    cold_ms: f64,
    p50: f64,
    p99: f64,
    app_p50: f64,
    app_p99: f64,
    /// local-ai's own p50 for the same texts, each called directly beside its search: the
    /// model's share of a search.
    ai_p50: f64,
    /// The platform's floor of a search of a new text (`bench/floor/`), p50, and local-ai's own
    /// p50 for its texts, each called right after it, as for the searches.
    platform_p50: f64,
    platform_ai_p50: f64,
    /// The platform's floor of the same text again: the minimal pair's D1 batch alone, p50.
    platform_same_p50: f64,
    cached_p50: f64,
    native_p50: f64,
    native_p99: f64,
    identical: usize,
    /// An authenticated request the gateway answers without search-worker (the table list),
    /// timed beside the searches: what any request costs through the local `wrangler dev`.
    floor_p50: f64,
    /// CPU time of `wrangler dev` (the runtime with the three workers and D1, and its proxy) per
    /// request: for the table list, and for a search of the same text again.
    floor_cpu_ms: f64,
    cached_cpu_ms: f64,
    /// What search-worker's vector cache holds afterwards (its `/health`, through the gateway,
    /// for an owner): the snapshot of the organization's table on the D1 backend.
    cache_bytes: u64,
}

fn main() {
    let options = Options {
        example_app: true,
        floor: Some(Floor::Search),
        ..Options::default()
    };
    let stack = match Stack::start(options) {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("could not start the local stack: {e}");
            std::process::exit(1);
        }
    };
    let d1 = BACKENDS[0];
    if std::env::args().nth(1).as_deref() == Some("first") {
        print_cold(&first_searches_or_exit(&stack, d1));
        return;
    }
    let mut rows = Vec::new();
    for backend in BACKENDS {
        let mut vectors: Vec<Vec<f32>> = Vec::new();
        for &total in backend.sizes {
            match run(&stack, backend, &mut vectors, total) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    eprintln!(
                        "bench search ({}, {total} vectors) failed: {e}",
                        backend.name
                    );
                    std::process::exit(1);
                }
            }
        }
    }
    let key_uses = key_uses(&stack).unwrap_or_else(|e| {
        eprintln!("bench search (an API key's uses) failed: {e}");
        std::process::exit(1);
    });
    // Last: the new organizations' copies would count in the cache figures above.
    let cold = first_searches_or_exit(&stack, d1);
    println!();
    println!("| backend | vectors | dims | cold first search ms | search p50 ms | search p99 ms | local-ai alone p50 ms | gateway floor p50 ms | via the example app p50 ms | via the example app p99 ms | same text again p50 ms | platform floor p50 ms: new text, local-ai, same text | native scan p50 ms | native scan p99 ms | top-10 identical | vector cache MB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}, {:.1}, {:.1} | {:.2} | {:.2} | {}/{CHECKED} | {} |",
            r.backend.name,
            r.vectors,
            r.backend.dims,
            r.cold_ms,
            r.p50,
            r.p99,
            r.ai_p50,
            r.floor_p50,
            r.app_p50,
            r.app_p99,
            r.cached_p50,
            r.platform_p50,
            r.platform_ai_p50,
            r.platform_same_p50,
            r.native_p50,
            r.native_p99,
            r.identical,
            // Vectorize keeps no copy in the isolate: the cache then holds only D1's tables.
            if r.backend.index.is_none() {
                format!("{:.1}", r.cache_bytes as f64 / f64::from(1 << 20))
            } else {
                "-".to_owned()
            }
        );
    }
    print_cold(&cold);
    print_targets(&rows);
    key_uses.print();
    let identical: usize = rows.iter().map(|r| r.identical).sum();
    let checked = rows.len() * CHECKED;
    println!(
        "summary|search top-10 identical to a native brute-force scan, both backends|{identical}/{checked}|all|{}",
        said(identical == checked)
    );
}

/// Requests made with one API key, and how many times its `last_used_at` was written meanwhile.
struct KeyUses {
    requests: usize,
    elapsed: Duration,
    writes: usize,
}

impl KeyUses {
    /// At most one write a minute per key: one for each minute begun since the first use.
    fn print(&self) {
        let allowed = self.elapsed.as_secs() / 60 + 1;
        println!(
            "summary|an API key's last_used_at writes over {} requests with it in {:.1} s (its lastUsedAt read after each)|{}|<= 1 a minute per key: {allowed}|{}",
            self.requests,
            self.elapsed.as_secs_f64(),
            self.writes,
            said(self.writes as u64 <= allowed)
        );
    }
}

/// A new API key of ann's organization used for [`REPEATS`] requests (the table list), its
/// `lastUsedAt` read through the key list after each: every distinct value is a write.
fn key_uses(stack: &Stack) -> Result<KeyUses, Box<dyn std::error::Error>> {
    let gateway = stack.client();
    let cookie = stack.tenant("ann").cookie;
    let created = gateway.post(
        "/api/v1/api-keys",
        Some(&cookie),
        &json!({"name": "bench", "role": "member"}).to_string(),
    )?;
    if created.status != 201 {
        return Err(format!(
            "creating a key answered {} {}",
            created.status, created.body
        )
        .into());
    }
    let bearer = format!("Bearer {}", created.body["key"].as_str().ok_or("no key")?);
    let id = created.body["id"].clone();
    let mut written: Vec<serde_json::Value> = Vec::new();
    let started = Instant::now();
    for _ in 0..REPEATS {
        let reply = gateway.call(
            "GET",
            "/api/v1/embeddings/tables",
            &[("authorization", &bearer)],
            None,
        )?;
        if reply.status != 200 {
            return Err(format!("a request with the key answered {}", reply.status).into());
        }
        let listed = gateway.get("/api/v1/api-keys", Some(&cookie))?;
        let last_used = listed.body["keys"]
            .as_array()
            .and_then(|keys| keys.iter().find(|k| k["id"] == id))
            .map(|k| k["lastUsedAt"].clone())
            .ok_or("the key list lacks the key")?;
        if last_used.is_null() {
            return Err("a used key shows no lastUsedAt".into());
        }
        if !written.contains(&last_used) {
            written.push(last_used);
        }
    }
    Ok(KeyUses {
        requests: REPEATS,
        elapsed: started.elapsed(),
        writes: written.len(),
    })
}

/// [`cold_first_searches`] of 10,000 vectors; on a failure, the process ends.
fn first_searches_or_exit(stack: &Stack, backend: Backend) -> FirstSearches {
    let vectors = random_unit_vectors(10_007, 10_000, backend.dims);
    cold_first_searches(stack, backend, &vectors).unwrap_or_else(|e| {
        eprintln!("bench search (first searches) failed: {e}");
        std::process::exit(1);
    })
}

/// The first searches of new organizations, in ms, sorted, and the platform's floor of each.
struct FirstSearches {
    times: Vec<f64>,
    on_floor: Vec<f64>,
}

/// The first search of each of [`COLD_ORGANIZATIONS`] new organizations, once `vectors` are
/// written as its records of `backend`'s table. Each is the search that finds nothing of its
/// organization's table in search-worker's cache: it reads it whole. After each, the platform's
/// floor reads the same rows (then in D1's cache, as they were for the search: the floor stays
/// a floor) beside the model's call for a text of its own.
fn cold_first_searches(
    stack: &Stack,
    backend: Backend,
    vectors: &[Vec<f32>],
) -> Result<FirstSearches, Box<dyn std::error::Error>> {
    let gateway = stack.client();
    let platform = Platform::of(stack, backend)?;
    let mut times = Vec::with_capacity(COLD_ORGANIZATIONS);
    let mut on_floor = Vec::with_capacity(COLD_ORGANIZATIONS);
    for k in 0..COLD_ORGANIZATIONS {
        let org = format!("org_cold_{k}");
        let owner = stack.add_owner(&format!("cold_{k}"), &org)?;
        let member = stack.add_member(&format!("cold_{k}_member"), &org, "member")?;
        seed(stack, &org, backend, vectors, 0)?;
        // The seed wrote D1 from another process (`wrangler d1 execute`), and the local D1's first
        // read after that pays for it: a session read took 16 ms there, 1 to 2 ms later. The
        // owner's request pays it, untimed; the member's first search is then the
        // organization's first, with a session read of its own, as a user's would be.
        let reply = gateway.get("/api/v1/embeddings/tables", Some(&owner))?;
        if reply.status != 200 {
            return Err(format!("the table list answered {} {}", reply.status, reply.body).into());
        }
        let (ms, ids) = timed_search(&gateway, backend, &member, &format!("first of {org}"))?;
        if ids.len() != LIMIT {
            return Err(format!("the first search of {org} found {} records", ids.len()).into());
        }
        times.push(ms);
        on_floor.push(platform.timed(
            &org,
            Some(vectors.len()),
            Some(&format!("first of {org} (floor)")),
        )?);
    }
    times.sort_by(f64::total_cmp);
    on_floor.sort_by(f64::total_cmp);
    eprintln!(
        "    first searches of {COLD_ORGANIZATIONS} organizations: {times:.0?} ms, on the platform's floor {on_floor:.0?} ms"
    );
    Ok(FirstSearches { times, on_floor })
}

/// The first searches' figures, as summary lines.
fn print_cold(first: &FirstSearches) {
    let times = &first.times;
    if times.is_empty() {
        return;
    }
    let median = percentile(times, 50);
    let within = Bound::AtMost(100.0);
    println!(
        "summary|first search of an organization, 10,000 vectors, nothing cached (D1 backend; median of {}, {:.0} to {:.0} ms)|{} ms|<= 100 ms|{}",
        times.len(),
        times[0],
        times[times.len() - 1],
        within.shown(median, 0),
        within.verdict(median)
    );
    println!(
        "summary|the platform's floor of that first search: the minimal pair's read of the same 10,000 rows (unparsed) beside the model's call, median of {}|{:.0} ms|(no target)|-",
        first.on_floor.len(),
        percentile(&first.on_floor, 50)
    );
}

/// The targets of the D1 backend at 10,000 vectors, and the Vectorize figure, as summary lines.
fn print_targets(rows: &[Row]) {
    if let Some(r) = rows
        .iter()
        .find(|r| r.backend.index.is_none() && r.vectors == 10_000)
    {
        let (p50, p99) = (Bound::AtMost(25.0), Bound::AtMost(60.0));
        println!(
            "\ntarget at 10,000 (D1 backend): p50 <= 25 ms ({}), p99 <= 60 ms ({})",
            p50.verdict(r.p50),
            p99.verdict(r.p99)
        );
        println!(
            "summary|search p50 through the gateway, 10,000 vectors, 384 dims|{} ms|<= 25 ms|{}",
            p50.shown(r.p50, 1),
            p50.verdict(r.p50)
        );
        println!(
            "summary|search p99 through the gateway, 10,000 vectors, 384 dims|{} ms|<= 60 ms|{}",
            p99.shown(r.p99, 1),
            p99.verdict(r.p99)
        );
        println!(
            "summary|search p50 / p99 through the example app (RPC, TypeScript client), 10,000 vectors, 384 dims|{:.1} / {:.1} ms|(no target)|-",
            r.app_p50, r.app_p99
        );
        let (overhead, within) = (r.p50 - r.ai_p50, Bound::AtMost(5.0));
        println!(
            "summary|search overhead, 10,000 vectors: gateway p50 - local-ai p50 for the same texts ({:.2} - {:.2})|{} ms|<= 5 ms|{}",
            r.p50,
            r.ai_p50,
            within.shown(overhead, 1),
            within.verdict(overhead)
        );
        println!(
            "summary|any authenticated request through the local wrangler dev (the table list), p50, beside the searches|{:.1} ms|(no target)|-",
            r.floor_p50
        );
        let platform = r.platform_p50 - r.platform_ai_p50;
        println!(
            "summary|the platform's floor of that overhead: a minimal JavaScript gateway and search worker (RPC, the catch-up's D1 batch, the REST call to local-ai), p50 - local-ai p50 for its texts ({:.2} - {:.2})|{:.1} ms|(no target)|-",
            r.platform_p50, r.platform_ai_p50, platform
        );
        println!(
            "summary|search overhead above the platform's floor, 10,000 vectors|{:.1} ms|(no target)|-",
            overhead - platform
        );
        println!(
            "summary|search p50, the same text again, 10,000 vectors|{} ms|<= 5 ms|{}",
            within.shown(r.cached_p50, 1),
            within.verdict(r.cached_p50)
        );
        println!(
            "summary|the platform's floor of the same text again: the minimal pair's D1 batch alone, p50|{:.1} ms|(no target)|-",
            r.platform_same_p50
        );
        println!(
            "summary|the same text again above the platform's floor, 10,000 vectors|{:.1} ms|(no target)|-",
            r.cached_p50 - r.platform_same_p50
        );
        println!(
            "summary|wrangler dev CPU per request, 10,000 vectors: the same text again ({:.2} ms) less the table list ({:.2} ms)|{:.2} ms|(no target)|-",
            r.cached_cpu_ms,
            r.floor_cpu_ms,
            r.cached_cpu_ms - r.floor_cpu_ms
        );
        println!(
            "summary|first search after 9,000 new rows on 1,000 cached, 10,000 vectors (D1 backend)|{:.0} ms|(no target)|-",
            r.cold_ms,
        );
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r.backend.index.is_none() && r.vectors == 50_000)
    {
        println!(
            "summary|search p50 / p99 through the gateway, 50,000 vectors, 384 dims (D1 backend)|{:.1} / {:.1} ms|(no target)|-",
            r.p50, r.p99
        );
        println!(
            "summary|the isolate's copy of 50,000 vectors of 384 dims (search-worker's vector cache)|{:.1} MB|(no target; the isolate has 128 MB)|-",
            r.cache_bytes as f64 / f64::from(1 << 20)
        );
        println!(
            "summary|first search of an organization, 50,000 vectors (D1 backend, 40,000 of them new)|{:.0} ms|(no target)|-",
            r.cold_ms
        );
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r.backend.index.is_some() && r.vectors == 10_000)
    {
        println!(
            "summary|search p50 through the gateway, Vectorize stand-in, 10,000 vectors, 768 dims|{:.1} ms|(no target)|-",
            r.p50
        );
    }
}

/// Writes vectors `from..` of `vectors` as `org`'s records of the backend's table: D1's rows,
/// and for Vectorize the index too, as the consumer leaves them.
fn seed(
    stack: &Stack,
    org: &str,
    backend: Backend,
    vectors: &[Vec<f32>],
    from: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let location = location(backend);
    let (table, model, field) = (backend.table, backend.model, backend.metadata_field);
    let mut sql = String::new();
    let mut ndjson = String::new();
    for (i, vector) in vectors.iter().enumerate().skip(from) {
        let value = ["city", "weather", "crime", "sport"][i % 4];
        let record = format!("rec_{i:05}");
        let metadata = json!({ field: value }).to_string();
        let row = VectorRow {
            organization_id: org,
            table,
            model,
            location: &location,
            record_id: &record,
            vector: Some(vector),
            // The D1 backend's search copy, as the consumer writes it.
            codes: backend.index.is_none(),
            metadata: &metadata,
            seq: i as u64 + 1,
        };
        let _ = writeln!(sql, "{}", row.upsert_sql());
        let _ = writeln!(
            ndjson,
            "{}",
            json!({
                "id": format!("{org}:{table}:rec_{i:05}"),
                "values": vector,
                "namespace": org,
                "metadata": {field: value, "table": table, "recordId": format!("rec_{i:05}"), "organizationId": org},
            })
        );
    }
    stack.sql_script(&sql)?;
    if let Some((index, _)) = backend.index {
        let stand_in = Client::new(&stack.local_vectorize_url);
        for chunk in ndjson.lines().collect::<Vec<_>>().chunks(1000) {
            let reply = stand_in.call(
                "POST",
                &format!("/client/v4/accounts/local/vectorize/v2/indexes/{index}/upsert"),
                &[("content-type", "application/x-ndjson")],
                Some(&chunk.join("\n")),
            )?;
            if reply.status != 200 {
                return Err(format!("upsert answered {} {}", reply.status, reply.body).into());
            }
        }
        wait_visible(&stand_in)?;
    }
    Ok(())
}

/// Where the backend's vectors are, as `embedding_vectors.location` names it.
fn location(backend: Backend) -> String {
    backend.index.map_or_else(
        || "d1".to_owned(),
        |(_, binding)| format!("vectorize:{binding}"),
    )
}

/// Until the stand-in has applied every write it accepted.
fn wait_visible(stand_in: &Client) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_mins(2) {
        let stats = stand_in.get("/stats", None)?.body;
        let pending: u64 = stats["indexes"].as_object().map_or(0, |indexes| {
            indexes
                .values()
                .filter_map(|i| i["pendingMutations"].as_u64())
                .sum()
        });
        if pending == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the Vectorize stand-in did not apply its writes within 2 minutes".into())
}

/// The `percent`th percentile of `timings`, in any order (nearest rank).
fn percentile(timings: &[f64], percent: usize) -> f64 {
    let mut sorted = timings.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) * percent + 50) / 100;
    sorted[rank.min(sorted.len() - 1)]
}

fn timed_search(
    gateway: &Client,
    backend: Backend,
    cookie: &str,
    text: &str,
) -> Result<(f64, Vec<String>), Box<dyn std::error::Error>> {
    let path = format!("/api/v1/embeddings/search/{}", backend.service);
    timed_post(gateway, &path, cookie, text)
}

/// The same search through the example app's route.
fn timed_app_search(
    app: &Client,
    backend: Backend,
    cookie: &str,
    text: &str,
) -> Result<(f64, Vec<String>), Box<dyn std::error::Error>> {
    timed_post(
        app,
        &format!("/app/search/{}", backend.service),
        cookie,
        text,
    )
}

fn timed_post(
    client: &Client,
    path: &str,
    cookie: &str,
    text: &str,
) -> Result<(f64, Vec<String>), Box<dyn std::error::Error>> {
    let body = json!({"text": text, "limit": LIMIT}).to_string();
    let started = Instant::now();
    let reply = client.post(path, Some(cookie), &body)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if reply.status != 200 {
        return Err(format!("search answered {} {}", reply.status, reply.body).into());
    }
    let ids = reply
        .body
        .as_array()
        .ok_or("a search answers an array")?
        .iter()
        .filter_map(|m| m["id"].as_str().map(str::to_owned))
        .collect();
    Ok((ms, ids))
}

/// The model's own share of a search: the same text, straight to local-ai as search-worker
/// sends it. Timed beside each search rather than in a run of its own: called one after
/// another, local-ai answered about 2 ms faster at the median (9.0 and 8.4 ms, against 10.8
/// and 10.3 ms alternating with table lists, 2026-12-04) than called between other requests,
/// as a search calls it, and that flattered the model's share.
fn local_ai_latency(
    local_ai: &Client,
    backend: Backend,
    text: &str,
) -> Result<f64, Box<dyn std::error::Error>> {
    let started = Instant::now();
    let reply = local_ai.post(
        &format!("/client/v4/accounts/local/ai/run/{}", backend.model),
        None,
        &json!({"text": [text]}).to_string(),
    )?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if reply.status != 200 {
        return Err(format!("local-ai answered {} {}", reply.status, reply.body).into());
    }
    Ok(ms)
}

/// The platform's floor of a search of one backend's table (`bench/floor/`).
struct Platform<'a> {
    client: Client,
    stack: &'a Stack,
    backend: Backend,
}

impl<'a> Platform<'a> {
    fn of(stack: &'a Stack, backend: Backend) -> Result<Self, Box<dyn std::error::Error>> {
        let url = stack
            .floor_url
            .as_deref()
            .ok_or("the stack runs without the platform's floor")?;
        Ok(Platform {
            client: Client::new(url),
            stack,
            backend,
        })
    }

    /// One search of `organization`'s table on the floor, timed: of `text` new, with the model's
    /// call, or (`None`) of the same text again, without it; reading the rows after the copy's
    /// last `seq` (none), or (`whole`: how many) every row, as a first search does. Its answer
    /// is checked: those rows, and a vector of the table's dimensions when embedded.
    fn timed(
        &self,
        organization: &str,
        whole: Option<usize>,
        text: Option<&str>,
    ) -> Result<f64, Box<dyn std::error::Error>> {
        let body = json!({
            "organizationId": organization,
            "table": self.backend.table,
            "model": self.backend.model,
            "location": location(self.backend),
            "after": whole.map(|_| 0),
            "aiUrl": self.stack.local_ai_url,
            "embed": text,
        })
        .to_string();
        let started = Instant::now();
        let reply = self.client.post("/", None, &body)?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let dims = if text.is_some() { self.backend.dims } else { 0 };
        if reply.status != 200
            || reply.body["rows"].as_u64() != Some(whole.unwrap_or(0) as u64)
            || reply.body["dims"].as_u64() != Some(dims as u64)
        {
            return Err(format!(
                "the platform's floor answered {} {}",
                reply.status, reply.body
            )
            .into());
        }
        Ok(ms)
    }
}

/// [`REPEATS`] searches of `text` again (which the warm searches made), timed, the CPU time
/// `wrangler dev` spent per search, then as many of the platform's floor of it, one after
/// another as the searches were.
fn same_text_again(
    gateway: &Client,
    cookie: &str,
    text: &str,
    platform: &Platform<'_>,
) -> Result<Repeated, Box<dyn std::error::Error>> {
    let (timings, cpu_ms) = with_cpu(platform.stack, || {
        (0..REPEATS)
            .map(|_| Ok(timed_search(gateway, platform.backend, cookie, text)?.0))
            .collect()
    })?;
    let on_floor = (0..REPEATS)
        .map(|_| platform.timed(ORGANIZATION, None, None))
        .collect::<Result<_, _>>()?;
    Ok(Repeated {
        timings,
        cpu_ms,
        on_floor,
    })
}

/// [`same_text_again`]'s timings.
struct Repeated {
    timings: Vec<f64>,
    cpu_ms: f64,
    on_floor: Vec<f64>,
}

/// [`REPEATS`] timings of an authenticated request that search-worker takes no part in (the
/// table list).
fn floor(gateway: &Client, cookie: &str) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut floor = Vec::with_capacity(REPEATS);
    for _ in 0..REPEATS {
        let started = Instant::now();
        let reply = gateway.get("/api/v1/embeddings/tables", Some(cookie))?;
        floor.push(started.elapsed().as_secs_f64() * 1000.0);
        if reply.status != 200 {
            return Err(format!("the table list answered {} {}", reply.status, reply.body).into());
        }
    }
    Ok(floor)
}

/// The timings of `requests` (one a request), and the CPU time `wrangler dev` spent per request
/// meanwhile, in milliseconds.
fn with_cpu(
    stack: &Stack,
    requests: impl FnOnce() -> Result<Vec<f64>, Box<dyn std::error::Error>>,
) -> Result<(Vec<f64>, f64), Box<dyn std::error::Error>> {
    let before = stack.cpu_time("wrangler-dev.log")?;
    let timings = requests()?;
    let spent = stack.cpu_time("wrangler-dev.log")?.saturating_sub(before);
    let per_request = spent.as_secs_f64() * 1000.0 / timings.len().max(1) as f64;
    Ok((timings, per_request))
}

/// The bytes search-worker's vector cache holds, from its `/health` as an owner sees it.
fn cache_bytes(gateway: &Client, cookie: &str) -> Result<u64, Box<dyn std::error::Error>> {
    let health = gateway.get("/api/v1/health", Some(cookie))?.body;
    Ok(health["search"]["detail"]["caches"]["vectors"]["bytes"]
        .as_u64()
        .ok_or_else(|| format!("search-worker's health shows no vector cache: {health}"))?)
}

/// The native floor of a search, and the check: the first [`CHECKED`] texts' query vectors
/// (from the gateway) scanned natively over `vectors`, timed; and how many of those top 10s
/// are the ones the searches found (`results`, in the order of `texts`).
fn scanned_natively(
    gateway: &Client,
    cookie: &str,
    backend: Backend,
    vectors: &[Vec<f32>],
    texts: &[String],
    results: &[Vec<String>],
) -> Result<(Vec<f64>, usize), Box<dyn std::error::Error>> {
    let mut native = Vec::with_capacity(CHECKED);
    let mut identical = 0;
    for (text, ids) in texts.iter().zip(results).take(CHECKED) {
        let reply = gateway.post(
            "/api/v1/embeddings/embed",
            Some(cookie),
            &json!({"text": text, "service": backend.service}).to_string(),
        )?;
        let query: Vec<f32> = serde_json::from_value(reply.body["vector"].clone())?;
        let query = normalized(&query);
        let started = Instant::now();
        let best = top_k(
            &query,
            vectors.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            LIMIT,
            -1.0,
        );
        native.push(started.elapsed().as_secs_f64() * 1000.0);
        let expected: Vec<String> = best.iter().map(|(i, _)| format!("rec_{i:05}")).collect();
        if &expected == ids {
            identical += 1;
        }
    }
    Ok((native, identical))
}

fn run(
    stack: &Stack,
    backend: Backend,
    vectors: &mut Vec<Vec<f32>>,
    total: usize,
) -> Result<Row, Box<dyn std::error::Error>> {
    eprintln!("==> {}: {total} vectors", backend.name);
    let from = vectors.len();
    vectors.extend(random_unit_vectors(
        7 + total as u64,
        total - from,
        backend.dims,
    ));
    seed(stack, ORGANIZATION, backend, vectors, from)?;
    let gateway = stack.client();
    let cookie = stack.tenant("ann").cookie;
    let texts: Vec<String> = (0..SEARCHES)
        .map(|i| {
            format!(
                "Search {total}-{i}: what did the council decide about the harbour on day {}?",
                i % 30
            )
        })
        .collect();

    let app = Client::new(
        stack
            .example_app_url
            .as_deref()
            .ok_or("the stack runs without the example app")?,
    );

    let (cold_ms, _) = timed_search(&gateway, backend, &cookie, &format!("warm-up for {total}"))?;
    timed_app_search(&app, backend, &cookie, &format!("app warm-up for {total}"))?;
    let mut latencies = Vec::with_capacity(SEARCHES);
    let mut app_latencies = Vec::with_capacity(SEARCHES);
    let mut ai_latencies = Vec::with_capacity(SEARCHES);
    let mut results = Vec::with_capacity(SEARCHES);
    let local_ai = Client::new(&stack.local_ai_url);
    let platform = Platform::of(stack, backend)?;
    let (mut platform_latencies, mut platform_ai_latencies) =
        (Vec::with_capacity(SEARCHES), Vec::with_capacity(SEARCHES));
    for text in &texts {
        let (ms, ids) = timed_search(&gateway, backend, &cookie, text)?;
        latencies.push(ms);
        // Its own text: a query the gateway's search put in the cache would flatter the app.
        let (app_ms, app_ids) = timed_app_search(&app, backend, &cookie, &format!("{text} (app)"))?;
        app_latencies.push(app_ms);
        if app_ids.is_empty() {
            return Err("the example app's search found nothing".into());
        }
        results.push(ids);
        ai_latencies.push(local_ai_latency(&local_ai, backend, text)?);
    }
    // The floor in a loop of its own, not between the searches: with a request to the floor's
    // `wrangler dev` between each two, the same text again took 8.0 ms at 10,000 vectors, and
    // 7.0 in the next run with the floor's requests after the searches.
    for text in &texts {
        let floor_text = format!("{text} (floor)");
        platform_latencies.push(platform.timed(ORGANIZATION, None, Some(&floor_text))?);
        platform_ai_latencies.push(local_ai_latency(&local_ai, backend, &floor_text)?);
    }
    let (floor, floor_cpu_ms) = with_cpu(stack, || floor(&gateway, &cookie))?;
    let cache_bytes = cache_bytes(&gateway, &cookie)?;
    let again = same_text_again(&gateway, &cookie, &texts[0], &platform)?;

    let (native, identical) =
        scanned_natively(&gateway, &cookie, backend, vectors, &texts, &results)?;
    std::thread::sleep(Duration::from_millis(10));
    let row = Row {
        backend,
        vectors: total,
        cold_ms,
        p50: percentile(&latencies, 50),
        p99: percentile(&latencies, 99),
        app_p50: percentile(&app_latencies, 50),
        app_p99: percentile(&app_latencies, 99),
        ai_p50: percentile(&ai_latencies, 50),
        platform_p50: percentile(&platform_latencies, 50),
        platform_ai_p50: percentile(&platform_ai_latencies, 50),
        platform_same_p50: percentile(&again.on_floor, 50),
        cached_p50: percentile(&again.timings, 50),
        native_p50: percentile(&native, 50),
        native_p99: percentile(&native, 99),
        identical,
        floor_p50: percentile(&floor, 50),
        floor_cpu_ms,
        cached_cpu_ms: again.cpu_ms,
        cache_bytes,
    };
    eprintln!(
        "    p50 {:.1} ms, p99 {:.1} ms, native p50 {:.2} ms, identical {identical}/{CHECKED}",
        row.p50, row.p99, row.native_p50
    );
    Ok(row)
}
