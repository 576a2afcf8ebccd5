//! What search-worker needs from the outside world, and the app that bundles it. The embedder is
//! `worker_kit::embedder::Embedder`.

use std::collections::HashMap;

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use shared::config::TableConfig;
use shared::message::EmbeddingJob;
use shared::quantized::Quantized;
use shared::search::QueryMatch;
use shared::sets::VectorSet;
use shared::Config;
use worker_kit::vectorize::QueryOptions;
use worker_kit::Fault;

use crate::cache::Caches;

/// A row of the D1 vector store, as the cache catches up on it: the vector's codes
/// (`shared::quantized`), or on a row written before codes were, the exact vector. Neither, for
/// a deleted record's tombstone. D1 hands it over as a JSON array of its fields, in this order.
///
/// A first search parses 10,000 of these, so each field is read into its final form as the
/// row is parsed: the codes from their text (never kept as one), the metadata as the JSON
/// object SQL embeds (never a text of one, parsed twice).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct VectorRow {
    pub seq: i64,
    pub record_id: String,
    /// Read from the text the consumer writes (`Quantized::to_text`).
    #[serde(deserialize_with = "codes_text")]
    pub codes: Option<Quantized>,
    /// SQL `hex()` of the compact vector, read only where the row has no codes.
    pub vector_hex: Option<String>,
    /// The record's metadata fields.
    pub metadata: Metadata,
}

/// `Quantized::from_text` of a JSON string, without an owned copy of the text; `None` for null
/// or an empty text (as a row without codes).
fn codes_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Quantized>, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = Option<Quantized>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("the text of a vector's codes")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            if text.is_empty() {
                return Ok(None);
            }
            Quantized::from_text(text).map(Some).map_err(E::custom)
        }
    }
    struct Nullable;
    impl<'de> Visitor<'de> for Nullable {
        type Value = Option<Quantized>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("the text of a vector's codes, or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Self::Value, D::Error> {
            inner.deserialize_str(Text)
        }
    }
    deserializer.deserialize_option(Nullable)
}

/// What [`Store::catch_up`] read: the active set, what the set holds since the given `seq`,
/// the rows of it that came (all, a page or none: [`Room`]), and a chunk of exact vectors.
#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    pub active: Option<ActiveSet>,
    pub pending: Pending,
    pub rows: Vec<VectorRow>,
    pub exact: Vec<ExactRow>,
}

/// The rows of a set written after a `seq`, and the bytes they would take in the isolate as
/// [`Room`] counts them. D1 hands it over as a JSON array of its fields, in this order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(crate) struct Pending {
    pub rows: usize,
    pub bytes: usize,
}

/// The bytes of rows one catch-up brings in at most, once the rows it finds take more: a table
/// larger than this is read a page at a time, each page applied (and other tenants' tables
/// evicted past the budget) before the next is read, so the isolate never holds more than one
/// page in transit (`cache::snapshot::DEFAULT_TABLE_BOUND` says what that costs). 6 MB: about 11,000
/// rows of 384 dimensions, so that a first search of 10,000 still reads them in one round trip.
pub(crate) const PAGE_BYTES: usize = 6 << 20;

/// What a catch-up may bring into the isolate, counted as `cache::snapshot::Snapshot::table_bytes`
/// counts a table: a row's codes and overhead (`row_cost`, by the set's dimensions) beside its
/// id and its metadata's text; a tombstone (neither codes nor metadata) nothing. D1 sends no
/// row at all when those since the `seq` take more than `bytes`; else all of them when they fit
/// in a `page`, or, `paged`, the first of them up to a page (the row that reaches it included).
/// A catch-up that found more than a page without `paged` brings none, and says how much there
/// is: the next reads it a page at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Room {
    pub bytes: usize,
    pub page: usize,
    pub row_cost: usize,
    pub paged: bool,
}

/// Exact vectors a catch-up reads towards a snapshot's exact layer, in its round trip (which
/// overlaps the query's embedding): 768 KB of hex at 384 dimensions, so a table of 10,000 holds
/// every exact vector after 40 searches.
pub(crate) const FILL_CHUNK: usize = 256;

