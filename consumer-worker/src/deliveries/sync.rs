//! Step 6 of a batch: each Vectorize index it touched brought in line with D1
//! (`worker_kit::index_sync`), and the jobs whose vector the index refused on its own marked
//! dead.

use shared::disposition::Outcome;
use shared::message::EmbeddingJob;
use worker_kit::embedder::Embedder;
use worker_kit::index_sync::RecordKey;

use super::{Consumer, Entry, Tally};
use crate::ports::{DeadJob, JobStore, Loaded, Requeue, VectorIndexes};

impl<S: JobStore, E: Embedder, R: Requeue, V: VectorIndexes> Consumer<'_, S, E, R, V> {
    /// Brings every Vectorize index the batch touched in line with D1, which has just committed:
    /// the records of jobs that wrote a vector to a Vectorize set, and of redeliveries of jobs
    /// already final (a job whose sync failed is sent again, and its redelivery only syncs). A
    /// skipped or stale job wrote nothing; the job that wrote its record's vector syncs it.
    pub(super) async fn sync(&self, entries: &mut [Entry<'_>], tally: &mut Tally, now_ms: i64) {
        let indices: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| {
                let in_vectorize =
                    |loaded: &Loaded| loaded.sets.iter().any(|live| live.set.binding().is_some());
                let wrote = entry.writes() && entry.loaded.as_ref().is_some_and(in_vectorize);
                // Any table's: while its model changes, its active set may be in Vectorize
                // whatever the config names now (a sync of a D1-only record reads one row).
                let redelivered = entry.loaded.is_none() && self.table_of(entry.job).is_some();
                !matches!(entry.outcome, Outcome::Transient(_))
                    && entry.job.id.is_some()
                    && (wrote || redelivered)
            })
            .map(|(i, _)| i)
            .collect();
        if indices.is_empty() {
            return;
        }
        let records: Vec<RecordKey> = indices
            .iter()
            .map(|&i| {
                let job = entries[i].job;
                RecordKey {
                    organization_id: job.organization_id.clone(),
                    table: job.table.clone().unwrap_or_default(),
                    record_id: job.id.clone().unwrap_or_default(),
                }
            })
            .collect();
        match self.indexes.sync(&records).await {
            Ok(synced) => {
                tally.indexed += synced.upserted;
                tally.unindexed += synced.deleted;
                tally.sync_statements += synced.statements;
                self.fail_refused(entries, &indices, &synced.refused, now_ms)
                    .await;
            }
            Err(fault) => {
                tracing::error!(records = records.len(), error = %fault, "bringing Vectorize in line with D1 failed; the jobs are tried again");
                for &i in &indices {
                    entries[i].outcome =
                        Outcome::Transient(format!("writing to Vectorize failed: {fault}"));
                }
            }
        }
    }

    /// The jobs of the records whose vector the index refused on its own (one vector among
    /// others it took: `worker_kit::index_sync::upsert_isolating`) are dead with the index's
    /// reason; every other job of the batch stands. Should that write fail, they are tried
    /// again, and their redelivery only syncs.
    async fn fail_refused(
        &self,
        entries: &mut [Entry<'_>],
        synced: &[usize],
        refused: &[(RecordKey, String)],
        now_ms: i64,
    ) {
        let mut dead = Vec::new();
        for &i in synced {
            let job = entries[i].job;
            let refusal = refused.iter().find(|(key, _)| {
                key.organization_id == job.organization_id
                    && Some(&key.table) == job.table.as_ref()
                    && Some(&key.record_id) == job.id.as_ref()
            });
            if let Some((_, error)) = refusal {
                let reason = format!("the vector index refused the record's vector: {error}");
                tracing::warn!(job_id = %job.job_id, organization_id = %job.organization_id, reason, "record refused by the vector index");
                dead.push(dead_job(job, &reason));
                entries[i].outcome = Outcome::Permanent(reason);
            }
        }
        if dead.is_empty() {
            return;
        }
        if let Err(fault) = self.store.mark_unindexed(&dead, now_ms).await {
            for &i in synced {
                if matches!(entries[i].outcome, Outcome::Permanent(_)) {
                    entries[i].outcome =
                        Outcome::Transient(format!("recording a refused vector failed: {fault}"));
                }
            }
        }
    }
}

fn dead_job(job: &EmbeddingJob, reason: &str) -> DeadJob {
    DeadJob {
        job_id: job.job_id.to_string(),
        organization_id: job.organization_id.clone(),
        reason: reason.to_owned(),
    }
}
