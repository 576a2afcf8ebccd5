//! The element functions of the kernels: `exp` and `erf` as branch-free polynomials that the
//! compiler vectorises (the standard library's call out to scalar code), and GELU from `erf`.

/// `exp(x)` for the inputs of a softmax: range reduction to `[-ln2/2, ln2/2]` (Cody-Waite), a
/// degree-6 polynomial, then scaling by `2^n`. Relative error below 3e-7.
///
/// Adding 1.5 * 2^23 rounds `x log2 e` to the nearest integer `n` and leaves `n` in the low bits
/// of the sum, so `2^n` is built with integer arithmetic alone: Rust's saturating float-to-int
/// cast would turn each vector back into scalar conversions.
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
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
pub(super) fn erf(x: f32) -> f32 {
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
pub(super) fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}
