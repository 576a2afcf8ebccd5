//! One run: a backend's table at one size, searched through the gateway and the example app
//! beside the model alone and the platform's floor, and checked against a native scan.

use std::time::{Duration, Instant};

use e2e::bench::{percentile, Error};
use e2e::seed::random_unit_vectors;
use e2e::{Client, Stack};
use serde_json::json;
use shared::topk::{normalized, top_k};

use crate::backends::{seed, Backend};
use crate::platform::{same_text_again, Platform};
use crate::requests::{
    cache_bytes, floor, local_ai_latency, timed_app_search, timed_search, with_cpu,
};
use crate::{modes, Row, CHECKED, LIMIT, ORGANIZATION, SEARCHES};

/// The size at which the search modes are timed side by side.
const MODES_AT: usize = 10_000;

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
) -> Result<(Vec<f64>, usize), Error> {
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

/// The run of `backend` at `total` vectors: `vectors` grown to `total` and written, then timed.
pub(crate) fn run(
    stack: &Stack,
    backend: Backend,
    vectors: &mut Vec<Vec<f32>>,
    total: usize,
) -> Result<Row, Error> {
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
    let modes = if total == MODES_AT {
        modes::write_texts(stack, backend, 0, total)?;
        Some(modes::measure(&gateway, backend, &cookie, total)?)
    } else {
        None
    };
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
        modes,
    };
    eprintln!(
        "    p50 {:.1} ms, p99 {:.1} ms, native p50 {:.2} ms, identical {identical}/{CHECKED}",
        row.p50, row.p99, row.native_p50
    );
    Ok(row)
}
