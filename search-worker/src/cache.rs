//! The isolate's caches, kept across requests.
//!
//! - [`VectorCache`]: each organization's table (of its active set: one model, one generation,
//!   [`snapshot_key`]) as eight-bit codes of its normalised vectors, in one flat array, with the
//!   exact vectors of the rows lately shortlisted. A search first fetches only the rows written
//!   since the cache last looked (every write moves a row's `seq` past all others), so it is
//!   exact and current as soon as the consumer commits, without reading 10,000 vectors each
//!   time. A deleted record arrives as a tombstone. The codes are a quarter of the exact
//!   vectors' bytes, to read from D1 and to hold; a search scores its shortlist exactly
//!   (`search::d1_nearest`).
//! - [`QueryCache`]: the vectors of recent query texts by model, for [`QUERY_TTL_MS`], so the
//!   same search again makes no AI call.
//!
//! Both have a byte budget (`SEARCH_VECTOR_CACHE_MB`, `SEARCH_QUERY_CACHE_MB`; 64 and 8 by
//! default, within an isolate's 128 MB): past it the least recently searched organization's
//! table goes (it is read again from D1 when next searched), and the oldest query vectors go.
//! The table being searched is never evicted for its own sake; the budget bounds what the
//! other tenants of the isolate keep.
//!
//! One table has a bound of its own ([`DEFAULT_TABLE_BOUND`], `SEARCH_TABLE_MB`), counted as
//! [`Snapshot::table_bytes`] counts it: its codes, ids and metadata, never read past. D1 counts
//! the same (`ports::Room`) before it sends a row, so a table past it is refused before any of
//! it crosses; should the isolate's own count still pass it (D1 counts metadata by its text,
//! the isolate by [`json_bytes`]), the snapshot is dropped at once, without evicting anyone.
//! Either way the search fails with [`TableTooLarge`], never an isolate out of memory, and the
//! other tenants' tables stay.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};

use serde_json::{Map, Value};
use shared::config::TableConfig;
use shared::filter::Filter;
use shared::quantized::{shortlist, Quantized, QueryCodes, StoredCodes};
use shared::topk::{dot, normalized};
use shared::vector::decode_hex;
use worker_kit::Fault;

use crate::answers::{Answers, Nearest, Question};
use crate::ports::{ActiveSet, ExactRow, Room, VectorRow, FILL_CHUNK, PAGE_BYTES};

/// How long a query text's vector is reused.
pub(crate) const QUERY_TTL_MS: i64 = 5 * 60 * 1000;
/// Query vectors kept at most; past it, expired ones go, then the oldest.
pub(crate) const QUERY_CAPACITY: usize = 1_024;
/// The vector cache's budget when `SEARCH_VECTOR_CACHE_MB` does not say.
pub(crate) const DEFAULT_VECTOR_BUDGET: usize = 64 << 20;
/// The query cache's budget when `SEARCH_QUERY_CACHE_MB` does not say.
pub(crate) const DEFAULT_QUERY_BUDGET: usize = 8 << 20;
/// The most one organization's table may take in the isolate when `SEARCH_TABLE_MB` does not
/// say, counted by [`Snapshot::table_bytes`] (a row takes its dimensions in bytes, 112 more,
/// its id and its metadata): about 58,000 rows of 384 dimensions, 35,000 of 768 or 27,000 of
/// 1,024, with 32-character ids and 50 bytes of metadata. Half the vector cache's default
/// budget, so that one tenant's table leaves the other half to the rest (its exact vectors, at
/// most [`EXACT_CAPACITY`] of them, and its answers count in the budget, not the bound). The
/// isolate then holds at most the 64 MB of the vector cache (others' tables go page by page as
/// a table within its bound is read) and the 8 MB of the query cache, and while a table is
/// read, one page of it in transit ([`crate::ports::PAGE_BYTES`], 6 MB): D1's answer and its
/// text in JavaScript, the text's copy in the module and the parsed rows, at most about five
/// times the page. About 100 MB in the worst case, against the isolate's 128; without the
/// bound and the pages, a first read had all of a table in transit at once, however large.
pub(crate) const DEFAULT_TABLE_BOUND: usize = 32 << 20;
/// What a row costs beside its codes, its id and its metadata's text: the map entries and the
/// vectors' headers, roughly.
const ROW_OVERHEAD: usize = 96;
/// A row's scale, residual and `seq`.
const CODES_HEADER: usize = 16;
/// Exact vectors a snapshot too large to hold them all keeps, of rows lately shortlisted (6 MB
/// at 384 dimensions): what the same search again, or one near it, scores without reading D1,
/// even where near-duplicates make shortlists of hundreds.
pub(crate) const EXACT_CAPACITY: usize = 4_096;
/// A snapshot whose exact vectors take at most this holds them all (16,384 rows of 384
/// dimensions, 8,192 of 768), read in chunks beside its catch-ups: its searches then read
/// nothing more than the catch-up. A larger one reads its shortlist's from D1.
pub(crate) const EXACT_RESIDENT_BYTES: usize = 24 << 20;

