//! Job statuses and the job view the API returns.

use serde::{Deserialize, Serialize};

/// Where a job stands. Every accepted job ends in one of the final statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Written and sent to the queue.
    Queued,
    /// Delivered to the consumer at least once.
    Processing,
    /// Embedded and stored.
    Done,
    /// The content had not changed since the last embedding.
    Skipped,
    /// A newer version of the record superseded it.
    Stale,
    /// Failed past its retries, or permanently; the reason is kept.
    Dead,
    /// The queue refused the message; the caller was told with a 503.
    Failed,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Processing,
        JobStatus::Done,
        JobStatus::Skipped,
        JobStatus::Stale,
        JobStatus::Dead,
        JobStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Processing => "processing",
            JobStatus::Done => "done",
            JobStatus::Skipped => "skipped",
            JobStatus::Stale => "stale",
            JobStatus::Dead => "dead",
            JobStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// A final job is never picked up again, except by an explicit replay.
    pub fn is_final(self) -> bool {
        !matches!(self, JobStatus::Queued | JobStatus::Processing)
    }

    /// Whether a job in this status, last changed at `updated_at`, may be replayed at `now_ms`:
    /// a job that failed (`dead`, or `failed` to reach the queue) at once, and an open one
    /// (`queued`, `processing`) once it has not moved for [`STUCK_AFTER_MS`]; its message was
    /// lost, or its dead letter never recorded. A replay of a job still moving is harmless
    /// (delivery is at least once), but the wait keeps replays for the stuck.
    pub fn can_replay(self, updated_at: i64, now_ms: i64) -> bool {
        match self {
            JobStatus::Dead | JobStatus::Failed => true,
            JobStatus::Queued | JobStatus::Processing => now_ms - updated_at >= STUCK_AFTER_MS,
            JobStatus::Done | JobStatus::Skipped | JobStatus::Stale => false,
        }
    }
}

/// How long an open job must not have moved before it counts as stuck: far past the consumer's
/// whole retry schedule (2 + 4 + 8 + 16 + 32 s of backoff, with each batch's own time).
pub const STUCK_AFTER_MS: i64 = 15 * 60 * 1000;

/// A job as `GET /api/v1/embeddings/jobs/{jobId}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub job_id: String,
    pub status: JobStatus,
    pub model: String,
    pub table: Option<String>,
    pub id: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The content was longer than the model reads and was cut (`shared::models::truncate`).
    pub truncated: bool,
    /// The vector of a `done` job that is not bound to a record; a record's vector is on the
    /// record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// The backfill that enqueued the job, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backfill_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_only_queued_and_processing_are_open() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_value(status).unwrap();
            assert_eq!(json, serde_json::Value::from(status.as_str()));
        }
        let open: Vec<_> = JobStatus::ALL
            .into_iter()
            .filter(|s| !s.is_final())
            .collect();
        assert_eq!(open, vec![JobStatus::Queued, JobStatus::Processing]);
        let replayable = |age: i64| -> Vec<JobStatus> {
            JobStatus::ALL
                .into_iter()
                .filter(|s| s.can_replay(1_000, 1_000 + age))
                .collect()
        };
        assert_eq!(replayable(0), vec![JobStatus::Dead, JobStatus::Failed]);
        assert_eq!(
            replayable(STUCK_AFTER_MS - 1),
            vec![JobStatus::Dead, JobStatus::Failed]
        );
        let mut stuck = replayable(STUCK_AFTER_MS);
        stuck.sort_by_key(|s| s.as_str());
        assert_eq!(
            stuck,
            vec![
                JobStatus::Dead,
                JobStatus::Failed,
                JobStatus::Processing,
                JobStatus::Queued
            ]
        );
        assert_eq!(JobStatus::parse("nope"), None);
        // Stuck means a quarter of an hour without a move.
        assert!(!JobStatus::Queued.can_replay(0, 15 * 60 * 1000 - 1));
        assert!(JobStatus::Queued.can_replay(0, 15 * 60 * 1000));
    }
}
