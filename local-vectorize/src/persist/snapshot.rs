//! The snapshot: a header line (the last mutation applied, the metadata indexes), then a line
//! per vector with its values, namespace, metadata and indexed values.

use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::entry::{decode_values, encode_values};
use super::Applied;
use crate::metadata::{IndexedValues, MetadataIndex};
use crate::store::{Record, Store};

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotHeader {
    applied: Applied,
    metadata_indexes: Vec<MetadataIndex>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotRow {
    id: String,
    values: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "IndexedValues::is_empty")]
    indexed: IndexedValues,
}

pub(super) fn read_snapshot(path: &Path, store: &mut Store) -> io::Result<Applied> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Applied::default()),
        Err(e) => return Err(e),
    };
    let mut lines = BufReader::new(file).lines();
    let Some(header) = lines.next() else {
        return Ok(Applied::default());
    };
    let header: SnapshotHeader = serde_json::from_str(&header?)?;
    for index in header.metadata_indexes {
        store.create_metadata_index(index);
    }
    for line in lines {
        let row: SnapshotRow = serde_json::from_str(&line?)?;
        let values = decode_values(&row.values, store.dimensions())?;
        let record = Record {
            id: row.id,
            namespace: row.namespace,
            metadata: row.metadata,
            indexed: row.indexed,
        };
        store.put(record, &values);
    }
    Ok(header.applied)
}

pub(super) fn write_snapshot(path: &Path, store: &Store, applied: &Applied) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut out = BufWriter::new(File::create(&tmp)?);
    let header = SnapshotHeader {
        applied: applied.clone(),
        metadata_indexes: store.metadata_indexes().to_vec(),
    };
    serde_json::to_writer(&mut out, &header)?;
    out.write_all(b"\n")?;
    for row in 0..store.len() {
        let stored = store.row(row);
        let line = SnapshotRow {
            id: stored.record.id.clone(),
            values: encode_values(stored.values),
            namespace: stored.record.namespace.clone(),
            metadata: stored.record.metadata.clone(),
            indexed: stored.record.indexed.clone(),
        };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.into_inner()
        .map_err(io::IntoInnerError::into_error)?
        .sync_all()?;
    fs::rename(tmp, path)
}