/// What a row of `dims` dimensions takes in a snapshot beside its id and its metadata's text:
/// its codes and the overhead. D1 counts a row by it ([`crate::ports::Room`]).
pub(crate) fn row_cost(dims: usize) -> usize {
    dims + CODES_HEADER + ROW_OVERHEAD
}

/// A table past its bound: it is not read, and a search of it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TableTooLarge {
    /// What the table would take (at least), as [`Snapshot::table_bytes`] counts it.
    pub bytes: usize,
    pub bound: usize,
}

/// Why a snapshot took no more rows.
#[derive(Debug)]
pub(crate) enum Refused {
    /// A row D1 should never hold: codes that do not read, a vector of another dimension.
    Fault(Fault),
    /// The rows would take the table past its bound.
    TooLarge(TableTooLarge),
}

impl From<Fault> for Refused {
    fn from(fault: Fault) -> Self {
        Refused::Fault(fault)
    }
}

/// One organization's table: each row's codes (`shared::quantized`) in one flat array, and the
/// exact vectors of the rows searches shortlisted lately ([`ExactVectors`]).
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub dims: usize,
    pub max_seq: i64,
    /// `ids.len() * dims` codes: row `i`'s are `codes[i * dims..(i + 1) * dims]`.
    codes: Vec<i8>,
    scales: Vec<f32>,
    residuals: Vec<f32>,
    /// The `seq` of each row's version here.
    seqs: Vec<i64>,
    pub ids: Vec<String>,
    pub metadata: Vec<Map<String, Value>>,
    position: HashMap<String, usize>,
    /// Each row's bytes beside its codes (id, metadata text, overhead), and their sum.
    row_bytes: Vec<usize>,
    other_bytes: usize,
    exact: ExactVectors,
    /// How far catch-ups have read the exact layer, in `seq` order, while the table is small
    /// enough to hold every exact vector (`resident_bytes`). A row the reads missed (written
    /// between two of them) has its exact vector read with its shortlist.
    filled_to: i64,
    /// The most a table's exact vectors may take for the snapshot to hold them all
    /// ([`EXACT_RESIDENT_BYTES`] in a [`VectorCache`]).
    resident_bytes: usize,
    /// The most [`Snapshot::table_bytes`] may reach ([`DEFAULT_TABLE_BOUND`] unless set).
    bound: usize,
    /// Its last answers, each for the `max_seq` it was computed at.
    pub answers: Answers,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            dims: 0,
            max_seq: 0,
            codes: Vec::new(),
            scales: Vec::new(),
            residuals: Vec::new(),
            seqs: Vec::new(),
            ids: Vec::new(),
            metadata: Vec::new(),
            position: HashMap::new(),
            row_bytes: Vec::new(),
            other_bytes: 0,
            exact: ExactVectors::default(),
            filled_to: 0,
            resident_bytes: 0,
            bound: DEFAULT_TABLE_BOUND,
            answers: Answers::default(),
        }
    }
}

/// A row a search may rank: what [`Snapshot::shortlist`] found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shortlisted {
    /// Its place in the snapshot: ties go to the earlier, as in an exact scan.
    pub index: usize,
    pub id: String,
    /// The version the snapshot holds, which its exact vector must be of.
    pub seq: i64,
    pub metadata: Map<String, Value>,
    /// Its exact score, where the snapshot holds its exact vector.
    pub score: Option<f32>,
}

