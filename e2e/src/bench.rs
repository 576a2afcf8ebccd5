//! What the benchmark binaries share: their error type, the percentile of a run's timings, the
//! direct call to local-ai that times the model's own share of a figure, and the head of the
//! Markdown table each prints.

use std::time::Instant;

use serde_json::{json, Value};

use crate::Client;

/// A benchmark's error: it ends the run, printed.
pub type Error = Box<dyn std::error::Error>;

/// The `percent`th percentile of `timings`, in any order (nearest rank).
pub fn percentile(timings: &[f64], percent: usize) -> f64 {
    let mut sorted = timings.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() - 1) * percent + 50) / 100;
    sorted[rank.min(sorted.len() - 1)]
}

/// `texts` embedded by `model` straight through local-ai's Workers AI route, as search-worker and
/// the consumer call it: how long the call took in milliseconds (the check of its answer not
/// counted), and the answer.
pub fn run_model(
    local_ai: &Client,
    model: &str,
    texts: &[impl AsRef<str>],
) -> Result<(f64, Value), Error> {
    let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
    let started = Instant::now();
    let reply = local_ai.post(
        &format!("/client/v4/accounts/local/ai/run/{model}"),
        None,
        &json!({ "text": texts }).to_string(),
    )?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if reply.status != 200 {
        return Err(format!("local-ai answered {} {}", reply.status, reply.body).into());
    }
    Ok((ms, reply.body))
}

/// Prints a blank line, then the head of a Markdown table: its `columns`, and the rule under
/// them. Each row then prints as `| a | b | ... |`.
pub fn table_header(columns: &[&str]) {
    println!();
    println!("| {} |", columns.join(" | "));
    println!("|{}", "---|".repeat(columns.len()));
}
