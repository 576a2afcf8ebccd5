//! What a run prints: the table of every backend and size, and the targets as summary lines.

use e2e::bench::table_header;
use e2e::verdict::{summary, Bound};

use crate::{Row, CHECKED};

/// The table: a line for each backend and size.
pub(crate) fn print_table(rows: &[Row]) {
    table_header(&[
        "backend",
        "vectors",
        "dims",
        "cold first search ms",
        "search p50 ms",
        "search p99 ms",
        "local-ai alone p50 ms",
        "gateway floor p50 ms",
        "via the example app p50 ms",
        "via the example app p99 ms",
        "same text again p50 ms",
        "platform floor p50 ms: new text, local-ai, same text",
        "native scan p50 ms",
        "native scan p99 ms",
        "top-10 identical",
        "vector cache MB",
    ]);
    for r in rows {
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
}

/// The targets of the D1 backend at 10,000 vectors, and the figures at 50,000 and on the
/// Vectorize stand-in, as summary lines.
pub(crate) fn print_targets(rows: &[Row]) {
    if let Some(r) = rows
        .iter()
        .find(|r| r.backend.index.is_none() && r.vectors == 10_000)
    {
        print_d1_targets(r);
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r.backend.index.is_none() && r.vectors == 50_000)
    {
        summary(
            "search p50 / p99 through the gateway, 50,000 vectors, 384 dims (D1 backend)",
            format!("{:.1} / {:.1} ms", r.p50, r.p99),
            "(no target)",
            "-",
        );
        summary(
            "the isolate's copy of 50,000 vectors of 384 dims (search-worker's vector cache)",
            format!("{:.1} MB", r.cache_bytes as f64 / f64::from(1 << 20)),
            "(no target; the isolate has 128 MB)",
            "-",
        );
        summary(
            "first search of an organization, 50,000 vectors (D1 backend, 40,000 of them new)",
            format!("{:.0} ms", r.cold_ms),
            "(no target)",
            "-",
        );
    }
    if let Some(r) = rows
        .iter()
        .find(|r| r.backend.index.is_some() && r.vectors == 10_000)
    {
        summary(
            "search p50 through the gateway, Vectorize stand-in, 10,000 vectors, 768 dims",
            format!("{:.1} ms", r.p50),
            "(no target)",
            "-",
        );
    }
}

/// The targets of the D1 backend at 10,000 vectors (`r`), and the figures beside them.
fn print_d1_targets(r: &Row) {
    let (p50, p99) = (Bound::AtMost(25.0), Bound::AtMost(60.0));
    println!(
        "\ntarget at 10,000 (D1 backend): p50 <= 25 ms ({}), p99 <= 60 ms ({})",
        p50.verdict(r.p50),
        p99.verdict(r.p99)
    );
    summary(
        "search p50 through the gateway, 10,000 vectors, 384 dims",
        format!("{} ms", p50.shown(r.p50, 1)),
        "<= 25 ms",
        p50.verdict(r.p50),
    );
    summary(
        "search p99 through the gateway, 10,000 vectors, 384 dims",
        format!("{} ms", p99.shown(r.p99, 1)),
        "<= 60 ms",
        p99.verdict(r.p99),
    );
    summary(
        "search p50 / p99 through the example app (RPC, TypeScript client), 10,000 vectors, 384 dims",
        format!("{:.1} / {:.1} ms", r.app_p50, r.app_p99),
        "(no target)",
        "-",
    );
    let (overhead, within) = (r.p50 - r.ai_p50, Bound::AtMost(5.0));
    summary(
        format!(
            "search overhead, 10,000 vectors: gateway p50 - local-ai p50 for the same texts ({:.2} - {:.2})",
            r.p50,
            r.ai_p50
        ),
        format!("{} ms", within.shown(overhead, 1)),
        "<= 5 ms",
        within.verdict(overhead),
    );
    summary(
        "any authenticated request through the local wrangler dev (the table list), p50, beside the searches",
        format!("{:.1} ms", r.floor_p50),
        "(no target)",
        "-",
    );
    let platform = r.platform_p50 - r.platform_ai_p50;
    summary(
        format!(
            "the platform's floor of that overhead: a minimal JavaScript gateway and search worker (RPC, the catch-up's D1 batch, the REST call to local-ai), p50 - local-ai p50 for its texts ({:.2} - {:.2})",
            r.platform_p50,
            r.platform_ai_p50
        ),
        format!("{platform:.1} ms"),
        "(no target)",
        "-",
    );
    summary(
        "search overhead above the platform's floor, 10,000 vectors",
        format!("{:.1} ms", overhead - platform),
        "(no target)",
        "-",
    );
    summary(
        "search p50, the same text again, 10,000 vectors",
        format!("{} ms", within.shown(r.cached_p50, 1)),
        "<= 5 ms",
        within.verdict(r.cached_p50),
    );
    summary(
        "the platform's floor of the same text again: the minimal pair's D1 batch alone, p50",
        format!("{:.1} ms", r.platform_same_p50),
        "(no target)",
        "-",
    );
    summary(
        "the same text again above the platform's floor, 10,000 vectors",
        format!("{:.1} ms", r.cached_p50 - r.platform_same_p50),
        "(no target)",
        "-",
    );
    summary(
        format!(
            "wrangler dev CPU per request, 10,000 vectors: the same text again ({:.2} ms) less the table list ({:.2} ms)",
            r.cached_cpu_ms,
            r.floor_cpu_ms
        ),
        format!("{:.2} ms", r.cached_cpu_ms - r.floor_cpu_ms),
        "(no target)",
        "-",
    );
    summary(
        "first search after 9,000 new rows on 1,000 cached, 10,000 vectors (D1 backend)",
        format!("{:.0} ms", r.cold_ms),
        "(no target)",
        "-",
    );
}