impl Snapshot {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    fn codes_of(&self, i: usize) -> StoredCodes<'_> {
        StoredCodes {
            codes: &self.codes[i * self.dims..(i + 1) * self.dims],
            scale: self.scales[i],
            residual: self.residuals[i],
        }
    }

    /// What the snapshot holds in memory, roughly: its codes, ids, metadata, exact vectors and
    /// kept answers.
    pub(crate) fn bytes(&self) -> usize {
        self.table_bytes() + self.exact.bytes + self.answers.bytes()
    }

    /// What the table's rows take, which its bound bounds: their codes, ids and metadata, each
    /// with its overhead ([`row_cost`]). Its exact vectors and answers are bounded apart
    /// ([`EXACT_CAPACITY`], [`EXACT_RESIDENT_BYTES`], `answers::ANSWERS_KEPT`).
    pub(crate) fn table_bytes(&self) -> usize {
        self.codes.len() + self.len() * CODES_HEADER + self.other_bytes
    }

    /// Whether the table has passed its bound: such a snapshot is dropped, never kept.
    fn past_bound(&self) -> bool {
        self.table_bytes() > self.bound
    }

    /// Applies rows written since `max_seq`, in order. A row at or below `max_seq` is already
    /// here, or a newer version of it is: two requests may fetch overlapping rows and apply them
    /// in either order. It stops at the first row that takes the table past its bound.
    pub(crate) fn apply(&mut self, rows: Vec<VectorRow>) -> Result<(), Refused> {
        let mut made_here = 0usize;
        self.reserve(rows.len());
        for row in rows {
            if row.seq <= self.max_seq {
                continue;
            }
            self.max_seq = row.seq;
            let codes = match (row.codes, row.vector_hex.as_deref()) {
                (Some(codes), _) => codes,
                // A row written before codes were: made here, as the consumer makes them.
                (None, Some(hex)) if !hex.is_empty() => {
                    made_here += 1;
                    Quantized::of(&normalized(
                        &decode_hex(hex).map_err(|e| Fault(e.to_string()))?,
                    ))
                }
                _ => {
                    self.remove(&row.record_id);
                    continue;
                }
            };
            if codes.codes.len() != self.dims {
                return Err(Refused::Fault(Fault(format!(
                    "record {} has a {}-dimension vector in a {}-dimension table",
                    row.record_id,
                    codes.codes.len(),
                    self.dims
                ))));
            }
            let bytes = row.record_id.len() + json_bytes(&row.metadata) + ROW_OVERHEAD;
            self.upsert(row.record_id, row.seq, &codes, row.metadata, bytes);
            if self.past_bound() {
                return Err(Refused::TooLarge(TableTooLarge {
                    bytes: self.table_bytes(),
                    bound: self.bound,
                }));
            }
        }
        if made_here > 0 {
            // Each such row costs a read of its exact vector on every isolate's first search,
            // until the record is embedded again (an edit, or a model change).
            tracing::info!(
                rows = made_here,
                "rows without codes read whole; their codes were made in the isolate"
            );
        }
        Ok(())
    }

    /// The rows passing `filter` that the exact top `k` of those scoring at least `min_score`
    /// against `query` may include, in the snapshot's order, each with its exact score where the
    /// snapshot holds its exact vector.
    pub(crate) fn shortlist(
        &self,
        query: &[f32],
        filter: &Filter,
        k: usize,
        min_score: f32,
    ) -> Vec<Shortlisted> {
        let codes = QueryCodes::of(query);
        let scored: Vec<(usize, f64, f64)> = (0..self.len())
            .filter(|&i| filter.is_empty() || filter.matches(&self.metadata[i]))
            .map(|i| {
                let (score, bound) = codes.score(&self.codes_of(i));
                (i, score, bound)
            })
            .collect();
        shortlist(&scored, k, min_score)
            .into_iter()
            .map(|index| {
                let id = &self.ids[index];
                Shortlisted {
                    index,
                    id: id.clone(),
                    seq: self.seqs[index],
                    metadata: self.metadata[index].clone(),
                    score: self.exact.get(id).map(|exact| dot(query, exact)),
                }
            })
            .collect()
    }

    /// Keeps the exact vector of `id`'s version `seq`, if that is still the one here.
    pub(crate) fn keep_exact(&mut self, id: &str, seq: i64, vector: Vec<f32>) {
        if self.position.get(id).is_some_and(|&i| self.seqs[i] == seq) {
            let capacity = if self.resident() {
                usize::MAX
            } else {
                EXACT_CAPACITY
            };
            self.exact.insert(id, vector, capacity);
        }
    }

    /// Whether the snapshot holds (or is reading) every row's exact vector: while they fit in
    /// `resident_bytes`. A larger table keeps only its recently shortlisted rows'.
    fn resident(&self) -> bool {
        self.len() * self.dims * 4 <= self.resident_bytes
    }

    /// Where the next chunk of the exact layer starts, for a snapshot that holds every exact
    /// vector: asked for on every catch-up, since the rows it brings need theirs too (in steady
    /// state, an empty read in the same round trip).
    pub(crate) fn fill_from(&self) -> Option<i64> {
        (self.len() > 0 && self.resident()).then_some(self.filled_to)
    }

    /// Keeps a chunk of exact vectors that a catch-up read from `after`, beside rows up to
    /// `seen` (the highest `seq` it could find) that were applied first. Each row is kept only
    /// if it is the version here. A chunk shorter than [`FILL_CHUNK`] was the last: the layer
    /// then reaches `seen`.
    pub(crate) fn fill(&mut self, after: i64, seen: i64, rows: Vec<ExactRow>) -> Result<(), Fault> {
        let newest = rows.iter().map(|row| row.seq).max().unwrap_or(after);
        let reached = if rows.len() < FILL_CHUNK {
            newest.max(seen)
        } else {
            newest
        };
        for row in rows {
            let Some(hex) = row.vector_hex.filter(|h| !h.is_empty()) else {
                continue;
            };
            let vector = normalized(&decode_hex(&hex).map_err(|e| Fault(e.to_string()))?);
            if vector.len() == self.dims {
                self.keep_exact(&row.record_id, row.seq, vector);
            }
        }
        // Another search's chunk may have moved the layer on meanwhile, or not yet up to here.
        if after <= self.filled_to {
            self.filled_to = self.filled_to.max(reached);
        }
        Ok(())
    }

    /// Room for `more` rows, so that a first catch-up of 10,000 grows each array once.
    fn reserve(&mut self, more: usize) {
        self.codes.reserve(more * self.dims);
        self.scales.reserve(more);
        self.residuals.reserve(more);
        self.seqs.reserve(more);
        self.ids.reserve(more);
        self.metadata.reserve(more);
        self.position.reserve(more);
        self.row_bytes.reserve(more);
    }

    fn upsert(
        &mut self,
        id: String,
        seq: i64,
        codes: &Quantized,
        metadata: Map<String, Value>,
        bytes: usize,
    ) {
        self.exact.remove(&id);
        if let Some(&i) = self.position.get(&id) {
            self.codes[i * self.dims..(i + 1) * self.dims].copy_from_slice(&codes.codes);
            self.scales[i] = codes.scale;
            self.residuals[i] = codes.residual;
            self.seqs[i] = seq;
            self.metadata[i] = metadata;
            self.other_bytes = self.other_bytes - self.row_bytes[i] + bytes;
            self.row_bytes[i] = bytes;
            return;
        }
        self.position.insert(id.clone(), self.ids.len());
        self.ids.push(id);
        self.codes.extend_from_slice(&codes.codes);
        self.scales.push(codes.scale);
        self.residuals.push(codes.residual);
        self.seqs.push(seq);
        self.metadata.push(metadata);
        self.row_bytes.push(bytes);
        self.other_bytes += bytes;
    }

    fn remove(&mut self, id: &str) {
        self.exact.remove(id);
        let Some(i) = self.position.remove(id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if i != last {
            let (dims, moved) = (self.dims, self.ids[last].clone());
            self.codes
                .copy_within(last * dims..(last + 1) * dims, i * dims);
            self.position.insert(moved, i);
        }
        self.codes.truncate(last * self.dims);
        self.scales.swap_remove(i);
        self.residuals.swap_remove(i);
        self.seqs.swap_remove(i);
        self.ids.swap_remove(i);
        self.metadata.swap_remove(i);
        self.other_bytes -= self.row_bytes.swap_remove(i);
    }
}

