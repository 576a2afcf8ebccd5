//! Every statement on `embedding_vectors`, built from the named fragments below: the one place
//! that knows the table's columns and the rules its rows keep.
//!
//! A row is one record's current vector in one vector set (`shared::sets`): its model, where
//! the set is kept (`location`), the job that wrote it, and a `seq` that grows with every
//! change of the organization's table, which is how search-worker's cache and [`crate::index_sync`]
//! see that a row moved. A tombstone (a deleted record) keeps its row with no vector.
//!
//! Decisions are made in Rust, from plain inputs (`shared::freshness` decides whether a job
//! writes a set's vector at all); the SQL here only guards a decision against what another
//! writer committed since it was read. Each guard is one fragment, and its doc says which rule
//! it guards. Role names come from [`SetRole`], never from literals.
//!
//! The statements take their rows as one JSON parameter read with `json_each` (D1 counts every
//! statement of a batch as a query), so each statement's doc names the fields of its items.

use serde::Deserialize;
use shared::config::TableConfig;
use shared::sets::SetRole;
use worker::D1Database;

use crate::d1::{ident, text};
use crate::index_sync::RecordKey;
use crate::Fault;

/// The columns a row is written with, in the order [`upsert`] gives them.
pub const COLUMNS: &str = "organization_id, table_name, record_id, vector_id, model, \
     content_hash, vector, codes, metadata, job_id, job_created_at, seq, updated_at, location";

/// The job an item of a write carries, as a row value of its `created` and `job` fields: the
/// same order as [`job_order`].
pub const WRITE_ORDER: &str = "(w.created, w.job)";

/// Where the job that wrote the row `alias` stands among its record's jobs, as a row value:
/// by creation time, then by job id, as `shared::freshness` orders them.
pub fn job_order(alias: &str) -> String {
    format!("({alias}.job_created_at, {alias}.job_id)")
}

/// "The newer job wins": true where the job at `newer` comes after the one at `older` (each a
/// row value as [`job_order`] or [`WRITE_ORDER`] make it). It guards `shared::freshness`'s
/// third rule, that an older job never overwrites a newer vector, against the race that
/// `freshness::assess` cannot see: a newer job of the same record that committed after this
/// batch read what the set held.
pub fn newer_job(newer: &str, older: &str) -> String {
    format!("{newer} > {older}")
}

/// The `seq` of a row written now: past every row of the organization's table (`org` and
/// `table` are SQL expressions), plus `step` (`1` for a single row; the n-th row of a batch
/// takes `n`, so that a batch's rows keep its order).
pub fn next_seq(org: &str, table: &str, step: &str) -> String {
    format!(
        "(SELECT COALESCE(MAX(seq), 0) FROM embedding_vectors
          WHERE organization_id = {org} AND table_name = {table}) + {step}"
    )
}

/// The roles of the sets that still take writes, as an SQL list: the active set and the one
/// being built. A retiring set takes nothing more.
pub fn live_roles() -> String {
    format!(
        "('{}', '{}')",
        SetRole::Active.as_str(),
        SetRole::Building.as_str()
    )
}

/// Updates records' embedding column: `?1` items of `{org, record, job, created, vector}` (the
/// vector as JSON text), `?2` the table, `?3` and `?4` the configured set's model and location.
/// A column is left as it is where the set holds a vector of the record written by a newer job
/// (which wrote the column too).
pub fn column_update(table: &TableConfig) -> String {
    format!(
        "UPDATE {t} SET {column} = w.vector
         FROM (SELECT value ->> 'org' AS org, value ->> 'record' AS record,
                   value ->> 'job' AS job, value ->> 'created' AS created,
                   value ->> 'vector' AS vector FROM json_each(?1)) AS w
         WHERE {t}.{id} = w.record AND {t}.{org} = w.org
           AND NOT EXISTS (SELECT 1 FROM embedding_vectors v
               WHERE v.organization_id = w.org AND v.table_name = ?2 AND v.model = ?3
                 AND v.location = ?4 AND v.record_id = w.record
                 AND {newer})",
        t = ident(&table.name),
        column = ident(&table.embeddings.embedding_column),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
        newer = newer_job(&job_order("v"), WRITE_ORDER),
    )
}

