//! A model change's statements on `embedding_vectors` (`shared::sets`): the backfill's page of
//! the active set's records, the fragments coverage and the switch count by
//! ([`crate::sets::coverage`]), the active set's vectors a change given up puts back in the
//! records' column, and the clean-up of a retiring set. Each takes the organization and table
//! as `?1` and `?2`; most take the set they work on as `?3` (model) and `?4` (location).

use shared::config::TableConfig;
use shared::sets::SetRole;

use super::{in_set, of_set, open_statuses, record_columns, role};
use crate::d1::ident;

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
        "embedding_sets a JOIN embedding_vectors va ON {va_of_a}
         JOIN {t} r ON r.{id} = va.record_id AND r.{org} = va.organization_id
         WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = {active}
           AND va.vector IS NOT NULL AND {has_text}",
        va_of_a = of_set("va", "a"),
        t = ident(&table.name),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
        active = role(SetRole::Active),
        has_text = table.has_text_sql("r"),
    )
}

/// A page of the backfill into the building set (`?3`, `?4`): the active set's records that
/// hold a vector, in id order after `?5` (or from the start), at most `?6`, each with its
/// embedding columns and
/// - `__id`: the record's id;
/// - `__stored`: the content hash of its row in the building set, if it has one;
/// - `__covered`: 1 where the building set covers it ([`UNCOVERED`]), else 0;
/// - `__queued`: 1 where an open job of the backfill `?7` is still to write it;
/// - `__set_created`: when the building set was made.
pub fn backfill_page(table: &TableConfig) -> String {
    format!(
        "SELECT va.record_id AS \"__id\", vb.content_hash AS \"__stored\",
             CASE WHEN {UNCOVERED} THEN 0 ELSE 1 END AS \"__covered\",
             EXISTS (SELECT 1 FROM embedding_jobs j
                 WHERE j.organization_id = ?1 AND j.table_name = ?2
                   AND j.record_id = va.record_id AND j.status IN {open}
                   AND j.backfill_id = ?7) AS \"__queued\",
             b.created_at AS \"__set_created\", {columns}
         FROM embedding_sets a
         JOIN embedding_vectors va ON {va_of_a}
         JOIN embedding_sets b ON b.organization_id = ?1 AND b.table_name = ?2
             AND b.model = ?3 AND b.location = ?4
         JOIN {t} r ON r.{id} = va.record_id AND r.{org} = va.organization_id
         LEFT JOIN embedding_vectors vb ON {vb_in_building} AND vb.record_id = va.record_id
         WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = {active}
           AND va.vector IS NOT NULL AND (?5 IS NULL OR va.record_id > ?5)
         ORDER BY va.record_id LIMIT ?6",
        open = open_statuses(),
        columns = record_columns(table),
        va_of_a = of_set("va", "a"),
        t = ident(&table.name),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
        vb_in_building = in_set("vb", "?1", "?2", "?3", "?4"),
        active = role(SetRole::Active),
    )
}

/// Rows of the retiring set `?3`, `?4`, at most `?5`: each row's set, record and vector id,
/// with when the set stepped down (`switched_at`).
pub fn retiring_rows() -> String {
    format!(
        "SELECT v.model, v.location, v.record_id, v.vector_id, s.switched_at
         FROM embedding_sets s JOIN embedding_vectors v ON {v_of_s}
         WHERE s.organization_id = ?1 AND s.table_name = ?2 AND s.model = ?3
           AND s.location = ?4 AND s.role = {retiring}
         LIMIT ?5",
        v_of_s = of_set("v", "s"),
        retiring = role(SetRole::Retiring),
    )
}

/// The vectors some records hold in the active set, whatever set the reading worker's config
/// names (the column follows the sets' roles, [`super::column_follows`]): `?3` the records'
/// ids as a JSON array; each row's record, set (`model`, `location`), job (`job_id`) and vector
/// as hex (`hex`).
pub fn active_vectors() -> String {
    format!(
        "SELECT v.record_id, v.model, v.location, v.job_id, hex(v.vector) AS hex
         FROM embedding_sets a JOIN embedding_vectors v ON {v_of_a}
         WHERE a.organization_id = ?1 AND a.table_name = ?2 AND a.role = {active}
           AND v.vector IS NOT NULL
           AND v.record_id IN (SELECT value FROM json_each(?3))",
        v_of_a = of_set("v", "a"),
        active = role(SetRole::Active),
    )
}

/// Deletes rows of a retiring set: `?1` items of `{model, location, record}`, `?2` the
/// organization, `?3` the table. Only a row whose set is still retiring goes.
pub fn remove_retiring() -> String {
    format!(
        "DELETE FROM embedding_vectors
         WHERE organization_id = ?2 AND table_name = ?3
           AND (model, location, record_id) IN
               (SELECT value ->> 'model', value ->> 'location', value ->> 'record'
                FROM json_each(?1))
           AND EXISTS (SELECT 1 FROM embedding_sets s
               WHERE s.organization_id = ?2 AND s.table_name = ?3
                 AND s.model = embedding_vectors.model
                 AND s.location = embedding_vectors.location AND s.role = {retiring})",
        retiring = role(SetRole::Retiring),
    )
}

/// Drops the retiring set `?3`, `?4` once it holds no row, `RETURNING` its model: the end of
/// a clean-up.
pub fn drop_emptied() -> String {
    format!(
        "DELETE FROM embedding_sets
         WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
           AND role = {retiring}
           AND NOT EXISTS (SELECT 1 FROM embedding_vectors v
               WHERE {v_of_set})
         RETURNING model",
        retiring = role(SetRole::Retiring),
        v_of_set = of_set("v", "embedding_sets"),
    )
}
