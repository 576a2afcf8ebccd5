//! A batch of jobs from either lane's queue (`shared::lane`), end to end:
//!
//! 1. decode every message (a malformed one is dead at once) and drop repeats of one job;
//! 2. one D1 round trip records the deliveries and reads each job's record and stored vector;
//! 3. `shared::freshness` decides each job for each live vector set of its table (two while the
//!    table's model or index changes, `shared::sets`): embed, `skipped`, `stale` or dead;
//! 4. the jobs to embed are grouped by model, 100 texts a call (a vector already in D1 that only
//!    has to move to the table's new index is taken from D1, with no AI call);
//! 5. one D1 round trip writes every result; a model change the batch's first sight of a new
//!    config started gets its backfill's first step sent;
//! 6. each Vectorize index the batch touched is brought in line with D1
//!    (`worker_kit::index_sync`): D1 is the truth, so concurrent batches cannot leave an older
//!    vector, or a deleted record's, in the index;
//! 7. each message gets its disposition from `shared::disposition`; retries are sent again with
//!    their attempt raised, and jobs out of retries go to the dead-letter queue, each in as few
//!    `sendBatch` calls as the queue's limits allow.
//!
//! A failure touches only its own messages, and no message is acknowledged before its writes
//! are committed.

mod embed;
mod resend;
mod sync;
mod writes;

use std::collections::{BTreeMap, HashMap};

use shared::config::{Config, TableConfig};
use shared::disposition::{Disposition, Outcome, RetryPolicy};
use shared::freshness::{assess, ForSet, Verdict};
use shared::lane::Lane;
use shared::message::{content_hash, EmbeddingJob, MessageError};
use shared::sets::{MigrationStep, Step};
use worker_kit::embedder::Embedder;

use self::writes::write_for;
use crate::ports::{Delivery, JobIdentity, JobStore, Loaded, Requeue, VectorIndexes, Write};

/// How the runtime settles a message once its batch is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Ack,
    /// Let the runtime deliver it again (when sending it again ourselves failed).
    Retry {
        delay_seconds: u32,
    },
}

/// Everything a batch needs.
pub(crate) struct Consumer<'a, S, E, R, V> {
    pub store: &'a S,
    pub embedder: &'a E,
    pub requeue: &'a R,
    pub indexes: &'a V,
    pub config: &'a Config,
    pub policy: RetryPolicy,
    /// The queue the batch came from: its retries go back to it (`shared::lane`).
    pub lane: Lane,
}

/// One distinct job of the batch and what became of it.
struct Entry<'a> {
    job: &'a EmbeddingJob,
    /// What the store knows of it; `None` for a job already final (or when the read failed).
    loaded: Option<Loaded>,
    /// What `shared::freshness` made of it, once loaded: one verdict per live set of its table
    /// (`loaded.sets`), or one for the job row of a job without a record.
    verdicts: Vec<Verdict>,
    outcome: Outcome,
    /// Its vectors by model: embedded by this batch, or copied from another set.
    vectors: BTreeMap<String, Vec<f32>>,
    truncated: bool,
}

impl Entry<'_> {
    /// The models this job must be embedded with.
    fn models_to_embed(&self) -> Vec<&str> {
        let mut models: Vec<&str> = match self.loaded.as_ref() {
            Some(loaded) if !loaded.sets.is_empty() => loaded
                .sets
                .iter()
                .zip(&self.verdicts)
                .filter(|(_, v)| **v == Verdict::Embed)
                .map(|(set, _)| set.set.model.as_str())
                .collect(),
            _ if self.verdicts.first() == Some(&Verdict::Embed) => vec![self.job.model.as_str()],
            _ => Vec::new(),
        };
        models.sort_unstable();
        models.dedup();
        models
    }

    /// Whether this job writes any vector.
    fn writes(&self) -> bool {
        !self.vectors.is_empty()
    }
}

/// Where a message's fate is decided.
enum Slot {
    /// The distinct job at this index of the batch's entries.
    Job(usize),
    /// A message that is not a job: dead, with its job's id and organization when readable.
    Malformed {
        outcome: Outcome,
        identity: Option<JobIdentity>,
    },
}

/// The batch's distinct jobs, and each message's slot: the same job twice in one batch is
/// handled once, and both messages share its fate.
fn distinct_jobs<'a>(
    messages: &[Delivery],
    decoded: &'a [Result<EmbeddingJob, MessageError>],
) -> (Vec<Entry<'a>>, Vec<Slot>) {
    let mut entries: Vec<Entry<'a>> = Vec::new();
    let mut index_of_job = HashMap::new();
    let slots = messages
        .iter()
        .zip(decoded)
        .map(|(message, decoded)| match decoded {
            Ok(job) => Slot::Job(*index_of_job.entry(job.job_id).or_insert_with(|| {
                entries.push(Entry {
                    job,
                    loaded: None,
                    verdicts: Vec::new(),
                    outcome: Outcome::Handled,
                    vectors: BTreeMap::new(),
                    truncated: false,
                });
                entries.len() - 1
            })),
            Err(e) => Slot::Malformed {
                outcome: Outcome::Permanent(e.to_string()),
                identity: JobIdentity::read(&message.body),
            },
        })
        .collect();
    (entries, slots)
}

