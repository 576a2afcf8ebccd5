//! How much of a table's active set another set covers (`shared::sets`): the conditions the
//! backfill, the switch and the status route count by, as SQL fragments over D1's tables.

use serde::Deserialize;
use shared::config::TableConfig;
use shared::sets::VectorSet;
use worker::{D1Database, D1PreparedStatement};

use crate::d1::{ident, statement, text};
use crate::Fault;

/// The live rows (`va`) of the active set of `?1`'s table `?2` that the set of model `?3` kept
/// at `?4` does not cover: it has no live vector for the record written by a job at least as
/// new (`shared::sets`).
pub const UNCOVERED: &str =
    "va.vector IS NOT NULL AND NOT EXISTS (SELECT 1 FROM embedding_vectors vb
         WHERE vb.organization_id = ?1 AND vb.table_name = ?2 AND vb.model = ?3
           AND vb.location = ?4 AND vb.record_id = va.record_id AND vb.vector IS NOT NULL
           AND (vb.job_created_at, vb.job_id) >= (va.job_created_at, va.job_id))";

/// The active set's live rows (`va`) of `?1`'s `table` (as `?2`) whose record is still in the
/// table, with text: a `FROM` clause and its `WHERE`. A vector whose record the app deleted
/// behind the API's back is no record to cover (the backfill could not embed it again), nor is
/// one whose record's text it emptied (`TableConfig::has_text`, as `shared::sets::needs_job`).
pub fn active_rows(table: &TableConfig) -> String {
    format!(
        "embedding_sets a JOIN embedding_vectors va
             ON va.organization_id = a.organization_id AND va.table_name = a.table_name
            AND va.model = a.model AND va.location = a.location
         JOIN {t} r ON r.{id} = va.record_id AND r.{org} = va.organization_id
         WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = 'active'
           AND va.vector IS NOT NULL AND {has_text}",
        has_text = table.has_text_sql("r"),
        t = ident(&table.name),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
    )
}

/// Jobs of `?1`'s table `?2` still being processed by a batch that began before the building
/// set (model `?3` at `?4`) existed: such a batch writes only the active set, and may bring a
/// record the backfill did not list. The switch waits for them.
pub const EARLIER_BATCHES: &str = "EXISTS (SELECT 1 FROM embedding_jobs j
         WHERE j.organization_id = ?1 AND j.table_name = ?2 AND j.status = 'processing'
           AND j.updated_at <= (SELECT b.created_at FROM embedding_sets b
               WHERE b.organization_id = ?1 AND b.table_name = ?2 AND b.model = ?3
                 AND b.location = ?4))";

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
                 (SELECT {EARLIER_BATCHES}) AS earlier
             FROM {}",
            active_rows(table)
        ),
        &[
            text(organization_id),
            text(&table.name),
            text(&set.model),
            text(&set.location),
        ],
    )
}
