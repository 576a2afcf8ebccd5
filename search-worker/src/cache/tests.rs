//! The caches' own rules, run in wasm (the build the worker ranks in): a snapshot follows
//! upserts and tombstones, reads catch-up rows as D1 writes them and keeps few exact vectors,
//! of the current version; the query cache expires and keeps to its budget; the vector cache
//! evicts the least recently searched table.

use serde_json::{Map, Value};
use shared::filter::Filter;
use shared::quantized::{Quantized, QueryCodes};
use shared::topk::{dot, normalized};
use wasm_bindgen_test::wasm_bindgen_test;

use super::budget::VectorCache;
use super::exact::EXACT_CAPACITY;
use super::json_bytes;
use super::queries::{
    entry_bytes, key, QueryCache, QueryCacheStats, DEFAULT_QUERY_BUDGET, QUERY_TTL_MS,
};
use super::snapshot::Snapshot;
use crate::ports::VectorRow;

/// A catch-up row of `vector`'s codes, or a tombstone.
fn row(seq: i64, id: &str, vector: Option<&[f32]>) -> VectorRow {
    VectorRow {
        seq,
        record_id: id.into(),
        codes: vector.map(|v| Quantized::of(&normalized(v))),
        vector_hex: None,
        metadata: Map::new(),
    }
}

/// The scan's dot product in this (wasm, SIMD) build is the documented sum to the bit: eight
/// lanes of every eighth product, folded in a fixed order, then the tail, as plain scalar code
/// here computes it; so the worker ranks exactly as a native scan of the same vectors.
#[wasm_bindgen_test]
#[allow(clippy::cast_precision_loss)]
fn the_scan_dot_product_is_the_documented_sum_to_the_bit() {
    fn documented(a: &[f32], b: &[f32]) -> f32 {
        let whole = a.len() / 8 * 8;
        let mut lanes = [0.0f32; 8];
        for start in (0..whole).step_by(8) {
            for (i, lane) in lanes.iter_mut().enumerate() {
                *lane += a[start + i] * b[start + i];
            }
        }
        let tail: f32 = (whole..a.len()).map(|i| a[i] * b[i]).sum();
        let half: Vec<f32> = (0..4).map(|i| lanes[i] + lanes[i + 4]).collect();
        (half[0] + half[2]) + (half[1] + half[3]) + tail
    }
    for dims in [3, 8, 384, 389, 768, 1024] {
        let a: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.713).sin()).collect();
        let b: Vec<f32> = (0..dims).map(|i| (i as f32 * 0.291).cos() * 1e-3).collect();
        let ours = shared::topk::dot(&a, &b);
        assert_eq!(ours.to_bits(), documented(&a, &b).to_bits(), "{dims} dims");
    }
}

/// The codes the consumer writes for `vector`.
fn codes(vector: &[f32]) -> Vec<i8> {
    Quantized::of(&normalized(vector)).codes
}

/// The codes' sum in this (wasm, SIMD) build is the plain integer sum, at the largest codes
/// a query and a row can have, at every length across the 16-wide blocks and their tail.
#[wasm_bindgen_test]
fn the_code_sum_is_the_plain_integer_sum() {
    for dims in [3, 16, 17, 384, 389, 768, 1024] {
        let query = QueryCodes::of(&normalized(&vec![1.0; dims])).codes;
        for codes in [
            vec![127i8; dims],
            vec![-127i8; dims],
            (0..dims)
                .map(|i| i8::try_from(i % 255).unwrap_or(-1))
                .collect(),
        ] {
            let plain: i64 = codes
                .iter()
                .zip(&query)
                .map(|(c, d)| i64::from(*c) * i64::from(*d))
                .sum();
            let ours = shared::quantized::code_dot(&codes, &query);
            assert_eq!(i64::from(ours), plain, "{dims} dims");
        }
    }
}