/// The exact (normalised) vectors of a snapshot's rows, by record id: all of them for a table
/// that fits [`EXACT_RESIDENT_BYTES`], else those searches shortlisted lately, at most
/// [`EXACT_CAPACITY`], the first kept the first to go. Each is of its row's version in the
/// snapshot: a write of the row drops it.
#[derive(Debug, Default)]
struct ExactVectors {
    /// Each vector with the stamp of its insertion.
    vectors: HashMap<String, (u64, Vec<f32>)>,
    /// Insertions in order; an entry whose stamp is no longer its id's went already.
    order: VecDeque<(u64, String)>,
    stamp: u64,
    bytes: usize,
}

impl ExactVectors {
    fn get(&self, id: &str) -> Option<&[f32]> {
        self.vectors.get(id).map(|(_, v)| v.as_slice())
    }

    /// Keeps `vector`, then lets the first kept go down to `capacity`.
    fn insert(&mut self, id: &str, vector: Vec<f32>, capacity: usize) {
        self.remove(id);
        self.stamp += 1;
        self.bytes += exact_bytes(id, &vector);
        self.vectors.insert(id.to_owned(), (self.stamp, vector));
        self.order.push_back((self.stamp, id.to_owned()));
        while self.vectors.len() > capacity {
            let Some((stamp, oldest)) = self.order.pop_front() else {
                break;
            };
            if self.vectors.get(&oldest).is_some_and(|(s, _)| *s == stamp) {
                self.remove(&oldest);
            }
        }
        if self.order.len() > 2 * self.vectors.len().max(EXACT_CAPACITY) {
            let vectors = &self.vectors;
            self.order
                .retain(|(stamp, id)| vectors.get(id).is_some_and(|(s, _)| s == stamp));
        }
    }

    fn remove(&mut self, id: &str) {
        if let Some((_, vector)) = self.vectors.remove(id) {
            self.bytes -= exact_bytes(id, &vector);
        }
    }
}

fn exact_bytes(id: &str, vector: &[f32]) -> usize {
    id.len() + vector.len() * 4 + ROW_OVERHEAD
}

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

/// Every organization's tables this isolate has searched, within a byte budget.
#[derive(Debug)]
pub(crate) struct VectorCache {
    /// Each snapshot with the tick of its last search.
    tables: RefCell<HashMap<(String, String), (Snapshot, u64)>>,
    tick: Cell<u64>,
    budget: Cell<usize>,
    evictions: Cell<u64>,
    answered: Cell<u64>,
    resident_bytes: Cell<usize>,
    table_bound: Cell<usize>,
    page_bytes: Cell<usize>,
}

impl Default for VectorCache {
    fn default() -> Self {
        VectorCache {
            tables: RefCell::default(),
            tick: Cell::new(0),
            budget: Cell::new(DEFAULT_VECTOR_BUDGET),
            evictions: Cell::new(0),
            answered: Cell::new(0),
            resident_bytes: Cell::new(EXACT_RESIDENT_BYTES),
            table_bound: Cell::new(DEFAULT_TABLE_BOUND),
            page_bytes: Cell::new(PAGE_BYTES),
        }
    }
}