/// A record's exact vector as D1 holds it now: what a search scores its shortlist with. A
/// catch-up's chunk of them arrives as JSON arrays of its fields, in this order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct ExactRow {
    pub seq: i64,
    pub record_id: String,
    /// SQL `hex()` of the compact vector; `None` for a tombstone.
    pub vector_hex: Option<String>,
}

/// What the keyword index is asked (`Store::keyword_matches`): the records of an
/// organization's `table` it finds for `query` (an FTS5 query: `shared::keywords::match_query`),
/// best first, at most `limit`, among those with a live vector in `set`; each with its metadata
/// and, `with_vectors`, that vector.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeywordQuery<'a> {
    pub organization_id: &'a str,
    pub table: &'a TableConfig,
    pub set: &'a VectorSet,
    pub query: &'a str,
    pub limit: usize,
    pub with_vectors: bool,
}

/// A record the keyword index found (`Store::keyword_matches`): its BM25 score (higher is
/// better), and its exact vector and metadata in the set searched.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeywordRow {
    pub record_id: String,
    pub keyword_score: f32,
    /// SQL `hex()` of the compact vector, when asked for.
    pub vector_hex: Option<String>,
    pub metadata: Metadata,
}

/// The vector set an organization's table is searched in (`shared::sets`), and its generation
/// (a set retired and started again is another generation: a cached copy of the first one
/// must not serve the second).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct ActiveSet {
    #[serde(flatten)]
    pub set: VectorSet,
    #[serde(rename = "created_at")]
    pub generation: i64,
}

impl ActiveSet {
    /// The set the config names, for a table that has no set yet (nothing was ever written).
    pub(crate) fn configured(table: &TableConfig) -> Self {
        ActiveSet {
            set: VectorSet::configured(table),
            generation: 0,
        }
    }
}

/// D1, as search-worker uses it.
pub(crate) trait Store {
    async fn ping(&self) -> Result<(), Fault>;
    /// The active set of an organization's table, if it has one.
    async fn active_set(
        &self,
        organization_id: &str,
        table: &str,
    ) -> Result<Option<ActiveSet>, Fault>;
    /// [`Store::active_set`] and, on a guess of what it is, what that set holds after
    /// `after_seq` and as much of its rows, in `seq` order, as `room` lets in (and, from
    /// `fill`, up to [`FILL_CHUNK`] more rows with their exact vectors: a chunk of a snapshot's
    /// exact layer), in one round trip. The guess is right but for the first search after a
    /// switch.
    async fn catch_up(
        &self,
        organization_id: &str,
        table: &str,
        guess: &VectorSet,
        after_seq: i64,
        room: Room,
        fill: Option<i64>,
    ) -> Result<CatchUp, Fault>;
    /// The current rows of `record_ids` in one set of an organization's table, with their
    /// exact vectors.
    async fn exact_vectors(
        &self,
        organization_id: &str,
        table: &str,
        set: &VectorSet,
        record_ids: &[&str],
    ) -> Result<Vec<ExactRow>, Fault>;
    /// What the keyword index finds for `asked` ([`KeywordQuery`]).
    async fn keyword_matches(&self, asked: &KeywordQuery<'_>) -> Result<Vec<KeywordRow>, Fault>;
    /// For those of `vector_ids` that D1 holds a live vector under at `location`: the record
    /// and its current metadata, by vector id. What Vectorize's answers are checked against.
    async fn live_records(
        &self,
        organization_id: &str,
        table: &str,
        location: &str,
        vector_ids: &[String],
    ) -> Result<HashMap<String, (String, Metadata)>, Fault>;
}

/// A record's metadata fields.
pub(crate) type Metadata = serde_json::Map<String, serde_json::Value>;

/// Vectorize indexes, by binding.
pub(crate) trait VectorIndexes {
    async fn query(
        &self,
        binding: &str,
        vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault>;
}

/// `embeddings-queue`, for `enqueue`.
pub(crate) trait JobQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault>;
}

/// Everything a method may use.
pub(crate) struct App<'a, S, E, V> {
    pub store: S,
    pub embedder: E,
    pub indexes: V,
    pub config: &'static Config,
    /// Kept across requests by the isolate.
    pub caches: &'a Caches,
    pub now_ms: i64,
}
