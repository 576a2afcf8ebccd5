//! The vectors of one index as they are after every applied mutation: values in one contiguous
//! `f32` array with their norms beside them (a query scans them all), and per vector its id,
//! namespace, metadata and indexed values.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::metadata::{index_values, IndexedValues, MetadataIndex};
use crate::vector::NewVector;

/// What a vector carries besides its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    pub namespace: Option<String>,
    pub metadata: Option<Map<String, Value>>,
    /// Its values in the metadata indexes that existed when it was written.
    pub indexed: IndexedValues,
}

#[derive(Debug, Clone)]
pub struct Store {
    dimensions: usize,
    values: Vec<f32>,
    norms: Vec<f32>,
    records: Vec<Record>,
    rows: HashMap<String, usize>,
    metadata_indexes: Vec<MetadataIndex>,
}

/// A vector as read back.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    pub values: &'a [f32],
    pub norm: f32,
    pub record: &'a Record,
}

pub fn norm(values: &[f32]) -> f32 {
    crate::search::dot(values, values).sqrt()
}

impl Store {
    pub fn new(dimensions: usize) -> Self {
        Store {
            dimensions,
            values: Vec::new(),
            norms: Vec::new(),
            records: Vec::new(),
            rows: HashMap::new(),
            metadata_indexes: Vec::new(),
        }
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn metadata_indexes(&self) -> &[MetadataIndex] {
        &self.metadata_indexes
    }

    pub fn row(&self, row: usize) -> Row<'_> {
        let start = row * self.dimensions;
        Row {
            values: &self.values[start..start + self.dimensions],
            norm: self.norms[row],
            record: &self.records[row],
        }
    }

    pub fn find(&self, id: &str) -> Option<Row<'_>> {
        self.rows.get(id).map(|&row| self.row(row))
    }

    /// Every row's values, one after another.
    pub fn all_values(&self) -> &[f32] {
        &self.values
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    pub fn norms(&self) -> &[f32] {
        &self.norms
    }

    /// Writes each vector, replacing in full any vector of the same id ("Vectorize API": an
    /// upsert does not merge values or metadata).
    pub fn upsert(&mut self, vectors: &[NewVector]) {
        for vector in vectors {
            let indexed = index_values(&self.metadata_indexes, vector.metadata.as_ref());
            self.put(record_of(vector, indexed), &vector.values);
        }
    }

    /// Writes each vector whose id the index does not hold ("Vectorize API": only the vectors
    /// with new ids are inserted; within one call the first of an id wins).
    pub fn insert(&mut self, vectors: &[NewVector]) {
        for vector in vectors {
            if !self.rows.contains_key(vector.id.as_str()) {
                let indexed = index_values(&self.metadata_indexes, vector.metadata.as_ref());
                self.put(record_of(vector, indexed), &vector.values);
            }
        }
    }

    /// Puts a row as it is, indexed values included (a snapshot being loaded).
    pub fn put(&mut self, record: Record, values: &[f32]) {
        debug_assert_eq!(values.len(), self.dimensions);
        let norm = norm(values);
        if let Some(&row) = self.rows.get(&record.id) {
            let start = row * self.dimensions;
            self.values[start..start + self.dimensions].copy_from_slice(values);
            self.norms[row] = norm;
            self.records[row] = record;
        } else {
            self.rows.insert(record.id.clone(), self.records.len());
            self.values.extend_from_slice(values);
            self.norms.push(norm);
            self.records.push(record);
        }
    }

    pub fn delete(&mut self, ids: &[String]) {
        for id in ids {
            let Some(row) = self.rows.remove(id) else {
                continue;
            };
            // The last row moves into the hole, so the arrays stay contiguous.
            let last = self.records.len() - 1;
            if row != last {
                let (d, from) = (self.dimensions, last * self.dimensions);
                self.values.copy_within(from..from + d, row * d);
                self.rows.insert(self.records[last].id.clone(), row);
            }
            self.values.truncate(last * self.dimensions);
            self.norms.swap_remove(row);
            self.records.swap_remove(row);
        }
    }

    /// Adds a metadata index. Vectors already written are not indexed in it; one of the same
    /// property and type again changes nothing.
    pub fn create_metadata_index(&mut self, index: MetadataIndex) {
        if !self.metadata_indexes.contains(&index) {
            self.metadata_indexes
                .retain(|i| i.property_name != index.property_name);
            self.metadata_indexes.push(index);
        }
    }

    /// Drops a metadata index and every vector's value in it.
    pub fn delete_metadata_index(&mut self, property: &str) {
        self.metadata_indexes
            .retain(|i| i.property_name != property);
        for record in &mut self.records {
            record.indexed.remove(property);
        }
    }
}

fn record_of(vector: &NewVector, indexed: IndexedValues) -> Record {
    Record {
        id: vector.id.as_str().to_owned(),
        namespace: vector.namespace.as_ref().map(|n| n.as_str().to_owned()),
        metadata: vector.metadata.clone(),
        indexed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{IndexType, Indexed};
    use crate::vector::VectorId;
    use serde_json::json;

    fn vector(id: &str, values: [f32; 2], metadata: Value) -> NewVector {
        NewVector {
            id: VectorId::parse(id.into()).unwrap(),
            values: values.to_vec(),
            namespace: None,
            metadata: match metadata {
                Value::Object(map) => Some(map),
                _ => None,
            },
        }
    }

    #[test]
    fn insert_keeps_the_first_and_upsert_the_last() {
        let mut store = Store::new(2);
        store.insert(&[vector("a", [1.0, 0.0], json!(null))]);
        store.insert(&[vector("a", [0.0, 1.0], json!(null))]);
        assert_eq!(store.find("a").unwrap().values, [1.0, 0.0]);
        store.upsert(&[vector("a", [0.0, 2.0], json!(null))]);
        assert_eq!(store.find("a").unwrap().values, [0.0, 2.0]);
        assert!((store.find("a").unwrap().norm - 2.0).abs() < 1e-6);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn delete_keeps_the_other_rows_whole() {
        let mut store = Store::new(2);
        let vectors: Vec<_> = (0..5u8)
            .map(|i| vector(&format!("v{i}"), [f32::from(i), -f32::from(i)], json!(null)))
            .collect();
        store.upsert(&vectors);
        store.delete(&["v1".into(), "v4".into(), "missing".into()]);
        assert_eq!(store.len(), 3);
        for i in [0u8, 2, 3] {
            let row = store.find(&format!("v{i}")).unwrap();
            assert_eq!(row.values, [f32::from(i), -f32::from(i)]);
            assert_eq!(row.record.id, format!("v{i}"));
        }
        assert!(store.find("v1").is_none());
    }

    #[test]
    fn vectors_are_indexed_only_by_metadata_indexes_that_exist_when_written() {
        let mut store = Store::new(2);
        store.upsert(&[vector("before", [1.0, 0.0], json!({"p": "x"}))]);
        store.create_metadata_index(MetadataIndex {
            property_name: "p".into(),
            index_type: IndexType::String,
        });
        store.upsert(&[vector("after", [1.0, 0.0], json!({"p": "x"}))]);
        assert!(store.find("before").unwrap().record.indexed.is_empty());
        assert_eq!(
            store.find("after").unwrap().record.indexed.get("p"),
            Some(&Indexed::Str("x".into()))
        );
        store.delete_metadata_index("p");
        assert!(store.find("after").unwrap().record.indexed.is_empty());
    }
}
