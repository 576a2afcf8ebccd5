//! Counters since start, served at `GET /stats`. Tests and benchmarks read them to count AI calls.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Default)]
pub struct Stats {
    calls: AtomicU64,
    texts: AtomicU64,
    tokens: AtomicU64,
    forward_passes: AtomicU64,
    batches: AtomicU64,
    truncated_texts: AtomicU64,
    errors: AtomicU64,
    injected_failures: AtomicU64,
}

/// A snapshot, as `GET /stats` returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Embedding calls received, whatever their outcome.
    pub calls: u64,
    /// Texts embedded.
    pub texts: u64,
    /// Tokens read (padding not counted).
    pub tokens: u64,
    /// Forward passes run (a batch is split into passes of like-length texts, one per core).
    pub forward_passes: u64,
    /// Groups of requests gathered in one batching window; calls that arrive together share one.
    pub batches: u64,
    pub truncated_texts: u64,
    /// Calls answered with an error, injected ones included.
    pub errors: u64,
    pub injected_failures: u64,
}

fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
}

impl Stats {
    pub fn call(&self) {
        add(&self.calls, 1);
    }
    pub fn error(&self) {
        add(&self.errors, 1);
    }
    /// An injected failure; the call also counts in `errors`, as every non-2xx answer does.
    pub fn injected_failure(&self) {
        add(&self.injected_failures, 1);
    }
    pub fn batch(&self) {
        add(&self.batches, 1);
    }
    pub fn forward_pass(&self, texts: usize, tokens: usize, truncated: usize) {
        add(&self.forward_passes, 1);
        add(&self.texts, texts);
        add(&self.tokens, tokens);
        add(&self.truncated_texts, truncated);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            calls: get(&self.calls),
            texts: get(&self.texts),
            tokens: get(&self.tokens),
            forward_passes: get(&self.forward_passes),
            batches: get(&self.batches),
            truncated_texts: get(&self.truncated_texts),
            errors: get(&self.errors),
            injected_failures: get(&self.injected_failures),
        }
    }
}
