//! Organization API keys: the second way in, `Authorization: Bearer emb_…`.
//!
//! A key is `emb_` and 64 hex digits of randomness (two v4 UUIDs: 244 random bits). Only its
//! SHA-256 is stored, so a leaked database leaks no key; with this much entropy a plain hash is
//! as good as a slow one. A key belongs to one organization and acts with one role.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What every key starts with, so that a key found in a log or a repository is recognisable.
pub const PREFIX: &str = "emb_";

/// How fine `last_used_at` is: a key's use is written when the last one written is at least
/// this old, so a busy key costs one D1 write a minute, not one a request.
pub const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Whether a use at `now_ms` is written, the last written being `last_used_at`.
pub fn use_is_written(last_used_at: Option<i64>, now_ms: i64) -> bool {
    last_used_at.is_none_or(|at| now_ms - at >= LAST_USED_RESOLUTION_MS)
}

/// A new key, from two random UUIDs.
pub fn generate(a: Uuid, b: Uuid) -> String {
    format!("{PREFIX}{}{}", a.simple(), b.simple())
}

/// The stored form of a key.
pub fn hash(key: &str) -> String {
    crate::hex(&Sha256::digest(key.as_bytes()))
}

/// The key of an `Authorization` header, if it is a bearer key of this API's shape.
pub fn from_authorization(header: &str) -> Option<&str> {
    let (scheme, key) = header.trim().split_once(' ')?;
    let key = key.trim();
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && key.len() == PREFIX.len() + 64
        && key.starts_with(PREFIX)
        && key[PREFIX.len()..].bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_is_written_once_a_minute() {
        assert!(use_is_written(None, 5));
        assert!(!use_is_written(Some(1_000), 1_000));
        assert!(!use_is_written(Some(1_000), 60_999));
        assert!(use_is_written(Some(1_000), 61_000));
    }

    #[test]
    fn keys_have_one_shape_and_are_stored_hashed() {
        let key = generate(Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(key.len(), 68);
        assert_eq!(
            from_authorization(&format!("Bearer {key}")),
            Some(key.as_str())
        );
        assert_eq!(
            from_authorization(&format!("bearer  {key} ")),
            Some(key.as_str())
        );
        assert_eq!(hash(&key).len(), 64);
        assert_ne!(hash(&key), hash(&generate(Uuid::new_v4(), Uuid::new_v4())));
        for bad in [
            "Bearer",
            "Basic abc",
            "Bearer emb_123",
            &format!("Token {key}"),
            &format!("Bearer x{}", &key[1..]),
        ] {
            assert_eq!(from_authorization(bad), None, "{bad}");
        }
    }
}
