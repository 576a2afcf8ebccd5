//! The isolate's caches, kept across requests.
//!
//! - [`VectorCache`]: each organization's table of vectors, normalised, in one flat array. A
//!   search first fetches only the rows written since the cache last looked (every write moves
//!   a row's `seq` past all others), so it is exact and current as soon as the consumer commits,
//!   without reading 10,000 vectors each time. A deleted record arrives as a tombstone.
//! - [`QueryCache`]: the vectors of recent query texts by model, for [`QUERY_TTL_MS`], so the
//!   same search again makes no AI call.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{Map, Value};
use shared::topk::normalized;
use shared::vector::decode_hex;
use worker_kit::Fault;

use crate::ports::VectorRow;

/// How long a query text's vector is reused.
pub(crate) const QUERY_TTL_MS: i64 = 5 * 60 * 1000;
/// Query vectors kept at most; past it, expired ones go, then the oldest.
pub(crate) const QUERY_CAPACITY: usize = 1_024;

/// One organization's table.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub dims: usize,
    pub max_seq: i64,
    /// `ids.len() * dims` values: vector `i` is `vectors[i * dims..(i + 1) * dims]`.
    pub vectors: Vec<f32>,
    pub ids: Vec<String>,
    pub metadata: Vec<Map<String, Value>>,
    position: HashMap<String, usize>,
}

impl Snapshot {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn vector(&self, i: usize) -> &[f32] {
        &self.vectors[i * self.dims..(i + 1) * self.dims]
    }

    /// Applies rows written since `max_seq`, in order. A row at or below `max_seq` is already
    /// here, or a newer version of it is: two requests may fetch overlapping rows and apply them
    /// in either order.
    pub(crate) fn apply(&mut self, rows: Vec<VectorRow>) -> Result<(), Fault> {
        for row in rows {
            if row.seq <= self.max_seq {
                continue;
            }
            self.max_seq = row.seq;
            match row.vector_hex.as_deref().filter(|h| !h.is_empty()) {
                Some(hex) => {
                    let vector = decode_hex(hex).map_err(|e| Fault(e.to_string()))?;
                    if vector.len() != self.dims {
                        return Err(Fault(format!(
                            "record {} has a {}-dimension vector in a {}-dimension table",
                            row.record_id,
                            vector.len(),
                            self.dims
                        )));
                    }
                    let metadata: Map<String, Value> = serde_json::from_str(&row.metadata)?;
                    self.upsert(row.record_id, &normalized(&vector), metadata);
                }
                None => self.remove(&row.record_id),
            }
        }
        Ok(())
    }

    fn upsert(&mut self, id: String, vector: &[f32], metadata: Map<String, Value>) {
        if let Some(&i) = self.position.get(&id) {
            self.vectors[i * self.dims..(i + 1) * self.dims].copy_from_slice(vector);
            self.metadata[i] = metadata;
            return;
        }
        self.position.insert(id.clone(), self.ids.len());
        self.ids.push(id);
        self.vectors.extend_from_slice(vector);
        self.metadata.push(metadata);
    }

    fn remove(&mut self, id: &str) {
        let Some(i) = self.position.remove(id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if i != last {
            let (dims, moved) = (self.dims, self.ids[last].clone());
            self.vectors
                .copy_within(last * dims..(last + 1) * dims, i * dims);
            self.position.insert(moved, i);
        }
        self.vectors.truncate(last * self.dims);
        self.ids.swap_remove(i);
        self.metadata.swap_remove(i);
    }
}

/// Every organization's tables this isolate has searched.
#[derive(Debug, Default)]
pub(crate) struct VectorCache {
    tables: RefCell<HashMap<(String, String), Snapshot>>,
}

impl VectorCache {
    /// The snapshot of `(organization, table)`, creating an empty one of `dims`; `f` runs with it
    /// borrowed.
    pub(crate) fn with<R>(
        &self,
        organization_id: &str,
        table: &str,
        dims: usize,
        f: impl FnOnce(&mut Snapshot) -> R,
    ) -> R {
        let mut tables = self.tables.borrow_mut();
        let snapshot = tables
            .entry((organization_id.to_owned(), table.to_owned()))
            .or_insert_with(|| Snapshot {
                dims,
                ..Snapshot::default()
            });
        f(snapshot)
    }

