//! Whether a delivered job still has work to do: the consumer's idempotence and ordering rules.
//!
//! Queues deliver at least once and in any order, so before embedding anything the consumer
//! compares the job with what is stored:
//!
//! 1. a job bound to a record that no longer exists is dead (retrying cannot bring it back);
//! 2. a job made from text the record no longer has is `stale` (`recordHash` differs);
//! 3. a job older than the one that wrote the stored vector is `stale`: an older job never
//!    overwrites a newer vector;
//! 4. a job whose content hash equals the stored vector's is `skipped`, with no AI call, when
//!    the vector is kept where its table keeps vectors now; when the table has moved (from D1 to
//!    Vectorize, or to another index), the stored copy is moved there, still with no AI call;
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
    /// Where the vector is kept for search (`shared::config::VectorIndex::location`).
    pub location: String,
    /// Whether D1 holds a copy of the vector that can be moved without embedding again.
    pub copy_kept: bool,
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
    /// The stored vector is current but kept elsewhere: write D1's copy to the table's index.
    Relocate,
    Stale(&'static str),
    Dead(String),
}

/// Applies the rules above to one job, created at `created_at`, of a table whose vectors are
/// kept at `location`.
pub fn assess(
    job: &EmbeddingJob,
    created_at: i64,
    record: &RecordState,
    stored: Option<&StoredVersion>,
    location: &str,
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
    if stored.content_hash != job.content_hash {
        return Verdict::Embed;
    }
    if stored.location == location {
        Verdict::Skipped
    } else if stored.copy_kept {
        Verdict::Relocate
    } else {
        Verdict::Embed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const MODEL: &str = crate::models::DEFAULT_MODEL;
    const D1: &str = "d1";

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
            location: D1.into(),
            copy_kept: true,
        }
    }

    #[test]
    fn a_fresh_job_is_embedded() {
        let j = job("v1", Some("v1"));
        assert_eq!(assess(&j, 10, &present("v1"), None, D1), Verdict::Embed);
        let unbound = EmbeddingJob::new(Uuid::new_v4(), "org_a", MODEL, "text", None);
        assert_eq!(
            assess(&unbound, 10, &RecordState::Unbound, None, D1),
            Verdict::Embed
        );
    }

    #[test]
    fn a_missing_record_is_dead_with_its_name() {
        let verdict = assess(&job("v1", Some("v1")), 10, &RecordState::Missing, None, D1);
        assert!(
            matches!(verdict, Verdict::Dead(reason) if reason.contains("`clm_1`") && reason.contains("`claims`"))
        );
    }

    #[test]
    fn a_job_for_text_the_record_no_longer_has_is_stale() {
        let old = job("v1", Some("v1"));
        assert!(matches!(
            assess(&old, 10, &present("v2"), None, D1),
            Verdict::Stale(_)
        ));
        // Without a record hash (a custom pipeline's job) only the order of jobs counts.
        assert_eq!(
            assess(&job("custom", None), 10, &present("v2"), None, D1),
            Verdict::Embed
        );
    }

    #[test]
    fn an_older_job_never_overwrites_a_newer_vector() {
        let older = job("v1", None);
        let newer = job("v2", None);
        let stored = stored_by(&newer, 20);
        assert!(matches!(
            assess(&older, 10, &present("v2"), Some(&stored), D1),
            Verdict::Stale(_)
        ));
        // The newer job over the older vector is embedded.
        assert_eq!(
            assess(&newer, 20, &present("v2"), Some(&stored_by(&older, 10)), D1),
            Verdict::Embed
        );
        // Same millisecond: the job id breaks the tie, the same way every time.
        let (a, b) = (job("a", None), job("b", None));
        let a_over_b = assess(&a, 10, &present("x"), Some(&stored_by(&b, 10)), D1);
        let b_over_a = assess(&b, 10, &present("x"), Some(&stored_by(&a, 10)), D1);
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
            assess(
                &second,
                20,
                &present("same"),
                Some(&stored_by(&first, 10)),
                D1
            ),
            Verdict::Skipped
        );
        // The same job delivered again after its write is skipped too.
        assert_eq!(
            assess(
                &first,
                10,
                &present("same"),
                Some(&stored_by(&first, 10)),
                D1
            ),
            Verdict::Skipped
        );
    }

    #[test]
    fn a_current_vector_kept_elsewhere_is_moved_not_embedded_again() {
        let first = job("same", Some("same"));
        let second = job("same", Some("same"));
        let stored = stored_by(&first, 10);
        let vectorize = "vectorize:VECTORIZE_768";
        // The table moved from D1 to Vectorize: D1's copy goes to the index, no AI call.
        assert_eq!(
            assess(&second, 20, &present("same"), Some(&stored), vectorize),
            Verdict::Relocate
        );
        // Without a copy in D1 the only way there is to embed again.
        let without_copy = StoredVersion {
            copy_kept: false,
            ..stored.clone()
        };
        assert_eq!(
            assess(
                &second,
                20,
                &present("same"),
                Some(&without_copy),
                vectorize
            ),
            Verdict::Embed
        );
        // Order still comes first: an older job is stale wherever the vector is kept.
        let newer = stored_by(&second, 20);
        assert!(matches!(
            assess(&first, 10, &present("same"), Some(&newer), vectorize),
            Verdict::Stale(_)
        ));
        // Changed content is embedded, not moved.
        let changed = job("other", Some("other"));
        assert_eq!(
            assess(&changed, 30, &present("other"), Some(&stored), vectorize),
            Verdict::Embed
        );
    }
}