/// What the vector cache holds across the isolate, every organization's tables together: for
/// the tests, never for a caller (it would show one tenant the others' searches).
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VectorCacheStats {
    pub tables: usize,
    pub vectors: usize,
    pub bytes: usize,
    pub budget: usize,
    pub evictions: u64,
    /// Searches answered from a snapshot's kept answers (`crate::answers`).
    pub answered: u64,
}

/// What one organization's tables take in the vector cache, against the isolate's budget: its
/// `/health`. Nothing in it moves with another organization's searches but for evictions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VectorCacheUsage {
    pub tables: usize,
    pub vectors: usize,
    pub bytes: usize,
    pub budget_bytes: usize,
}

impl VectorCache {
    pub(crate) fn set_budget(&self, bytes: usize) {
        self.budget.set(bytes);
    }

    /// The most one table may take ([`DEFAULT_TABLE_BOUND`] unless set).
    pub(crate) fn set_table_bound(&self, bytes: usize) {
        self.table_bound.set(bytes);
    }

    pub(crate) fn table_bound(&self) -> usize {
        self.table_bound.get()
    }

    /// The rows one read brings in at most, once a table's rows take more
    /// ([`crate::ports::PAGE_BYTES`] unless set).
    #[cfg(test)]
    pub(crate) fn set_page_bytes(&self, bytes: usize) {
        self.page_bytes.set(bytes);
    }

    /// What a read of the snapshot's new rows may bring in: the room left below the table's
    /// bound (all of it for a snapshot not made yet), counted at `dims` dimensions, in pages
    /// when `paged`.
    pub(crate) fn room(
        &self,
        organization_id: &str,
        table: &str,
        dims: usize,
        paged: bool,
    ) -> Room {
        let bound = self.table_bound.get();
        let held = self
            .tables
            .borrow()
            .get(&(organization_id.to_owned(), table.to_owned()))
            .map_or(0, |(snapshot, _)| snapshot.table_bytes());
        Room {
            bytes: bound.saturating_sub(held),
            page: self.page_bytes.get(),
            row_cost: row_cost(dims),
            paged,
        }
    }

    /// How large a table's exact vectors may be for its snapshot to hold them all, for
    /// snapshots made from now on.
    #[cfg(test)]
    pub(crate) fn set_resident_bytes(&self, bytes: usize) {
        self.resident_bytes.set(bytes);
    }

    /// The snapshot of `(organization, table)`, creating an empty one of `dims`; `f` runs with it
    /// borrowed. Past the budget, the least recently searched other snapshots go afterwards;
    /// a snapshot `f` took past its table's bound goes instead, and no other with it.
    pub(crate) fn with<R>(
        &self,
        organization_id: &str,
        table: &str,
        dims: usize,
        f: impl FnOnce(&mut Snapshot) -> R,
    ) -> R {
        let key = (organization_id.to_owned(), table.to_owned());
        let tick = self.tick.get() + 1;
        self.tick.set(tick);
        let mut tables = self.tables.borrow_mut();
        let (snapshot, last_used) = tables.entry(key.clone()).or_insert_with(|| {
            (
                Snapshot {
                    dims,
                    resident_bytes: self.resident_bytes.get(),
                    ..Snapshot::default()
                },
                tick,
            )
        });
        *last_used = tick;
        snapshot.bound = self.table_bound.get();
        let result = f(snapshot);
        if snapshot.past_bound() {
            // Refused (`Snapshot::apply` stopped at the row that passed the bound): the tenant
            // whose table it is pays for it, not the others whose tables the budget would evict.
            let (bytes, bound) = (snapshot.table_bytes(), snapshot.bound);
            tables.remove(&key);
            tracing::warn!(
                organization_id,
                table,
                bytes,
                bound,
                "table past its bound: its snapshot dropped, no other evicted"
            );
            return result;
        }
        let mut total: usize = tables.values().map(|(s, _)| s.bytes()).sum();
        while total > self.budget.get() {
            let Some(oldest) = least_recent(&tables, &key) else {
                break;
            };
            if let Some((evicted, _)) = tables.remove(&oldest) {
                total -= evicted.bytes();
                self.evictions.set(self.evictions.get() + 1);
                tracing::info!(
                    organization_id = %oldest.0,
                    table = %oldest.1,
                    bytes = evicted.bytes(),
                    "vector cache over budget: least recently searched table evicted"
                );
            }
        }
        result
    }

    /// Keeps `answer` to `question`, computed at `at`, in the snapshot of `(organization,
    /// table)` if it is still there and has not moved since ([`Answers::put`]).
    pub(crate) fn keep_answer(
        &self,
        organization_id: &str,
        table: &str,
        question: Question,
        at: i64,
        answer: Vec<Nearest>,
    ) {
        let key = (organization_id.to_owned(), table.to_owned());
        if let Some((snapshot, _)) = self.tables.borrow_mut().get_mut(&key) {
            let now = snapshot.max_seq;
            snapshot.answers.put(question, at, now, answer);
        }
    }

