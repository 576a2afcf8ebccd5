//! Exact top-k by cosine similarity: the D1 backend's search.
//!
//! Vectors are unit length when they are stored in a [`Normalized`] set, so a score is one dot
//! product. The k best are kept in a small binary heap; ties are broken by the candidates'
//! order (the earlier wins), so the same vectors give the same answer every time.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A vector scaled to unit length (a zero vector stays zero and scores 0 against everything).
/// The norm is taken in f64, so that neither huge components (whose squares overflow an f32)
/// nor tiny ones (whose squares vanish) change the direction.
pub fn normalized(vector: &[f32]) -> Vec<f32> {
    let norm = vector
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 {
        return vector.to_vec();
    }
    // Each quotient is at most 1 in magnitude: the cast only rounds.
    #[allow(clippy::cast_possible_truncation)]
    vector
        .iter()
        .map(|x| (f64::from(*x) / norm) as f32)
        .collect()
}

/// The dot product, summed in eight lanes: lane `i` adds the products of every `i`th value of
/// eight, the lanes are folded in a fixed order, and the tail is added last. The order of the
/// sums is the same in every build, so native and wasm code give the same score to the bit.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    let lanes = lanes(a_chunks, b_chunks);
    let half = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    (half[0] + half[2]) + (half[1] + half[3]) + tail
}

const LANES: usize = 8;

/// The eight lane sums, as plain Rust: the native compilers vectorise this shape.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
fn lanes(a: std::slice::ChunksExact<'_, f32>, b: std::slice::ChunksExact<'_, f32>) -> [f32; LANES] {
    let mut lanes = [0.0f32; LANES];
    for (x, y) in a.zip(b) {
        for i in 0..LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use simd128::lanes;

/// The wasm build's SIMD, apart: the native tests (and cargo-mutants) never compile it.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    use super::LANES;

    /// The eight lane sums in two f32x4 registers, one full-width multiply and add each per eight
    /// values (left to itself, LLVM turns the plain loop into half-width operations on wasm). Wasm
    /// has no fused multiply-add, so each lane rounds exactly as the plain loop does.
    pub(super) fn lanes(
        a: std::slice::ChunksExact<'_, f32>,
        b: std::slice::ChunksExact<'_, f32>,
    ) -> [f32; LANES] {
        use core::arch::wasm32::{f32x4, f32x4_add, f32x4_extract_lane, f32x4_mul, f32x4_splat};
        let (mut low, mut high) = (f32x4_splat(0.0), f32x4_splat(0.0));
        for (x, y) in a.zip(b) {
            let product = |i: usize| {
                f32x4_mul(
                    f32x4(x[i], x[i + 1], x[i + 2], x[i + 3]),
                    f32x4(y[i], y[i + 1], y[i + 2], y[i + 3]),
                )
            };
            low = f32x4_add(low, product(0));
            high = f32x4_add(high, product(4));
        }
        [
            f32x4_extract_lane::<0>(low),
            f32x4_extract_lane::<1>(low),
            f32x4_extract_lane::<2>(low),
            f32x4_extract_lane::<3>(low),
            f32x4_extract_lane::<0>(high),
            f32x4_extract_lane::<1>(high),
            f32x4_extract_lane::<2>(high),
            f32x4_extract_lane::<3>(high),
        ]
    }
}

/// A scored candidate in the heap: the worst at the top, so it is the one replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scored {
    score: f32,
    index: usize,
}

impl Eq for Scored {}

impl Ord for Scored {
    /// Better = higher score, then lower index.
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.index.cmp(&self.index))
    }
}

impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The `k` best of `candidates` (index, unit vector) against the unit vector `query`, best
/// first, with their scores; only candidates scoring at least `min_score` count.
pub fn top_k<'a>(
    query: &[f32],
    candidates: impl IntoIterator<Item = (usize, &'a [f32])>,
    k: usize,
    min_score: f32,
) -> Vec<(usize, f32)> {
    best(
        candidates
            .into_iter()
            .map(|(index, vector)| (index, dot(query, vector))),
        k,
        min_score,
    )
}

