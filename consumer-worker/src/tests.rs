//! The consumer's handling of both queues, run in wasm with a fake ledger.

use std::cell::RefCell;

use serde_json::{json, Value};
use shared::disposition::Disposition;
use shared::message::EmbeddingJob;
use uuid::Uuid;
use wasm_bindgen_test::wasm_bindgen_test;
use worker_kit::Fault;

use crate::ports::{DeadJob, Delivery, JobLedger};
use crate::{dead_letter, deliveries};

#[derive(Default)]
struct FakeLedger {
    recorded: RefCell<Vec<Vec<String>>>,
    dead: RefCell<Vec<(Vec<DeadJob>, bool)>>,
    down: bool,
}

impl JobLedger for FakeLedger {
    async fn record_deliveries(&self, jobs: &[&EmbeddingJob], _now_ms: i64) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("D1 busy".into()));
        }
        self.recorded
            .borrow_mut()
            .push(jobs.iter().map(|j| j.job_id.to_string()).collect());
        Ok(())
    }
    async fn mark_dead(
        &self,
        jobs: &[DeadJob],
        keep_last_error: bool,
        _now_ms: i64,
    ) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("D1 busy".into()));
        }
        self.dead
            .borrow_mut()
            .push((jobs.to_vec(), keep_last_error));
        Ok(())
    }
}

fn delivery(body: Value) -> Delivery {
    Delivery {
        message_id: Uuid::new_v4().to_string(),
        body,
    }
}

fn job(content: &str, attempt: u32) -> (Uuid, Value) {
    let mut job = EmbeddingJob::new(
        Uuid::new_v4(),
        "org_a",
        shared::models::DEFAULT_MODEL,
        content,
        None,
    );
    job.attempt = attempt;
    (job.job_id, serde_json::to_value(job).unwrap())
}

#[wasm_bindgen_test]
async fn a_batch_is_recorded_in_one_write_and_acknowledged() {
    let ledger = FakeLedger::default();
    let (id1, body1) = job("first", 0);
    let (id2, body2) = job("second", 0);
    let dispositions = deliveries::handle(&ledger, &[delivery(body1), delivery(body2)], 1).await;
    assert_eq!(dispositions, vec![Disposition::Ack, Disposition::Ack]);
    assert_eq!(
        *ledger.recorded.borrow(),
        vec![vec![id1.to_string(), id2.to_string()]]
    );
}

#[wasm_bindgen_test]
async fn a_malformed_message_is_dead_without_blocking_the_others() {
    let ledger = FakeLedger::default();
    let (good, body) = job("fine", 0);
    let (bad, mut tampered) = job("original", 0);
    tampered["content"] = json!("edited after hashing");
    let dispositions = deliveries::handle(
        &ledger,
        &[
            delivery(tampered),
            delivery(body),
            delivery(json!("not a job")),
        ],
        1,
    )
    .await;
    assert!(
        matches!(&dispositions[0], Disposition::Dead { reason } if reason.contains("contentHash"))
    );
    assert_eq!(dispositions[1], Disposition::Ack);
    assert!(matches!(&dispositions[2], Disposition::Dead { .. }));
    assert_eq!(*ledger.recorded.borrow(), vec![vec![good.to_string()]]);
    let dead = ledger.dead.borrow();
    assert_eq!(dead.len(), 1, "one write for the batch's dead jobs");
    assert_eq!(
        dead[0].0.len(),
        1,
        "the body without a job id has no row to mark"
    );
    assert_eq!(dead[0].0[0].job_id, bad.to_string());
}

#[wasm_bindgen_test]
async fn a_d1_failure_retries_with_growing_delay() {
    let ledger = FakeLedger {
        down: true,
        ..FakeLedger::default()
    };
    let (_, first) = job("a", 0);
    let (_, third) = job("b", 2);
    let dispositions = deliveries::handle(&ledger, &[delivery(first), delivery(third)], 1).await;
    assert_eq!(
        dispositions,
        vec![
            Disposition::Retry { delay_seconds: 2 },
            Disposition::Retry { delay_seconds: 8 }
        ]
    );
}

#[wasm_bindgen_test]
async fn dead_lettered_jobs_are_marked_dead_keeping_their_last_error() {
    let ledger = FakeLedger::default();
    let (id, body) = job("exhausted", 5);
    let dispositions = dead_letter::handle(&ledger, &[delivery(body)], 1).await;
    assert_eq!(dispositions, vec![Disposition::Ack]);
    {
        let dead = ledger.dead.borrow();
        assert_eq!(dead[0].0[0].job_id, id.to_string());
        assert_eq!(dead[0].0[0].reason, "retries exhausted");
        assert!(dead[0].1, "the last error of the failed attempts is kept");
    }

    let down = FakeLedger {
        down: true,
        ..FakeLedger::default()
    };
    let (_, body) = job("exhausted", 5);
    let dispositions = dead_letter::handle(&down, &[delivery(body)], 1).await;
    assert!(
        matches!(dispositions[0], Disposition::Retry { .. }),
        "never dropped unrecorded"
    );
}
