//! Rows written straight into D1 behind the API's back: vectors into `embedding_vectors`, as
//! the consumer leaves them, for benchmarks and tests that need more rows than the model could
//! embed in their time; and notes, claims and evidence, as an app's own writes would leave them.

use shared::quantized::Quantized;
use shared::topk::normalized;

/// A seeded generator of unit vectors, so that a run repeats.
pub fn random_unit_vectors(seed: u64, n: usize, dims: usize) -> Vec<Vec<f32>> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dims)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    // The top 24 bits: exact in an f32.
                    #[allow(clippy::cast_precision_loss)]
                    let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
                    unit - 0.5
                })
                .collect();
            normalized(&v)
        })
        .collect()
}

/// One row of `embedding_vectors`.
#[derive(Debug, Clone, Copy)]
pub struct VectorRow<'a> {
    pub organization_id: &'a str,
    pub table: &'a str,
    pub model: &'a str,
    /// `d1`, or `vectorize:<binding>`.
    pub location: &'a str,
    pub record_id: &'a str,
    /// `None`: a deleted record's tombstone.
    pub vector: Option<&'a [f32]>,
    /// Whether the row carries the D1 backend's codes, as the consumer writes them there; a
    /// row without them is one written before codes were.
    pub codes: bool,
    /// The record's metadata fields, a JSON object.
    pub metadata: &'a str,
    /// Past every other row's of the organization's table, for a write after them.
    pub seq: u64,
}

impl VectorRow<'_> {
    /// The row as one SQL statement, which replaces the record's row in its set if there is one.
    pub fn upsert_sql(&self) -> String {
        let VectorRow {
            organization_id: org,
            table,
            model,
            location,
            record_id: record,
            vector,
            codes,
            metadata,
            seq,
        } = *self;
        let (blob, codes) = match vector {
            Some(vector) => (
                format!("X'{}'", shared::hex(&shared::vector::encode(vector))),
                if codes {
                    quoted(&Quantized::of(&normalized(vector)).to_text())
                } else {
                    "NULL".to_owned()
                },
            ),
            None => ("NULL".to_owned(), "NULL".to_owned()),
        };
        format!(
            "INSERT OR REPLACE INTO embedding_vectors (organization_id, table_name, record_id, \
             vector_id, model, content_hash, vector, codes, metadata, job_id, job_created_at, \
             seq, updated_at, location) VALUES ({}, {}, {}, {}, {}, 'seeded', {blob}, {codes}, \
             {}, 'seeded', 0, {seq}, 0, {});",
            quoted(org),
            quoted(table),
            quoted(record),
            quoted(&shared::vector::vector_id(org, table, record)),
            quoted(model),
            quoted(metadata),
            quoted(location),
        )
    }
}

/// One note of `organization_id`, as one SQL statement: what an app's own write of it leaves.
pub fn note_sql(id: &str, organization_id: &str, topic: &str, title: &str, body: &str) -> String {
    format!(
        "INSERT INTO notes (id, organization_id, topic, title, body, created_at, updated_at) \
         VALUES ({}, {}, {}, {}, {}, 0, 0);",
        quoted(id),
        quoted(organization_id),
        quoted(topic),
        quoted(title),
        quoted(body),
    )
}

/// One row of `table` (`claims` or `evidence`, which share their columns) of
/// `organization_id`, as one SQL statement: what an app's own write of it leaves.
pub fn story_row_sql(
    table: &str,
    id: &str,
    organization_id: &str,
    story_id: &str,
    content: &str,
) -> String {
    format!(
        "INSERT INTO {table} (id, organization_id, story_id, content, created_at, updated_at) \
         VALUES ({}, {}, {}, {}, 0, 0);",
        quoted(id),
        quoted(organization_id),
        quoted(story_id),
        quoted(content),
    )
}

/// `text` as an SQL string literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
