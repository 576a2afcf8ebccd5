//! What a search's catch-up brings into a snapshot: the rows written since it last looked, in
//! `seq` order, and, while the table is small enough to hold every exact vector, the next chunk
//! of its exact layer, read in the same round trip.

use shared::quantized::Quantized;
use shared::topk::normalized;
use shared::vector::decode_hex;
use worker_kit::Fault;

use super::snapshot::{Refused, Snapshot, TableTooLarge};
use super::{json_bytes, ROW_OVERHEAD};
use crate::ports::{ExactRow, VectorRow, FILL_CHUNK};

impl Snapshot {
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
}
