//! The element-wise kernels: `gelu(x + bias)` after the intermediate projection, and the
//! residual's layer norm after each dense one.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape};
use rayon::prelude::*;

use super::rows::{bias_gelu_rows, residual_norm_rows};
use super::{contiguous, per_task};

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
