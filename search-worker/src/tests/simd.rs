//! The wasm build's SIMD sums (`shared::topk::dot`, `shared::quantized::code_dot`, compiled with
//! `simd128` here and only here) against plain loops: the native tests, and so cargo-mutants,
//! never build them.

use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::random_vectors;

/// `n` seeded values in [-1, 1): the first `n` of a vector [`random_vectors`] makes.
fn values(seed: u64, n: usize) -> Vec<f32> {
    let mut vector = random_vectors(seed, 1).remove(0);
    vector.resize(n, 0.5);
    vector
}

/// The lengths tried: every remainder of the SIMD lanes, and the models' dimensions.
fn lengths() -> impl Iterator<Item = u16> {
    (0..=40).chain([383, 384, 768, 1024])
}

#[wasm_bindgen_test]
fn the_simd_dot_product_is_the_plain_sum_within_f32_rounding_at_every_length() {
    for n in lengths() {
        let (a, b) = (
            values(u64::from(n), n.into()),
            values(u64::from(n) + 1_000, n.into()),
        );
        let plain: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum();
        let simd = f64::from(shared::topk::dot(&a, &b));
        // Each of n products and sums rounds once in f32.
        let tolerance = (f64::from(n) + 1.0) * f64::from(f32::EPSILON) * f64::from(n.max(1));
        assert!(
            (simd - plain).abs() <= tolerance,
            "length {n}: {simd} against {plain}"
        );
    }
}

#[wasm_bindgen_test]
// Values in [-1, 1), scaled, stay within i8's and i16's ranges.
#[allow(clippy::cast_possible_truncation)]
fn the_simd_code_dot_product_is_the_exact_integer_sum_at_every_length() {
    for n in (0..=40).chain([383, 384, 768, 1024]) {
        let codes: Vec<i8> = values(n as u64, n)
            .iter()
            .map(|v| (v * 127.0) as i8)
            .collect();
        let query: Vec<i16> = values(n as u64 + 7, n)
            .iter()
            .map(|v| (v * 32_000.0) as i16)
            .collect();
        let plain: i64 = codes
            .iter()
            .zip(&query)
            .map(|(c, q)| i64::from(*c) * i64::from(*q))
            .sum();
        assert_eq!(
            i64::from(shared::quantized::code_dot(&codes, &query)),
            plain,
            "length {n}"
        );
    }
}
