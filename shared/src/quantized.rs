//! Vectors at eight bits a dimension, with a bound on what that costs: the D1 backend's search
//! copy, a quarter of the bytes of the exact one, so an isolate reads a table from D1 four times
//! faster and holds four times as many vectors.
//!
//! A stored unit vector `u` becomes codes `c` (each in -127..=127) and a scale `s`; `û = s·c`
//! lies within `residual` (a Euclidean distance, rounded up) of `u`. A query `q` becomes codes
//! `d` of up to 15 bits with a scale `t` and a residual `ρq` of its own. The codes' score
//! `s·t·Σ c·d` is an exact integer sum times two scales, and since
//! `q·u − q̂·û = q·(u − û) + (q − q̂)·û`, Cauchy–Schwarz bounds how far it is from `q·u`:
//! `|q|·ρ + ρq·(1 + ρ)`, plus the f32 rounding of the exact score ([`QueryCodes::bound`]).
//!
//! A search scores every row by its codes, keeps each row whose upper bound reaches the k-th
//! best lower bound ([`shortlist`]), and scores those with their exact vectors. Every record of
//! the exact top k is on the shortlist (its exact score is at least that k-th lower bound), so
//! the answer is the exact scan's, to the bit, ties included.
//!
//! The text form ([`Quantized::to_text`]) is what the consumer writes beside the exact vector:
//! base64 of a format byte, the scale and the residual (little-endian f32s), then the codes.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

use crate::vector::VectorError;

/// The text form's first byte.
const FORMAT: u8 = 1;
/// The largest magnitude of a stored code.
const CODE_MAX: f32 = 127.0;

/// A unit vector's codes, scale and residual.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub scale: f32,
    /// At least `|u − scale·codes|`; infinite for a vector that is not finite, which then always
    /// makes the shortlist.
    pub residual: f32,
    pub codes: Vec<i8>,
}

impl Quantized {
    /// The codes of `unit` (a vector as `topk::normalized` leaves it): each component over
    /// `max |u_i| / 127`, rounded.
    pub fn of(unit: &[f32]) -> Self {
        let max = unit.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        if max == 0.0 || !unit.iter().all(|x| x.is_finite()) {
            let residual = if max == 0.0 { 0.0 } else { f32::INFINITY };
            return Quantized {
                scale: 0.0,
                residual,
                codes: vec![0; unit.len()],
            };
        }
        let scale = max / CODE_MAX;
        // Within -127..=127 by the choice of scale (and clamped should rounding say 127.5).
        #[allow(clippy::cast_possible_truncation)]
        let codes: Vec<i8> = unit
            .iter()
            .map(|x| (x / scale).round().clamp(-CODE_MAX, CODE_MAX) as i8)
            .collect();
        let residual = round_up(distance(
            unit.iter().map(|x| f64::from(*x)),
            f64::from(scale),
            codes.iter().map(|c| f64::from(*c)),
        ));
        Quantized {
            scale,
            residual,
            codes,
        }
    }

    /// The text stored in D1's `codes` column.
    pub fn to_text(&self) -> String {
        let mut bytes = Vec::with_capacity(9 + self.codes.len());
        bytes.push(FORMAT);
        bytes.extend_from_slice(&self.scale.to_le_bytes());
        bytes.extend_from_slice(&self.residual.to_le_bytes());
        bytes.extend(self.codes.iter().map(|c| c.to_le_bytes()[0]));
        STANDARD_NO_PAD.encode(bytes)
    }

    /// Reads back what [`Quantized::to_text`] wrote, into one allocation: a first search reads
    /// 10,000 of these.
    pub fn from_text(text: &str) -> Result<Self, VectorError> {
        let mut bytes = STANDARD_NO_PAD
            .decode(text)
            .map_err(|_| VectorError::NotCodes)?;
        let (Some(&FORMAT), Some(scale), Some(residual)) =
            (bytes.first(), bytes.get(1..5), bytes.get(5..9))
        else {
            return Err(VectorError::NotCodes);
        };
        let float = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let (scale, residual) = (float(scale), float(residual));
        bytes.drain(..9);
        Ok(Quantized {
            scale,
            residual,
            // Collected in place: the decoded bytes' buffer becomes the codes'.
            codes: bytes.into_iter().map(|b| i8::from_le_bytes([b])).collect(),
        })
    }
}

