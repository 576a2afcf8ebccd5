//! Mutations: every write to an index is accepted at once with a mutation id and applied later,
//! in the order it was accepted ("Vectorize API": inserts, upserts and deletes are asynchronous
//! and return a mutation identifier; "Introduction": so are metadata index changes).

use crate::metadata::MetadataIndex;
use crate::store::Store;
use crate::vector::NewVector;

#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Insert(Vec<NewVector>),
    Upsert(Vec<NewVector>),
    Delete(Vec<String>),
    CreateMetadataIndex(MetadataIndex),
    DeleteMetadataIndex(String),
}

impl Change {
    /// The kind, for the logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Insert(_) => "insert",
            Change::Upsert(_) => "upsert",
            Change::Delete(_) => "delete",
            Change::CreateMetadataIndex(_) => "create-metadata-index",
            Change::DeleteMetadataIndex(_) => "delete-metadata-index",
        }
    }

    /// How many vectors or properties it touches, for the logs.
    pub fn count(&self) -> usize {
        match self {
            Change::Insert(v) | Change::Upsert(v) => v.len(),
            Change::Delete(ids) => ids.len(),
            Change::CreateMetadataIndex(_) | Change::DeleteMetadataIndex(_) => 1,
        }
    }

    pub fn apply(&self, store: &mut Store) {
        match self {
            Change::Insert(vectors) => store.insert(vectors),
            Change::Upsert(vectors) => store.upsert(vectors),
            Change::Delete(ids) => store.delete(ids),
            Change::CreateMetadataIndex(index) => store.create_metadata_index(index.clone()),
            Change::DeleteMetadataIndex(property) => store.delete_metadata_index(property),
        }
    }
}

/// An accepted change.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// Its place in its index's order of acceptance, from 1.
    pub seq: u64,
    /// A UUID, as Vectorize's mutation ids are.
    pub id: String,
    /// When it was accepted, in milliseconds since the Unix epoch.
    pub accepted_ms: u64,
    pub change: Change,
}
