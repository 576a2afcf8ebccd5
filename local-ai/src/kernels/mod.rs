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
//!
//! - `math`: the element functions (`exp`, `erf`, GELU) as branch-free polynomials;
//! - `rows`: the row loops built per CPU, that the kernels run on each task's rows;
//! - `elementwise`: bias + GELU, and the residual's layer norm;
//! - `attention`: multi-head self-attention over packed texts;
//! - `matmul`: the products, split by columns.

// The element functions must be inlined into the per-CPU copies of each kernel (where the
// vector instructions are enabled) for the loops to vectorise: hence `inline(always)`.
#![allow(clippy::inline_always)]

mod attention;
mod elementwise;
mod math;
mod matmul;
mod rows;

use candle_core::{CpuStorage, Layout, Result};

pub use attention::Attention;
pub use elementwise::{BiasGelu, ResidualNorm};
pub use matmul::{BiasMatMul, MatMul};

/// Work a task of the element-wise kernels and attention has at least (multiply-adds, or about
/// as much element work): handing less to another core costs more than it saves, so a short
/// text's kernels run on one core (its products do not: see [`MatMul`]).
const MIN_TASK_WORK: usize = 1 << 23;

/// Items per task for `items` items of `work` each: one task per core of rayon's pool, none
/// smaller than [`MIN_TASK_WORK`].
pub(super) fn per_task(items: usize, work: usize) -> usize {
    let fewest = MIN_TASK_WORK.div_ceil(work.max(1));
    items
        .div_ceil(rayon::current_num_threads().max(1))
        .max(fewest)
        .max(1)
}

/// `n` as a stride for `gemm`.
pub(super) fn as_isize(n: usize) -> isize {
    isize::try_from(n).expect("tensor strides fit isize")
}

/// The f32 values of a contiguous tensor, or an error naming it as `what`.
pub(super) fn contiguous<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    what: &str,
) -> Result<&'a [f32]> {
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg(format!("{what} must be contiguous")))?;
    Ok(&storage.as_slice::<f32>()?[start..end])
}

#[cfg(test)]
mod tests;
