//! The exact vectors a snapshot holds beside its codes, which score a shortlist without reading
//! D1: every one of a table small enough ([`EXACT_RESIDENT_BYTES`]), else those of the rows
//! lately shortlisted, at most [`EXACT_CAPACITY`], the first kept the first to go.

use std::collections::{HashMap, VecDeque};

use super::snapshot::Snapshot;
use super::ROW_OVERHEAD;

/// Exact vectors a snapshot too large to hold them all keeps, of rows lately shortlisted (6 MB
/// at 384 dimensions): what the same search again, or one near it, scores without reading D1,
/// even where near-duplicates make shortlists of hundreds.
pub(crate) const EXACT_CAPACITY: usize = 4_096;
/// A snapshot whose exact vectors take at most this holds them all (16,384 rows of 384
/// dimensions, 8,192 of 768), read in chunks beside its catch-ups: its searches then read
/// nothing more than the catch-up. A larger one reads its shortlist's from D1.
pub(crate) const EXACT_RESIDENT_BYTES: usize = 24 << 20;

impl Snapshot {
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
    pub(super) fn resident(&self) -> bool {
        self.len() * self.dims * 4 <= self.resident_bytes
    }
}

/// The exact (normalised) vectors of a snapshot's rows, by record id: all of them for a table
/// that fits [`EXACT_RESIDENT_BYTES`], else those searches shortlisted lately, at most
/// [`EXACT_CAPACITY`], the first kept the first to go. Each is of its row's version in the
/// snapshot: a write of the row drops it.
#[derive(Debug, Default)]
pub(super) struct ExactVectors {
    /// Each vector with the stamp of its insertion.
    pub(super) vectors: HashMap<String, (u64, Vec<f32>)>,
    /// Insertions in order; an entry whose stamp is no longer its id's went already.
    pub(super) order: VecDeque<(u64, String)>,
    pub(super) stamp: u64,
    pub(super) bytes: usize,
}

impl ExactVectors {
    /// The exact vector of `id`'s version here, if it is kept.
    pub(super) fn get(&self, id: &str) -> Option<&[f32]> {
        self.vectors.get(id).map(|(_, v)| v.as_slice())
    }

    /// Keeps `vector`, then lets the first kept go down to `capacity`.
    pub(super) fn insert(&mut self, id: &str, vector: Vec<f32>, capacity: usize) {
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

    /// Drops `id`'s vector: its row was written or deleted.
    pub(super) fn remove(&mut self, id: &str) {
        if let Some((_, vector)) = self.vectors.remove(id) {
            self.bytes -= exact_bytes(id, &vector);
        }
    }
}

/// What one kept vector takes: its id, its values and the overhead of an entry.
fn exact_bytes(id: &str, vector: &[f32]) -> usize {
    id.len() + vector.len() * 4 + ROW_OVERHEAD
}
