//! The backfill into a building set: a page of the active set's records with what the building
//! set holds of each, the jobs it queues for them, and how much of the active set it covers.

use serde_json::{json, Map, Value};
use shared::config::TableConfig;
use shared::job::JobStatus;
use shared::message::EmbeddingJob;
use shared::sets::Migration;
use worker_kit::d1::{number, optional, text};
use worker_kit::sets::CoverageRow;
use worker_kit::{vector_rows, Fault};

use crate::migration::{Coverage, Page, PageRecord};
use crate::store::D1Store;

impl D1Store {
    /// [`crate::ports::MigrationStore::uncovered`]: the page `vector_rows::backfill_page` reads.
    pub(super) async fn backfill_page(
        &self,
        table: &TableConfig,
        m: &Migration,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, Fault> {
        let rows = self
            .statement_with(
                &vector_rows::backfill_page(table),
                m,
                &[
                    optional(after),
                    number(i64::from(limit)),
                    text(&m.migration_id.to_string()),
                ],
            )?
            .all()
            .await?
            .results::<Map<String, Value>>()?;
        let mut page = Page::default();
        for mut row in rows {
            let field = |row: &mut Map<String, Value>, name: &str| row.remove(name);
            let id = field(&mut row, "__id").and_then(|v| v.as_str().map(str::to_owned));
            let stored_hash =
                field(&mut row, "__stored").and_then(|v| v.as_str().map(str::to_owned));
            let covered = field(&mut row, "__covered").and_then(|v| v.as_i64()) == Some(1);
            let queued = field(&mut row, "__queued").and_then(|v| v.as_i64()) == Some(1);
            if let Some(created) = field(&mut row, "__set_created").and_then(|v| v.as_i64()) {
                page.set_created_at = created;
            }
            let Some(id) = id else { continue };
            page.records.push(PageRecord {
                id,
                text: table.has_text(&row).then(|| table.embedding_text(&row)),
                covered,
                stored_hash,
                queued,
            });
        }
        Ok(page)
    }

    /// [`crate::ports::MigrationStore::queue_jobs`].
    pub(super) async fn queue_backfill_jobs(
        &self,
        jobs: &[EmbeddingJob],
        backfill_id: &str,
        created_at: i64,
    ) -> Result<(), Fault> {
        let items: Vec<Value> = jobs
            .iter()
            .map(|job| {
                json!({ "id": job.job_id.to_string(), "org": job.organization_id,
                        "table": job.table, "record": job.id, "model": job.model,
                        "content": job.content, "hash": job.content_hash,
                        "truncated": i64::from(job.truncated) })
            })
            .collect();
        // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
        let statements = self.over_chunks(
            &items,
            &format!(
                "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model,
                     content, content_hash, status, attempts, created_at, updated_at,
                     backfill_id, truncated)
                 SELECT value ->> 'id', value ->> 'org', value ->> 'table', value ->> 'record',
                     value ->> 'model', value ->> 'content', value ->> 'hash', '{queued}', 0,
                     ?2, ?2, ?3, value ->> 'truncated'
                 FROM json_each(?1) WHERE true
                 ON CONFLICT (id) DO NOTHING",
                queued = JobStatus::Queued.as_str(),
            ),
            &[number(created_at), text(backfill_id)],
        )?;
        self.run_batch(statements).await
    }

    /// [`crate::ports::MigrationStore::coverage`].
    pub(super) async fn count_coverage(
        &self,
        table: &TableConfig,
        m: &Migration,
    ) -> Result<Coverage, Fault> {
        self.count(1);
        let row = worker_kit::sets::coverage(&self.db, &m.organization_id, table, &m.set())?
            .first::<CoverageRow>(None)
            .await?
            .unwrap_or_default();
        let (covered, of) = row.counts();
        Ok(Coverage { covered, of })
    }
}
