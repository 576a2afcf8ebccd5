use super::*;
use crate::topk::{dot, normalized, top_k};

fn unit_vectors(seed: u64, n: usize, dims: usize) -> Vec<Vec<f32>> {
    crate::topk::tests::vectors(seed, n, dims)
}

/// Vectors packed near one direction (as a table of near-duplicates is): scores dense at
/// the top, where the shortlist has the most to tell apart.
fn clustered(seed: u64, n: usize, dims: usize, spread: f32) -> Vec<Vec<f32>> {
    let centre = unit_vectors(seed, 1, dims).remove(0);
    unit_vectors(seed + 1, n, dims)
        .into_iter()
        .map(|noise| {
            let v: Vec<f32> = centre
                .iter()
                .zip(&noise)
                .map(|(c, e)| c + spread * e)
                .collect();
            normalized(&v)
        })
        .collect()
}

/// The search as search-worker runs it: codes, shortlist, exact scores of the shortlist.
pub(super) fn by_codes(query: &[f32], all: &[Vec<f32>], k: usize, min: f32) -> Vec<(usize, f32)> {
    let rows: Vec<Quantized> = all.iter().map(|v| Quantized::of(v)).collect();
    let codes = QueryCodes::of(query);
    let scored: Vec<(usize, f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let (s, b) = codes.score(&StoredCodes {
                codes: &q.codes,
                scale: q.scale,
                residual: q.residual,
            });
            (i, s, b)
        })
        .collect();
    let short = shortlist(&scored, k, min);
    top_k(
        query,
        short.into_iter().map(|i| (i, all[i].as_slice())),
        k,
        min,
    )
}

pub(super) fn exact(query: &[f32], all: &[Vec<f32>], k: usize, min: f32) -> Vec<(usize, f32)> {
    top_k(
        query,
        all.iter().enumerate().map(|(i, v)| (i, v.as_slice())),
        k,
        min,
    )
}

