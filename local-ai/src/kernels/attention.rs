//! Multi-head self-attention over texts packed one after another: one task per (text, head)
//! block, on a score block that stays in cache.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use rayon::prelude::*;

use super::rows::{exp_rows, scale_rows};
use super::{as_isize, contiguous, per_task};

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
