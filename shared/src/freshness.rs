//! Whether a delivered job still has work to do: the consumer's idempotence and ordering rules.
//!
//! Queues deliver at least once and in any order, so before embedding anything the consumer
//! compares the job with what each of its table's live vector sets (`crate::sets`) holds for
//! the record:
//!
//! 1. a job bound to a record that no longer exists is dead (retrying cannot bring it back);
//! 2. a job made from text the record no longer has is `stale` (`recordHash` differs);
//! 3. a job older than the one that wrote the set's vector is `stale` for that set: an older
//!    job never overwrites a newer vector;
//! 4. a job whose content hash under the set's model equals the stored vector's is `skipped`
//!    for that set, with no AI call;
//! 5. a vector of the same model and content kept in another set (the table is moving to
//!    another backend or index) is copied, still with no AI call;
//! 6. anything else is embedded with the set's model.
//!
//! Jobs are ordered by their creation time in milliseconds, then by job id.

use crate::message::{content_hash, EmbeddingJob};

/// The version of the vector a set holds for a record: which job wrote it, from what content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// [`content_hash`] of the set's model and the content embedded.
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

/// What to do with a job, for one set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Embed,
    Skipped,
    /// The set lacks the vector, but another set holds it for the same model and content: copy.
    Relocate,
    Stale(&'static str),
    Dead(String),
}

/// What the job brings a set: `set_hash` is the [`content_hash`] of the set's model and the
/// job's content; `copy_kept` says whether another set holds that vector already.
#[derive(Debug, Clone, Copy)]
pub struct ForSet<'a> {
    pub stored: Option<&'a StoredVersion>,
    pub set_hash: &'a str,
    pub copy_kept: bool,
}

/// Applies the rules above to one job, created at `created_at`, for one set.
pub fn assess(
    job: &EmbeddingJob,
    created_at: i64,
    record: &RecordState,
    set: ForSet<'_>,
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
    if let Some(stored) = set.stored {
        let this = (created_at, job.job_id.to_string());
        if (stored.job_created_at, &stored.job_id) > (this.0, &this.1) {
            return Verdict::Stale("a newer job already wrote this record's vector");
        }
        if stored.content_hash == set.set_hash {
            return Verdict::Skipped;
        }
    }
    if set.copy_kept {
        Verdict::Relocate
    } else {
        Verdict::Embed
    }
}

