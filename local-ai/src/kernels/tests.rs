//! The kernels against their definitions: the element functions against f64, and each row loop
//! and product against a plain computation of what it stands for.

use super::math::{erf, exp};
use super::matmul::{BiasMatMul, MatMul};
use super::rows::{exp_rows, residual_norm_rows, scale_rows};

#[test]
fn exp_is_accurate_over_the_softmax_range() {
    for i in 0..=20_000 {
        #[allow(clippy::cast_possible_truncation)]
        let x = (-87.0 + f64::from(i) * 87.0 / 20_000.0) as f32;
        let ours = f64::from(exp(x));
        let exact = f64::from(x).exp();
        assert!(
            (ours - exact).abs() <= 3e-7 * exact + 1e-37,
            "exp({x}) = {ours}, not {exact}"
        );
    }
}

/// The formula is good to 3e-7; in f32 its 16th power amplifies rounding to about 1e-6.
#[test]
fn erf_is_accurate() {
    for i in -8000..=8000 {
        let x = f64::from(i) / 1000.0;
        #[allow(clippy::cast_possible_truncation)]
        let ours = f64::from(erf(x as f32));
        assert!((ours - libm_erf(x)).abs() < 2e-6, "erf({x}) = {ours}");
    }
}

/// erf by its Taylor series, summed until it converges: slow and exact enough for |x| <= 8.
fn libm_erf(x: f64) -> f64 {
    if x.abs() > 5.0 {
        return x.signum();
    }
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / f64::from(n);
        sum += term / f64::from(2 * n + 1);
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
#[allow(clippy::cast_precision_loss)]
fn residual_norm_matches_its_definition() {
    // Two rows of 20 (a full block and a tail); bias, weight and shift vary per column.
    let width = 20;
    let projected: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
    let residual: Vec<f32> = (0..40).map(|i| (i as f32 * 0.11).cos()).collect();
    let params: Vec<f32> = (0..60).map(|i| 0.5 + (i as f32 * 0.05)).collect();
    let mut out = projected.clone();
    residual_norm_rows(&mut out, &residual, &params, 1e-12);
    for row in 0..2 {
        let y: Vec<f32> = (0..width)
            .map(|c| projected[row * width + c] + residual[row * width + c] + params[c])
            .collect();
        let mean = y.iter().sum::<f32>() / width as f32;
        let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / width as f32;
        for c in 0..width {
            let expected = (y[c] - mean) / var.sqrt() * params[width + c] + params[2 * width + c];
            assert!(
                (out[row * width + c] - expected).abs() < 1e-5,
                "row {row} col {c}"
            );
        }
    }
}

/// Products split over the cores by columns, checked element by element against the sums
/// they stand for: column counts that do not split evenly, or into whole blocks of
/// [`LANES`], few rows and many, with a bias and without.
#[test]
fn products_split_by_columns_match_their_definition() {
    use candle_core::{Device, Tensor};
    for (rows, inner, columns) in [(3, 384, 1152), (17, 256, 300), (130, 384, 200), (5, 8, 24)] {
        #[allow(clippy::cast_precision_loss)]
        let x: Vec<f32> = (0..rows * inner)
            .map(|i| (i as f32 * 0.013).sin())
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let w: Vec<f32> = (0..inner * columns)
            .map(|i| (i as f32 * 0.007).cos())
            .collect();
        #[allow(clippy::cast_precision_loss)]
        let bias: Vec<f32> = (0..columns).map(|i| i as f32 * 0.01 - 1.0).collect();
        let device = Device::Cpu;
        let xs = Tensor::from_vec(x.clone(), (rows, inner), &device).unwrap();
        let ws = Tensor::from_vec(w.clone(), (inner, columns), &device).unwrap();
        let bs = Tensor::from_vec(bias.clone(), columns, &device).unwrap();
        let plain: Vec<f32> = xs
            .apply_op2_no_bwd(&ws, &MatMul)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let biased: Vec<f32> = xs
            .apply_op3_no_bwd(&ws, &bs, &BiasMatMul)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for r in 0..rows {
            for c in 0..columns {
                let sum: f64 = (0..inner)
                    .map(|k| f64::from(x[r * inner + k]) * f64::from(w[k * columns + c]))
                    .sum();
                let at = r * columns + c;
                let tolerance = 1e-4 * (1.0 + sum.abs());
                assert!(
                    (f64::from(plain[at]) - sum).abs() < tolerance,
                    "{rows}x{inner}x{columns}: ({r}, {c}) is {}, not {sum}",
                    plain[at]
                );
                let with_bias = sum + f64::from(bias[c]);
                assert!(
                    (f64::from(biased[at]) - with_bias).abs() < tolerance,
                    "{rows}x{inner}x{columns} with bias: ({r}, {c}) is {}, not {with_bias}",
                    biased[at]
                );
            }
        }
    }
}

#[test]
fn exp_rows_then_scale_rows_is_softmax() {
    // Two rows of 20 (a full block and a tail), one with a large spread.
    let width = 20;
    #[allow(clippy::cast_precision_loss)]
    let scores: Vec<f32> = (0..40)
        .map(|i| (i as f32 * 0.7).sin() * if i < 20 { 3.0 } else { 60.0 })
        .collect();
    let mut weights = scores.clone();
    let mut inverse_sums = [0.0f32; 2];
    exp_rows(&mut weights, width, &mut inverse_sums);
    scale_rows(&mut weights, width, &inverse_sums);
    for row in 0..2 {
        let x = &scores[row * width..][..width];
        let max = x.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
        let sum: f64 = x.iter().map(|v| f64::from(v - max).exp()).sum();
        for c in 0..width {
            let expected = f64::from(x[c] - max).exp() / sum;
            let got = f64::from(weights[row * width + c]);
            assert!(
                (got - expected).abs() < 1e-6,
                "row {row} col {c}: {got} vs {expected}"
            );
        }
    }
}
