//! Vectorize's limits, each with where it is stated. "limits" is
//! <https://developers.cloudflare.com/vectorize/platform/limits/>; "observed" marks a limit the
//! service enforces with a known error but the documentation does not state.

/// Most dimensions of an index ("limits": 1536 dimensions).
pub const MAX_DIMENSIONS: usize = 1536;
/// Fewest dimensions of an index: the REST API schema's `vectorize_index-dimensions` minimum.
pub const MIN_DIMENSIONS: usize = 1;
/// Longest index name ("limits": 64 bytes).
pub const MAX_INDEX_NAME_BYTES: usize = 64;
/// Longest vector id ("limits": 64 bytes; refused with code 40008).
pub const MAX_ID_BYTES: usize = 64;
/// Longest namespace name ("limits": 64 bytes).
pub const MAX_NAMESPACE_BYTES: usize = 64;
/// Most metadata per vector, as compact JSON ("limits": 10 KiB).
pub const MAX_METADATA_BYTES: usize = 10 * 1024;
/// Most matches of a query without values or all metadata ("limits" and "Vectorize API": 100).
pub const MAX_TOP_K: usize = 100;
/// Most matches of a query with `returnValues: true` or `returnMetadata: "all"` ("limits" and
/// "Vectorize API" as of August 2026: 50, up from 20; refused with code 40025).
pub const MAX_TOP_K_WITH_VALUES_OR_METADATA: usize = 50;
/// Matches returned when `topK` is not given ("Vectorize API": default 5).
pub const DEFAULT_TOP_K: usize = 5;
/// Most vectors in one insert or upsert from a Worker binding ("limits": 1000 (Workers)).
pub const MAX_BATCH_FROM_WORKER: usize = 1000;
/// Most vectors in one insert or upsert over the HTTP API ("limits": 5000 (HTTP API); wrangler's
/// `VECTORIZE_MAX_BATCH_SIZE` is the same).
pub const MAX_BATCH_FROM_HTTP: usize = 5000;
/// Largest request body ("limits": maximum vectors upload size, 100 MB).
pub const MAX_UPLOAD_BYTES: usize = 100 * 1024 * 1024;
/// Most metadata indexes of one index ("limits" and "Metadata filtering": 10).
pub const MAX_METADATA_INDEXES: usize = 10;
/// Bytes of a string a metadata index keeps ("limits": 64 bytes; "Metadata filtering": the first
/// 64 B, cut on a UTF-8 character boundary).
pub const INDEXED_STRING_BYTES: usize = 64;
/// A filter's compact JSON must be shorter than this ("Metadata filtering": less than 2048 bytes).
pub const FILTER_JSON_BYTES: usize = 2048;
/// Longest filter key ("Metadata filtering": at most 512 characters).
pub const MAX_FILTER_KEY_CHARS: usize = 512;
/// Most ids in one getByIds (observed: code 40007, "too many ids in payload; max id count is 20").
pub const MAX_IDS_PER_GET: usize = 20;
/// Most ids in one deleteByIds (observed: code 40007, "max id count is 100").
pub const MAX_IDS_PER_DELETE: usize = 100;
