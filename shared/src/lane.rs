//! Lanes: live work and bulk work travel on two queues, so that no organization's backfill of
//! 100,000 records (or model change) stands in front of another's live write.
//!
//! - **live** (`embeddings-queue`): what a caller is waiting to see searchable: a record created
//!   or updated, an enqueue, a replay, a custom pipeline's job. Its consumer takes small batches
//!   at once (`max_batch_timeout` 1 s) with the platform's full concurrency.
//! - **bulk** (`embeddings-bulk`): a backfill's jobs, a model change's steps and the jobs its
//!   backfill pages make. Its consumer takes batches of its own size and concurrency, so bulk
//!   work only ever uses what the bulk consumer is given, whatever its backlog.
//!
//! The invariant: a job's lane is decided once, when it is made, from what made it
//! ([`Lane::of_job`]), and every later send of it by the system (a retry, the sweep) keeps it.
//! So a live job never waits behind a bulk backlog, and a bulk job that fails cannot jump into
//! the live lane. A replay is the one exception, on purpose: a person asked for it and waits,
//! so it is live work whatever made the job (and it counts against the write rate).
//! Both lanes dead-letter to `embeddings-dlq`; one consumer serves both, with the same rules.

/// The queue a job or a model change's step travels on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Lane {
    #[default]
    Live,
    Bulk,
}

impl Lane {
    /// The queue's name, as wrangler's config and the runtime's batches name it.
    pub fn queue(self) -> &'static str {
        match self {
            Lane::Live => "embeddings-queue",
            Lane::Bulk => "embeddings-bulk",
        }
    }

    /// The producer binding of the queue.
    pub fn binding(self) -> &'static str {
        match self {
            Lane::Live => "EMBEDDINGS_QUEUE",
            Lane::Bulk => "EMBEDDINGS_BULK_QUEUE",
        }
    }

    /// The lane whose queue is named `queue`, if any.
    pub fn of_queue(queue: &str) -> Option<Lane> {
        [Lane::Live, Lane::Bulk]
            .into_iter()
            .find(|lane| lane.queue() == queue)
    }

    /// The lane of a job: a job of a backfill (an admin's, or a model change's, which carry a
    /// backfill id) is bulk; every other job is live.
    pub fn of_job(backfill_id: Option<&str>) -> Lane {
        match backfill_id {
            Some(_) => Lane::Bulk,
            None => Lane::Live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lane_has_its_own_queue_and_binding_and_is_found_by_its_queue() {
        for lane in [Lane::Live, Lane::Bulk] {
            assert_eq!(Lane::of_queue(lane.queue()), Some(lane));
        }
        assert_ne!(Lane::Live.queue(), Lane::Bulk.queue());
        assert_ne!(Lane::Live.binding(), Lane::Bulk.binding());
        assert_eq!(Lane::of_queue("embeddings-dlq"), None);
    }

    #[test]
    fn only_a_backfills_jobs_are_bulk() {
        assert_eq!(Lane::of_job(None), Lane::Live);
        assert_eq!(Lane::of_job(Some("6f1c…")), Lane::Bulk);
    }
}