/// The job's fate across its sets, when it writes none of them: dead, `skipped` if any set
/// already held its content, else `stale`.
pub fn unwritten(verdicts: &[Verdict]) -> Verdict {
    if let Some(dead) = verdicts.iter().find(|v| matches!(v, Verdict::Dead(_))) {
        return dead.clone();
    }
    if verdicts.contains(&Verdict::Skipped) {
        return Verdict::Skipped;
    }
    verdicts
        .iter()
        .find(|v| matches!(v, Verdict::Stale(_)))
        .cloned()
        .unwrap_or(Verdict::Skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const MODEL: &str = crate::models::DEFAULT_MODEL;
    const SMALL: &str = "@cf/baai/bge-small-en-v1.5";

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

    /// The job for a set of the job's own model.
    fn own<'a>(job: &'a EmbeddingJob, stored: Option<&'a StoredVersion>) -> ForSet<'a> {
        ForSet {
            stored,
            set_hash: &job.content_hash,
            copy_kept: false,
        }
    }

    #[test]
    fn a_fresh_job_is_embedded() {
        let j = job("v1", Some("v1"));
        assert_eq!(
            assess(&j, 10, &present("v1"), own(&j, None)),
            Verdict::Embed
        );
        let unbound = EmbeddingJob::new(Uuid::new_v4(), "org_a", MODEL, "text", None);
        assert_eq!(
            assess(&unbound, 10, &RecordState::Unbound, own(&unbound, None)),
            Verdict::Embed
        );
    }

    #[test]
    fn a_missing_record_is_dead_with_its_name() {
        let j = job("v1", Some("v1"));
        let verdict = assess(&j, 10, &RecordState::Missing, own(&j, None));
        assert!(
            matches!(verdict, Verdict::Dead(reason) if reason.contains("`clm_1`") && reason.contains("`claims`"))
        );
    }

    #[test]
    fn a_job_for_text_the_record_no_longer_has_is_stale() {
        let old = job("v1", Some("v1"));
        assert!(matches!(
            assess(&old, 10, &present("v2"), own(&old, None)),
            Verdict::Stale(_)
        ));
        // Without a record hash (a custom pipeline's job) only the order of jobs counts.
        let custom = job("custom", None);
        assert_eq!(
            assess(&custom, 10, &present("v2"), own(&custom, None)),
            Verdict::Embed
        );
    }

    #[test]
    fn an_older_job_never_overwrites_a_newer_vector() {
        let older = job("v1", None);
        let newer = job("v2", None);
        let stored = stored_by(&newer, 20);
        assert!(matches!(
            assess(&older, 10, &present("v2"), own(&older, Some(&stored))),
            Verdict::Stale(_)
        ));
        // The newer job over the older vector is embedded.
        let old_vector = stored_by(&older, 10);
        assert_eq!(
            assess(&newer, 20, &present("v2"), own(&newer, Some(&old_vector))),
            Verdict::Embed
        );
        // Same millisecond: the job id breaks the tie, the same way every time.
        let (a, b) = (job("a", None), job("b", None));
        let (by_a, by_b) = (stored_by(&a, 10), stored_by(&b, 10));
        let a_over_b = assess(&a, 10, &present("x"), own(&a, Some(&by_b)));
        let b_over_a = assess(&b, 10, &present("x"), own(&b, Some(&by_a)));
        assert_ne!(
            matches!(a_over_b, Verdict::Stale(_)),
            matches!(b_over_a, Verdict::Stale(_))
        );
    }

    #[test]
    fn unchanged_content_is_skipped() {
        let first = job("same", Some("same"));
        let second = job("same", Some("same"));
        let by_first = stored_by(&first, 10);
        assert_eq!(
            assess(&second, 20, &present("same"), own(&second, Some(&by_first))),
            Verdict::Skipped
        );
        // The same job delivered again after its write is skipped too.
        assert_eq!(
            assess(&first, 10, &present("same"), own(&first, Some(&by_first))),
            Verdict::Skipped
        );
    }

    #[test]
    fn each_set_is_judged_under_its_own_model() {
        // The record's vector is current in the bge-base set; a bge-small set being built
        // beside it has nothing yet: the same job is skipped for one and embedded for the other.
        let first = job("same", Some("same"));
        let second = job("same", Some("same"));
        let by_first = stored_by(&first, 10);
        let small_hash = content_hash(SMALL, "same");
        assert_eq!(
            assess(&second, 20, &present("same"), own(&second, Some(&by_first))),
            Verdict::Skipped
        );
        let building = ForSet {
            stored: None,
            set_hash: &small_hash,
            copy_kept: false,
        };
        assert_eq!(
            assess(&second, 20, &present("same"), building),
            Verdict::Embed
        );
        // A bge-base vector stored under the small set's name would not count as current.
        let wrong_model = ForSet {
            stored: Some(&by_first),
            set_hash: &small_hash,
            copy_kept: false,
        };
        assert_eq!(
            assess(&second, 20, &present("same"), wrong_model),
            Verdict::Embed
        );
    }

    #[test]
    fn a_vector_kept_in_another_set_is_copied_not_embedded_again() {
        let first = job("same", Some("same"));
        let second = job("same", Some("same"));
        let moving = ForSet {
            stored: None,
            set_hash: &second.content_hash,
            copy_kept: true,
        };
        assert_eq!(
            assess(&second, 20, &present("same"), moving),
            Verdict::Relocate
        );
        // Order still comes first: an older job is stale wherever the vector is kept.
        let newer = stored_by(&second, 20);
        let behind = ForSet {
            stored: Some(&newer),
            set_hash: &first.content_hash,
            copy_kept: true,
        };
        assert!(matches!(
            assess(&first, 10, &present("same"), behind),
            Verdict::Stale(_)
        ));
    }

    #[test]
    fn a_job_that_writes_no_set_is_skipped_if_any_set_held_its_content() {
        let stale = Verdict::Stale("a newer job already wrote this record's vector");
        assert_eq!(
            unwritten(&[stale.clone(), Verdict::Skipped]),
            Verdict::Skipped
        );
        assert_eq!(unwritten(&[stale.clone(), stale.clone()]), stale);
        let dead = Verdict::Dead("gone".into());
        assert_eq!(unwritten(&[Verdict::Skipped, dead.clone()]), dead);
    }
}
