//! A query, answered exactly: every vector of the namespace that passes the filter is scored
//! (the filter is applied first, then the `topK` are taken from what passed, as "Metadata
//! filtering" says), and the best `topK` are kept. Vectorize's own scores are approximate unless
//! `returnValues` is set; the stand-in's are always exact.

use std::cmp::Ordering;

use rayon::prelude::{IntoParallelIterator, ParallelIterator};

use crate::config::Metric;
use crate::filter::Filter;
use crate::store::{norm, Store};

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub struct Scan<'a> {
    pub vector: &'a [f32],
    pub top_k: usize,
    pub namespace: Option<&'a str>,
    pub filter: Option<&'a Filter>,
}

/// A match: its row in the store and its score under the index's metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub row: usize,
    pub score: f32,
}

/// Below this many floats a scan stays on one thread: waking the pool costs more.
const PARALLEL_FLOATS: usize = 1 << 18;

pub fn search(store: &Store, metric: Metric, scan: &Scan<'_>) -> Vec<Hit> {
    let query_norm = norm(scan.vector);
    let records = store.records();
    let candidate = |row: usize| -> Option<(f32, Hit)> {
        let record = &records[row];
        if scan
            .namespace
            .is_some_and(|ns| record.namespace.as_deref() != Some(ns))
        {
            return None;
        }
        if scan.filter.is_some_and(|f| !f.matches(&record.indexed)) {
            return None;
        }
        let stored = store.row(row);
        let value = match metric {
            Metric::Cosine => {
                let denominator = query_norm * stored.norm;
                if denominator == 0.0 {
                    0.0
                } else {
                    dot(scan.vector, stored.values) / denominator
                }
            }
            Metric::Euclidean => squared_distance(scan.vector, stored.values).sqrt(),
            Metric::DotProduct => -dot(scan.vector, stored.values),
        };
        Some((closeness(metric, value), Hit { row, score: value }))
    };
    let rows = store.len();
    let mut hits: Vec<(f32, Hit)> = if rows * store.dimensions() >= PARALLEL_FLOATS {
        (0..rows).into_par_iter().filter_map(candidate).collect()
    } else {
        (0..rows).filter_map(candidate).collect()
    };
    // Closest first; equal scores in id order, so that answers repeat.
    let order = |a: &(f32, Hit), b: &(f32, Hit)| -> Ordering {
        b.0.total_cmp(&a.0)
            .then_with(|| records[a.1.row].id.cmp(&records[b.1.row].id))
    };
    if scan.top_k == 0 {
        return Vec::new();
    }
    if hits.len() > scan.top_k {
        hits.select_nth_unstable_by(scan.top_k - 1, order);
        hits.truncate(scan.top_k);
    }
    hits.sort_unstable_by(order);
    hits.into_iter().map(|(_, hit)| hit).collect()
}

/// Higher is closer, whatever the metric.
fn closeness(metric: Metric, score: f32) -> f32 {
    match metric {
        Metric::Cosine => score,
        Metric::Euclidean | Metric::DotProduct => -score,
    }
}

/// The dot product, over eight lanes so that the compiler vectorises it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            *lane += x * y;
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

pub fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for (x, y) in a8.iter().zip(b8) {
        for ((lane, x), y) in lanes.iter_mut().zip(x).zip(y) {
            let d = x - y;
            *lane += d * d;
        }
    }
    let tail: f32 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernels_match_the_plain_sums_at_every_length() {
        for len in [0u16, 1, 7, 8, 9, 31, 384] {
            let a: Vec<f32> = (0..len).map(|i| (f32::from(i) * 0.37).sin()).collect();
            let b: Vec<f32> = (0..len).map(|i| (f32::from(i) * 0.11).cos()).collect();
            let close =
                |got: f32, want: f64| (f64::from(got) - want).abs() <= 1e-5 * want.abs().max(1.0);
            let wide = |v: &[f32]| v.iter().map(|&x| f64::from(x)).collect::<Vec<_>>();
            let (wa, wb) = (wide(&a), wide(&b));
            let plain: f64 = wa.iter().zip(&wb).map(|(x, y)| x * y).sum();
            assert!(close(dot(&a, &b), plain), "{len}");
            let plain: f64 = wa.iter().zip(&wb).map(|(x, y)| (x - y) * (x - y)).sum();
            assert!(close(squared_distance(&a, &b), plain), "{len}");
        }
    }
}
