//! Which handler each message of a batch goes to, decided from plain inputs: the queue the
//! batch came from picks the consumer (a lane's, the dead-letter queue's, or none), and on a
//! lane's queue each message is a job ([`crate::deliveries`]) or a model-change step
//! ([`crate::migration`]). `lib.rs` only applies the route.

use shared::lane::Lane;
use shared::sets::MigrationStep;

use crate::deliveries::Settle;
use crate::ports::Delivery;
use crate::EMBEDDINGS_DLQ;

/// Where a batch goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Route {
    /// A lane's queue (`shared::lane`): its jobs and its model-change steps.
    Lane(Lane, LaneBatch),
    /// `embeddings-dlq`: messages out of retries ([`crate::dead_letter`]).
    DeadLetter,
    /// A queue this worker does not consume: every message is retried.
    Unknown,
}

/// A lane's batch, sorted by handler: each message's place in the batch with what it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LaneBatch {
    /// The places of the jobs, and of anything else that is not a step: job decoding refuses it.
    pub jobs: Vec<usize>,
    /// The model-change steps, decoded.
    pub steps: Vec<(usize, MigrationStep)>,
    /// Steps that do not decode, with the reason: nothing to mark dead, and retrying cannot
    /// help, so they are dropped (acknowledged).
    pub dropped: Vec<(usize, String)>,
}

/// Where the batch of `queue` goes.
pub(crate) fn route(queue: &str, messages: &[Delivery]) -> Route {
    match Lane::of_queue(queue) {
        Some(lane) => Route::Lane(lane, sort(messages)),
        None if queue == EMBEDDINGS_DLQ => Route::DeadLetter,
        None => Route::Unknown,
    }
}

/// A lane's messages, sorted into jobs and model-change steps.
fn sort(messages: &[Delivery]) -> LaneBatch {
    let mut batch = LaneBatch::default();
    for (i, message) in messages.iter().enumerate() {
        if !MigrationStep::is_step(&message.body) {
            batch.jobs.push(i);
            continue;
        }
        match MigrationStep::decode(message.body.clone()) {
            Ok(step) => batch.steps.push((i, step)),
            Err(reason) => batch.dropped.push((i, reason)),
        }
    }
    batch
}

/// Puts the settles a handler gave the messages at `places` back at those places.
pub(crate) fn place(settles: &mut [Settle], places: &[usize], handled: Vec<Settle>) {
    for (&i, settle) in places.iter().zip(handled) {
        settles[i] = settle;
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use serde_json::json;
    use shared::sets::{Migration, Step};
    use uuid::Uuid;

    use super::*;

    fn message(body: serde_json::Value) -> Delivery {
        Delivery {
            message_id: "m".into(),
            body,
        }
    }

    fn step() -> MigrationStep {
        MigrationStep::new(Migration {
            organization_id: "org_a".into(),
            table: "notes".into(),
            model: shared::models::DEFAULT_MODEL.into(),
            location: "d1".into(),
            migration_id: Uuid::nil(),
            seq: 1,
            step: Step::Cleanup,
        })
    }

    #[test]
    fn each_lanes_queue_goes_to_its_lane() {
        for lane in [Lane::Live, Lane::Bulk] {
            assert_eq!(
                route(lane.queue(), &[]),
                Route::Lane(lane, LaneBatch::default())
            );
        }
    }

    #[test]
    fn the_dead_letter_queue_goes_to_its_handler_and_any_other_queue_nowhere() {
        assert_eq!(route(EMBEDDINGS_DLQ, &[]), Route::DeadLetter);
        assert_eq!(route("someone-elses-queue", &[]), Route::Unknown);
    }

    #[test]
    fn a_lanes_steps_are_decoded_apart_from_its_jobs_and_a_malformed_step_is_dropped() {
        let messages = [
            message(json!({ "jobId": "not a job either" })),
            message(serde_json::to_value(step()).unwrap()),
            message(json!({ "migration": { "table": "notes" } })),
            message(json!(null)),
        ];
        let Route::Lane(Lane::Live, batch) = route(Lane::Live.queue(), &messages) else {
            panic!("the live queue is a lane's");
        };
        assert_eq!(batch.jobs, vec![0, 3]);
        assert_eq!(batch.steps, vec![(1, step())]);
        assert_eq!(
            batch.dropped.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(!batch.dropped[0].1.is_empty());
    }

    #[test]
    fn a_handlers_settles_go_back_to_its_messages_places() {
        let mut settles = vec![Settle::Ack; 4];
        let retry = Settle::Retry { delay_seconds: 3 };
        place(&mut settles, &[1, 3], vec![retry, Settle::Ack]);
        assert_eq!(settles, vec![Settle::Ack, retry, Settle::Ack, Settle::Ack]);
        place(&mut settles, &[0], vec![retry]);
        assert_eq!(settles, vec![retry, retry, Settle::Ack, Settle::Ack]);
    }
}
