//! What [`crate::index_sync`] reads of `embedding_vectors`: the rows of some records kept in a
//! live set's Vectorize index, and their `seq` now.

use serde::{Deserialize, Serialize};
use shared::sets::SetRole;
use worker::D1Database;

use super::role;
use crate::d1::text;
use crate::index_sync::RecordKey;
use crate::Fault;

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

/// A record as an item of [`KEYS_IN`]'s parameter.
#[derive(Serialize)]
struct Key<'a> {
    org: &'a str,
    table: &'a str,
    record: &'a str,
}

/// The rows of `?1`'s records (items `{org, table, record}`).
const KEYS_IN: &str = "(organization_id, table_name, record_id) IN
     (SELECT value ->> 'org', value ->> 'table', value ->> 'record' FROM json_each(?1))";

/// Rows kept in Vectorize only (D1's own sets need no bringing in line), of live sets: a
/// retiring set's vectors are the clean-up's to delete, and a sync must not put one back.
fn in_vectorize() -> String {
    format!(
        "location LIKE 'vectorize:%' AND NOT EXISTS (SELECT 1 FROM embedding_sets s
         WHERE s.organization_id = embedding_vectors.organization_id
           AND s.table_name = embedding_vectors.table_name AND s.model = embedding_vectors.model
           AND s.location = embedding_vectors.location AND s.role = {retiring})",
        retiring = role(SetRole::Retiring),
    )
}

/// The records as one JSON parameter: any number of them in one statement, within D1's limit of
/// 100 bound parameters.
fn keys_param(records: &[RecordKey]) -> Result<String, Fault> {
    let keys: Vec<Key<'_>> = records
        .iter()
        .map(|k| Key {
            org: &k.organization_id,
            table: &k.table,
            record: &k.record_id,
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
        let back: Vec<serde_json::Value> = serde_json::from_str(&param).unwrap();
        assert_eq!(back[0]["record"], "it's \"quoted\"");
    }

    #[test]
    fn a_retiring_set_is_named_by_its_enum() {
        assert!(in_vectorize().contains("s.role = 'retiring'"));
    }
}