    pub(crate) fn max_seq(&self, organization_id: &str, table: &str, dims: usize) -> i64 {
        self.with(organization_id, table, dims, |s| s.max_seq)
    }
}

/// Hits and misses of the query cache, for `/health`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct QueryCacheStats {
    pub hits: u64,
    pub misses: u64,
    pub size: usize,
}

/// A query text's vector, and when it was made: by `(organization, model, text)`. One
/// organization's searches never answer another's from the cache, or the latency of a search
/// would tell a tenant what another searched a moment ago.
type QueryEntries = HashMap<(String, String, String), (Vec<f32>, i64)>;

#[derive(Debug, Default)]
pub(crate) struct QueryCache {
    entries: RefCell<QueryEntries>,
    stats: RefCell<QueryCacheStats>,
}

impl QueryCache {
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
        if entries.len() >= QUERY_CAPACITY {
            entries.retain(|_, (_, at)| now_ms - *at < QUERY_TTL_MS);
        }
        if entries.len() >= QUERY_CAPACITY {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key(organization_id, model, text), (vector, now_ms));
        self.stats.borrow_mut().size = entries.len();
    }

    pub(crate) fn stats(&self) -> QueryCacheStats {
        *self.stats.borrow()
    }
}

fn key(organization_id: &str, model: &str, text: &str) -> (String, String, String) {
    (
        organization_id.to_owned(),
        model.to_owned(),
        text.to_owned(),
    )
}

/// Both caches.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    pub vectors: VectorCache,
    pub queries: QueryCache,
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn row(seq: i64, id: &str, vector: Option<&[f32]>) -> VectorRow {
        VectorRow {
            seq,
            record_id: id.into(),
            vector_hex: vector.map(|v| shared::hex(&shared::vector::encode(v))),
            metadata: "{}".into(),
        }
    }

    #[wasm_bindgen_test]
    fn a_snapshot_follows_upserts_and_tombstones() {
        let mut s = Snapshot {
            dims: 2,
            ..Snapshot::default()
        };
        s.apply(vec![
            row(1, "a", Some(&[1.0, 0.0])),
            row(2, "b", Some(&[0.0, 2.0])),
            row(3, "c", Some(&[3.0, 4.0])),
        ])
        .unwrap();
        assert_eq!((s.len(), s.max_seq), (3, 3));
        assert_eq!(s.vector(1), &[0.0, 1.0], "stored normalised");
        s.apply(vec![row(4, "a", None), row(5, "b", Some(&[1.0, 0.0]))])
            .unwrap();
        assert_eq!(s.len(), 2);
        let ids: Vec<&str> = s.ids.iter().map(String::as_str).collect();
        assert_eq!(ids, vec!["c", "b"], "the last row moved into the gap");
        assert_eq!(s.vector(0), &[0.6, 0.8]);
        assert_eq!(s.vector(1), &[1.0, 0.0]);
        s.apply(vec![row(5, "b", Some(&[0.0, 1.0]))]).unwrap();
        assert_eq!(
            s.vector(1),
            &[1.0, 0.0],
            "an older row fetched late changes nothing"
        );
        assert!(
            s.apply(vec![row(6, "d", Some(&[1.0, 2.0, 3.0]))]).is_err(),
            "a wrong dimension"
        );
    }

    #[wasm_bindgen_test]
    fn query_vectors_expire() {
        let cache = QueryCache::default();
        assert!(cache.get("org_a", "m", "t", 0).is_none());
        cache.put("org_a", "m", "t", vec![1.0], 0);
        assert_eq!(
            cache.get("org_a", "m", "t", QUERY_TTL_MS - 1),
            Some(vec![1.0])
        );
        assert!(cache.get("org_a", "m", "t", QUERY_TTL_MS).is_none());
        assert!(cache.get("org_a", "other", "t", 1).is_none());
        assert!(
            cache.get("org_b", "m", "t", 1).is_none(),
            "one organization's searches never answer another's"
        );
        assert_eq!(
            cache.stats(),
            QueryCacheStats {
                hits: 1,
                misses: 4,
                size: 1
            }
        );
    }
}
