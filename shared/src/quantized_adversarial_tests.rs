//! The property that keeps the D1 shortlist exact, on tables built to break it: the search by
//! codes answers as a brute-force f64 scan (`shared::quantized`).

use super::tests::{by_codes, exact};
use crate::test_rng::Rng;
use crate::topk::normalized;
use crate::topk::tests::{brute_force, naive_dot};

/// A table built to make the codes' scores hard to tell apart, and a query for it: rows within
/// the quantization error of one another, rows where one dimension dominates (so the others
/// round to a code of 0 or ±1), exact duplicates and zero vectors, mixed.
fn adversarial(rng: &mut Rng) -> (Vec<Vec<f32>>, Vec<f32>) {
    let dims = rng.pick(&[1, 2, 3, 8, 16, 17, 64, 384]);
    let n = 1 + rng.below(120);
    let centre = normalized(&rng.noise(dims));
    let mut rows: Vec<Vec<f32>> = Vec::with_capacity(n);
    while rows.len() < n {
        let row = match rng.below(5) {
            // A near-tie: the centre moved by far less than a code step (about 1/127).
            0 => {
                let spread = rng.pick(&[1e-6, 1e-5, 1e-4, 1e-3]);
                let noise = rng.noise(dims);
                normalized(
                    &centre
                        .iter()
                        .zip(&noise)
                        .map(|(c, e)| c + spread * e)
                        .collect::<Vec<_>>(),
                )
            }
            // Skewed: one dimension carries nearly all the length.
            1 => {
                let small = rng.pick(&[1e-4, 1e-3, 1e-2]);
                let mut v: Vec<f32> = rng.noise(dims).iter().map(|x| x * small).collect();
                let big = rng.below(dims);
                v[big] = if rng.below(2) == 0 { 1.0 } else { -1.0 };
                normalized(&v)
            }
            // A duplicate of a row already in the table, to the bit.
            2 if !rows.is_empty() => rows[rng.below(rows.len())].clone(),
            3 if rng.below(4) == 0 => vec![0.0; dims],
            _ => normalized(&rng.noise(dims)),
        };
        rows.push(row);
    }
    let query = match rng.below(4) {
        // The centre itself: every near-tie scores within the codes' error of 1.
        0 => centre,
        // Skewed towards one dimension, which the skewed rows mostly hold as a code of 0.
        1 => {
            let mut q: Vec<f32> = rng.noise(dims).iter().map(|x| x * 1e-3).collect();
            q[rng.below(dims)] = 1.0;
            normalized(&q)
        }
        2 => rows[rng.below(n)].clone(),
        _ => normalized(&rng.noise(dims)),
    };
    (rows, query)
}

/// Property: on adversarial tables, the search by codes answers as a brute-force f64 scan.
///
/// The tie rule: answers are compared by score. The answer's scores are f32 sums, each within
/// `tolerance` (the f32 sum's rounding at this dimension) of the f64 score, so its i-th score is
/// within `tolerance` of the reference's i-th; a row may stand where the reference has another
/// only when their f64 scores are within twice that (rounding may order them either way); and
/// rows of equal score (duplicates, zero vectors) come lower index first. The floor is either
/// below every score or halfway between two scores further apart than the rounding, so both
/// sides agree on who reaches it. Beside that, the answer is the exact f32 scan's, to the bit.
#[test]
#[allow(clippy::cast_precision_loss)]
fn on_adversarial_tables_the_codes_answer_as_a_brute_force_f64_scan() {
    let mut rng = Rng(0x5eed_5407_7157_0f0f);
    for case in 0..300 {
        let (rows, query) = adversarial(&mut rng);
        let n = rows.len();
        let dims = query.len();
        let tolerance = (dims + 1) as f64 * f64::from(f32::EPSILON) + 1e-12;
        let k = rng.pick(&[1, 2, 3, 5, 10, n, n + 3]);
        let all = brute_force(&query, &rows, n, -2.0);
        let gaps: Vec<f64> = all
            .windows(2)
            .filter(|w| w[0].1 - w[1].1 > 4.0 * tolerance)
            .map(|w| f64::midpoint(w[0].1, w[1].1))
            .collect();
        #[allow(clippy::cast_possible_truncation)]
        let min = if gaps.is_empty() || rng.below(2) == 0 {
            -2.0
        } else {
            rng.pick(&gaps) as f32
        };
        let context = format!("case {case}: {n} rows of {dims} dims, k {k}, floor {min}");

        let answer = by_codes(&query, &rows, k, min);
        assert_eq!(answer, exact(&query, &rows, k, min), "{context}");

        let expected = brute_force(&query, &rows, k, min);
        assert_eq!(answer.len(), expected.len(), "{context}");
        let f64_score = |i: usize| naive_dot(&query, &rows[i]);
        for (rank, ((i, score), (j, expected_score))) in answer.iter().zip(&expected).enumerate() {
            assert!(
                (f64::from(*score) - expected_score).abs() <= tolerance,
                "{context}: rank {rank} scores {score}, the reference {expected_score}"
            );
            assert!(
                i == j || (f64_score(*i) - f64_score(*j)).abs() <= 2.0 * tolerance,
                "{context}: rank {rank} is row {i}, the reference's row {j}"
            );
        }
        for pair in answer.windows(2) {
            if pair[0].1.to_bits() == pair[1].1.to_bits() {
                assert!(
                    pair[0].0 < pair[1].0,
                    "{context}: equal scores, lower index first"
                );
            }
        }
    }
}
