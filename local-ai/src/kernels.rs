//! The fused CPU kernels of the encoder, as candle custom ops: bias + GELU, and attention.
//! candle runs these as many passes over memory (scalar `erff` and `expf`, a zero-filled score
//! tensor, copies for every transpose). Here GELU is one pass, and attention works one
//! (text, head) at a time on a score block that stays in cache, reading queries, keys and values
//! in place from the fused projection and writing the context where the next layer reads it.
//! `exp` and `erf` are branch-free polynomials that the compiler vectorises, built again for
//! AVX-512 and AVX2 and chosen at run time.
//!
//! Every kernel splits its rows (attention: its (text, head) blocks) into one task per core on
//! rayon's pool, where there is enough work for each ([`MIN_TASK_WORK`]); the matrix product
//! ([`MatMul`]) splits its columns, so that each core reads only its share of the weights. A
//! pass alone on the machine then uses every core; passes running side by side (one per core,
//! as the batcher schedules them) find the other workers busy, and rayon runs each pass's tasks
//! on its own core, one after the other, at the cost of a few microseconds each.

// The element functions must be inlined into the per-CPU copies of each kernel (where the
// vector instructions are enabled) for the loops to vectorise: hence `inline(always)`.
#![allow(clippy::inline_always)]

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

/// Work a task of the element-wise kernels and attention has at least (multiply-adds, or about
/// as much element work): handing less to another core costs more than it saves, so a short
/// text's kernels run on one core (its products do not: see [`MatMul`]).
const MIN_TASK_WORK: usize = 1 << 23;

/// Items per task for `items` items of `work` each: one task per core of rayon's pool, none
/// smaller than [`MIN_TASK_WORK`].
fn per_task(items: usize, work: usize) -> usize {
    let fewest = MIN_TASK_WORK.div_ceil(work.max(1));
    items
        .div_ceil(rayon::current_num_threads().max(1))
        .max(fewest)
        .max(1)
}

fn as_isize(n: usize) -> isize {
    isize::try_from(n).expect("tensor strides fit isize")
}

/// `exp(x)` for the inputs of a softmax: range reduction to `[-ln2/2, ln2/2]` (Cody-Waite), a
/// degree-6 polynomial, then scaling by `2^n`. Relative error below 3e-7.
///
/// Adding 1.5 * 2^23 rounds `x log2 e` to the nearest integer `n` and leaves `n` in the low bits
/// of the sum, so `2^n` is built with integer arithmetic alone: Rust's saturating float-to-int
/// cast would turn each vector back into scalar conversions.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const SHIFTER: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + SHIFTER;
    let n = shifted - SHIFTER;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let poly = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // The low bits of `shifted` hold n (two's complement); n + 127 is within 1..=254 after the
    // clamp, and shifting it into the exponent field drops the rest.
    poly * f32::from_bits(shifted.to_bits().wrapping_add(127) << 23)
}

/// `erf(x)` by Abramowitz and Stegun 7.1.28: absolute error below 3e-7 (2e-6 once evaluated in
/// f32), no `exp` needed.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0
        + a * (0.070_523_08
            + a * (0.042_282_01
                + a * (0.009_270_527
                    + a * (0.000_152_014_3 + a * (0.000_276_567_2 + a * 0.000_043_063_8)))));
    let t2 = t * t;
    let t4 = t2 * t2;
    let t8 = t4 * t4;
    let t16 = t8 * t8;
    (1.0 - 1.0 / t16).copysign(x)
}

