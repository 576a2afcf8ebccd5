//! A table's vector sets: searched in its active set only, following a model change's switch,
//! even one met while a search reads exact vectors.

use serde_json::json;
use shared::sets::VectorSet;
use wasm_bindgen_test::wasm_bindgen_test;

use super::fixtures::{app, claim_search, handle, ids, post, two_sets};
use crate::ports::ActiveSet;

#[wasm_bindgen_test]
async fn a_table_is_searched_in_its_active_set_only_and_follows_the_switch() {
    // claims is configured with bge-base; its active set is still bge-small's.
    let app = app();
    let (small, base) = two_sets(&app);
    let activate = |set: &VectorSet, generation| {
        app.store.active.borrow_mut().insert(
            ("org_a".into(), "claims".into()),
            ActiveSet {
                set: set.clone(),
                generation,
            },
        );
    };
    let search = claim_search("org_a", json!({"text": "query", "limit": 10}));
    activate(&small, 1);
    let before = handle(&app, &search).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(
        ids(&before.body),
        vec!["old_only"],
        "the old set, whole, and nothing else"
    );
    // The query was embedded with the old model: a 768-dimension vector would not score 384.
    let raw = handle(
        &app,
        &post(
            "/embed",
            "org_a",
            json!({"text": "x", "service": "claimSimilarity"}),
        ),
    )
    .await;
    assert_eq!(raw.body["dimensions"], 384, "embed follows the active set");
    let query = handle(
        &app,
        &post(
            "/query",
            "org_a",
            json!({"vector": vec![0.5; 768], "table": "claims"}),
        ),
    )
    .await;
    assert_eq!(
        query.status, 400,
        "a new-model vector before the switch: {}",
        query.body
    );

    // The switch: the next search reads the new set, and the old snapshot goes.
    activate(&base, 2);
    let after = handle(&app, &search).await;
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(ids(&after.body), vec!["new_only"]);
    assert_eq!(
        app.caches.vectors.stats().tables,
        1,
        "the old set's copy was dropped"
    );
}

#[wasm_bindgen_test]
async fn a_switch_and_its_clean_up_while_a_search_reads_exact_vectors_send_it_to_the_new_set() {
    let app = app();
    let (small, base) = two_sets(&app);
    app.store.active.borrow_mut().insert(
        ("org_a".into(), "claims".into()),
        ActiveSet {
            set: small,
            generation: 1,
        },
    );
    *app.store.switch_before_exact.borrow_mut() = Some((
        "org_a".into(),
        "claims".into(),
        ActiveSet {
            set: base,
            generation: 2,
        },
    ));
    let response = handle(
        &app,
        &claim_search("org_a", json!({"text": "query", "limit": 10})),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        ids(&response.body),
        vec!["new_only"],
        "the new set, whole, once the old one's exact vectors are gone"
    );
    assert_eq!(
        app.embedder.calls.get(),
        2,
        "embedded again by the new model"
    );
}
