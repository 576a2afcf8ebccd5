//! One organization's table in the isolate: each row's codes (`shared::quantized`) in one flat
//! array beside its id, `seq` and metadata, what that takes, and the shortlist the codes give.
//!
//! One table has a bound of its own ([`DEFAULT_TABLE_BOUND`], `SEARCH_TABLE_MB`), counted as
//! [`Snapshot::table_bytes`] counts it: its codes, ids and metadata, never read past. D1 counts
//! the same (`ports::Room`) before it sends a row, so a table past it is refused before any of
//! it crosses; should the isolate's own count still pass it (D1 counts metadata by its text,
//! the isolate by [`json_bytes`](super::json_bytes)), the snapshot is dropped at once, without evicting anyone.
//! Either way the search fails with [`TableTooLarge`], never an isolate out of memory, and the
//! other tenants' tables stay.

use std::collections::HashMap;

use serde_json::{Map, Value};
use shared::filter::Filter;
use shared::quantized::{shortlist, Quantized, QueryCodes, StoredCodes};
use shared::topk::dot;
use worker_kit::Fault;

use super::exact::ExactVectors;
use super::ROW_OVERHEAD;
use crate::answers::Answers;

/// The most one organization's table may take in the isolate when `SEARCH_TABLE_MB` does not
/// say, counted by [`Snapshot::table_bytes`] (a row takes its dimensions in bytes, 112 more,
/// its id and its metadata): about 58,000 rows of 384 dimensions, 35,000 of 768 or 27,000 of
/// 1,024, with 32-character ids and 50 bytes of metadata. Half the vector cache's default
/// budget, so that one tenant's table leaves the other half to the rest (its exact vectors, at
/// most [`EXACT_CAPACITY`](super::exact::EXACT_CAPACITY) of them, and its answers count in the budget, not the bound). The
/// isolate then holds at most the 64 MB of the vector cache (others' tables go page by page as
/// a table within its bound is read) and the 8 MB of the query cache, and while a table is
/// read, one page of it in transit ([`crate::ports::PAGE_BYTES`], 6 MB): D1's answer and its
/// text in JavaScript, the text's copy in the module and the parsed rows, at most about five
/// times the page. About 100 MB in the worst case, against the isolate's 128; without the
/// bound and the pages, a first read had all of a table in transit at once, however large.
pub(crate) const DEFAULT_TABLE_BOUND: usize = 32 << 20;
/// A row's scale, residual and `seq`.
const CODES_HEADER: usize = 16;

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
    pub(super) codes: Vec<i8>,
    pub(super) scales: Vec<f32>,
    pub(super) residuals: Vec<f32>,
    /// The `seq` of each row's version here.
    pub(super) seqs: Vec<i64>,
    pub ids: Vec<String>,
    pub metadata: Vec<Map<String, Value>>,
    pub(super) position: HashMap<String, usize>,
    /// Each row's bytes beside its codes (id, metadata text, overhead), and their sum.
    pub(super) row_bytes: Vec<usize>,
    pub(super) other_bytes: usize,
    pub(super) exact: ExactVectors,
    /// How far catch-ups have read the exact layer, in `seq` order, while the table is small
    /// enough to hold every exact vector (`resident_bytes`). A row the reads missed (written
    /// between two of them) has its exact vector read with its shortlist.
    pub(super) filled_to: i64,
    /// The most a table's exact vectors may take for the snapshot to hold them all
    /// ([`EXACT_RESIDENT_BYTES`](super::exact::EXACT_RESIDENT_BYTES) in a [`VectorCache`](super::VectorCache)).
    pub(super) resident_bytes: usize,
    /// The most [`Snapshot::table_bytes`] may reach ([`DEFAULT_TABLE_BOUND`] unless set).
    pub(super) bound: usize,
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

    pub(super) fn codes_of(&self, i: usize) -> StoredCodes<'_> {
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
    /// ([`EXACT_CAPACITY`](super::exact::EXACT_CAPACITY), [`EXACT_RESIDENT_BYTES`](super::exact::EXACT_RESIDENT_BYTES), `answers::ANSWERS_KEPT`).
    pub(crate) fn table_bytes(&self) -> usize {
        self.codes.len() + self.len() * CODES_HEADER + self.other_bytes
    }

    /// Whether the table has passed its bound: such a snapshot is dropped, never kept.
    pub(super) fn past_bound(&self) -> bool {
        self.table_bytes() > self.bound
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

    /// Room for `more` rows, so that a first catch-up of 10,000 grows each array once.
    pub(super) fn reserve(&mut self, more: usize) {
        self.codes.reserve(more * self.dims);
        self.scales.reserve(more);
        self.residuals.reserve(more);
        self.seqs.reserve(more);
        self.ids.reserve(more);
        self.metadata.reserve(more);
        self.position.reserve(more);
        self.row_bytes.reserve(more);
    }

    pub(super) fn upsert(
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

    pub(super) fn remove(&mut self, id: &str) {
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
