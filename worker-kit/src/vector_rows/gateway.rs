//! The gateway's own statements on `embedding_vectors`: the tombstone a record's delete leaves,
//! the metadata refresh of an edit, the backfill's read of each record's stored hash, and the
//! status route's count of embedded records. Each takes the organization as `?1`.

use shared::config::TableConfig;

use super::{in_set, next_seq, open_statuses, record_columns};
use crate::d1::ident;

/// Copies a record's current metadata fields onto its rows that hold a vector, with a new
/// `seq`: `?1` the organization, `?2` the table, `?3` the record.
pub fn refresh_metadata(table: &TableConfig) -> String {
    format!(
        "UPDATE embedding_vectors SET
             metadata = (SELECT {metadata} FROM {t} r WHERE r.{id} = ?3 AND r.{org} = ?1),
             seq = {seq}
         WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3
           AND vector IS NOT NULL",
        metadata = table.metadata_sql("r"),
        t = ident(&table.name),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
        seq = next_seq("?1", "?2", "1"),
    )
}

/// A deleted record's rows in every set, tombstoned: `?1` the organization, `?2` the table,
/// `?3` the record. A tombstone, not a DELETE: its new `seq` tells search-worker's cache the
/// vector is gone.
pub fn tombstone() -> String {
    format!(
        "UPDATE embedding_vectors SET vector = NULL, codes = NULL, content_hash = '',
             metadata = '{{}}', seq = {seq}
         WHERE organization_id = ?1 AND table_name = ?2 AND record_id = ?3",
        seq = next_seq("?1", "?2", "1"),
    )
}

/// Records of `table` in id order, their embedding columns with the content hash of their row
/// in one set (`stored_hash`, null without one): `?1` the organization, `?2` the id to start
/// after (or null), `?3` how many, `?4` the table, `?5` and `?6` the set's location and model.
pub fn stored_hashes(table: &TableConfig) -> String {
    format!(
        "SELECT {columns}, v.content_hash AS stored_hash
         FROM {t} r
         LEFT JOIN embedding_vectors v
           ON {set} AND v.record_id = r.{id}
         WHERE r.{org} = ?1 AND (?2 IS NULL OR r.{id} > ?2)
         ORDER BY r.{id} LIMIT ?3",
        columns = record_columns(table),
        t = ident(&table.name),
        set = in_set("v", "?1", "?4", "?6", "?5"),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
    )
}

/// How many records one set holds a vector of that no open job is still to replace (`n`):
/// `?1` the organization, `?2` the table, `?3` and `?4` the set's model and location.
pub fn embedded_count() -> String {
    format!(
        "SELECT COUNT(*) AS n FROM embedding_vectors v
         WHERE {set} AND v.vector IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM embedding_jobs j
               WHERE j.organization_id = ?1 AND j.table_name = ?2
                 AND j.record_id = v.record_id AND j.status IN {open})",
        set = in_set("v", "?1", "?2", "?3", "?4"),
        open = open_statuses(),
    )
}