/// A query vector's codes, and what its score by codes may be off by.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryCodes {
    pub codes: Vec<i16>,
    scale: f64,
    residual: f64,
    /// `|q|`, rounded up.
    norm: f64,
    /// What the exact scan's f32 sum may be off by, rounded up.
    rounding: f64,
}

impl QueryCodes {
    /// The codes of the query `q` (unit length, or zero). Their magnitude is the largest that
    /// keeps `Σ c·d` within an i32 at this dimension (15 bits up to 528 dimensions, 14 bits
    /// at 1,024).
    pub fn of(q: &[f32]) -> Self {
        let dims = q.len().max(1);
        let limit = (i32::MAX as usize / (127 * dims)).min(i16::MAX as usize);
        let max = q.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let norm = f64::from(round_up(
            q.iter()
                .map(|x| f64::from(*x) * f64::from(*x))
                .sum::<f64>()
                .sqrt(),
        ));
        // γ(n) = n·u / (1 − n·u), u = 2⁻²⁴: any order of an f32 sum of n products is within
        // γ(n)·Σ|q_i·u_i| ≤ γ(n)·|q|·|u| of the true dot product, |u| ≤ 1 (and a little: the
        // tenth of a percent); the billionth is room for the f64 arithmetic of the bound.
        #[allow(clippy::cast_precision_loss)]
        let n = (dims + 1) as f64 * f64::from(f32::EPSILON) / 2.0;
        let rounding = n / (1.0 - n) * norm * 1.001 + 1e-9;
        #[allow(clippy::cast_precision_loss)]
        let scale = f64::from(max) / limit as f64;
        // A component that is not finite makes |q| so (the largest component never is NaN: `max`
        // passes NaN over), and such a query is not scored by its codes.
        if max == 0.0 || !norm.is_finite() {
            return QueryCodes {
                codes: vec![0; q.len()],
                scale: 0.0,
                residual: if max == 0.0 { 0.0 } else { f64::INFINITY },
                norm,
                rounding,
            };
        }
        // Within ±limit by the choice of scale.
        #[allow(clippy::cast_possible_truncation)]
        let codes: Vec<i16> = q
            .iter()
            .map(|x| (f64::from(*x) / scale).round() as i16)
            .collect();
        let residual = f64::from(round_up(distance(
            q.iter().map(|x| f64::from(*x)),
            scale,
            codes.iter().map(|d| f64::from(*d)),
        )));
        QueryCodes {
            codes,
            scale,
            residual,
            norm,
            rounding,
        }
    }

    /// A stored vector's score by codes, and how far from its exact score that may be.
    pub fn score(&self, stored: &StoredCodes<'_>) -> (f64, f64) {
        let sum = code_dot(stored.codes, &self.codes);
        let approx = f64::from(stored.scale) * self.scale * f64::from(sum);
        (approx, self.bound(stored.residual))
    }

    /// How far a stored vector's score by codes may be from the exact f32 scan's score:
    /// `|q|·ρ + ρq·(1 + ρ)` plus the f32 sum's rounding (whose billionth to spare also covers
    /// the f64 arithmetic of the score and of this sum, off by well under 1e-15).
    pub fn bound(&self, residual: f32) -> f64 {
        let residual = f64::from(residual);
        self.norm * residual + self.residual * (1.0 + residual) + self.rounding
    }
}

/// A stored vector's codes as a search holds them.
#[derive(Debug, Clone, Copy)]
pub struct StoredCodes<'a> {
    pub codes: &'a [i8],
    pub scale: f32,
    pub residual: f32,
}

