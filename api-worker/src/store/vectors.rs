//! The gateway's statements on `embedding_vectors`, bound: the tombstone a record's delete
//! leaves, the metadata refresh of an edit, and the backfill's read of each record's stored
//! hash. Their text is `worker_kit::vector_rows`'s, as is every other statement the table sees
//! (the consumer's, and the model-change count in [`crate::sets_store`]).

use shared::config::TableConfig;
use worker::D1PreparedStatement;
use worker_kit::d1::{number, optional, text};
use worker_kit::{vector_rows, Fault};

use super::D1Store;

impl D1Store {
    /// Copies the record's current metadata fields onto its stored vector, if it has one.
    pub(super) fn refresh_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<D1PreparedStatement, Fault> {
        self.statement(
            &vector_rows::refresh_metadata(table),
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
            &vector_rows::tombstone(),
            &[text(organization_id), text(&table.name), text(id)],
        )
    }

    /// Records in id order after `after`, their embedding columns with the content hash of
    /// their vector in the configured set (`stored_hash`, null without one). Current means
    /// current in the set the config names: while the table's model or index changes, a record
    /// the new set lacks is sent there.
    pub(super) fn with_stored_hashes(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<D1PreparedStatement, Fault> {
        self.statement(
            &vector_rows::stored_hashes(table),
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
