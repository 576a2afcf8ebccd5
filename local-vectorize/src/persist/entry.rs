//! A mutation as the log holds it, one JSON line, values as base64 of little-endian f32.

use std::io;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::metadata::MetadataIndex;
use crate::mutation::{Change, Mutation};
use crate::vector::{Namespace, NewVector, VectorId};

pub(super) fn encode_values(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    BASE64.encode(bytes)
}

pub(super) fn decode_values(text: &str, dimensions: usize) -> io::Result<Vec<f32>> {
    let bytes = BASE64
        .decode(text)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let (floats, rest) = bytes.as_chunks::<4>();
    if !rest.is_empty() || floats.len() != dimensions {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "stored vector of {} bytes, expected {dimensions} floats",
                bytes.len()
            ),
        ));
    }
    Ok(floats.iter().map(|b| f32::from_le_bytes(*b)).collect())
}

/// A mutation as the log holds it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Entry {
    pub(super) seq: u64,
    id: String,
    accepted_ms: u64,
    #[serde(flatten)]
    change: LoggedChange,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
enum LoggedChange {
    Insert {
        vectors: Vec<LoggedVector>,
    },
    Upsert {
        vectors: Vec<LoggedVector>,
    },
    Delete {
        ids: Vec<String>,
    },
    CreateMetadataIndex {
        index: MetadataIndex,
    },
    #[serde(rename_all = "camelCase")]
    DeleteMetadataIndex {
        property_name: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct LoggedVector {
    id: String,
    values: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

impl From<&Mutation> for Entry {
    fn from(mutation: &Mutation) -> Self {
        let logged = |vectors: &[NewVector]| {
            vectors
                .iter()
                .map(|v| LoggedVector {
                    id: v.id.as_str().to_owned(),
                    values: encode_values(&v.values),
                    namespace: v.namespace.as_ref().map(|n| n.as_str().to_owned()),
                    metadata: v.metadata.clone(),
                })
                .collect()
        };
        let change = match &mutation.change {
            Change::Insert(v) => LoggedChange::Insert { vectors: logged(v) },
            Change::Upsert(v) => LoggedChange::Upsert { vectors: logged(v) },
            Change::Delete(ids) => LoggedChange::Delete { ids: ids.clone() },
            Change::CreateMetadataIndex(index) => LoggedChange::CreateMetadataIndex {
                index: index.clone(),
            },
            Change::DeleteMetadataIndex(property_name) => LoggedChange::DeleteMetadataIndex {
                property_name: property_name.clone(),
            },
        };
        Entry {
            seq: mutation.seq,
            id: mutation.id.clone(),
            accepted_ms: mutation.accepted_ms,
            change,
        }
    }
}

impl Entry {
    pub(super) fn into_mutation(self, dimensions: usize) -> io::Result<Mutation> {
        let vectors = |logged: Vec<LoggedVector>| -> io::Result<Vec<NewVector>> {
            logged
                .into_iter()
                .map(|v| {
                    let invalid =
                        |e: crate::error::Error| io::Error::new(io::ErrorKind::InvalidData, e);
                    Ok(NewVector {
                        id: VectorId::parse(v.id).map_err(invalid)?,
                        values: decode_values(&v.values, dimensions)?,
                        namespace: v
                            .namespace
                            .map(Namespace::parse)
                            .transpose()
                            .map_err(invalid)?,
                        metadata: v.metadata,
                    })
                })
                .collect()
        };
        let change = match self.change {
            LoggedChange::Insert { vectors: v } => Change::Insert(vectors(v)?),
            LoggedChange::Upsert { vectors: v } => Change::Upsert(vectors(v)?),
            LoggedChange::Delete { ids } => Change::Delete(ids),
            LoggedChange::CreateMetadataIndex { index } => Change::CreateMetadataIndex(index),
            LoggedChange::DeleteMetadataIndex { property_name } => {
                Change::DeleteMetadataIndex(property_name)
            }
        };
        Ok(Mutation {
            seq: self.seq,
            id: self.id,
            accepted_ms: self.accepted_ms,
            change,
        })
    }
}