#[wasm_bindgen_test]
fn a_snapshot_follows_upserts_and_tombstones() {
    let mut s = Snapshot {
        dims: 2,
        ..Snapshot::default()
    };
    s.apply(vec![
        row(1, "a", Some(&[1.0, 0.0])),
        row(2, "b", Some(&[0.0, 2.0])),
        row(3, "c", Some(&[3.0, 4.0])),
    ])
    .unwrap();
    assert_eq!((s.len(), s.max_seq), (3, 3));
    assert_eq!(s.codes_of(1).codes, &[0, 127], "of the normalised vector");
    s.apply(vec![row(4, "a", None), row(5, "b", Some(&[1.0, 0.0]))])
        .unwrap();
    assert_eq!(s.len(), 2);
    let ids: Vec<&str> = s.ids.iter().map(String::as_str).collect();
    assert_eq!(ids, vec!["c", "b"], "the last row moved into the gap");
    assert_eq!(s.codes_of(0).codes, codes(&[3.0, 4.0]));
    assert_eq!(s.codes_of(1).codes, codes(&[1.0, 0.0]));
    assert_eq!(s.seqs, vec![3, 5]);
    s.apply(vec![row(5, "b", Some(&[0.0, 1.0]))]).unwrap();
    assert_eq!(
        s.codes_of(1).codes,
        codes(&[1.0, 0.0]),
        "an older row fetched late changes nothing"
    );
    assert!(
        s.apply(vec![row(6, "d", Some(&[1.0, 2.0, 3.0]))]).is_err(),
        "a wrong dimension"
    );
}

/// A catch-up's rows as the statement of `bindings::D1Store::since` writes them: the codes'
/// text read into codes, the metadata as an object, a tombstone's nulls as nothing.
#[wasm_bindgen_test]
fn catch_up_rows_read_as_d1_writes_them() {
    let codes = Quantized::of(&normalized(&[0.3, -1.7, 2.2, 0.01]));
    let text = format!(
        r#"[[7,"a\"b","{}",null,{{"topic":"t","n":[1,{{"x":null}}]}}],
           [8,"old",null,"0000803F",{{}}],
           [9,"gone",null,null,{{}}],
           [10,"blank","",null,{{}}]]"#,
        codes.to_text()
    );
    let rows: Vec<VectorRow> = serde_json::from_str(&text).unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!((rows[0].seq, rows[0].record_id.as_str()), (7, "a\"b"));
    assert_eq!(rows[0].codes.as_ref(), Some(&codes));
    assert_eq!(
        Value::Object(rows[0].metadata.clone()),
        serde_json::json!({"topic": "t", "n": [1, {"x": null}]})
    );
    assert_eq!(rows[0].vector_hex, None);
    assert_eq!(
        (rows[1].codes.as_ref(), rows[1].vector_hex.as_deref()),
        (None, Some("0000803F"))
    );
    for tombstone in &rows[2..] {
        assert_eq!(
            (tombstone.codes.as_ref(), tombstone.vector_hex.as_ref()),
            (None, None)
        );
    }
    // The budget counts the metadata at no less than its compact text, and not far above.
    let compact = Value::Object(rows[0].metadata.clone()).to_string().len();
    let counted = json_bytes(&rows[0].metadata);
    assert!(
        compact <= counted && counted <= 2 * compact,
        "{counted} for {compact}"
    );
    for bad in [
        r#"[[1,"a","not codes!",null,{}]]"#,
        r#"[[1,"a",7,null,{}]]"#,
    ] {
        assert!(
            serde_json::from_str::<Vec<VectorRow>>(bad).is_err(),
            "{bad}"
        );
    }
}

#[wasm_bindgen_test]
fn a_row_without_codes_gets_the_consumers_from_its_exact_vector() {
    let vector = [0.3, -1.7, 2.2, 0.01];
    let mut s = Snapshot {
        dims: 4,
        ..Snapshot::default()
    };
    s.apply(vec![VectorRow {
        seq: 1,
        record_id: "old".into(),
        codes: None,
        vector_hex: Some(shared::hex(&shared::vector::encode(&vector)).to_uppercase()),
        metadata: Map::new(),
    }])
    .unwrap();
    let ours = s.codes_of(0);
    let consumers = Quantized::of(&normalized(&vector));
    assert_eq!(
        (ours.codes, ours.scale, ours.residual),
        (
            consumers.codes.as_slice(),
            consumers.scale,
            consumers.residual
        )
    );
}

