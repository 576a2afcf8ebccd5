//! The isolate's caches, kept across requests, and what they share: the one state type a
//! method reaches them by ([`Caches`]) and the rules both caches count and evict by.
//!
//! - [`snapshot`]: one organization's table (of its active set: one model, one generation,
//!   [`snapshot_key`](active::snapshot_key)) as eight-bit codes of its normalised vectors, in one flat array, within
//!   its bound; the codes are a quarter of the exact vectors' bytes, to read from D1 and to
//!   hold, and give the shortlist a search scores exactly (`search::d1`).
//! - [`catch_up`]: what a search's catch-up brings into a snapshot: only the rows written since
//!   it last looked (every write moves a row's `seq` past all others), so it is exact and
//!   current as soon as the consumer commits, without reading 10,000 vectors each time; a
//!   deleted record arrives as a tombstone.
//! - [`exact`]: the exact vectors a snapshot holds: every one of a small table's, else the
//!   rows lately shortlisted, the first kept the first to go.
//! - [`budget`]: [`VectorCache`], every organization's snapshots within the isolate's budget.
//! - [`queries`]: [`QueryCache`], the vectors of recent query texts by model, for
//!   [`QUERY_TTL_MS`](queries::QUERY_TTL_MS), so the same search again makes no AI call.
//! - [`active`]: the set each table was last found searched in, the guess a search embeds for.
//!
//! Both caches have a byte budget (`SEARCH_VECTOR_CACHE_MB`, `SEARCH_QUERY_CACHE_MB`; 64 and 8
//! by default, within an isolate's 128 MB): past it the least recently searched organization's
//! table goes (it is read again from D1 when next searched), and the oldest query vectors go.
//! The table being searched is never evicted for its own sake; the budget bounds what the
//! other tenants of the isolate keep.

pub(crate) mod active;
pub(crate) mod budget;
mod catch_up;
mod exact;
pub(crate) mod queries;
pub(crate) mod snapshot;
#[cfg(all(test, target_arch = "wasm32"))]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::ports::ActiveSet;

use budget::VectorCache;
use queries::QueryCache;

/// Both caches, and the active-set guesses ([`active`]).
#[derive(Debug, Default)]
pub(crate) struct Caches {
    pub vectors: VectorCache,
    pub queries: QueryCache,
    /// The active set each organization's table was last found searched in: the guess a
    /// search embeds its text for while D1 says what the set is now.
    active: RefCell<HashMap<(String, String), ActiveSet>>,
}

/// What a row costs beside its codes, its id and its metadata's text: the map entries and the
/// vectors' headers, roughly.
const ROW_OVERHEAD: usize = 96;

/// The length of `metadata` as compact JSON, near enough for a budget (a number counts 8):
/// what a row's metadata costs beside its codes.
pub(crate) fn json_bytes(metadata: &Map<String, Value>) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len() + 2,
            Value::Array(items) => 2 + items.iter().map(|v| value(v) + 1).sum::<usize>(),
            Value::Object(fields) => json_bytes(fields),
            Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        }
    }
    2 + metadata
        .iter()
        .map(|(key, v)| key.len() + 4 + value(v))
        .sum::<usize>()
}

/// The least recently used key of `entries` (each a value and the time of its last use) other
/// than `keep`: what both caches evict first.
fn least_recent<K, V, T>(entries: &HashMap<K, (V, T)>, keep: &K) -> Option<K>
where
    K: Clone + Eq + std::hash::Hash,
    T: Ord + Copy,
{
    entries
        .iter()
        .filter(|(k, _)| *k != keep)
        .min_by_key(|(_, (_, used))| *used)
        .map(|(k, _)| k.clone())
}
