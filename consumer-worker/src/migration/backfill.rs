//! A backfill page: the active set's live records, in id order, that the building set does
//! not cover are enqueued as jobs of the change's backfill; then the next page, or the switch.

use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::sets::{needs_job, MigrationStep, Step, BACKFILL_PAGE};
use uuid::Uuid;
use worker_kit::Fault;

use super::Steps;
use crate::ports::{MigrationStore, Requeue, VectorIndexes};

impl<S: MigrationStore, R: Requeue, V: VectorIndexes> Steps<'_, S, R, V> {
    pub(super) async fn backfill(
        &self,
        step: &MigrationStep,
        seq: u32,
        after: Option<&str>,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let m = &step.migration;
        let Some(table) = self.config.table(&m.table) else {
            return Ok(());
        };
        let page = self.store.uncovered(table, m, after, BACKFILL_PAGE).await?;
        // Each job is newer than any the building set's start could have missed: those were
        // made no later than the set (`shared::sets`).
        let created_at = now_ms.max(page.set_created_at + 1);
        let jobs: Vec<EmbeddingJob> = page
            .records
            .iter()
            .filter_map(|record| {
                let text = record.text.as_deref();
                needs_job(
                    &m.model,
                    text,
                    record.covered,
                    record.stored_hash.as_deref(),
                    record.queued,
                )
                .then(|| {
                    let text = text.unwrap_or_default();
                    EmbeddingJob::new(
                        Uuid::new_v4(),
                        &m.organization_id,
                        &m.model,
                        text,
                        Some((m.table.clone(), record.id.clone())),
                    )
                    .with_record_text(text)
                })
            })
            .collect();
        if !jobs.is_empty() {
            // Recorded before they are sent: a job whose message is then lost stays open, and
            // the sweep sends it again (`crate::sweep`); the page, run again, leaves it be.
            let backfill_id = m.migration_id.to_string();
            self.store
                .queue_jobs(&jobs, &backfill_id, created_at)
                .await?;
            let lane = Lane::of_job(Some(&backfill_id));
            let sends: Vec<(EmbeddingJob, u32)> = jobs.iter().map(|j| (j.clone(), 0)).collect();
            for batch in
                shared::message::send_batches(&sends, |(job, _)| shared::message::body_size(job))
            {
                self.requeue.retry(lane, batch).await?;
            }
        }
        let next = Step::after_page(
            page.records.len(),
            page.records.last().map(|r| r.id.as_str()),
        );
        tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, after, seq, records = page.records.len(), queued = jobs.len(), "model change: backfill page");
        self.requeue.steps(&[(step.then(seq, next), 0)]).await
    }
}

/// A record a backfill page looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageRecord {
    pub id: String,
    /// Its embedded fields, joined as the config says; none if it has nothing to embed
    /// (`TableConfig::has_text`).
    pub text: Option<String>,
    /// Whether the building set's vector is live and at least as new as the active set's.
    pub covered: bool,
    /// The content hash of the building set's vector, if any.
    pub stored_hash: Option<String>,
    /// Whether a job of this change's backfill is open for it.
    pub queued: bool,
}

/// A page of the active set's live records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Page {
    pub records: Vec<PageRecord>,
    /// When the building set was started (its generation).
    pub set_created_at: i64,
}