#[wasm_bindgen_test]
fn exact_vectors_are_of_the_current_version_and_few() {
    let mut s = Snapshot {
        dims: 2,
        ..Snapshot::default()
    };
    let rows = (0..=EXACT_CAPACITY)
        .map(|i| {
            let seq = i64::try_from(i).unwrap() + 1;
            row(seq, &format!("r{i}"), Some(&[1.0, 0.5]))
        })
        .collect();
    s.apply(rows).unwrap();
    let query = normalized(&[1.0, 0.5]);
    s.keep_exact("r0", 1, query.clone());
    s.keep_exact("r1", 1, query.clone());
    assert!(s.exact.get("r1").is_none(), "not r1's version (2)");
    let bytes = s.bytes();
    s.keep_exact("r1", 2, query.clone());
    assert!(
        s.bytes() > bytes,
        "exact vectors count in the snapshot's bytes"
    );
    let scored = s.shortlist(&query, &Filter::default(), 2, -1.0);
    assert_eq!(scored[0].score, Some(dot(&query, &query)));
    assert!(scored[2].score.is_none(), "r2's exact vector is not here");
    s.apply(vec![row(5_000, "r0", Some(&[0.5, 1.0]))]).unwrap();
    assert!(s.exact.get("r0").is_none(), "a write drops it");
    for i in 2..=EXACT_CAPACITY {
        let seq = i64::try_from(i).unwrap() + 1;
        s.keep_exact(&format!("r{i}"), seq, query.clone());
    }
    s.keep_exact("r0", 5_000, query.clone());
    assert_eq!(s.exact.vectors.len(), EXACT_CAPACITY);
    assert!(s.exact.get("r1").is_none(), "the first kept went first");
    assert!(s.exact.get(&format!("r{EXACT_CAPACITY}")).is_some());
    assert!(s.exact.order.len() <= 2 * EXACT_CAPACITY + 1);
}

#[wasm_bindgen_test]
fn query_vectors_expire() {
    let cache = QueryCache::default();
    assert!(cache.get("org_a", "m", "t", 0).is_none());
    cache.put("org_a", "m", "t", vec![1.0], 0);
    assert_eq!(
        cache.get("org_a", "m", "t", QUERY_TTL_MS - 1),
        Some(vec![1.0])
    );
    assert!(cache.get("org_a", "m", "t", QUERY_TTL_MS).is_none());
    assert!(cache.get("org_a", "other", "t", 1).is_none());
    assert!(
        cache.get("org_b", "m", "t", 1).is_none(),
        "one organization's searches never answer another's"
    );
    assert_eq!(
        cache.stats(),
        QueryCacheStats {
            hits: 1,
            misses: 4,
            size: 1,
            bytes: entry_bytes(&key("org_a", "m", "t"), &[1.0]),
            budget: DEFAULT_QUERY_BUDGET,
        }
    );
}

#[wasm_bindgen_test]
fn the_query_cache_keeps_to_its_budget_oldest_first() {
    let cache = QueryCache::default();
    let vector = vec![0.5; 384];
    let one = entry_bytes(&key("org_a", "m", "text 0"), &vector);
    cache.set_budget(one * 3);
    for i in 0..5 {
        cache.put("org_a", "m", &format!("text {i}"), vector.clone(), i);
    }
    let stats = cache.stats();
    assert_eq!((stats.size, stats.bytes), (3, one * 3));
    assert!(
        cache.get("org_a", "m", "text 1", 5).is_none(),
        "the oldest went"
    );
    assert!(cache.get("org_a", "m", "text 4", 5).is_some());
}

#[wasm_bindgen_test]
fn the_least_recently_searched_table_goes_past_the_budget() {
    let cache = VectorCache::default();
    let load = |org: &str, n: usize| {
        cache.with(org, "claims", 2, |s| {
            let rows = (0..n)
                .map(|i| {
                    row(
                        i64::try_from(i).unwrap() + 1,
                        &format!("r{i}"),
                        Some(&[1.0, 0.0]),
                    )
                })
                .collect();
            s.apply(rows).unwrap();
            s.bytes()
        })
    };
    let a = load("org_a", 10);
    assert!(a > 10 * 8, "vectors, ids and metadata count: {a}");
    cache.set_budget(a * 2 + a / 2);
    load("org_b", 10);
    cache.with("org_a", "claims", 2, |_| ());
    load("org_c", 10);
    let stats = cache.stats();
    assert_eq!((stats.tables, stats.evictions), (2, 1), "{stats:?}");
    assert!(stats.bytes <= stats.budget);
    // org_b was the least recently searched: it went, and comes back empty (read anew).
    assert_eq!(cache.max_seq("org_b", "claims"), 0);
    assert_eq!(cache.max_seq("org_a", "claims"), 10);
}
