//! The RPC surface: an unknown method or a bad argument is an error a caller can tell apart.

use serde_json::{json, Value};
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{handle, seeded, Call};

#[wasm_bindgen_test]
async fn unknown_methods_and_bad_arguments_are_errors_a_caller_can_tell_apart() {
    let app = seeded();
    let cases: [(Call, u16, &str); 6] = [
        (("nothing", vec![]), 404, "not_found"),
        (
            (
                "search",
                vec![json!(""), json!("claimSimilarity"), json!({"text": "q"})],
            ),
            400,
            "invalid_request",
        ),
        (
            (
                "search",
                vec![json!(7), json!("claimSimilarity"), json!({"text": "q"})],
            ),
            400,
            "invalid_request",
        ),
        (
            (
                "search",
                vec![json!("org_a"), json!(["x"]), json!({"text": "q"})],
            ),
            400,
            "invalid_request",
        ),
        (
            ("search", vec![json!("org_a"), json!("claimSimilarity")]),
            400,
            "invalid_request",
        ),
        (
            (
                "search",
                vec![json!("org_a"), json!("nope"), json!({"text": "q"})],
            ),
            404,
            "not_found",
        ),
    ];
    for (call, status, code) in cases {
        let reply = handle(&app, &call).await;
        assert_eq!(
            (reply.status, reply.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{call:?}: {}",
            reply.body
        );
    }
    assert_eq!(
        app.embedder.calls.get(),
        0,
        "nothing refused reaches the model"
    );
}

/// An RPC argument the caller left out arrives as `undefined`, and reads as no organization.
#[wasm_bindgen_test]
fn a_missing_argument_reads_as_null() {
    let value: Value = serde_wasm_bindgen::from_value(wasm_bindgen::JsValue::UNDEFINED).unwrap();
    assert_eq!(value, Value::Null);
}