    /// Counts a search answered from a snapshot's kept answers.
    pub(crate) fn note_answered(&self) {
        self.answered.set(self.answered.get() + 1);
    }

    /// Drops one snapshot.
    pub(crate) fn forget(&self, organization_id: &str, table: &str) {
        self.tables
            .borrow_mut()
            .remove(&(organization_id.to_owned(), table.to_owned()));
    }

    /// Where the snapshot's next chunk of exact vectors starts ([`Snapshot::fill_from`]).
    pub(crate) fn fill_from(&self, organization_id: &str, table: &str) -> Option<i64> {
        self.tables
            .borrow()
            .get(&(organization_id.to_owned(), table.to_owned()))
            .and_then(|(snapshot, _)| snapshot.fill_from())
    }

    /// The newest `seq` the snapshot holds; 0 for a snapshot not made yet, which this does not
    /// make (a search may find its guess of the active set wrong, and read another).
    pub(crate) fn max_seq(&self, organization_id: &str, table: &str) -> i64 {
        self.tables
            .borrow()
            .get(&(organization_id.to_owned(), table.to_owned()))
            .map_or(0, |(snapshot, _)| snapshot.max_seq)
    }

    /// What `organization_id`'s tables take, and the budget: nothing of another's.
    pub(crate) fn usage(&self, organization_id: &str) -> VectorCacheUsage {
        let tables = self.tables.borrow();
        let own = || {
            tables
                .iter()
                .filter(|((org, _), _)| org == organization_id)
                .map(|(_, (snapshot, _))| snapshot)
        };
        VectorCacheUsage {
            tables: own().count(),
            vectors: own().map(Snapshot::len).sum(),
            bytes: own().map(Snapshot::bytes).sum(),
            budget_bytes: self.budget.get(),
        }
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> VectorCacheStats {
        let tables = self.tables.borrow();
        VectorCacheStats {
            tables: tables.len(),
            vectors: tables.values().map(|(s, _)| s.len()).sum(),
            bytes: tables.values().map(|(s, _)| s.bytes()).sum(),
            budget: self.budget.get(),
            evictions: self.evictions.get(),
            answered: self.answered.get(),
        }
    }
}

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
fn entry_bytes(key: &(String, String, String), vector: &[f32]) -> usize {
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

fn key(organization_id: &str, model: &str, text: &str) -> (String, String, String) {
    (
        organization_id.to_owned(),
        model.to_owned(),
        text.to_owned(),
    )
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

/// Both caches.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    pub vectors: VectorCache,
    pub queries: QueryCache,
    /// The active set each organization's table was last found searched in: the guess a
    /// search embeds its text for while D1 says what the set is now.
    pub active: RefCell<HashMap<(String, String), ActiveSet>>,
}

impl Caches {
    /// The set `table` was last searched in, or the configured one.
    pub(crate) fn active_guess(&self, organization_id: &str, table: &TableConfig) -> ActiveSet {
        self.active
            .borrow()
            .get(&(organization_id.to_owned(), table.name.clone()))
            .cloned()
            .unwrap_or_else(|| ActiveSet::configured(table))
    }

    /// Remembers the set `table` is searched in; when it changed (a model change switched), the
    /// old set's snapshot goes: no search reads it again.
    pub(crate) fn remember_active(&self, organization_id: &str, table: &str, active: &ActiveSet) {
        let before = self.active.borrow_mut().insert(
            (organization_id.to_owned(), table.to_owned()),
            active.clone(),
        );
        if let Some(before) = before.filter(|b| b != active) {
            self.vectors
                .forget(organization_id, &snapshot_key(table, &before));
        }
    }
}

/// The key of a set's snapshot in the [`VectorCache`]: its table, model and generation, so
/// that a search after a model change never reads the other set's copy.
pub(crate) fn snapshot_key(table: &str, active: &ActiveSet) -> String {
    format!("{table}@{}#{}", active.set.model, active.generation)
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn row(seq: i64, id: &str, vector: Option<&[f32]>) -> VectorRow {
        VectorRow {
            seq,
            record_id: id.into(),
            codes: vector.map(|v| Quantized::of(&normalized(v))),
            vector_hex: None,
            metadata: Map::new(),
        }
    }

    /// The scan's dot product in this (wasm, SIMD) build is the documented sum to the bit: eight
    /// lanes of every eighth product, folded in a fixed order, then the tail, as plain scalar code
    /// here computes it; so the worker ranks exactly as a native scan of the same vectors.
    #[wasm_bindgen_test]
    #[allow(clippy::cast_precision_loss)]
    fn the_scan_dot_product_is_the_documented_sum_to_the_bit() {
        fn documented(a: &[f32], b: &[f32]) -> f32 {
            let whole = a.len() / 8 * 8;
            let mut lanes = [0.0f32; 8];
            for start in (0..whole).step_by(8) {
                for (i, lane) in lanes.iter_mut().enumerate() {
                    *lane += a[start + i] * b[start + i];
                }
            }
            let tail: f32 = (whole..a.len()).map(|i| a[i] * b[i]).sum();
            let half: Vec<f32> = (0..4).map(|i| lanes[i] + lanes[i + 4]).collect();
            (half[0] + half[2]) + (half[1] + half[3]) + tail
        }
        for dims in [3, 8, 384, 389, 768, 1024] {
            let a: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.713).sin()).collect();
            let b: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.291).cos() * 1e-3).collect();
            let ours = shared::topk::dot(&a, &b);
            assert_eq!(ours.to_bits(), documented(&a, &b).to_bits(), "{dims} dims");
        }
    }

    /// The codes the consumer writes for `vector`.
    fn codes(vector: &[f32]) -> Vec<i8> {
        Quantized::of(&normalized(vector)).codes
    }

    /// The codes' sum in this (wasm, SIMD) build is the plain integer sum, at the largest codes
    /// a query and a row can have, at every length across the 16-wide blocks and their tail.
    #[wasm_bindgen_test]
    fn the_code_sum_is_the_plain_integer_sum() {
        for dims in [3, 16, 17, 384, 389, 768, 1024] {
            let query = QueryCodes::of(&normalized(&vec![1.0; dims])).codes;
            for codes in [
                vec![127i8; dims],
                vec![-127i8; dims],
                (0..dims)
                    .map(|i| i8::try_from(i % 255).unwrap_or(-1))
                    .collect(),
            ] {
                let plain: i64 = codes
                    .iter()
                    .zip(&query)
                    .map(|(c, d)| i64::from(*c) * i64::from(*d))
                    .sum();
                let ours = shared::quantized::code_dot(&codes, &query);
                assert_eq!(i64::from(ours), plain, "{dims} dims");
            }
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
        assert_eq!(s.codes_of(1).codes, &[0, 127], "of the normalised vector");
        s.apply(vec![row(4, "a", None), row(5, "b", Some(&[1.0, 0.0]))])
            .unwrap();
        assert_eq!(s.len(), 2);
        let ids: Vec<&str> = s.ids.iter().map(String::as_str).collect();
        assert_eq!(ids, vec!["c", "b"], "the last row moved into the gap");
        assert_eq!(s.codes_of(0).codes, codes(&[3.0, 4.0]));
        assert_eq!(s.codes_of(1).codes, codes(&[1.0, 0.0]));
        assert_eq!(s.seqs, vec![3, 5]);
        s.apply(vec![row(5, "b", Some(&[0.0, 1.0]))]).unwrap();
        assert_eq!(
            s.codes_of(1).codes,
            codes(&[1.0, 0.0]),
            "an older row fetched late changes nothing"
        );
        assert!(
            s.apply(vec![row(6, "d", Some(&[1.0, 2.0, 3.0]))]).is_err(),
            "a wrong dimension"
        );
    }

    /// A catch-up's rows as the statement of `bindings::D1Store::since` writes them: the codes'
    /// text read into codes, the metadata as an object, a tombstone's nulls as nothing.
    #[wasm_bindgen_test]
    fn catch_up_rows_read_as_d1_writes_them() {
        let codes = Quantized::of(&normalized(&[0.3, -1.7, 2.2, 0.01]));
        let text = format!(
            r#"[[7,"a\"b","{}",null,{{"topic":"t","n":[1,{{"x":null}}]}}],
               [8,"old",null,"0000803F",{{}}],
               [9,"gone",null,null,{{}}],
               [10,"blank","",null,{{}}]]"#,
            codes.to_text()
        );
        let rows: Vec<VectorRow> = serde_json::from_str(&text).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!((rows[0].seq, rows[0].record_id.as_str()), (7, "a\"b"));
        assert_eq!(rows[0].codes.as_ref(), Some(&codes));
        assert_eq!(
            Value::Object(rows[0].metadata.clone()),
            serde_json::json!({"topic": "t", "n": [1, {"x": null}]})
        );
        assert_eq!(rows[0].vector_hex, None);
        assert_eq!(
            (rows[1].codes.as_ref(), rows[1].vector_hex.as_deref()),
            (None, Some("0000803F"))
        );
        for tombstone in &rows[2..] {
            assert_eq!(
                (tombstone.codes.as_ref(), tombstone.vector_hex.as_ref()),
                (None, None)
            );
        }
        // The budget counts the metadata at no less than its compact text, and not far above.
        let compact = Value::Object(rows[0].metadata.clone()).to_string().len();
        let counted = json_bytes(&rows[0].metadata);
        assert!(
            compact <= counted && counted <= 2 * compact,
            "{counted} for {compact}"
        );
        for bad in [
            r#"[[1,"a","not codes!",null,{}]]"#,
            r#"[[1,"a",7,null,{}]]"#,
        ] {
            assert!(
                serde_json::from_str::<Vec<VectorRow>>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[wasm_bindgen_test]
    fn a_row_without_codes_gets_the_consumers_from_its_exact_vector() {
        let vector = [0.3, -1.7, 2.2, 0.01];
        let mut s = Snapshot {
            dims: 4,
            ..Snapshot::default()
        };
        s.apply(vec![VectorRow {
            seq: 1,
            record_id: "old".into(),
            codes: None,
            vector_hex: Some(shared::hex(&shared::vector::encode(&vector)).to_uppercase()),
            metadata: Map::new(),
        }])
        .unwrap();
        let ours = s.codes_of(0);
        let consumers = Quantized::of(&normalized(&vector));
        assert_eq!(
            (ours.codes, ours.scale, ours.residual),
            (
                consumers.codes.as_slice(),
                consumers.scale,
                consumers.residual
            )
        );
    }

    #[wasm_bindgen_test]
    fn exact_vectors_are_of_the_current_version_and_few() {
        let mut s = Snapshot {
            dims: 2,
            ..Snapshot::default()
        };
        let rows = (0..=EXACT_CAPACITY)
            .map(|i| {
                let seq = i64::try_from(i).unwrap() + 1;
                row(seq, &format!("r{i}"), Some(&[1.0, 0.5]))
            })
            .collect();
        s.apply(rows).unwrap();
        let query = normalized(&[1.0, 0.5]);
        s.keep_exact("r0", 1, query.clone());
        s.keep_exact("r1", 1, query.clone());
        assert!(s.exact.get("r1").is_none(), "not r1's version (2)");
        let bytes = s.bytes();
        s.keep_exact("r1", 2, query.clone());
        assert!(
            s.bytes() > bytes,
            "exact vectors count in the snapshot's bytes"
        );
        let scored = s.shortlist(&query, &Filter::default(), 2, -1.0);
        assert_eq!(scored[0].score, Some(dot(&query, &query)));
        assert!(scored[2].score.is_none(), "r2's exact vector is not here");
        s.apply(vec![row(5_000, "r0", Some(&[0.5, 1.0]))]).unwrap();
        assert!(s.exact.get("r0").is_none(), "a write drops it");
        for i in 2..=EXACT_CAPACITY {
            let seq = i64::try_from(i).unwrap() + 1;
            s.keep_exact(&format!("r{i}"), seq, query.clone());
        }
        s.keep_exact("r0", 5_000, query.clone());
        assert_eq!(s.exact.vectors.len(), EXACT_CAPACITY);
        assert!(s.exact.get("r1").is_none(), "the first kept went first");
        assert!(s.exact.get(&format!("r{EXACT_CAPACITY}")).is_some());
        assert!(s.exact.order.len() <= 2 * EXACT_CAPACITY + 1);
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
                size: 1,
                bytes: entry_bytes(&key("org_a", "m", "t"), &[1.0]),
                budget: DEFAULT_QUERY_BUDGET,
            }
        );
    }

    #[wasm_bindgen_test]
    fn the_query_cache_keeps_to_its_budget_oldest_first() {
        let cache = QueryCache::default();
        let vector = vec![0.5; 384];
        let one = entry_bytes(&key("org_a", "m", "text 0"), &vector);
        cache.set_budget(one * 3);
        for i in 0..5 {
            cache.put("org_a", "m", &format!("text {i}"), vector.clone(), i);
        }
        let stats = cache.stats();
        assert_eq!((stats.size, stats.bytes), (3, one * 3));
        assert!(
            cache.get("org_a", "m", "text 1", 5).is_none(),
            "the oldest went"
        );
        assert!(cache.get("org_a", "m", "text 4", 5).is_some());
    }

    #[wasm_bindgen_test]
    fn the_least_recently_searched_table_goes_past_the_budget() {
        let cache = VectorCache::default();
        let load = |org: &str, n: usize| {
            cache.with(org, "claims", 2, |s| {
                let rows = (0..n)
                    .map(|i| {
                        row(
                            i64::try_from(i).unwrap() + 1,
                            &format!("r{i}"),
                            Some(&[1.0, 0.0]),
                        )
                    })
                    .collect();
                s.apply(rows).unwrap();
                s.bytes()
            })
        };
        let a = load("org_a", 10);
        assert!(a > 10 * 8, "vectors, ids and metadata count: {a}");
        cache.set_budget(a * 2 + a / 2);
        load("org_b", 10);
        cache.with("org_a", "claims", 2, |_| ());
        load("org_c", 10);
        let stats = cache.stats();
        assert_eq!((stats.tables, stats.evictions), (2, 1), "{stats:?}");
        assert!(stats.bytes <= stats.budget);
        // org_b was the least recently searched: it went, and comes back empty (read anew).
        assert_eq!(cache.max_seq("org_b", "claims"), 0);
        assert_eq!(cache.max_seq("org_a", "claims"), 10);
    }
}