/// Which candidates, each `(index, score by codes, bound)` in the order an exact scan meets
/// them, the exact top `k` of those scoring at least `min_score` may include: every one whose
/// upper bound reaches both `min_score` and the k-th best lower bound, and every one whose
/// bound is not a number (a vector or a query that is not finite: its exact score decides).
/// Their indexes, in order.
pub fn shortlist(scored: &[(usize, f64, f64)], k: usize, min_score: f32) -> Vec<usize> {
    if k == 0 {
        return Vec::new();
    }
    let mut floor = f64::from(min_score);
    if scored.len() >= k {
        let mut lower: Vec<f64> = scored.iter().map(|(_, s, b)| s - b).collect();
        let (_, kth, _) = lower.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        floor = floor.max(*kth);
    }
    // "Not below" rather than "at or above": a bound that is not a number keeps its row.
    #[allow(clippy::neg_cmp_op_on_partial_ord)]
    scored
        .iter()
        .filter(|(_, s, b)| !(s + b < floor))
        .map(|(i, _, _)| *i)
        .collect()
}

/// `Σ codes_i · query_i`, exact: [`QueryCodes::of`] keeps it within an i32. As plain Rust; the
/// wasm build's is `simd128::code_dot`, the same sum (integer sums are exact in any order).
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn code_dot(codes: &[i8], query: &[i16]) -> i32 {
    codes
        .iter()
        .zip(query)
        .map(|(c, d)| i32::from(*c) * i32::from(*d))
        .sum()
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd128::code_dot;

/// The wasm build's SIMD, apart: the native tests (and cargo-mutants) never compile it.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128 {
    /// `Σ codes_i · query_i`: whole blocks of 16 in SIMD ([`blocks`]), the tail as plain Rust.
    pub fn code_dot(codes: &[i8], query: &[i16]) -> i32 {
        let whole = codes.len().min(query.len()) / 16 * 16;
        let tail: i32 = codes[whole..]
            .iter()
            .zip(&query[whole..])
            .map(|(c, d)| i32::from(*c) * i32::from(*d))
            .sum();
        blocks(&codes[..whole], &query[..whole]) + tail
    }

    /// The sum over whole blocks of 16 in wasm SIMD: the codes widened to i16, then multiplied and
    /// added in pairs into four i32 lanes (`i32x4.dot_i16x8_s`). Integer sums are exact, so this is
    /// the plain loop's answer.
    fn blocks(codes: &[i8], query: &[i16]) -> i32 {
        use core::arch::wasm32::{
            i16x8, i16x8_extend_high_i8x16, i16x8_extend_low_i8x16, i32x4_add, i32x4_dot_i16x8,
            i32x4_extract_lane, i32x4_splat, i8x16,
        };
        let mut sum = i32x4_splat(0);
        for (c, d) in codes.chunks_exact(16).zip(query.chunks_exact(16)) {
            let c = i8x16(
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12],
                c[13], c[14], c[15],
            );
            let low = i16x8(d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
            let high = i16x8(d[8], d[9], d[10], d[11], d[12], d[13], d[14], d[15]);
            sum = i32x4_add(sum, i32x4_dot_i16x8(i16x8_extend_low_i8x16(c), low));
            sum = i32x4_add(sum, i32x4_dot_i16x8(i16x8_extend_high_i8x16(c), high));
        }
        i32x4_extract_lane::<0>(sum)
            + i32x4_extract_lane::<1>(sum)
            + i32x4_extract_lane::<2>(sum)
            + i32x4_extract_lane::<3>(sum)
    }
}

/// `|x − scale·codes|`, in f64 (each product of an f32 or f64 scale and a small integer is
/// exact to f64's precision, and so is each difference of like magnitudes).
fn distance(x: impl Iterator<Item = f64>, scale: f64, codes: impl Iterator<Item = f64>) -> f64 {
    x.zip(codes)
        .map(|(x, c)| (x - scale * c).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The f32 at or above `x`. (The f64 sum that made `x` may be under the true value by some
/// 1e-16 of it: the billionth in [`QueryCodes::bound`] covers that.)
#[allow(clippy::cast_possible_truncation)]
fn round_up(x: f64) -> f32 {
    let rounded = x as f32;
    if f64::from(rounded) >= x {
        rounded
    } else {
        rounded.next_up()
    }
}

#[cfg(test)]
#[path = "quantized_adversarial_tests.rs"]
mod adversarial_tests;
#[cfg(test)]
#[path = "quantized_tests.rs"]
mod tests;
