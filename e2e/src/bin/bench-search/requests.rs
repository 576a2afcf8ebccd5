//! The timed requests of a run: searches through the gateway and the example app, the model's
//! call alone, the table list, and the CPU time `wrangler dev` spends on them.

use std::time::Instant;

use e2e::bench::{run_model, Error};
use e2e::{Client, Stack};
use serde_json::json;

use crate::backends::Backend;
use crate::{LIMIT, REPEATS};

/// A search of `text` through the gateway, timed in ms, and the ids it found.
pub(crate) fn timed_search(
    gateway: &Client,
    backend: Backend,
    cookie: &str,
    text: &str,
) -> Result<(f64, Vec<String>), Error> {
    let path = format!("/api/v1/embeddings/search/{}", backend.service);
    timed_post(gateway, &path, cookie, text)
}

/// The same search through the example app's route.
pub(crate) fn timed_app_search(
    app: &Client,
    backend: Backend,
    cookie: &str,
    text: &str,
) -> Result<(f64, Vec<String>), Error> {
    timed_post(
        app,
        &format!("/app/search/{}", backend.service),
        cookie,
        text,
    )
}

/// A search of `text` posted to `path`, timed in ms, and the ids it found.
fn timed_post(
    client: &Client,
    path: &str,
    cookie: &str,
    text: &str,
) -> Result<(f64, Vec<String>), Error> {
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
pub(crate) fn local_ai_latency(
    local_ai: &Client,
    backend: Backend,
    text: &str,
) -> Result<f64, Error> {
    let (ms, _) = run_model(local_ai, backend.model, &[text])?;
    Ok(ms)
}

/// [`REPEATS`] timings of an authenticated request that search-worker takes no part in (the
/// table list).
pub(crate) fn floor(gateway: &Client, cookie: &str) -> Result<Vec<f64>, Error> {
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
pub(crate) fn with_cpu(
    stack: &Stack,
    requests: impl FnOnce() -> Result<Vec<f64>, Error>,
) -> Result<(Vec<f64>, f64), Error> {
    let before = stack.cpu_time("wrangler-dev.log")?;
    let timings = requests()?;
    let spent = stack.cpu_time("wrangler-dev.log")?.saturating_sub(before);
    let per_request = spent.as_secs_f64() * 1000.0 / timings.len().max(1) as f64;
    Ok((timings, per_request))
}

/// The bytes search-worker's vector cache holds, from its `/health` as an owner sees it.
pub(crate) fn cache_bytes(gateway: &Client, cookie: &str) -> Result<u64, Error> {
    let health = gateway.get("/api/v1/health", Some(cookie))?.body;
    Ok(health["search"]["detail"]["caches"]["vectors"]["bytes"]
        .as_u64()
        .ok_or_else(|| format!("search-worker's health shows no vector cache: {health}"))?)
}
