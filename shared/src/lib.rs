//! Types and pure logic shared by the three workers. Nothing here performs I/O or depends on the
//! `worker` crate, so every rule is tested natively with plain `cargo test`.
//!
//! - [`access`]: which organization roles may read, create, update, delete, search, embed.
//! - [`api_key`]: organization API keys: their shape, and the hash that is stored.
//! - [`ai`]: the Workers AI embedding call as its REST API speaks it, and checks of its answers.
//! - [`models`]: the embedding model catalogue (name, dimensions, pooling, input limits).
//! - [`passages`]: a record's text cut into passages that each fit its model's window.
//! - [`config`]: the declarative config file (embedding tables and search services), parsed and
//!   validated with errors that name the offending field.
//! - [`record`]: records as the CRUD routes take them, the change that re-embeds, cursors.
//! - [`metadata`]: the bound on each metadata value, and the check every writer applies.
//! - [`message`]: the versioned queue message for an embedding job, and its content hash.
//! - [`keywords`]: each embedding table's keyword index (FTS5): its SQL, and a text's query.
//! - [`fusion`]: reciprocal rank fusion of the vector and the keyword search's rankings.
//! - [`freshness`]: whether a delivered job still has work to do (idempotence and ordering).
//! - [`enqueue`]: the enqueue rule: what a request for a job is for, and by which model.
//! - [`sets`]: vector sets (one model, one place) and the model change between two of them,
//!   as one state machine: what a table's sets become, and what each step does next.
//! - [`disposition`]: what becomes of each queue message (ack, retry with backoff, dead).
//! - [`vector`]: vectors as stored (compact bytes) and indexed (Vectorize ids), and cosine.
//! - [`lane`]: live and bulk work on two queues, and which lane a job travels on.
//! - [`job`]: job statuses and the job view the API returns.
//! - [`classify`]: classification of a score and the gray-zone split.
//! - [`search`]: requests and responses of the search routes, checked into plans.
//! - [`ranking`]: the search modes (semantic, keyword, hybrid) and how each orders its matches.
//! - [`rate`]: per-organization rate limits on the public API, by kind of route.
//! - [`rpc`]: search-worker's RPC methods and the outcome each answers with.
//! - [`filter`]: metadata filters in Vectorize's operators, checked and evaluated.
//! - [`topk`]: exact cosine top-k, the D1 backend's search.
//! - [`session`]: better-auth session cookies: parsing and signature verification.
//! - [`guard`]: bounds on request data (record ids, content size, model names).
//! - [`expiring`]: a bounded map whose entries are trusted for a fixed time, then read again.
//! - [`error`]: the one table of error codes, each with its HTTP status, and the JSON error body.
//! - [`time`]: timestamps as the API renders them.

pub mod access;
pub mod ai;
pub mod api_key;
pub mod classify;
pub mod config;
pub mod disposition;
pub mod enqueue;
pub mod error;
pub mod expiring;
pub mod filter;
pub mod freshness;
pub mod fusion;
pub mod guard;
pub mod job;
pub mod keywords;
pub mod lane;
pub mod message;
pub mod metadata;
pub mod models;
pub mod passages;
pub mod quantized;
pub mod ranking;
pub mod rate;
pub mod record;
pub mod rpc;
pub mod search;
pub mod session;
pub mod sets;
pub mod time;
pub mod topk;
pub mod vector;

#[cfg(test)]
mod test_rng;

pub use config::Config;
pub use error::{ApiError, ErrorCode};

/// Lowercase hexadecimal of `bytes`, as hashes are written. A consumer batch writes 100 vectors
/// this way (150 KB), so it looks digits up rather than formatting each byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = Vec::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(DIGITS[usize::from(byte >> 4)]);
        hex.push(DIGITS[usize::from(byte & 0x0f)]);
    }
    // Only ASCII digits were pushed.
    String::from_utf8(hex).unwrap_or_default()
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`), as in a URL path or a cookie value;
/// `None` for a malformed escape or bytes that are not UTF-8.
pub fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let digit = |i: usize| char::from(*bytes.get(i)?).to_digit(16);
            out.push(u8::try_from(digit(i + 1)? * 16 + digit(i + 2)?).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(super::hex(&[]), "");
        assert_eq!(
            super::hex(&[0x00, 0x09, 0x0a, 0xf0, 0xff, 0x5c]),
            "00090af0ff5c"
        );
        let every: Vec<u8> = (0..=255).collect();
        let expected = every.iter().fold(String::new(), |mut text, b| {
            use std::fmt::Write as _;
            let _ = write!(text, "{b:02x}");
            text
        });
        assert_eq!(super::hex(&every), expected);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(
            super::percent_decode("a%3Ab%2f+c").as_deref(),
            Some("a:b/+c")
        );
        assert_eq!(super::percent_decode("%C3%A9").as_deref(), Some("\u{e9}"));
        for bad in ["%", "%4", "%zz", "%FF", "%+1"] {
            assert_eq!(super::percent_decode(bad), None, "{bad}");
        }
    }
}
