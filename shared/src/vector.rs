//! Vectors as they are stored and indexed.
//!
//! - In D1 a vector is a BLOB of little-endian `f32`s: 4 bytes a dimension, a quarter of its
//!   JSON text, and read back (through SQL `hex()`) without parsing numbers.
//! - In Vectorize a record's vector has an id of at most [`MAX_VECTOR_ID_BYTES`] bytes, made
//!   from the organization, table and record id by [`vector_id`]. Ids are unique per index, not
//!   per namespace, so the organization is part of the id: two tenants' `clm_1` stay apart.

use sha2::{Digest, Sha256};

/// Vectorize refuses longer vector ids.
pub const MAX_VECTOR_ID_BYTES: usize = 64;

/// The compact form: each component as 4 little-endian bytes.
pub fn encode(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Reads back what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Vec<f32>, VectorError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(VectorError::Length(bytes.len()));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Reads a vector from the text of SQL `hex(blob)`: D1 hands text to a worker far faster than
/// a blob, which arrives as an array of numbers.
pub fn decode_hex(hex: &str) -> Result<Vec<f32>, VectorError> {
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(8) {
        return Err(VectorError::Length(digits.len() / 2));
    }
    let nibble = |d: u8| match d {
        b'0'..=b'9' => Ok(d - b'0'),
        b'A'..=b'F' => Ok(d - b'A' + 10),
        b'a'..=b'f' => Ok(d - b'a' + 10),
        _ => Err(VectorError::NotHex),
    };
    let mut vector = Vec::with_capacity(digits.len() / 8);
    for word in digits.chunks_exact(8) {
        let mut bytes = [0u8; 4];
        for (byte, pair) in bytes.iter_mut().zip(word.chunks_exact(2)) {
            *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        vector.push(f32::from_le_bytes(bytes));
    }
    Ok(vector)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VectorError {
    #[error("a stored vector of {0} bytes is not a whole number of f32s")]
    Length(usize),
    #[error("a stored vector is not hexadecimal")]
    NotHex,
    #[error("a stored vector's codes are not in the format `shared::quantized` writes")]
    NotCodes,
}

/// The Vectorize id of a record's vector: `organization:table:id` when that fits in 64 bytes,
/// else the hex SHA-256 of the three joined by NUL bytes (64 bytes). Either way one record has
/// one id; the vector's metadata carries the table and record id, so search never reads the id
/// back.
pub fn vector_id(organization_id: &str, table: &str, record_id: &str) -> String {
    let plain = format!("{organization_id}:{table}:{record_id}");
    if plain.len() <= MAX_VECTOR_ID_BYTES {
        return plain;
    }
    let mut hasher = Sha256::new();
    for (i, part) in [organization_id, table, record_id].into_iter().enumerate() {
        if i > 0 {
            hasher.update([0]);
        }
        hasher.update(part.as_bytes());
    }
    crate::hex(&hasher.finalize())
}

/// Cosine similarity; 0 when either vector is zero.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut aa, mut bb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        dot / (aa.sqrt() * bb.sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_form_round_trips_through_bytes_and_hex() {
        let v = vec![0.0, -1.5, 3.25e-8, f32::MAX, 0.123_456_79];
        let bytes = encode(&v);
        assert_eq!(bytes.len(), 20);
        assert_eq!(decode(&bytes).unwrap(), v);
        let upper = crate::hex(&bytes).to_uppercase();
        assert_eq!(decode_hex(&upper).unwrap(), v);
        assert_eq!(decode_hex(&upper.to_lowercase()).unwrap(), v);
        assert_eq!(decode(&bytes[..3]), Err(VectorError::Length(3)));
        assert_eq!(decode_hex("0000803G"), Err(VectorError::NotHex));
        assert!(decode_hex("00").is_err());
        assert_eq!(
            decode_hex("000080"),
            Err(VectorError::Length(3)),
            "in bytes"
        );
    }

    #[test]
    fn vector_ids_fit_vectorize_and_stay_distinct() {
        assert_eq!(vector_id("org_a", "claims", "clm_1"), "org_a:claims:clm_1");
        assert_ne!(
            vector_id("org_a", "claims", "clm_1"),
            vector_id("org_b", "claims", "clm_1")
        );
        let long = "x".repeat(100);
        let id = vector_id("org_a", "claims", &long);
        assert_eq!(id.len(), MAX_VECTOR_ID_BYTES);
        // Stored in Vectorize, so fixed for good: the SHA-256 of the parts joined by NUL.
        let digest = Sha256::digest(format!("org_a\0claims\0{long}").as_bytes());
        assert_eq!(id, crate::hex(&digest));
        assert_ne!(id, vector_id("org_a", "claims", &format!("{long}y")));
        assert_ne!(id, vector_id("org_b", "claims", &long));
        // The separator is not ambiguous once hashed.
        assert_ne!(
            vector_id("o", "a", &long),
            vector_id("o", &format!("a{long}"), "")
        );
        let exactly = "y".repeat(MAX_VECTOR_ID_BYTES - "org_a:claims:".len());
        assert_eq!(
            vector_id("org_a", "claims", &exactly),
            format!("org_a:claims:{exactly}")
        );
    }

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 2.0]).abs() < 1e-6);
        assert!((cosine(&[1.0, 1.0], &[-1.0, -1.0]) + 1.0).abs() < 1e-6);
        assert!(cosine(&[0.0, 0.0], &[1.0, 0.0]).abs() < f32::EPSILON);
    }
}
