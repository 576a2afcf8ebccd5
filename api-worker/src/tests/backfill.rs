//! The backfill route: what it enqueues, in batches, and its cursor.

use serde_json::{json, Value};
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::http::{HttpRequest, Method};

use super::fakes::Fakes;
use super::fixtures::{add_claim, app, as_ann, as_user, send};
use crate::ports::App;

#[wasm_bindgen_test]
async fn a_backfill_enqueues_what_lacks_a_current_embedding_in_batches() {
    let mut app = app();
    for i in 0..150 {
        add_claim(&app, "org_a", &format!("bulk_{i:03}"), &format!("text {i}"));
    }
    let model = "@cf/baai/bge-base-en-v1.5";
    app.store.vectors = vec![(
        "org_a".into(),
        "claims".into(),
        "bulk_000".into(),
        shared::message::content_hash(model, "text 0"),
    )];
    let backfill = |user: &str, body: Value| {
        as_user(
            user,
            HttpRequest::new(Method::Post, "/api/v1/embeddings/backfill"),
        )
        .with_json(&body)
    };
    assert_eq!(
        send(&app, backfill("meg", json!({"table": "claims"})))
            .await
            .status,
        403
    );
    let response = send(&app, backfill("ann", json!({"table": "claims"}))).await;
    assert_eq!(response.status, 202, "{}", response.body);
    assert_eq!(
        response.body["count"], 150,
        "clm_1 and 149 bulk records; bulk_000 is current"
    );
    assert_eq!(*app.queue.batches.borrow(), vec![100, 50]);
    let sent: Vec<Uuid> = app.queue.sent.borrow().iter().map(|j| j.job_id).collect();
    assert_eq!(
        *app.queue.bulk.borrow(),
        sent,
        "a backfill's jobs travel on the bulk lane, every one of them"
    );
    assert_eq!(
        app.queue.most_in_flight.get(),
        2,
        "a backfill's sendBatch calls are under way together, not one after another"
    );
    let backfill_id = response.body["backfillId"].as_str().unwrap();
    let progress = send(
        &app,
        as_ann(HttpRequest::new(
            Method::Get,
            &format!("/api/v1/embeddings/jobs?backfillId={backfill_id}&limit=100"),
        )),
    )
    .await;
    assert_eq!(progress.body["jobs"].as_array().unwrap().len(), 100);
    assert!(progress.body["nextCursor"].is_string());

    let all = send(
        &app,
        backfill("ann", json!({"table": "claims", "all": true})),
    )
    .await;
    assert_eq!(all.body["count"], 151);
    assert_eq!(
        send(&app, backfill("ann", json!({"table": "nope"})))
            .await
            .status,
        404
    );
}

#[wasm_bindgen_test]
async fn a_backfill_offers_a_cursor_only_while_records_remain() {
    async fn backfill(app: &App<Fakes>, cursor: Option<String>) -> worker_kit::http::HttpResponse {
        let request = as_ann(HttpRequest::new(
            Method::Post,
            "/api/v1/embeddings/backfill",
        ))
        .with_json(&json!({"table": "claims", "cursor": cursor}));
        send(app, request).await
    }
    // `clm_1` is seeded: with these, the organization has exactly one call's worth, then one more.
    for extra in [0, 1] {
        let app = app();
        let records = crate::backfill::MAX_RECORDS as usize - 1 + extra;
        for i in 0..records {
            add_claim(&app, "org_a", &format!("bulk_{i:04}"), &format!("text {i}"));
        }
        let first = backfill(&app, None).await;
        assert_eq!(first.status, 202, "{}", first.body);
        assert_eq!(first.body["count"], crate::backfill::MAX_RECORDS);
        if extra == 0 {
            assert!(first.body["nextCursor"].is_null(), "{}", first.body);
            continue;
        }
        let cursor = first.body["nextCursor"].as_str().map(str::to_owned);
        assert!(cursor.is_some(), "{}", first.body);
        let rest = backfill(&app, cursor).await;
        assert_eq!(rest.body["count"], 1, "{}", rest.body);
        assert!(rest.body["nextCursor"].is_null(), "{}", rest.body);
    }
}