/// The `k` best of `scored` (index, score), best first; only those scoring at least
/// `min_score` count, and of equal scores the lower index wins.
pub fn best(
    scored: impl IntoIterator<Item = (usize, f32)>,
    k: usize,
    min_score: f32,
) -> Vec<(usize, f32)> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(k + 1);
    for (index, score) in scored {
        if score < min_score {
            continue;
        }
        let scored = Scored { score, index };
        if heap.len() < k {
            heap.push(Reverse(scored));
        } else if heap.peek().is_some_and(|worst| scored > worst.0) {
            heap.pop();
            heap.push(Reverse(scored));
        }
    }
    let mut best: Vec<Scored> = heap.into_iter().map(|r| r.0).collect();
    best.sort_by(|a, b| b.cmp(a));
    best.into_iter().map(|s| (s.index, s.score)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `n` unit vectors of `dims` from a deterministic generator, so failures repeat.
    pub(crate) fn vectors(seed: u64, n: usize, dims: usize) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            #[allow(clippy::cast_precision_loss)]
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        };
        (0..n)
            .map(|_| normalized(&(0..dims).map(|_| next()).collect::<Vec<_>>()))
            .collect()
    }

    /// The reference dot product: one sum, in f64, shaped nothing like [`dot`].
    pub(crate) fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    /// The reference: score everything with [`naive_dot`], sort by score then index.
    pub(crate) fn brute_force(
        query: &[f32],
        all: &[Vec<f32>],
        k: usize,
        min: f32,
    ) -> Vec<(usize, f64)> {
        let mut scored: Vec<(usize, f64)> = all
            .iter()
            .enumerate()
            .map(|(i, v)| (i, naive_dot(query, v)))
            .filter(|(_, s)| *s >= f64::from(min))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }

    /// Whether a fast answer is the reference's: the same scores (to f32 rounding) and the same
    /// candidates, except that two scores closer than rounding may trade places.
    fn same_ranking(fast: &[(usize, f32)], reference: &[(usize, f64)]) -> bool {
        fast.len() == reference.len()
            && fast.iter().zip(reference).all(|((i, s), (j, r))| {
                let close = (f64::from(*s) - r).abs() < 1e-5;
                close
                    && (i == j
                        || reference
                            .iter()
                            .any(|(k, t)| k == i && (t - r).abs() < 1e-5))
            })
    }

    #[test]
    fn equals_brute_force_on_random_vectors() {
        for (seed, n, dims, k, min) in [
            (1, 1_000, 384, 10, -1.0),
            (2, 500, 33, 50, 0.0),
            (3, 50, 8, 100, -1.0),
            (4, 300, 768, 1, 0.1),
        ] {
            let all = vectors(seed, n, dims);
            let query = vectors(seed + 100, 1, dims).remove(0);
            let fast = top_k(
                &query,
                all.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
                k,
                min,
            );
            assert!(
                same_ranking(&fast, &brute_force(&query, &all, k, min)),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn ties_go_to_the_earlier_candidate_every_time() {
        let same = normalized(&[1.0, 2.0, 3.0]);
        let other = normalized(&[-1.0, 0.0, 0.5]);
        let all = [
            other.clone(),
            same.clone(),
            same.clone(),
            same.clone(),
            other,
        ];
        let result = top_k(
            &same,
            all.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            2,
            -1.0,
        );
        assert_eq!(result.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!(same_ranking(&result, &brute_force(&same, &all, 2, -1.0)));
        assert!(top_k(
            &same,
            all.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            0,
            -1.0
        )
        .is_empty());
    }

    #[test]
    fn a_score_equal_to_the_floor_counts() {
        let all = [vec![1.0, 0.0], vec![0.0, 1.0], vec![-1.0, 0.0]];
        let found = top_k(
            &[1.0, 0.0],
            all.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
            10,
            0.0,
        );
        assert_eq!(found, vec![(0, 1.0), (1, 0.0)]);
    }

    #[test]
    fn unit_vectors_score_their_cosine() {
        let a = normalized(&[3.0, 4.0]);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-6);
        assert!((dot(&a, &normalized(&[4.0, -3.0]))).abs() < 1e-6);
        assert_eq!(normalized(&[0.0, 0.0]), vec![0.0, 0.0]);
        // Scale does not change a direction, however large or small.
        for scale in [1e-30_f32, 1.0, 1e30, f32::MAX / 8.0] {
            let scaled = normalized(&[3.0 * scale, 4.0 * scale]);
            assert!(
                (scaled[0] - 0.6).abs() < 1e-6 && (scaled[1] - 0.8).abs() < 1e-6,
                "{scale}: {scaled:?}"
            );
        }
    }

    #[test]
    #[allow(clippy::cast_precision_loss)]
    fn dot_is_the_dot_product_at_every_length() {
        // Lengths across the eight lanes and their remainder, with uneven values in every lane.
        for dims in [0, 1, 7, 8, 9, 15, 16, 17, 31, 64, 100, 384, 768] {
            let v = vectors(dims as u64 + 7, 2, dims);
            let (a, b): (Vec<f32>, Vec<f32>) = (
                v[0].iter()
                    .enumerate()
                    .map(|(i, x)| x * (i + 1) as f32)
                    .collect(),
                v[1].iter()
                    .enumerate()
                    .map(|(i, x)| x - i as f32 / 7.0)
                    .collect(),
            );
            let (fast, reference) = (f64::from(dot(&a, &b)), naive_dot(&a, &b));
            assert!(
                (fast - reference).abs() <= 1e-4 * reference.abs().max(1.0),
                "{dims} dimensions: {fast} vs {reference}"
            );
        }
    }
}
