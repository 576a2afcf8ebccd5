//! Step 5 of a batch, the part that decides nothing: each job's fate turned into the D1 writes
//! that end its delivery ([`Write`]), for the store to commit.

use shared::config::{Config, TableConfig};
use shared::disposition::Outcome;
use shared::freshness::{unwritten, Verdict};
use shared::job::JobStatus;
use shared::message::{content_hash, EmbeddingJob};

use super::Entry;
use crate::ports::{Destination, Embedded, Loaded, SetVector, Write};

/// The D1 writes that end this delivery of `entry`'s job: its result, and the sets it finds
/// already current under an older job's name.
pub(super) fn write_for<'a>(config: &'a Config, entry: &'a Entry<'a>) -> Vec<Write<'a>> {
    let job = entry.job;
    let Some(loaded) = entry.loaded.as_ref() else {
        return Vec::new();
    };
    match &entry.outcome {
        Outcome::Transient(error) => {
            return vec![Write::Failed {
                job_id: job.job_id.to_string(),
                organization_id: job.organization_id.clone(),
                error: error.clone(),
            }]
        }
        Outcome::Permanent(reason) => {
            return vec![finished(job, JobStatus::Dead, Some(reason.clone()))]
        }
        Outcome::Handled => {}
    }
    let (to, touch) = match job.table.as_deref().and_then(|t| config.table(t)) {
        Some(table) if !loaded.sets.is_empty() => to_sets(entry, loaded, table),
        _ => (
            entry
                .vectors
                .get(&job.model)
                .map(|v| Destination::JobRow(v)),
            None,
        ),
    };
    let result = match to {
        Some(to) => Some(Write::Embedded(Embedded {
            job,
            created_at: loaded.created_at,
            to,
            truncated: entry.truncated,
        })),
        None => nothing_written(job, &entry.verdicts),
    };
    result.into_iter().chain(touch).collect()
}

/// A job's final status, without a vector.
fn finished<'a>(job: &EmbeddingJob, status: JobStatus, reason: Option<String>) -> Write<'a> {
    Write::Finished {
        job_id: job.job_id.to_string(),
        organization_id: job.organization_id.clone(),
        status,
        reason,
    }
}

/// How a job that writes no vector ends: what its verdicts come to (`unwritten`).
fn nothing_written<'a>(job: &EmbeddingJob, verdicts: &[Verdict]) -> Option<Write<'a>> {
    match unwritten(verdicts) {
        Verdict::Skipped => Some(finished(job, JobStatus::Skipped, None)),
        Verdict::Stale(reason) => Some(finished(job, JobStatus::Stale, Some(reason.to_owned()))),
        Verdict::Dead(reason) => Some(finished(job, JobStatus::Dead, Some(reason))),
        Verdict::Embed | Verdict::Relocate => None,
    }
}

/// A record's job: the vectors it writes to its table's live sets, if any, and the sets it
/// finds current under an older job's name ([`Write::Touched`]).
fn to_sets<'a>(
    entry: &'a Entry<'a>,
    loaded: &'a Loaded,
    table: &'a TableConfig,
) -> (Option<Destination<'a>>, Option<Write<'a>>) {
    let job = entry.job;
    // Only while the table's model changes (the switch compares versions across sets), so that
    // a table with one set spends no statement on it; a redelivery of the job that wrote the
    // vector changes nothing.
    let skipped = if loaded.sets.len() > 1 {
        set_vectors(entry, loaded, |v| *v == Verdict::Skipped)
    } else {
        Vec::new()
    };
    let touched: Vec<SetVector<'a>> = skipped
        .into_iter()
        .filter(|sv| {
            loaded.sets.iter().any(|live| {
                live.set == *sv.set
                    && live
                        .stored
                        .as_ref()
                        .is_some_and(|s| s.job_id != job.job_id.to_string())
            })
        })
        .collect();
    let touch = (!touched.is_empty()).then_some(Write::Touched {
        job,
        created_at: loaded.created_at,
        table,
        sets: touched,
    });
    let vectors = set_vectors(entry, loaded, |v| {
        matches!(v, Verdict::Embed | Verdict::Relocate)
    });
    let to = (!vectors.is_empty()).then_some(Destination::Sets(table, vectors));
    (to, touch)
}

/// The job's vector for each live set whose verdict is `wanted` (none for a skipped set, whose
/// vector stays), with the content hash under the set's model.
fn set_vectors<'a>(
    entry: &'a Entry<'a>,
    loaded: &'a Loaded,
    wanted: impl Fn(&Verdict) -> bool,
) -> Vec<SetVector<'a>> {
    loaded
        .sets
        .iter()
        .zip(&entry.verdicts)
        .filter(|(_, v)| wanted(v))
        .filter_map(|(live, verdict)| {
            let vector = match verdict {
                Verdict::Skipped => &[][..],
                _ => entry.vectors.get(&live.set.model)?,
            };
            Some(SetVector {
                set: &live.set,
                content_hash: content_hash(&live.set.model, &entry.job.content),
                vector,
            })
        })
        .collect()
}
