//! The products `x w` and `x w + bias`, split by columns so that each core reads only its share
//! of the weights.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use super::rows::LANES;
use super::{as_isize, contiguous};

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

/// `x w`, plus `bias` on every row when there is one: the work of [`MatMul`] and [`BiasMatMul`].
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