/// What every set holds for some records: `?1` items of `[place, org, table, record]`; each
/// row answers the item's place as `job`. A row's vector comes along (`copy_hex`) only when
/// another live set of its model, kept elsewhere, may lack it: the table is moving, and the
/// copy saves an AI call.
pub fn stored_for_records() -> String {
    format!(
        "SELECT j.value ->> 0 AS job, v.model, v.location, v.content_hash, v.job_id,
             v.job_created_at,
             CASE WHEN v.vector IS NOT NULL AND EXISTS (SELECT 1 FROM embedding_sets s
                 WHERE s.organization_id = v.organization_id AND s.table_name = v.table_name
                   AND s.model = v.model AND s.location != v.location
                   AND s.role IN {live}) THEN hex(v.vector) END AS copy_hex
         FROM json_each(?1) j
         JOIN embedding_vectors v ON v.organization_id = j.value ->> 1
             AND v.table_name = j.value ->> 2 AND v.record_id = j.value ->> 3",
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

/// What D1 holds for a record in one Vectorize location, as [`crate::index_sync`] reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct IndexedRow {
    pub organization_id: String,
    pub table_name: String,
    pub record_id: String,
    pub vector_id: String,
    pub seq: i64,
    pub location: String,
    /// The vector as hex; none (or empty) for a tombstone.
    pub vector_hex: Option<String>,
    /// The vector's metadata, as JSON text.
    pub metadata: String,
}

impl IndexedRow {
    /// The record the row is of.
    pub fn key(&self) -> RecordKey {
        RecordKey {
            organization_id: self.organization_id.clone(),
            table: self.table_name.clone(),
            record_id: self.record_id.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Version {
    organization_id: String,
    table_name: String,
    record_id: String,
    location: String,
    seq: i64,
}

/// The rows of `?1`'s records (items `[org, table, record]`).
const KEYS_IN: &str = "(organization_id, table_name, record_id) IN
     (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?1))";

/// Rows kept in Vectorize only (D1's own sets need no bringing in line), of live sets: a
/// retiring set's vectors are the clean-up's to delete, and a sync must not put one back.
fn in_vectorize() -> String {
    format!(
        "location LIKE 'vectorize:%' AND NOT EXISTS (SELECT 1 FROM embedding_sets s
         WHERE s.organization_id = embedding_vectors.organization_id
           AND s.table_name = embedding_vectors.table_name AND s.model = embedding_vectors.model
           AND s.location = embedding_vectors.location AND s.role = '{retiring}')",
        retiring = SetRole::Retiring.as_str(),
    )
}

/// The records as one JSON parameter: any number of them in one statement, within D1's limit of
/// 100 bound parameters.
fn keys_param(records: &[RecordKey]) -> Result<String, Fault> {
    let keys: Vec<[&str; 3]> = records
        .iter()
        .map(|k| {
            [
                k.organization_id.as_str(),
                k.table.as_str(),
                k.record_id.as_str(),
            ]
        })
        .collect();
    Ok(serde_json::to_string(&keys)?)
}

/// Every row of `records` kept in a live set's Vectorize index.
pub async fn indexed_rows(
    db: &D1Database,
    records: &[RecordKey],
) -> Result<Vec<IndexedRow>, Fault> {
    Ok(db
        .prepare(format!(
            "SELECT organization_id, table_name, record_id, vector_id, seq, location,
                 hex(vector) AS vector_hex, metadata
             FROM embedding_vectors WHERE {KEYS_IN} AND {}",
            in_vectorize()
        ))
        .bind(&[text(&keys_param(records)?)])?
        .all()
        .await?
        .results::<IndexedRow>()?)
}

/// The `seq` of each of those rows now, by record and location.
pub async fn indexed_seqs(
    db: &D1Database,
    records: &[RecordKey],
) -> Result<Vec<((RecordKey, String), i64)>, Fault> {
    let versions = db
        .prepare(format!(
            "SELECT organization_id, table_name, record_id, location, seq FROM embedding_vectors
             WHERE {KEYS_IN} AND {}",
            in_vectorize()
        ))
        .bind(&[text(&keys_param(records)?)])?
        .all()
        .await?
        .results::<Version>()?;
    Ok(versions
        .into_iter()
        .map(|v| {
            let record = RecordKey {
                organization_id: v.organization_id,
                table: v.table_name,
                record_id: v.record_id,
            };
            ((record, v.location), v.seq)
        })
        .collect())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn keys_travel_as_one_json_parameter() {
        let keys = [RecordKey {
            organization_id: "org_a".into(),
            table: "evidence".into(),
            record_id: "it's \"quoted\"".into(),
        }];
        let param = keys_param(&keys).unwrap();
        let back: Vec<[String; 3]> = serde_json::from_str(&param).unwrap();
        assert_eq!(back[0][2], "it's \"quoted\"");
    }

    #[test]
    fn the_newer_job_wins_by_creation_time_then_job_id() {
        assert_eq!(
            newer_job(&job_order("excluded"), &job_order("embedding_vectors")),
            "(excluded.job_created_at, excluded.job_id) \
             > (embedding_vectors.job_created_at, embedding_vectors.job_id)"
        );
        assert_eq!(
            newer_job(WRITE_ORDER, &job_order("v")),
            "(w.created, w.job) > (v.job_created_at, v.job_id)"
        );
    }

    #[test]
    fn roles_are_named_by_their_enum() {
        assert_eq!(live_roles(), "('active', 'building')");
        assert!(in_vectorize().contains("s.role = 'retiring'"));
    }
}
