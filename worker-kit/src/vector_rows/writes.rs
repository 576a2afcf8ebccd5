//! The consumer's batch on `embedding_vectors`: what every set holds for the batch's records,
//! each set's row written, the records' embedding column, and a newer job's name given to the
//! rows that already hold its content.

use shared::config::TableConfig;

use super::{
    column_follows, job_order, live_roles, newer_job, next_seq, of_set, COLUMNS, WRITE_ORDER,
};
use crate::d1::ident;

/// Updates records' embedding column: `?1` items of `{org, record, job, model, location,
/// vector}` (the vector as JSON text, of the item's set: its model, kept at its location), `?2`
/// the table. A batch runs it after its rows ([`upsert`]), and sends an item for every set a
/// job wrote. An item is applied only where its set's row of the record is its job's (a newer
/// job's row won, and that job wrote the column) and its set is the one the column follows
/// ([`column_follows`]); of one record's items, at most one is.
pub fn column_update(table: &TableConfig) -> String {
    format!(
        "UPDATE {t} SET {column} = w.vector
         FROM (SELECT value ->> 'org' AS org, value ->> 'record' AS record,
                   value ->> 'job' AS job, value ->> 'model' AS model,
                   value ->> 'location' AS location, value ->> 'vector' AS vector
               FROM json_each(?1)) AS w
         WHERE {t}.{id} = w.record AND {t}.{org} = w.org
           AND EXISTS (SELECT 1 FROM embedding_sets s JOIN embedding_vectors v ON {v_of_s}
               WHERE s.organization_id = w.org AND s.table_name = ?2 AND s.model = w.model
                 AND s.location = w.location AND v.record_id = w.record
                 AND v.job_id = w.job AND v.vector IS NOT NULL
                 AND {follows})",
        t = ident(&table.name),
        column = ident(&table.embeddings.embedding_column),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
        v_of_s = of_set("v", "s"),
        follows = column_follows("s", "w.org", "?2", "w.record"),
    )
}

/// What every set holds for some records: `?1` items of `{job, org, table, record}`; each
/// row answers the item's `job` (its place in the batch). A row's vector comes along (`copy_hex`) only when
/// another live set of its model, kept elsewhere, may lack it: the table is moving, and the
/// copy saves an AI call.
pub fn stored_for_records() -> String {
    format!(
        "SELECT j.value ->> 'job' AS job, v.model, v.location, v.content_hash, v.job_id,
             v.job_created_at,
             CASE WHEN v.vector IS NOT NULL AND EXISTS (SELECT 1 FROM embedding_sets s
                 WHERE s.organization_id = v.organization_id AND s.table_name = v.table_name
                   AND s.model = v.model AND s.location != v.location
                   AND s.role IN {live}) THEN hex(v.vector) END AS copy_hex
         FROM json_each(?1) j
         JOIN embedding_vectors v ON v.organization_id = j.value ->> 'org'
             AND v.table_name = j.value ->> 'table' AND v.record_id = j.value ->> 'record'",
        live = live_roles(),
    )
}

/// Writes each set's row of embedded records of `table`: `?1` items of `{n, org, record, job,
/// created, model, location, hash, vector_id, hex, codes}` (`n` the item's place, from 1), `?2`
/// the table, `?3` the time. A row goes only to a set that is still live (one that retired
/// while the batch ran takes nothing more) and of a record still in the table, with the
/// record's metadata as it is now, not as the job read it; an existing row is replaced only
/// by a newer job's.
pub fn upsert(table: &TableConfig) -> String {
    format!(
        "INSERT INTO embedding_vectors ({COLUMNS})
         SELECT w.org, ?2, w.record, w.vector_id, w.model, w.hash, unhex(w.hex), w.codes,
             {metadata},
             w.job, w.created, {seq}, ?3, w.location
         FROM (SELECT value ->> 'n' AS n, value ->> 'org' AS org,
                   value ->> 'record' AS record, value ->> 'job' AS job,
                   value ->> 'created' AS created, value ->> 'model' AS model,
                   value ->> 'location' AS location, value ->> 'hash' AS hash,
                   value ->> 'vector_id' AS vector_id, value ->> 'hex' AS hex,
                   value ->> 'codes' AS codes
               FROM json_each(?1)) AS w
         JOIN {t} r ON r.{id} = w.record AND r.{org} = w.org
         JOIN embedding_sets s ON s.organization_id = w.org AND s.table_name = ?2
             AND s.model = w.model AND s.location = w.location
             AND s.role IN {live}
         WHERE true
         ON CONFLICT (organization_id, table_name, model, location, record_id)
         DO UPDATE SET
             vector_id = excluded.vector_id, content_hash = excluded.content_hash,
             vector = excluded.vector, codes = excluded.codes,
             metadata = excluded.metadata,
             job_id = excluded.job_id, job_created_at = excluded.job_created_at,
             seq = excluded.seq, updated_at = excluded.updated_at
         WHERE {newer}",
        metadata = table.metadata_sql("r"),
        seq = next_seq("w.org", "?2", "w.n"),
        t = ident(&table.name),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
        live = live_roles(),
        newer = newer_job(&job_order("excluded"), &job_order("embedding_vectors")),
    )
}

/// Gives sets that already hold a record's content the name of a newer job that found it so:
/// `?1` items of `{org, tbl, record, model, location, hash, job, created}`, `?2` the time. Only
/// a live row of that very content changes, and only to a newer job's name.
pub fn rename_current() -> String {
    format!(
        "UPDATE embedding_vectors SET job_id = w.job, job_created_at = w.created,
             updated_at = ?2
         FROM (SELECT value ->> 'org' AS org, value ->> 'tbl' AS tbl,
                   value ->> 'record' AS record, value ->> 'model' AS model,
                   value ->> 'location' AS location, value ->> 'hash' AS hash,
                   value ->> 'job' AS job, value ->> 'created' AS created
               FROM json_each(?1)) AS w
         WHERE embedding_vectors.organization_id = w.org
           AND embedding_vectors.table_name = w.tbl AND embedding_vectors.model = w.model
           AND embedding_vectors.location = w.location
           AND embedding_vectors.record_id = w.record
           AND embedding_vectors.content_hash = w.hash
           AND embedding_vectors.vector IS NOT NULL
           AND {newer}",
        newer = newer_job(WRITE_ORDER, &job_order("embedding_vectors")),
    )
}

/// Whether some set kept the vector of the job of item `w` (`{org, tbl, record, job}`) for its
/// record: a job whose vector no set kept lost to a newer one.
pub const KEPT_JOBS_VECTOR: &str = "EXISTS (SELECT 1 FROM embedding_vectors v
     WHERE v.organization_id = w.org AND v.table_name = w.tbl
       AND v.record_id = w.record AND v.job_id = w.job)";
