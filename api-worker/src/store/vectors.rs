//! Every statement the gateway runs on `embedding_vectors`: the tombstone a record's delete
//! leaves, the metadata refresh of an edit, and the backfill's read of each record's stored
//! hash. Everything else the table sees is the consumer's (and the model-change counts in
//! [`crate::sets_store`]).

use shared::config::TableConfig;
use worker::D1PreparedStatement;
use worker_kit::d1::{ident, number, optional, text};
use worker_kit::Fault;

use super::D1Store;

/// The `seq` a vector row of the organization's table (`?1`, `?2`) takes when it changes: one
/// past the table's newest, so that search-worker's cache sees the change.
const NEXT_SEQ: &str = "(SELECT MAX(seq) + 1 FROM embedding_vectors
                          WHERE organization_id = ?1 AND table_name = ?2)";

impl D1Store {
    /// Copies the record's current metadata fields onto its stored vector, if it has one.
    pub(super) fn refresh_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<D1PreparedStatement, Fault> {
        self.statement(
            &format!(
                "UPDATE embedding_vectors SET
                     metadata = (SELECT {} FROM {} r WHERE r.{} = ?3 AND r.{} = ?1),
                     seq = {NEXT_SEQ}
                 WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3
                   AND vector IS NOT NULL",
                table.metadata_sql("r"),
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column),
            ),
            &[text(organization_id), text(&table.name), text(id)],
        )
    }

    /// A tombstone, not a DELETE: its new `seq` tells search-worker's cache the vector is gone.
    pub(super) fn tombstone(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<D1PreparedStatement, Fault> {
        self.statement(
            &format!(
                "UPDATE embedding_vectors SET vector = NULL, codes = NULL, content_hash = '',
                     metadata = '{{}}', seq = {NEXT_SEQ}
                 WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3"
            ),
            &[text(organization_id), text(&table.name), text(id)],
        )
    }

    /// Records in id order after `after`, their embedding columns with the content hash of
    /// their vector in the configured set (`stored_hash`, null without one).
    pub(super) fn with_stored_hashes(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<D1PreparedStatement, Fault> {
        let id = ident(&table.id_column);
        let record_columns: Vec<String> = table
            .embedding_columns()
            .into_iter()
            .map(|c| format!("r.{}", ident(c)))
            .collect();
        let sql = format!(
            // Current means current in the set the config names: while the table's model or
            // index changes, a record the new set lacks is sent there.
            "SELECT {}, v.content_hash AS stored_hash
             FROM {} r
             LEFT JOIN embedding_vectors v
               ON v.organization_id = ?1 AND v.table_name = ?4 AND v.model = ?6
              AND v.location = ?5 AND v.record_id = r.{id}
             WHERE r.{} = ?1 AND (?2 IS NULL OR r.{id} > ?2)
             ORDER BY r.{id} LIMIT ?3",
            record_columns.join(", "),
            ident(&table.name),
            ident(&table.organization_column),
        );
        self.statement(
            &sql,
            &[
                text(organization_id),
                optional(after),
                number(i64::from(limit)),
                text(&table.name),
                text(&table.embeddings.vector_index.location()),
                text(&table.embeddings.model),
            ],
        )
    }
}
