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
//!
//! - `backends`: the two backends benchmarked, and the vectors written into each;
//! - `runs`: one run of a backend at one size, and the native scan it is checked against;
//! - `requests`: the timed requests (searches, local-ai alone, the table list);
//! - `platform`: the platform's floor of a search;
//! - `first`: the first searches of new organizations;
//! - `key_uses`: an API key's `last_used_at` writes;
//! - `modes`: the search modes (semantic, hybrid, keyword) side by side at 10,000 records;
//! - `report`: the table and the summary lines.

// Counts and millisecond figures are far inside f64's exact range.
#![allow(clippy::cast_precision_loss)]

mod backends;
mod first;
mod key_uses;
mod modes;
mod platform;
mod report;
mod requests;
mod runs;

use e2e::verdict::{said, summary};
use e2e::{Floor, Options, Stack};

use backends::{Backend, BACKENDS};
use first::{first_searches_or_exit, print_cold};
use key_uses::key_uses;
use report::{print_table, print_targets};
use runs::run;

/// Searches of distinct texts timed in each run.
pub(crate) const SEARCHES: usize = 200;
/// Requests of the table list, and searches of one text again, timed (and their CPU counted).
pub(crate) const REPEATS: usize = 100;
/// Organizations whose first search is timed with nothing of theirs cached, each over 10,000
/// vectors: the figure is their median, since a single first search moves most.
pub(crate) const COLD_ORGANIZATIONS: usize = 5;
/// The organization whose table is searched: `ann`'s.
pub(crate) const ORGANIZATION: &str = "org_a";
/// Searches whose top ten is checked against the native scan.
pub(crate) const CHECKED: usize = 20;
/// Records a search asks for.
pub(crate) const LIMIT: usize = 10;

/// One line of the table: a backend at one size.
pub(crate) struct Row {
    pub(crate) backend: Backend,
    pub(crate) vectors: usize,
    pub(crate) cold_ms: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) app_p50: f64,
    pub(crate) app_p99: f64,
    /// local-ai's own p50 for the same texts, each called directly beside its search: the
    /// model's share of a search.
    pub(crate) ai_p50: f64,
    /// The platform's floor of a search of a new text (`bench/floor/`), p50, and local-ai's own
    /// p50 for its texts, each called right after it, as for the searches.
    pub(crate) platform_p50: f64,
    pub(crate) platform_ai_p50: f64,
    /// The platform's floor of the same text again: the minimal pair's D1 batch alone, p50.
    pub(crate) platform_same_p50: f64,
    pub(crate) cached_p50: f64,
    pub(crate) native_p50: f64,
    pub(crate) native_p99: f64,
    pub(crate) identical: usize,
    /// An authenticated request the gateway answers without search-worker (the table list),
    /// timed beside the searches: what any request costs through the local `wrangler dev`.
    pub(crate) floor_p50: f64,
    /// CPU time of `wrangler dev` (the runtime with the three workers and D1, and its proxy) per
    /// request: for the table list, and for a search of the same text again.
    pub(crate) floor_cpu_ms: f64,
    pub(crate) cached_cpu_ms: f64,
    /// What search-worker's vector cache holds afterwards (its `/health`, through the gateway,
    /// for an owner): the snapshot of the organization's table on the D1 backend.
    pub(crate) cache_bytes: u64,
    /// The search modes timed side by side, at 10,000 records.
    pub(crate) modes: Option<modes::ModeLatencies>,
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
    print_table(&rows);
    print_cold(&cold);
    print_targets(&rows);
    for row in &rows {
        if let Some(latencies) = &row.modes {
            modes::print(row.backend, row.vectors, latencies);
        }
    }
    key_uses.print();
    let identical: usize = rows.iter().map(|r| r.identical).sum();
    let checked = rows.len() * CHECKED;
    summary(
        "search top-10 identical to a native brute-force scan, both backends",
        format!("{identical}/{checked}"),
        "all",
        said(identical == checked),
    );
}