/// Counts for the batch's log line.
#[derive(Debug, Default)]
struct Tally {
    ai_calls: usize,
    texts: usize,
    /// Vectors copied from D1 to the table's index with no AI call.
    moved: usize,
    /// Vectors written to, and deleted from, Vectorize indexes.
    indexed: usize,
    unindexed: usize,
    /// D1 statements the Vectorize syncs ran (the store counts its own).
    sync_statements: usize,
}

impl<S: JobStore, E: Embedder, R: Requeue, V: VectorIndexes> Consumer<'_, S, E, R, V> {
    pub(crate) async fn handle(&self, messages: &[Delivery], now_ms: i64) -> Vec<Settle> {
        let decoded: Vec<_> = messages
            .iter()
            .map(|m| EmbeddingJob::decode(m.body.clone()))
            .collect();
        let (mut entries, mut slots) = distinct_jobs(messages, &decoded);

        let mut tally = Tally::default();
        let started = self.decide(&mut entries, now_ms).await;
        tally.moved = entries
            .iter()
            .flat_map(|e| &e.verdicts)
            .filter(|v| **v == Verdict::Relocate)
            .count();
        let read = worker_kit::now_ms();
        self.embed(&mut entries, &mut tally).await;
        let embedded = worker_kit::now_ms();
        let committed = self.commit(&mut entries, &mut slots, now_ms).await;
        if committed {
            self.sync(&mut entries, &mut tally, now_ms).await;
        }
        self.start_migrations(&started).await;
        let written = worker_kit::now_ms();

        let mut settles = vec![Settle::Ack; messages.len()];
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut settled = vec![false; entries.len()];
        let mut retries = Vec::new();
        let mut dead_letters = Vec::new();
        for (i, (message, slot)) in messages.iter().zip(slots).enumerate() {
            let (disposition, job) = match slot {
                // A repeat of a job already settled by an earlier message is only acknowledged.
                Slot::Job(j) if std::mem::replace(&mut settled[j], true) => continue,
                Slot::Job(j) => {
                    let entry = &entries[j];
                    let disposition = self.policy.decide(entry.outcome.clone(), entry.job.attempt);
                    (disposition, Some(entry.job))
                }
                Slot::Malformed { outcome, .. } => (self.policy.decide(outcome, 0), None),
            };
            *counts.entry(label(&disposition)).or_default() += 1;
            let job_id = job.map(|j| j.job_id.to_string());
            match (disposition, job) {
                (Disposition::Ack, _) => {}
                (Disposition::Dead { reason }, _) => {
                    tracing::warn!(message_id = %message.message_id, job_id, reason, "job dead");
                }
                (Disposition::Retry { delay_seconds }, Some(job)) => {
                    retries.push((i, (job.next_attempt(), delay_seconds)));
                }
                (Disposition::DeadLetter { reason }, Some(job)) => {
                    tracing::warn!(message_id = %message.message_id, job_id, reason, "job out of retries");
                    dead_letters.push((i, job.clone()));
                }
                // A message that never decoded fails transiently only when its dead record could
                // not be written: the runtime brings it back.
                (Disposition::Retry { delay_seconds }, None) => {
                    settles[i] = Settle::Retry { delay_seconds };
                }
                (Disposition::DeadLetter { .. }, None) => {
                    settles[i] = Settle::Retry { delay_seconds: 0 };
                }
            }
        }
        self.send_again(&retries, &dead_letters, &mut settles).await;

        let mut models: Vec<&str> = entries.iter().map(|e| e.job.model.as_str()).collect();
        models.sort_unstable();
        models.dedup();
        tracing::info!(
            queue = self.lane.queue(),
            size = messages.len(),
            jobs = entries.len(),
            models = ?models,
            ai_calls = tally.ai_calls,
            texts_embedded = tally.texts,
            vectors_moved = tally.moved,
            vectorize_upserted = tally.indexed,
            vectorize_deleted = tally.unindexed,
            outcomes = ?counts,
            d1_statements = self.store.statements() + tally.sync_statements,
            read_ms = read - now_ms,
            embed_ms = embedded - read,
            write_ms = written - embedded,
            ms = worker_kit::now_ms() - now_ms,
            "batch processed"
        );
        settles
    }

    /// Writes every result of the batch in one transaction; `false` if that failed. Then nothing
    /// was written, so every message must come back, or its job would stay open.
    async fn commit(&self, entries: &mut [Entry<'_>], slots: &mut [Slot], now_ms: i64) -> bool {
        let mut writes: Vec<Write<'_>> = entries
            .iter()
            .flat_map(|entry| write_for(self.config, entry))
            .collect();
        for slot in slots.iter() {
            if let Slot::Malformed {
                outcome: Outcome::Permanent(reason),
                identity: Some(job),
            } = slot
            {
                writes.push(Write::Rejected {
                    job: job.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if writes.is_empty() {
            return true;
        }
        let Err(fault) = self.store.commit(&writes, now_ms).await else {
            return true;
        };
        drop(writes);
        let retry = Outcome::Transient(format!("writing the results failed: {fault}"));
        for entry in entries.iter_mut() {
            if !matches!(entry.outcome, Outcome::Transient(_)) {
                entry.outcome = retry.clone();
            }
        }
        for slot in slots.iter_mut() {
            if let Slot::Malformed { outcome, .. } = slot {
                *outcome = retry.clone();
            }
        }
        false
    }

    /// Records the deliveries, reads each job's record and what each set stores for it, and
    /// decides what each job still has to do there. Answers the model changes it started.
    async fn decide(&self, entries: &mut [Entry<'_>], now_ms: i64) -> Vec<MigrationStep> {
        if entries.is_empty() {
            return Vec::new();
        }
        let jobs: Vec<&EmbeddingJob> = entries.iter().map(|e| e.job).collect();
        let batch = match self.store.load(&jobs, now_ms).await {
            Ok(batch) => batch,
            Err(fault) => {
                for entry in entries.iter_mut() {
                    entry.outcome = Outcome::Transient(format!("reading the jobs failed: {fault}"));
                }
                return Vec::new();
            }
        };
        for (entry, loaded) in entries.iter_mut().zip(batch.jobs) {
            // `None`: the job is final already (a redelivery after its commit): nothing to do.
            let Some(loaded) = loaded else { continue };
            let job = entry.job;
            let created_at = loaded.created_at;
            entry.verdicts = if loaded.sets.is_empty() {
                let own = ForSet {
                    stored: None,
                    set_hash: &job.content_hash,
                    copy_kept: false,
                };
                vec![assess(job, created_at, &loaded.record, own)]
            } else {
                loaded
                    .sets
                    .iter()
                    .map(|live| {
                        let set_hash = content_hash(&live.set.model, &job.content);
                        let copy = loaded
                            .copies
                            .iter()
                            .find(|c| c.model == live.set.model && c.content_hash == set_hash);
                        let verdict = assess(
                            job,
                            created_at,
                            &loaded.record,
                            ForSet {
                                stored: live.stored.as_ref(),
                                set_hash: &set_hash,
                                copy_kept: copy.is_some(),
                            },
                        );
                        // The table is moving: the other set's copy is this set's vector.
                        if let (Verdict::Relocate, Some(copy)) = (&verdict, copy) {
                            entry
                                .vectors
                                .insert(live.set.model.clone(), copy.vector.clone());
                        }
                        verdict
                    })
                    .collect()
            };
            if let Some(Verdict::Dead(reason)) = entry
                .verdicts
                .iter()
                .find(|v| matches!(v, Verdict::Dead(_)))
            {
                entry.outcome = Outcome::Permanent(reason.clone());
            }
            entry.loaded = Some(loaded);
        }
        batch.started
    }

    /// Sends the first backfill step of each model change this batch started. Should the send
    /// fail, the change is resumed by the sweep or by `POST .../migration`.
    async fn start_migrations(&self, started: &[MigrationStep]) {
        if started.is_empty() {
            return;
        }
        for step in started {
            let m = &step.migration;
            if m.step == Step::Cleanup {
                tracing::info!(organization_id = %m.organization_id, table = %m.table, model = %m.model, location = %m.location, "model change given up: the config no longer names the set being built, which is removed");
            } else {
                tracing::info!(organization_id = %m.organization_id, table = %m.table, model = %m.model, location = %m.location, migration_id = %m.migration_id, "model change started: every write now goes to both sets, and a backfill fills the new one");
            }
        }
        let steps: Vec<(MigrationStep, u32)> = started.iter().map(|s| (s.clone(), 0)).collect();
        if let Err(fault) = self.requeue.steps(&steps).await {
            tracing::error!(error = %fault, "sending the first backfill steps failed; the sweep resumes them");
        }
    }

    fn table_of(&self, job: &EmbeddingJob) -> Option<&TableConfig> {
        self.config.table(job.table.as_deref()?)
    }
}

fn label(disposition: &Disposition) -> &'static str {
    match disposition {
        Disposition::Ack => "acked",
        Disposition::Retry { .. } => "retried",
        Disposition::DeadLetter { .. } => "dead_lettered",
        Disposition::Dead { .. } => "dead",
    }
}
