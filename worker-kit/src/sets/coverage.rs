//! How much of a table's active set another set covers (`shared::sets`): the conditions the
//! backfill, the switch and the status route count by, as SQL fragments over D1's tables. The
//! fragments on `embedding_vectors` ([`UNCOVERED`], [`active_rows`]) are
//! [`crate::vector_rows`]'s; this module adds the jobs a switch waits for and the count.

use serde::Deserialize;
use shared::config::TableConfig;
use shared::job::JobStatus;
use shared::sets::VectorSet;
use worker::{D1Database, D1PreparedStatement};

use crate::d1::{statement, text};
pub use crate::vector_rows::{active_rows, UNCOVERED};
use crate::Fault;

/// Jobs of `?1`'s table `?2` still being processed by a batch that began before the building
/// set (model `?3` at `?4`) existed: such a batch writes only the active set, and may bring a
/// record the backfill did not list. The switch waits for them.
pub fn earlier_batches() -> String {
    format!(
        "EXISTS (SELECT 1 FROM embedding_jobs j
         WHERE j.organization_id = ?1 AND j.table_name = ?2 AND j.status = '{processing}'
           AND j.updated_at <= (SELECT b.created_at FROM embedding_sets b
               WHERE b.organization_id = ?1 AND b.table_name = ?2 AND b.model = ?3
                 AND b.location = ?4))",
        processing = JobStatus::Processing.as_str()
    )
}

/// How much of the active set another set covers, as [`coverage`] counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct CoverageRow {
    /// Live records of the active set.
    pub of: Option<u64>,
    /// Those the other set does not cover.
    pub uncovered: Option<u64>,
    /// 1 while a batch that began before the other set existed is still at work.
    pub earlier: Option<u64>,
}

impl CoverageRow {
    /// Covered records, and of how many; a batch from before the change counts as one record
    /// not covered yet.
    pub fn counts(&self) -> (u64, u64) {
        let of = self.of.unwrap_or(0);
        let uncovered = self.uncovered.unwrap_or(0) + self.earlier.unwrap_or(0);
        (of.saturating_sub(uncovered), of.max(uncovered))
    }
}

/// Counts the active set's live records of an organization's table, and those `set` does not
/// cover ([`CoverageRow`]). One pass over the active set, each record looked up by key.
pub fn coverage(
    db: &D1Database,
    organization_id: &str,
    table: &TableConfig,
    set: &VectorSet,
) -> Result<D1PreparedStatement, Fault> {
    statement(
        db,
        &format!(
            "SELECT COUNT(*) AS of, SUM(CASE WHEN {UNCOVERED} THEN 1 ELSE 0 END) AS uncovered,
                 (SELECT {earlier}) AS earlier
             FROM {active}",
            earlier = earlier_batches(),
            active = active_rows(table)
        ),
        &[
            text(organization_id),
            text(&table.name),
            text(&set.model),
            text(&set.location),
        ],
    )
}