#[test]
fn the_residual_bounds_the_distance_to_the_codes() {
    for (seed, dims) in [(1, 384), (2, 768), (3, 1024), (4, 3), (5, 17)] {
        for v in unit_vectors(seed, 50, dims) {
            let q = Quantized::of(&v);
            let distance: f64 = v
                .iter()
                .zip(&q.codes)
                .map(|(x, c)| (f64::from(*x) - f64::from(q.scale) * f64::from(*c)).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(f64::from(q.residual) >= distance, "{dims} dims");
            assert!(q.residual < 0.02, "{dims} dims: {}", q.residual);
            assert!(
                q.codes.iter().any(|c| c.abs() == 127),
                "the largest is ±127"
            );
        }
    }
}

#[test]
fn the_bound_holds_for_every_pair() {
    for (seed, dims) in [(11, 384), (12, 768), (13, 1024), (14, 5)] {
        let all = unit_vectors(seed, 200, dims);
        let queries = unit_vectors(seed + 50, 20, dims);
        for query in &queries {
            let codes = QueryCodes::of(query);
            for v in &all {
                let stored = Quantized::of(v);
                let (score, bound) = codes.score(&StoredCodes {
                    codes: &stored.codes,
                    scale: stored.scale,
                    residual: stored.residual,
                });
                let exact = f64::from(dot(query, v));
                assert!(
                    (score - exact).abs() <= bound,
                    "{dims} dims: {score} vs {exact}"
                );
            }
        }
    }
}

#[test]
fn the_codes_answer_exactly_as_the_exact_scan() {
    let cases = [
        (21, 2_000, 384, 10, -1.0, None),
        (22, 1_000, 768, 100, -1.0, None),
        (23, 500, 1024, 1, 0.0, None),
        (24, 300, 384, 10, 0.05, None),
        (25, 1_000, 384, 10, -1.0, Some(0.05)),
        (26, 1_000, 384, 50, 0.9, Some(0.02)),
        (27, 40, 384, 100, -1.0, None),
        (28, 1_000, 16, 10, -1.0, Some(0.001)),
    ];
    for (seed, n, dims, k, min, spread) in cases {
        let all = match spread {
            Some(spread) => clustered(seed, n, dims, spread),
            None => unit_vectors(seed, n, dims),
        };
        for query in unit_vectors(seed + 7, 5, dims) {
            let fast = by_codes(&query, &all, k, min);
            let reference = exact(&query, &all, k, min);
            assert_eq!(fast.len(), reference.len(), "seed {seed}");
            for ((i, s), (j, r)) in fast.iter().zip(&reference) {
                assert_eq!((i, s.to_bits()), (j, r.to_bits()), "seed {seed}");
            }
        }
    }
}

#[test]
fn ties_and_zero_vectors_answer_as_the_exact_scan() {
    let a = normalized(&[1.0, 2.0, 3.0, 4.0]);
    let b = normalized(&[-4.0, 0.5, 0.0, 1.0]);
    let zero = vec![0.0; 4];
    let all = vec![b.clone(), a.clone(), zero.clone(), a.clone(), a.clone(), b];
    for query in [a, zero] {
        for k in [0, 1, 2, 3, 6, 10] {
            assert_eq!(
                by_codes(&query, &all, k, -1.0),
                exact(&query, &all, k, -1.0),
                "k {k}"
            );
        }
    }
}

#[test]
fn a_shortlist_keeps_what_may_rank_and_drops_what_cannot() {
    // (index, score, bound), in halves and quarters so the sums are exact: lower bounds
    // 0.75, 0.5, 0.25, 0; upper bounds 1, 0.75, 0.5, 0.25.
    let scored = [
        (0, 0.875, 0.125),
        (1, 0.625, 0.125),
        (2, 0.375, 0.125),
        (3, 0.125, 0.125),
    ];
    assert_eq!(
        shortlist(&scored, 1, -1.0),
        vec![0, 1],
        "an upper bound equal to the floor"
    );
    assert_eq!(shortlist(&scored, 2, -1.0), vec![0, 1, 2]);
    assert_eq!(shortlist(&scored, 4, -1.0), vec![0, 1, 2, 3]);
    assert_eq!(
        shortlist(&scored, 10, -1.0),
        vec![0, 1, 2, 3],
        "fewer than k"
    );
    assert_eq!(
        shortlist(&scored, 10, 0.6),
        vec![0, 1],
        "the floor counts too"
    );
    assert!(shortlist(&scored, 0, -1.0).is_empty());
}

#[test]
fn the_text_form_round_trips_and_refuses_what_it_did_not_write() {
    let v = unit_vectors(31, 1, 384).remove(0);
    let q = Quantized::of(&v);
    let text = q.to_text();
    assert_eq!(text.len(), 524, "393 bytes in base64, no padding");
    assert_eq!(Quantized::from_text(&text).unwrap(), q);
    assert!(Quantized::from_text("not base64!").is_err());
    assert!(Quantized::from_text(&STANDARD_NO_PAD.encode([2, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
    assert!(Quantized::from_text(&STANDARD_NO_PAD.encode([1, 0, 0])).is_err());
}

#[test]
fn code_sums_are_exact_at_the_largest_codes() {
    for dims in [1, 15, 16, 17, 384, 1024] {
        let q = QueryCodes::of(&normalized(&vec![1.0; dims]));
        let codes = vec![127i8; dims];
        let expected: i64 = q.codes.iter().map(|d| 127 * i64::from(*d)).sum();
        assert_eq!(
            i64::from(code_dot(&codes, &q.codes)),
            expected,
            "{dims} dims"
        );
    }
}

/// The shortlist is only worth its scan if it is short: on a table of spread-out vectors the
/// bound is under six thousandths (its residual, about 0.0044 at 384 dimensions, and little
/// more), so few rows beyond the top 10 are read exactly (about 15 of 2,000).
#[test]
fn the_bound_is_tight_enough_that_the_shortlist_is_short() {
    let all = unit_vectors(41, 2_000, 384);
    for query in unit_vectors(42, 5, 384) {
        let codes = QueryCodes::of(&query);
        let scored: Vec<(usize, f64, f64)> = all
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let q = Quantized::of(v);
                let (s, b) = codes.score(&StoredCodes {
                    codes: &q.codes,
                    scale: q.scale,
                    residual: q.residual,
                });
                assert!(b < 0.006, "bound {b} for residual {}", q.residual);
                (i, s, b)
            })
            .collect();
        let short = shortlist(&scored, 10, -1.0);
        assert!(short.len() < 40, "{} of 2,000 rows", short.len());
    }
}

/// A stored vector that is not finite cannot be scored by its codes: it makes every shortlist
/// (its residual is infinite), where its exact score decides. A zero vector's codes are exact.
#[test]
fn a_vector_that_is_not_finite_always_makes_the_shortlist() {
    let good = Quantized::of(&normalized(&[1.0, 1.0, 1.0]));
    for broken in [vec![f32::NAN, 0.5, 0.5], vec![0.5, f32::INFINITY, 0.0]] {
        let broken = Quantized::of(&broken);
        assert!(broken.residual.is_infinite());
        for query in [normalized(&[1.0, 1.0, 1.0]), vec![1.0, 0.0, 0.0]] {
            let codes = QueryCodes::of(&query);
            let scored: Vec<(usize, f64, f64)> = [&good, &broken, &good]
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let (s, b) = codes.score(&StoredCodes {
                        codes: &q.codes,
                        scale: q.scale,
                        residual: q.residual,
                    });
                    (i, s, b)
                })
                .collect();
            assert!(
                shortlist(&scored, 1, 0.5).contains(&1),
                "{broken:?}, {query:?}"
            );
        }
    }
    let zero = Quantized::of(&[0.0; 3]);
    assert_eq!((zero.scale, zero.residual), (0.0, 0.0));
}

/// The query's codes are as fine as an i32 sum allows: `127·dims·|d| ≤ i32::MAX`, at most
/// i16's 32,767; the largest component takes the largest code.
#[test]
fn query_codes_are_as_fine_as_the_sum_allows() {
    for (dims, largest) in [(1, 32_767), (384, 32_767), (528, 32_025), (1024, 16_513)] {
        let mut q = vec![0.01f32; dims];
        q[dims / 2] = -1.0;
        let codes = QueryCodes::of(&normalized(&q));
        assert_eq!(codes.codes[dims / 2], -largest, "{dims} dims");
        assert!(127 * i64::try_from(dims).unwrap() * i64::from(largest) <= i64::from(i32::MAX));
        if dims > 1 {
            let step = 0.01 * f64::from(largest);
            assert!(
                (f64::from(codes.codes[0]) - step).abs() <= 1.0,
                "{dims} dims: the others in proportion"
            );
        }
    }
}

/// A zero query scores every row 0, and what that may be off by is the f32 scan's rounding
/// alone; a query that is not finite is not scored by its codes (0), and every row makes the
/// shortlist.
#[test]
fn a_zero_query_scores_zero_and_a_broken_one_shortlists_everything() {
    let row = Quantized::of(&normalized(&[3.0, 4.0, 0.0]));
    let stored = StoredCodes {
        codes: &row.codes,
        scale: row.scale,
        residual: row.residual,
    };
    let (score, bound) = QueryCodes::of(&[0.0; 3]).score(&stored);
    assert!(score.abs() < f64::MIN_POSITIVE, "{score}");
    assert!(bound < 1e-6, "{bound}");
    for broken in [[f32::NAN, 1.0, 0.0], [0.0, f32::INFINITY, 0.0]] {
        let (score, bound) = QueryCodes::of(&broken).score(&stored);
        assert!(
            score.abs() < f64::MIN_POSITIVE,
            "{broken:?}: not scored by codes"
        );
        assert_eq!(
            shortlist(&[(0, 1.0, 0.0), (1, score, bound)], 1, 0.5),
            vec![0, 1],
            "{broken:?}"
        );
    }
}

/// Where the codes are exact (a query along one axis, rows of whole codes), all that is left of
/// the bound is the f32 scan's worst rounding: γ(n+1)·|q|, γ(m) = m·u/(1 − m·u), u = 2⁻²⁴, with
/// a tenth of a percent and a billionth to spare, and no more.
#[test]
#[allow(clippy::cast_precision_loss)]
fn with_exact_codes_the_bound_is_the_f32_scans_rounding() {
    for dims in [1, 16, 384, 1024] {
        let mut axis = vec![0.0f32; dims];
        axis[0] = 1.0;
        let codes = QueryCodes::of(&axis);
        let m = (dims + 1) as f64 * 2f64.powi(-24);
        let gamma = m / (1.0 - m);
        let bound = codes.bound(0.0);
        assert!(
            bound >= gamma * 1.001 && bound <= gamma * 1.0011 + 1.1e-9,
            "{dims} dims: {bound} against γ {gamma}"
        );
    }
}

/// Where the stored codes are exact and the query's error lies along the stored vector (the
/// query's smaller component rounds by half a step, the other not at all), the query's own
/// coding error is all the score is off by: the bound must hold it, and need hold little more.
#[test]
fn the_bound_covers_the_querys_own_coding_error() {
    let stored = Quantized::of(&[1.0, 0.0]);
    // 0.8 takes the code 32,767 exactly; 0.6 falls 0.49 of a step past the code 24,575.
    #[allow(clippy::cast_possible_truncation)]
    let query = [(0.8 / 32_767.0 * 24_575.49) as f32, 0.8];
    let codes = QueryCodes::of(&query);
    let (score, bound) = codes.score(&StoredCodes {
        codes: &stored.codes,
        scale: stored.scale,
        residual: stored.residual,
    });
    let error = (score - f64::from(dot(&query, &[1.0, 0.0]))).abs();
    assert!(error > 1e-5, "the case is what it says: {error}");
    assert!(
        error <= bound && bound < error + 1e-6,
        "{error} against {bound}"
    );
}

#[test]
fn each_unit_of_a_stored_residual_widens_the_bound_by_the_query_and_its_coding_error() {
    // A stored vector is its codes' vector plus an error of length at most ρ: the query meets
    // that error (|q|·ρ), and the query's own coding error (ρq) meets the stored vector, of
    // length at most 1 + ρ. So each unit of ρ must widen the bound by |q| + ρq at least.
    let query: Vec<f32> = (0..384u16)
        .map(|i| f32::from(i % 7) - 3.0)
        .collect::<Vec<_>>();
    let query = crate::topk::normalized(&query);
    let codes = QueryCodes::of(&query);
    assert!(codes.residual > 0.0, "the query's codes are not exact");
    for residual in [1e-4_f32, 1e-2, 0.5] {
        let widened = codes.bound(residual) - codes.bound(0.0);
        let least = (codes.norm + codes.residual) * f64::from(residual);
        assert!(
            widened >= least * (1.0 - 1e-12),
            "at ρ = {residual}: {widened} < {least}"
        );
    }
}
