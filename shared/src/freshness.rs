//! Whether a delivered job still has work to do: the consumer's idempotence and ordering rules.
//!
//! Queues deliver at least once and in any order, so before embedding anything the consumer
//! compares the job with what is stored:
//!
//! 1. a job bound to a record that no longer exists is dead (retrying cannot bring it back);
//! 2. a job made from text the record no longer has is `stale` (`recordHash` differs);
//! 3. a job older than the one that wrote the stored vector is `stale`: an older job never
//!    overwrites a newer vector;
//! 4. a job whose content hash equals the stored vector's is `skipped`, with no AI call;
//! 5. anything else is embedded.
//!
//! Jobs are ordered by their creation time in milliseconds, then by job id.

use crate::message::{content_hash, EmbeddingJob};

/// The version of the vector stored for a record: which job wrote it, from what content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    pub content_hash: String,
    pub job_id: String,
    pub job_created_at: i64,
}

/// What the consumer knows of a job's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordState {
    /// The job is not bound to a record.
    Unbound,
    /// The record is gone from its table (or belongs to another organization).
    Missing,
    /// The record's embedded fields, joined as the config says.
    Present { text: String },
}

/// What to do with a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Embed,
    Skipped,
    Stale(&'static str),
    Dead(String),
}

/// Applies the rules above to one job, created at `created_at`.
pub fn assess(
    job: &EmbeddingJob,
    created_at: i64,
    record: &RecordState,
    stored: Option<&StoredVersion>,
) -> Verdict {
    match record {
        RecordState::Unbound => return Verdict::Embed,
        RecordState::Missing => {
            return Verdict::Dead(format!(
                "record `{}` no longer exists in `{}`",
                job.id.as_deref().unwrap_or_default(),
                job.table.as_deref().unwrap_or_default()
            ))
        }
        RecordState::Present { text } => {
            if job
                .record_hash
                .as_ref()
                .is_some_and(|hash| *hash != content_hash(&job.model, text))
            {
                return Verdict::Stale("the record changed after the job was made");
            }
        }
    }
    let Some(stored) = stored else {
        return Verdict::Embed;
    };
    let this = (created_at, job.job_id.to_string());
    if (stored.job_created_at, &stored.job_id) > (this.0, &this.1) {
        return Verdict::Stale("a newer job already wrote this record's vector");
    }
    if stored.content_hash == job.content_hash {
        return Verdict::Skipped;
    }
    Verdict::Embed
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const MODEL: &str = crate::models::DEFAULT_MODEL;

    fn job(content: &str, record_text: Option<&str>) -> EmbeddingJob {
        let job = EmbeddingJob::new(
            Uuid::new_v4(),
            "org_a",
            MODEL,
            content,
            Some(("claims".into(), "clm_1".into())),
        );
        match record_text {
            Some(text) => job.with_record_text(text),
            None => job,
        }
    }

    fn present(text: &str) -> RecordState {
        RecordState::Present { text: text.into() }
    }

    fn stored_by(job: &EmbeddingJob, created_at: i64) -> StoredVersion {
        StoredVersion {
            content_hash: job.content_hash.clone(),
            job_id: job.job_id.to_string(),
            job_created_at: created_at,
        }
    }

    #[test]
    fn a_fresh_job_is_embedded() {
        let j = job("v1", Some("v1"));
        assert_eq!(assess(&j, 10, &present("v1"), None), Verdict::Embed);
        let unbound = EmbeddingJob::new(Uuid::new_v4(), "org_a", MODEL, "text", None);
        assert_eq!(
            assess(&unbound, 10, &RecordState::Unbound, None),
            Verdict::Embed
        );
    }

    #[test]
    fn a_missing_record_is_dead_with_its_name() {
        let verdict = assess(&job("v1", Some("v1")), 10, &RecordState::Missing, None);
        assert!(
            matches!(verdict, Verdict::Dead(reason) if reason.contains("`clm_1`") && reason.contains("`claims`"))
        );
    }

    #[test]
    fn a_job_for_text_the_record_no_longer_has_is_stale() {
        let old = job("v1", Some("v1"));
        assert!(matches!(
            assess(&old, 10, &present("v2"), None),
            Verdict::Stale(_)
        ));
        // Without a record hash (a custom pipeline's job) only the order of jobs counts.
        assert_eq!(
            assess(&job("custom", None), 10, &present("v2"), None),
            Verdict::Embed
        );
    }

    #[test]
    fn an_older_job_never_overwrites_a_newer_vector() {
        let older = job("v1", None);
        let newer = job("v2", None);
        let stored = stored_by(&newer, 20);
        assert!(matches!(
            assess(&older, 10, &present("v2"), Some(&stored)),
            Verdict::Stale(_)
        ));
        // The newer job over the older vector is embedded.
        assert_eq!(
            assess(&newer, 20, &present("v2"), Some(&stored_by(&older, 10))),
            Verdict::Embed
        );
        // Same millisecond: the job id breaks the tie, the same way every time.
        let (a, b) = (job("a", None), job("b", None));
        let a_over_b = assess(&a, 10, &present("x"), Some(&stored_by(&b, 10)));
        let b_over_a = assess(&b, 10, &present("x"), Some(&stored_by(&a, 10)));
        assert_ne!(
            matches!(a_over_b, Verdict::Stale(_)),
            matches!(b_over_a, Verdict::Stale(_))
        );
    }

    #[test]
    fn unchanged_content_is_skipped() {
        let first = job("same", Some("same"));
        let second = job("same", Some("same"));
        assert_eq!(
            assess(&second, 20, &present("same"), Some(&stored_by(&first, 10))),
            Verdict::Skipped
        );
        // The same job delivered again after its write is skipped too.
        assert_eq!(
            assess(&first, 10, &present("same"), Some(&stored_by(&first, 10))),
            Verdict::Skipped
        );
    }
}
