//! [`QueryCache`]: the vectors of recent query texts, by organization and model, for
//! [`QUERY_TTL_MS`], so the same search again makes no AI call; within a count and a byte
//! budget, past which expired entries go, then the oldest.

use std::cell::RefCell;
use std::collections::HashMap;

use super::{least_recent, ROW_OVERHEAD};

/// How long a query text's vector is reused.
pub(crate) const QUERY_TTL_MS: i64 = 5 * 60 * 1000;
/// Query vectors kept at most; past it, expired ones go, then the oldest.
pub(crate) const QUERY_CAPACITY: usize = 1_024;
/// The query cache's budget when `SEARCH_QUERY_CACHE_MB` does not say.
pub(crate) const DEFAULT_QUERY_BUDGET: usize = 8 << 20;

/// Hits and misses of the query cache across the isolate: for the tests, never for a caller.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub size: usize,
    pub bytes: usize,
    pub budget: usize,
}

/// What one organization's live query vectors take, against the isolate's budget: its
/// `/health`. Expired entries are left out: when they go depends on others' searches.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct QueryCacheUsage {
    pub entries: usize,
    pub bytes: usize,
    pub budget_bytes: usize,
}

/// A query text's vector, and when it was made: by `(organization, model, text)`. One
/// organization's searches never answer another's from the cache, or the latency of a search
/// would tell a tenant what another searched a moment ago.
type QueryEntries = HashMap<(String, String, String), (Vec<f32>, i64)>;

/// The isolate's query vectors, every organization's apart.
#[derive(Debug)]
pub(crate) struct QueryCache {
    entries: RefCell<QueryEntries>,
    stats: RefCell<QueryCacheStats>,
}

impl Default for QueryCache {
    fn default() -> Self {
        QueryCache {
            entries: RefCell::default(),
            stats: RefCell::new(QueryCacheStats {
                budget: DEFAULT_QUERY_BUDGET,
                ..QueryCacheStats::default()
            }),
        }
    }
}

/// What an entry holds: its key's texts and its vector.
pub(super) fn entry_bytes(key: &(String, String, String), vector: &[f32]) -> usize {
    key.0.len() + key.1.len() + key.2.len() + vector.len() * 4 + ROW_OVERHEAD
}

impl QueryCache {
    pub(crate) fn set_budget(&self, bytes: usize) {
        self.stats.borrow_mut().budget = bytes;
    }

    pub(crate) fn get(
        &self,
        organization_id: &str,
        model: &str,
        text: &str,
        now_ms: i64,
    ) -> Option<Vec<f32>> {
        let entries = self.entries.borrow();
        let hit = entries
            .get(&key(organization_id, model, text))
            .filter(|(_, at)| now_ms - at < QUERY_TTL_MS)
            .map(|(v, _)| v.clone());
        let mut stats = self.stats.borrow_mut();
        if hit.is_some() {
            stats.hits += 1;
        } else {
            stats.misses += 1;
        }
        hit
    }

    pub(crate) fn put(
        &self,
        organization_id: &str,
        model: &str,
        text: &str,
        vector: Vec<f32>,
        now_ms: i64,
    ) {
        let mut entries = self.entries.borrow_mut();
        let mut stats = self.stats.borrow_mut();
        let key = key(organization_id, model, text);
        let added = entry_bytes(&key, &vector);
        if let Some((old, _)) = entries.insert(key.clone(), (vector, now_ms)) {
            stats.bytes -= entry_bytes(&key, &old);
        }
        stats.bytes += added;
        if entries.len() > QUERY_CAPACITY || stats.bytes > stats.budget {
            entries.retain(|k, (v, at)| {
                let keep = now_ms - *at < QUERY_TTL_MS;
                if !keep {
                    stats.bytes -= entry_bytes(k, v);
                }
                keep
            });
        }
        // Then the oldest, down to the count and the budget (the new entry last of all).
        while entries.len() > QUERY_CAPACITY || (stats.bytes > stats.budget && entries.len() > 1) {
            let Some(oldest) = least_recent(&entries, &key) else {
                break;
            };
            if let Some((vector, _)) = entries.remove(&oldest) {
                stats.bytes -= entry_bytes(&oldest, &vector);
            }
        }
        stats.size = entries.len();
    }

    /// What `organization_id`'s unexpired entries take at `now_ms`, and the budget.
    pub(crate) fn usage(&self, organization_id: &str, now_ms: i64) -> QueryCacheUsage {
        let entries = self.entries.borrow();
        let (count, bytes) = entries
            .iter()
            .filter(|(key, (_, at))| key.0 == organization_id && now_ms - at < QUERY_TTL_MS)
            .fold((0, 0), |(count, bytes), (key, (vector, _))| {
                (count + 1, bytes + entry_bytes(key, vector))
            });
        QueryCacheUsage {
            entries: count,
            bytes,
            budget_bytes: self.stats.borrow().budget,
        }
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> QueryCacheStats {
        *self.stats.borrow()
    }
}

/// An entry's key: the organization, the model and the text.
pub(super) fn key(organization_id: &str, model: &str, text: &str) -> (String, String, String) {
    (
        organization_id.to_owned(),
        model.to_owned(),
        text.to_owned(),
    )
}
