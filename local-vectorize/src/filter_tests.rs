use serde_json::json;

use super::*;

fn held(pairs: &[(&str, Indexed)]) -> IndexedValues {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn admits(filter: &Value, indexed: &IndexedValues) -> bool {
    Filter::parse(filter).unwrap().matches(indexed)
}

fn refused(filter: &Value) -> String {
    let err = Filter::parse(filter).unwrap_err();
    assert_eq!(err.kind, Kind::InvalidFilter, "{filter}");
    err.message
}

#[test]
fn a_bare_value_is_eq_and_keys_are_anded() {
    let v = held(&[
        ("platform", Indexed::Str("netflix".into())),
        ("year", Indexed::Num(2024.0)),
    ]);
    assert!(admits(&json!({"platform": "netflix"}), &v));
    assert!(admits(&json!({"platform": "netflix", "year": 2024}), &v));
    assert!(!admits(&json!({"platform": "netflix", "year": 2023}), &v));
    assert!(!admits(&json!({"platform": "hbo"}), &v));
}

#[test]
fn every_operator() {
    let v = held(&[
        ("s", Indexed::Str("net".into())),
        ("n", Indexed::Num(5.0)),
        ("b", Indexed::Bool(true)),
    ]);
    assert!(admits(&json!({"s": {"$eq": "net"}}), &v));
    assert!(admits(&json!({"s": {"$ne": "hbo"}}), &v));
    assert!(!admits(&json!({"s": {"$ne": "net"}}), &v));
    assert!(admits(&json!({"s": {"$in": ["hbo", "net"]}}), &v));
    assert!(!admits(&json!({"s": {"$nin": ["hbo", "net"]}}), &v));
    assert!(admits(&json!({"s": {"$nin": ["hbo"]}}), &v));
    assert!(admits(&json!({"n": {"$gt": 4, "$lte": 5}}), &v));
    assert!(!admits(&json!({"n": {"$gt": 5}}), &v));
    assert!(admits(&json!({"n": {"$gte": 5}}), &v));
    assert!(!admits(&json!({"n": {"$lt": 5}}), &v));
    assert!(admits(&json!({"s": {"$gte": "net", "$lt": "neu"}}), &v));
    assert!(admits(&json!({"b": true}), &v));
    assert!(!admits(&json!({"b": false}), &v));
    // Values of another type never compare: not equal, not in a range.
    assert!(!admits(&json!({"n": "5"}), &v));
    assert!(admits(&json!({"n": {"$ne": "5"}}), &v));
    assert!(!admits(&json!({"s": {"$gt": 1}}), &v));
    assert!(!admits(&json!({"s": null}), &v));
}

#[test]
fn a_property_the_vector_holds_no_indexed_value_for_fails_every_operator() {
    let v = held(&[("other", Indexed::Num(1.0))]);
    for filter in [
        json!({"p": "x"}),
        json!({"p": {"$ne": "x"}}),
        json!({"p": {"$nin": ["x"]}}),
        json!({"p": {"$lt": 10}}),
    ] {
        assert!(!admits(&filter, &v), "{filter}");
    }
}

#[test]
fn strings_compare_on_their_first_64_bytes() {
    let long = "x".repeat(64);
    let v = held(&[("s", Indexed::Str(long.clone()))]);
    assert!(admits(&json!({ "s": format!("{long}anything") }), &v));
    assert!(!admits(&json!({ "s": "x".repeat(63) }), &v));
}

#[test]
fn nested_keys_are_dotted_paths() {
    let v = held(&[("pandas.nice", Indexed::Num(42.0))]);
    assert!(admits(&json!({"pandas.nice": 42}), &v));
    assert!(refused(&json!({"pandas": {"nice": 42}})).contains("dotted key"));
}

#[test]
fn malformed_filters_are_refused() {
    for bad in [
        json!({}),
        json!([]),
        json!("x"),
        json!({"$or": [{"a": 1}]}),
        json!({"$and": [{"a": 1}]}),
        json!({"a": {"$regex": "x"}}),
        json!({"a": {"$eq": 1, "$ne": 2}}),
        json!({"a": {"$eq": 1, "$gt": 0}}),
        json!({"a": {"$lt": 1, "$lte": 2}}),
        json!({"a": {"$gt": 1, "$gte": 2}}),
        json!({"a": {"$in": "x"}}),
        json!({"a": {"$in": [[1]]}}),
        json!({"a": {"$eq": [1]}}),
        json!({"a": {"$gt": true}}),
        json!({"a": {"$lt": null}}),
        json!({"a": {}}),
        json!({"": 1}),
        json!({"a\"b": 1}),
        json!({"a..b": 1}),
        json!({ "k".repeat(513): 1 }),
    ] {
        refused(&bad);
    }
}

#[test]
fn the_filter_must_be_under_2048_bytes_of_compact_json() {
    // {"k":"…"} is 8 bytes around the string.
    let at = json!({"k": "v".repeat(FILTER_JSON_BYTES - 9)});
    assert_eq!(
        serde_json::to_vec(&at).unwrap().len(),
        FILTER_JSON_BYTES - 1
    );
    assert!(Filter::parse(&at).is_ok());
    let over = json!({"k": "v".repeat(FILTER_JSON_BYTES - 8)});
    assert!(refused(&over).contains("less than 2048 bytes"));
}