/// GELU as BERT defines it: `x * (1 + erf(x / sqrt 2)) / 2`.
#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Runs `$body` (a closure-free block using only the inline helpers above) compiled for
/// AVX-512, AVX2+FMA or the baseline, whichever the CPU has.
macro_rules! multiversion {
    ($name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        fn $name($($arg: $ty),*) {
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
const LANES: usize = 16;

multiversion!(bias_gelu_rows(out: &mut [f32], bias: &[f32]) {
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
multiversion!(exp_rows(out: &mut [f32], width: usize, inverse_sums: &mut [f32]) {
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

multiversion!(scale_rows(out: &mut [f32], width: usize, scales: &[f32]) {
    for (row, scale) in out.chunks_exact_mut(width).zip(scales) {
        for x in row.iter_mut() {
            *x *= scale;
        }
    }
});

multiversion!(residual_norm_rows(out: &mut [f32], residual: &[f32], params: &[f32], eps: f32) {
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

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{what} must be contiguous")))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

/// `gelu(x + bias)` over the last dimension of `x`.
#[derive(Debug, Clone, Copy)]
pub struct BiasGelu;

impl CustomOp2 for BiasGelu {
    fn name(&self) -> &'static str {
        "bias-gelu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let mut out = contiguous(s1, l1, "bias-gelu input")?.to_vec();
        let bias = contiguous(s2, l2, "bias-gelu bias")?;
        if l1.dims().last() != Some(&bias.len()) {
            candle_core::bail!(
                "bias-gelu: bias of {} for rows of {:?}",
                bias.len(),
                l1.dims()
            );
        }
        // GELU's polynomial is a few dozen operations a value.
        let rows = per_task(out.len() / bias.len().max(1), 32 * bias.len());
        out.par_chunks_mut(rows * bias.len())
            .for_each(|part| bias_gelu_rows(part, bias));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Multi-head self-attention from the fused projection `qkv` `(tokens, 3 * hidden)` (queries
/// already scaled by `1 / sqrt(head size)`) of texts packed one after another, `lengths`
/// tokens each, with no padding: each text attends to its own tokens only. Returns the context
/// `(tokens, hidden)`.
#[derive(Debug, Clone)]
pub struct Attention {
    pub heads: usize,
    pub lengths: Vec<usize>,
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, width) = l1.shape().dims2()?;
        let hidden = width / 3;
        if rows != self.lengths.iter().sum::<usize>() || width % 3 != 0 || hidden % self.heads != 0
        {
            candle_core::bail!(
                "attention: qkv {:?} for texts of {:?} tokens and {} heads",
                l1.dims(),
                self.lengths,
                self.heads
            );
        }
        let qkv = contiguous(s1, l1, "qkv")?;
        let (heads, lengths) = (self.heads, &self.lengths);
        let head = hidden / heads;
        let qkv_rs = as_isize(width);
        // Each (text, head) block is a task writing its own `length x head` slab, a text's slabs
        // side by side where its rows are; they are put back in place below. A block carries
        // where its head's queries of its text start in the projection.
        let mut slabs = vec![0.0f32; rows * hidden];
        let mut blocks = Vec::with_capacity(lengths.len() * heads);
        let (mut rest, mut start) = (slabs.as_mut_slice(), 0usize);
        for &tokens in lengths.iter().filter(|&&n| n > 0) {
            for h in 0..heads {
                let (slab, tail) = rest.split_at_mut(tokens * head);
                blocks.push((start * width + h * head, slab));
                rest = tail;
            }
            start += tokens;
        }
        let work: usize = lengths.iter().map(|n| 2 * n * n * head).sum::<usize>() * heads;
        let per_block = work / blocks.len().max(1);
        blocks
            .into_par_iter()
            .with_min_len(per_task(lengths.len() * heads, per_block))
            .for_each_init(Vec::new, |scratch: &mut Vec<f32>, (at, out)| {
                let tokens = out.len() / head;
                // The products overwrite the scores, so the scratch only grows, never cleared.
                let need = tokens * (tokens + 1);
                if scratch.len() < need {
                    scratch.resize(need, 0.0);
                }
                let (scores, inverse_sums) = scratch[..need].split_at_mut(tokens * tokens);
                let q = &qkv[at..];
                attend(
                    q,
                    &q[hidden..],
                    &q[2 * hidden..],
                    out,
                    (scores, inverse_sums),
                    qkv_rs,
                    head,
                );
            });
        let mut context = vec![0.0f32; rows * hidden];
        let mut texts = Vec::with_capacity(lengths.len());
        let (mut to, mut from) = (context.as_mut_slice(), slabs.as_slice());
        for &tokens in lengths.iter().filter(|&&n| n > 0) {
            let (text, tail) = to.split_at_mut(tokens * hidden);
            let (slab, rest) = from.split_at(tokens * hidden);
            texts.push((text, slab));
            (to, from) = (tail, rest);
        }
        texts
            .into_par_iter()
            .with_min_len(per_task(
                lengths.len(),
                rows / lengths.len().max(1) * hidden,
            ))
            .for_each(|(text, slabs)| {
                let tokens = slabs.len() / hidden;
                for (h, slab) in slabs.chunks_exact(tokens * head).enumerate() {
                    for (row, values) in text.chunks_exact_mut(hidden).zip(slab.chunks_exact(head))
                    {
                        row[h * head..(h + 1) * head].copy_from_slice(values);
                    }
                }
            });
        Ok((CpuStorage::F32(context), Shape::from_dims(&[rows, hidden])))
    }
}

/// One (text, head) block of [`Attention`]: `out = softmax(q kᵀ) v` for the text's `tokens`
/// queries, keys and values, read in place (rows of stride `stride` in the fused projection),
/// with `scores` a `tokens x tokens` scratch block and `inverse_sums` one of `tokens`. Each row
/// of weights is normalised after the product, on the `head` values it gives rather than on its
/// `tokens` weights.
fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    (scores, inverse_sums): (&mut [f32], &mut [f32]),
    stride: isize,
    head: usize,
) {
    let tokens = inverse_sums.len();
    // What the products below read and write, checked: a safe function must not trust it.
    let rows = usize::try_from(stride).expect("a positive stride") * (tokens.max(1) - 1) + head;
    assert!(
        q.len() >= rows && k.len() >= rows && v.len() >= rows,
        "attention: {tokens} rows of {head} past the projection's end"
    );
    assert!(out.len() == tokens * head && scores.len() == tokens * tokens);
    // SAFETY: every access stays inside the slices, as just checked: `tokens` rows of stride
    // `stride` from q, k and v, `out` is tokens x head, and `scores` is tokens x tokens.
    // Nothing aliases: `out` and `scores` are exclusive borrows.
    #[allow(unsafe_code)]
    unsafe {
        // scores = q k^T: (tokens x head) by (head x tokens), k read transposed.
        gemm::gemm(
            tokens,
            tokens,
            head,
            scores.as_mut_ptr(),
            1,
            as_isize(tokens),
            false,
            q.as_ptr(),
            1,
            stride,
            k.as_ptr(),
            stride,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    exp_rows(scores, tokens, inverse_sums);
    // SAFETY: as above.
    #[allow(unsafe_code)]
    unsafe {
        // out = weights v: (tokens x tokens) by (tokens x head).
        gemm::gemm(
            tokens,
            head,
            tokens,
            out.as_mut_ptr(),
            1,
            as_isize(head),
            false,
            scores.as_ptr(),
            1,
            as_isize(tokens),
            v.as_ptr(),
            1,
            stride,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    scale_rows(out, head, inverse_sums);
}

/// Weights a product has at least for its columns to be split over the cores (every product of
/// the model has 147K or more); a smaller one runs as one task.
const MIN_SPLIT_WEIGHTS: usize = 1 << 16;

/// The output of a product, shared by the tasks that each write their own columns of it.
struct Columns(*mut f32);

// SAFETY: the tasks of one product write disjoint columns (see `product`).
#[allow(unsafe_code)]
unsafe impl Sync for Columns {}

/// `x w` for `x` `(rows, inner)` and `w` `(inner, columns)`, both contiguous: one product per
/// core, each of a share of the columns. A pass of few tokens is bound by reading the weights,
/// not by the arithmetic, and so each core reads only its share of them; split by rows instead,
/// every core would read all of them.
#[derive(Debug, Clone, Copy)]
pub struct MatMul;

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        product(s1, l1, s2, l2, None)
    }
}

/// `x w + bias`, as [`MatMul`] with `bias` `(columns)` added to every row: each task starts its
/// rows from the bias and adds the product to it.
#[derive(Debug, Clone, Copy)]
pub struct BiasMatMul;

impl CustomOp3 for BiasMatMul {
    fn name(&self) -> &'static str {
        "bias-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        product(s1, l1, s2, l2, Some(contiguous(s3, l3, "matmul bias")?))
    }
}

fn product(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    bias: Option<&[f32]>,
) -> Result<(CpuStorage, Shape)> {
    let (rows, inner) = l1.shape().dims2()?;
    let (inner_w, columns) = l2.shape().dims2()?;
    if inner != inner_w || bias.is_some_and(|b| b.len() != columns) {
        candle_core::bail!("matmul: {:?} by {:?}", l1.dims(), l2.dims());
    }
    let x = contiguous(s1, l1, "matmul input")?;
    let w = contiguous(s2, l2, "matmul weight")?;
    // With a bias, every row starts as the bias and the product is added to it.
    let mut out = match bias {
        Some(bias) => bias.repeat(rows),
        None => vec![0.0f32; rows * columns],
    };
    if rows == 0 || columns == 0 {
        return Ok((CpuStorage::F32(out), Shape::from_dims(&[rows, columns])));
    }
    let tasks = if inner * columns >= MIN_SPLIT_WEIGHTS {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    let width = columns.div_ceil(tasks).next_multiple_of(LANES);
    let dst = Columns(out.as_mut_ptr());
    (0..columns.div_ceil(width))
        .into_par_iter()
        .for_each(|task| {
            let dst = &dst;
            let first = task * width;
            let n = width.min(columns - first);
            // SAFETY: `x` is rows x inner, `w` inner x columns and `out` rows x columns, all
            // contiguous and row-major. This task reads columns `first..first + n` of `w` and writes
            // those of `out`, every row of them: the last element either touches is within its
            // buffer, and no two tasks write the same element.
            #[allow(unsafe_code)]
            unsafe {
                gemm::gemm(
                    rows,
                    n,
                    inner,
                    dst.0.add(first),
                    1,
                    as_isize(columns),
                    bias.is_some(),
                    x.as_ptr(),
                    1,
                    as_isize(inner),
                    w.as_ptr().add(first),
                    1,
                    as_isize(columns),
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
    Ok((CpuStorage::F32(out), Shape::from_dims(&[rows, columns])))
}

/// `layer_norm(projected + bias + residual)` over rows of `hidden`, with `params` `(3, hidden)`
/// holding the dense layer's bias, then the norm's weight and shift: three passes of candle's
/// (bias, residual, norm) in one.
#[derive(Debug, Clone, Copy)]
pub struct ResidualNorm {
    pub eps: f32,
}

impl CustomOp3 for ResidualNorm {
    fn name(&self) -> &'static str {
        "residual-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (_, hidden) = l1.shape().dims2()?;
        if l2.dims() != l1.dims() || l3.shape().dims2()? != (3, hidden) {
            candle_core::bail!(
                "residual-norm: {:?} + {:?} with params {:?}",
                l1.dims(),
                l2.dims(),
                l3.dims()
            );
        }
        let mut out = contiguous(s1, l1, "projection")?.to_vec();
        let residual = contiguous(s2, l2, "residual")?;
        let params = contiguous(s3, l3, "params")?;
        let chunk = per_task(out.len() / hidden.max(1), 8 * hidden) * hidden;
        out.par_chunks_mut(chunk)
            .zip(residual.par_chunks(chunk))
            .for_each(|(part, residual)| residual_norm_rows(part, residual, params, self.eps));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let expected =
                    (y[c] - mean) / var.sqrt() * params[width + c] + params[2 * width + c];
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
        for (rows, inner, columns) in [(3, 384, 1152), (17, 256, 300), (130, 384, 200), (5, 8, 24)]
        {
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
}
