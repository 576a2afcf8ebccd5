//! The row loops the kernels run on each task's rows, in fixed blocks of [`LANES`] that the
//! compiler turns into vector code, each built for AVX-512, AVX2+FMA and the baseline and chosen
//! at run time.

use super::math::{exp, gelu};

/// Runs `$body` (a closure-free block using only inline helpers) compiled for
/// AVX-512, AVX2+FMA or the baseline, whichever the CPU has.
macro_rules! multiversion {
    ($vis:vis $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn generic($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) { generic($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) { generic($($arg),*) }
                if is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    #[allow(unsafe_code)]
                    return unsafe { avx512($($arg),*) };
                }
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA, checked just above.
                    #[allow(unsafe_code)]
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

/// Lanes per block: one AVX-512 register of f32. Loops over fixed-size blocks are what the
/// compiler turns into vector code; the remainder of a row goes one value at a time.
pub(super) const LANES: usize = 16;

multiversion!(pub(super) bias_gelu_rows(out: &mut [f32], bias: &[f32]) {
    for row in out.chunks_exact_mut(bias.len()) {
        let mut xs = row.chunks_exact_mut(LANES);
        let mut bs = bias.chunks_exact(LANES);
        for (x, b) in xs.by_ref().zip(bs.by_ref()) {
            for i in 0..LANES {
                x[i] = gelu(x[i] + b[i]);
            }
        }
        for (x, b) in xs.into_remainder().iter_mut().zip(bs.remainder()) {
            *x = gelu(*x + b);
        }
    }
});

/// The block of [`LANES`] values of `src` from `start`, padded with `pad` past its end, and how
/// many are real: every block, the last one too, then runs as vector code.
#[inline(always)]
fn block(src: &[f32], start: usize, pad: f32) -> ([f32; LANES], usize) {
    let len = LANES.min(src.len() - start);
    let mut values = [pad; LANES];
    values[..len].copy_from_slice(&src[start..start + len]);
    (values, len)
}

// Each row of `out` (`width` wide) becomes `exp(x - its max)`, and `inverse_sums` one over its
// sum: softmax, once each row is scaled by it ([`scale_rows`]), which attention does after the
// weights' product with the values.
multiversion!(pub(super) exp_rows(out: &mut [f32], width: usize, inverse_sums: &mut [f32]) {
    for (row, inverse_sum) in out.chunks_exact_mut(width).zip(inverse_sums.iter_mut()) {
        let mut lanes = [f32::NEG_INFINITY; LANES];
        for start in (0..width).step_by(LANES) {
            let (x, _) = block(row, start, f32::NEG_INFINITY);
            for j in 0..LANES {
                lanes[j] = lanes[j].max(x[j]);
            }
        }
        let max = lanes.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));

        // Whole blocks in place; the tail through a padded block, its lanes past the row's end
        // weighing nothing.
        let mut sums = [0.0f32; LANES];
        let mut blocks = row.chunks_exact_mut(LANES);
        for x in blocks.by_ref() {
            for j in 0..LANES {
                x[j] = exp(x[j] - max);
                sums[j] += x[j];
            }
        }
        let tail = blocks.into_remainder();
        if !tail.is_empty() {
            let (x, len) = block(tail, 0, f32::NEG_INFINITY);
            let mut weights = [0.0f32; LANES];
            for j in 0..LANES {
                weights[j] = if j < len { exp(x[j] - max) } else { 0.0 };
                sums[j] += weights[j];
            }
            tail.copy_from_slice(&weights[..len]);
        }
        *inverse_sum = 1.0 / sums.iter().sum::<f32>();
    }
});

// Each row of `out` (`width` wide) scaled by its own of `scales`.
multiversion!(pub(super) scale_rows(out: &mut [f32], width: usize, scales: &[f32]) {
    for (row, scale) in out.chunks_exact_mut(width).zip(scales) {
        for x in row.iter_mut() {
            *x *= scale;
        }
    }
});

multiversion!(pub(super) residual_norm_rows(out: &mut [f32], residual: &[f32], params: &[f32], eps: f32) {
    let width = params.len() / 3;
    let (bias, rest) = params.split_at(width);
    let (weight, shift) = rest.split_at(width);
    #[allow(clippy::cast_precision_loss)]
    let n = width as f32;
    for (row, res) in out.chunks_exact_mut(width).zip(residual.chunks_exact(width)) {
        let mut sums = [0.0f32; LANES];
        let mut xs = row.chunks_exact_mut(LANES);
        let (mut rs, mut bs) = (res.chunks_exact(LANES), bias.chunks_exact(LANES));
        for ((x, r), b) in xs.by_ref().zip(rs.by_ref()).zip(bs.by_ref()) {
            for j in 0..LANES {
                x[j] += r[j] + b[j];
                sums[j] += x[j];
            }
        }
        let mut sum: f32 = sums.iter().sum();
        for ((x, r), b) in xs.into_remainder().iter_mut().zip(rs.remainder()).zip(bs.remainder()) {
            *x += r + b;
            sum += *x;
        }
        let mean = sum / n;
        let mut squares = [0.0f32; LANES];
        let mut xs = row.chunks_exact(LANES);
        for x in xs.by_ref() {
            for j in 0..LANES {
                squares[j] += (x[j] - mean) * (x[j] - mean);
            }
        }
        let mut square: f32 = squares.iter().sum();
        for x in xs.remainder() {
            square += (x - mean) * (x - mean);
        }
        let inv_std = 1.0 / (square / n + eps).sqrt();
        for ((x, w), s) in row.iter_mut().zip(weight).zip(shift) {
            *x = (*x - mean) * inv_std * w + s;
        }
    }
});
