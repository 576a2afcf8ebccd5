//! A vector as written: parsed once at the boundary into checked parts, so that nothing after
//! re-checks an id, a namespace or metadata.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Kind, Result};
use crate::limits::{MAX_ID_BYTES, MAX_METADATA_BYTES, MAX_NAMESPACE_BYTES};

/// A vector id: not empty, at most 64 bytes ("limits").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VectorId(String);

impl VectorId {
    pub fn parse(id: String) -> Result<Self> {
        if id.is_empty() {
            return Err(Error::new(Kind::InvalidId, "id is empty"));
        }
        if id.len() > MAX_ID_BYTES {
            return Err(Error::new(
                Kind::InvalidId,
                format!(
                    "id too long; max is {MAX_ID_BYTES} bytes, got {} bytes",
                    id.len()
                ),
            ));
        }
        Ok(VectorId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A namespace name: at most 64 bytes ("limits").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace(String);

impl Namespace {
    pub fn parse(name: String) -> Result<Self> {
        if name.len() > MAX_NAMESPACE_BYTES {
            return Err(Error::new(
                Kind::InvalidNamespace,
                format!(
                    "namespace too long; max is {MAX_NAMESPACE_BYTES} bytes, got {} bytes",
                    name.len()
                ),
            ));
        }
        Ok(Namespace(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Checks metadata: at most 10 KiB as compact JSON ("limits"), and keys that are not empty, hold
/// no `.` (it addresses nested properties) or `"`, and do not start with `$` ("Insert vectors",
/// Metadata). The key rules apply at every depth, since a filter reaches nested keys by path.
pub fn check_metadata(metadata: &Map<String, Value>) -> Result<()> {
    let size = serde_json::to_vec(metadata).map_or(usize::MAX, |bytes| bytes.len());
    if size > MAX_METADATA_BYTES {
        return Err(Error::new(
            Kind::InvalidMetadata,
            format!("metadata too large; max is {MAX_METADATA_BYTES} bytes, got {size} bytes"),
        ));
    }
    check_keys(metadata)
}

fn check_keys(object: &Map<String, Value>) -> Result<()> {
    for (key, value) in object {
        if key.is_empty() || key.contains(['.', '"']) || key.starts_with('$') {
            return Err(Error::new(
                Kind::InvalidMetadata,
                format!(
                    "invalid metadata key `{key}`: keys may not be empty, hold `.` or `\"`, or start with `$`"
                ),
            ));
        }
        if let Value::Object(inner) = value {
            check_keys(inner)?;
        }
    }
    Ok(())
}

/// One line of an insert or upsert, before its checks.
#[derive(Debug, Deserialize)]
pub struct RawVector {
    pub id: String,
    pub values: Vec<f64>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
}

/// A vector ready to be written to an index of its dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct NewVector {
    pub id: VectorId,
    pub values: Vec<f32>,
    pub namespace: Option<Namespace>,
    pub metadata: Option<Map<String, Value>>,
}

impl NewVector {
    pub fn parse(raw: RawVector, dimensions: usize) -> Result<Self> {
        let id = VectorId::parse(raw.id)?;
        if raw.values.len() != dimensions {
            return Err(Error::new(
                Kind::InvalidVector,
                format!(
                    "invalid vector for id=\"{}\", expected {dimensions} dimensions, and got {} dimensions",
                    id.as_str(),
                    raw.values.len()
                ),
            ));
        }
        let values = to_f32(&raw.values).ok_or_else(|| {
            Error::new(
                Kind::InvalidVector,
                format!(
                    "invalid vector for id=\"{}\", a value is out of the float32 range",
                    id.as_str()
                ),
            )
        })?;
        let namespace = raw.namespace.map(Namespace::parse).transpose()?;
        if let Some(metadata) = &raw.metadata {
            check_metadata(metadata)?;
        }
        Ok(NewVector {
            id,
            values,
            namespace,
            metadata: raw.metadata,
        })
    }
}

/// Values as Vectorize keeps them, 32-bit floats ("limits": 32 bits precision); `None` when one
/// does not fit.
// Narrowing is the point: Vectorize stores float32.
#[allow(clippy::cast_possible_truncation)]
pub fn to_f32(values: &[f64]) -> Option<Vec<f32>> {
    values
        .iter()
        .map(|&v| Some(v as f32).filter(|f| f.is_finite()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(id: &str, values: Vec<f64>, metadata: Value) -> RawVector {
        RawVector {
            id: id.into(),
            values,
            namespace: None,
            metadata: match metadata {
                Value::Object(map) => Some(map),
                _ => None,
            },
        }
    }

    #[test]
    fn ids_are_1_to_64_bytes() {
        assert!(VectorId::parse("a".repeat(64)).is_ok());
        let long = VectorId::parse("é".repeat(33)).unwrap_err();
        assert_eq!(long.kind, Kind::InvalidId);
        assert_eq!(long.message, "id too long; max is 64 bytes, got 66 bytes");
        assert!(VectorId::parse(String::new()).is_err());
    }

    #[test]
    fn namespaces_are_at_most_64_bytes() {
        assert!(Namespace::parse("n".repeat(64)).is_ok());
        assert_eq!(
            Namespace::parse("n".repeat(65)).unwrap_err().kind,
            Kind::InvalidNamespace
        );
    }

    #[test]
    fn a_vector_of_another_dimension_is_refused_with_vectorize_words() {
        let err = NewVector::parse(raw("v", vec![1.0; 3], json!(null)), 4).unwrap_err();
        assert_eq!(err.kind, Kind::InvalidVector);
        assert_eq!(
            err.message,
            "invalid vector for id=\"v\", expected 4 dimensions, and got 3 dimensions"
        );
        let huge = NewVector::parse(raw("v", vec![1e300], json!(null)), 1).unwrap_err();
        assert_eq!(huge.kind, Kind::InvalidVector);
    }

    #[test]
    fn metadata_keys_and_size_are_checked() {
        for bad in [
            json!({"a.b": 1}),
            json!({"$a": 1}),
            json!({"": 1}),
            json!({"q\"": 1}),
            json!({"outer": {"in.ner": 1}}),
        ] {
            let err = NewVector::parse(raw("v", vec![0.0], bad.clone()), 1).unwrap_err();
            assert_eq!(err.kind, Kind::InvalidMetadata, "{bad}");
        }
        let at_limit = json!({"t": "x".repeat(MAX_METADATA_BYTES - 8)});
        assert!(NewVector::parse(raw("v", vec![0.0], at_limit), 1).is_ok());
        let over = json!({"t": "x".repeat(MAX_METADATA_BYTES - 7)});
        assert_eq!(
            NewVector::parse(raw("v", vec![0.0], over), 1)
                .unwrap_err()
                .kind,
            Kind::InvalidMetadata
        );
    }
}
