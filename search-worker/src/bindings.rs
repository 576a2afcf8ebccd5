//! The real implementations of the ports, over the worker's bindings, and the isolate's caches.

use std::collections::HashMap;

use js_sys::Array;
use serde::Deserialize;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::search::QueryMatch;
use shared::sets::VectorSet;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env};
use worker_kit::d1::{self, number, text, DB};
use worker_kit::embedder::AnyEmbedder;
use worker_kit::vectorize::{QueryOptions, Vectorize};
use worker_kit::Fault;

use crate::cache::{Caches, DEFAULT_QUERY_BUDGET, DEFAULT_TABLE_BOUND, DEFAULT_VECTOR_BUDGET};
use crate::ports::{
    ActiveSet, App, CatchUp, ExactRow, JobQueue, Metadata, Pending, Room, Store, VectorIndexes,
    FILL_CHUNK,
};

thread_local! {
    /// One isolate, one thread: the caches live as long as the isolate does.
    static CACHES: &'static Caches = Box::leak(Box::default());
}

/// The vector cache's budget in MB (`cache::DEFAULT_VECTOR_BUDGET` when unset).
pub(crate) const SEARCH_VECTOR_CACHE_MB: &str = "SEARCH_VECTOR_CACHE_MB";
/// The query cache's budget in MB (`cache::DEFAULT_QUERY_BUDGET` when unset).
pub(crate) const SEARCH_QUERY_CACHE_MB: &str = "SEARCH_QUERY_CACHE_MB";
/// The most one organization's table may take in the isolate, in MB
/// (`cache::DEFAULT_TABLE_BOUND` when unset).
pub(crate) const SEARCH_TABLE_MB: &str = "SEARCH_TABLE_MB";

pub(crate) fn app(env: &Env) -> Result<App<'static, D1Store, AnyEmbedder, EnvIndexes>, Fault> {
    let caches = CACHES.with(|caches| *caches);
    let megabytes = |name: &str| {
        env.var(name)
            .ok()
            .and_then(|v| v.to_string().parse::<usize>().ok())
            .map(|mb| mb << 20)
    };
    caches
        .vectors
        .set_budget(megabytes(SEARCH_VECTOR_CACHE_MB).unwrap_or(DEFAULT_VECTOR_BUDGET));
    caches
        .queries
        .set_budget(megabytes(SEARCH_QUERY_CACHE_MB).unwrap_or(DEFAULT_QUERY_BUDGET));
    caches
        .vectors
        .set_table_bound(megabytes(SEARCH_TABLE_MB).unwrap_or(DEFAULT_TABLE_BOUND));
    Ok(App {
        store: D1Store(
            env.d1(DB)
                .map_err(|e| Fault(format!("binding `{DB}` is missing: {e}")))?,
        ),
        embedder: AnyEmbedder::from_env(env)?,
        indexes: EnvIndexes(env.clone()),
        config: worker_kit::config::config(),
        caches,
        now_ms: worker_kit::now_ms(),
    })
}

#[derive(Debug)]
pub(crate) struct D1Store(D1Database);

/// The active set of `?1`'s table `?2`.
const ACTIVE_SET: &str = "SELECT model, location, created_at FROM embedding_sets
     WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active'";

/// [`ACTIVE_SET`] as one JSON text, for [`batch_rows`].
const ACTIVE_SET_ROW: &str = "SELECT json_array(model, location, created_at) AS row
     FROM embedding_sets WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active'";

/// What the row `$e` of `embedding_vectors` takes in the isolate, as `ports::Room` counts it:
/// `?6` (its codes and overhead; cast, as a binding passes every number as a float, which would
/// make the sums floats) beside the bytes of its id and of its metadata's text; a
/// tombstone (a delete clears the codes and the metadata) nothing. A row written before codes
/// were, with no metadata, counts as one too: the isolate counts every row exactly as it
/// applies it, and refuses there what this missed.
macro_rules! row_bytes {
    ($e:literal) => {
        concat!(
            "(CASE WHEN ",
            $e,
            ".codes IS NULL AND ",
            $e,
            ".metadata = '{}' THEN 0
                  ELSE CAST(?6 AS INTEGER) + length(CAST(",
            $e,
            ".record_id AS BLOB))
                          + length(CAST(",
            $e,
            ".metadata AS BLOB)) END)"
        )
    };
}

/// The rows of one set after `?5`, `$e` being one of them.
macro_rules! set_rows_after {
    ($e:literal) => {
        concat!(
            $e,
            ".organization_id = ?1 AND ",
            $e,
            ".table_name = ?2 AND ",
            $e,
            ".model = ?3
             AND ",
            $e,
            ".location = ?4 AND ",
            $e,
            ".seq > ?5"
        )
    };
}

/// The catch-up's row `$e` as one JSON text: a [`VectorRow`](crate::ports::VectorRow) in its
/// fields' order.
macro_rules! vector_row {
    ($e:literal) => {
        concat!(
            "json_array(",
            $e,
            ".seq, ",
            $e,
            ".record_id, ",
            $e,
            ".codes,
                 CASE WHEN ",
            $e,
            ".codes IS NULL THEN
                     (SELECT hex(v.vector) FROM embedding_vectors v
                      WHERE v.organization_id = ?1 AND v.table_name = ?2 AND v.model = ?3
                        AND v.location = ?4 AND v.record_id = ",
            $e,
            ".record_id)
                 END,
                 json(",
            $e,
            ".metadata)) AS row"
        )
    };
}

/// What one set holds after `?5`: its rows, and their bytes ([`row_bytes`]); a
/// [`Pending`] as one JSON text.
const PENDING: &str = concat!(
    "SELECT json_array(count(*), coalesce(sum(",
    row_bytes!("e"),
    "), 0)) AS row FROM embedding_vectors e WHERE ",
    set_rows_after!("e")
);

/// Whether [`PENDING`]'s rows take at most `?7`: each read's guard, so that no row of a table
/// past it ever crosses into the isolate. An aggregate over the catch-up index, which D1 keeps
/// to itself.
macro_rules! fits {
    () => {
        concat!(
            "(SELECT coalesce(sum(",
            row_bytes!("x"),
            "), 0) FROM embedding_vectors x WHERE ",
            set_rows_after!("x"),
            ") <= ?7"
        )
    };
}

/// Every row after `?5`, in order, if they take at most `?7` (the room, or a page if less);
/// else none.
const ROWS_WHOLE: &str = concat!(
    "SELECT ",
    vector_row!("e"),
    " FROM embedding_vectors e WHERE ",
    set_rows_after!("e"),
    " AND ",
    fits!(),
    " ORDER BY e.seq"
);

/// The first rows after `?5` up to `?8` bytes (the row that reaches it included), in order, if
/// all of them take at most `?7` (the room); else none. The running sum is `SQLite`'s window
/// over the catch-up index in `seq` order; only a table larger than a page is read this way.
const ROWS_PAGE: &str = concat!(
    "SELECT ",
    vector_row!("p"),
    " FROM (SELECT e.seq, e.record_id, e.codes, e.metadata,
                   sum(",
    row_bytes!("e"),
    ") OVER (ORDER BY e.seq ROWS UNBOUNDED PRECEDING) - ",
    row_bytes!("e"),
    " AS before
            FROM embedding_vectors e WHERE ",
    set_rows_after!("e"),
    " AND ",
    fits!(),
    ") p WHERE p.before < ?8 ORDER BY p.seq"
);

impl D1Store {
    /// What one set holds after `after_seq` ([`PENDING`]), and as many of its rows as `room`
    /// lets in ([`ROWS_WHOLE`], [`ROWS_PAGE`]): the codes, and the exact vector only where a row
    /// has none (a row without either is a tombstone: a delete clears both, and codes are only
    /// ever written with their vector). `hex()`: D1 hands a worker text far faster than a blob
    /// (an array of numbers). Each row is one JSON text ([`batch_rows`]), its metadata embedded
    /// as an object (`json()`), not as a text the module would parse twice. The scans read only
    /// the catch-up index (migration 0014), never a row beside its vector; a row without codes
    /// is looked up by its key.
    fn since(
        &self,
        organization_id: &str,
        table: &str,
        set: &VectorSet,
        after_seq: i64,
        room: Room,
    ) -> Result<[worker::D1PreparedStatement; 2], Fault> {
        let count = |bytes: usize| number(i64::try_from(bytes).unwrap_or(i64::MAX));
        let head = [
            &set_rows(organization_id, table, set, after_seq)[..],
            &[count(room.row_cost)],
        ]
        .concat();
        let pending = self.0.prepare(PENDING).bind(&head)?;
        let rows = if room.paged {
            self.0
                .prepare(ROWS_PAGE)
                .bind(&[&head[..], &[count(room.bytes), count(room.page)]].concat())?
        } else {
            self.0
                .prepare(ROWS_WHOLE)
                .bind(&[&head[..], &[count(room.bytes.min(room.page))]].concat())?
        };
        Ok([pending, rows])
    }

    /// Up to `limit` of one set's rows after `after_seq`, in order, with their exact vectors:
    /// each one JSON text, an [`ExactRow`] in its fields' order.
    fn exact_chunk(
        &self,
        organization_id: &str,
        table: &str,
        set: &VectorSet,
        after_seq: i64,
        limit: usize,
    ) -> Result<worker::D1PreparedStatement, Fault> {
        Ok(self
            .0
            .prepare(
                "SELECT json_array(seq, record_id, hex(vector)) AS row FROM embedding_vectors
                 WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
                   AND seq > ?5 ORDER BY seq LIMIT ?6",
            )
            .bind(
                &[
                    &set_rows(organization_id, table, set, after_seq)[..],
                    &[number(i64::try_from(limit).unwrap_or(i64::MAX))],
                ]
                .concat(),
            )?)
    }
}

#[wasm_bindgen(inline_js = r#"
export async function batchRows(db, statements) {
  const results = await db.batch(statements);
  const utf8 = new TextEncoder();
  return results.map((result) =>
    utf8.encode("[" + result.results.map((r) => r.row).join(",") + "]"));
}
"#)]
extern "C" {
    /// Runs `statements`, each of which selects one JSON text per row as `row`, in one D1
    /// batch, and answers with each statement's rows as one JSON array: UTF-8 bytes apiece.
    #[wasm_bindgen(catch, js_name = batchRows)]
    async fn batch_rows_js(db: &JsValue, statements: Array) -> Result<JsValue, JsValue>;
}

/// [`batch_rows_js`], each statement's rows as one JSON text. 10,000 rows of a catch-up then
/// cross into the module as one text, not as 10,000 objects of five fields: every field of
/// every object was a call across the boundary, and those calls were most of a first search's
/// time. The text comes as bytes, one copy into the module's memory: as a string, its 5.7 MB at
/// 10,000 rows took 31 to 43 ms to cross, as bytes (encoded in JS) 5 to 7.
async fn batch_rows(
    db: &D1Database,
    statements: Vec<worker::D1PreparedStatement>,
) -> Result<Vec<Vec<u8>>, Fault> {
    let expected = statements.len();
    let statements: Array = statements
        .iter()
        .map(|statement| JsValue::from(statement.inner().clone()))
        .collect();
    let texts = batch_rows_js(db.as_ref(), statements)
        .await
        .map_err(|e| Fault(format!("D1 batch failed: {}", d1_message(&e))))?;
    let texts: Vec<Vec<u8>> = Array::from(&texts)
        .iter()
        .filter_map(|text| text.dyn_into::<js_sys::Uint8Array>().ok())
        .map(|text| text.to_vec())
        .collect();
    if texts.len() != expected {
        return Err(Fault("D1 returned fewer results than statements".into()));
    }
    Ok(texts)
}

/// What a D1 error says, with its cause where it has one.
fn d1_message(error: &JsValue) -> String {
    let Some(error) = error.dyn_ref::<js_sys::Error>() else {
        return format!("{error:?}");
    };
    match error.cause().dyn_ref::<js_sys::Error>() {
        Some(cause) => format!(
            "{}: {}",
            String::from(error.message()),
            String::from(cause.message())
        ),
        None => String::from(error.message()),
    }
}

/// `?1` to `?5` of a read of one set's rows after a `seq`.
fn set_rows(organization_id: &str, table: &str, set: &VectorSet, after_seq: i64) -> [JsValue; 5] {
    [
        text(organization_id),
        text(table),
        text(&set.model),
        text(&set.location),
        number(after_seq),
    ]
}

impl Store for D1Store {
    async fn ping(&self) -> Result<(), Fault> {
        d1::ping(&self.0).await
    }

    async fn active_set(
        &self,
        organization_id: &str,
        table: &str,
    ) -> Result<Option<ActiveSet>, Fault> {
        Ok(self
            .0
            .prepare(ACTIVE_SET)
            .bind(&[text(organization_id), text(table)])?
            .first::<ActiveSet>(None)
            .await?)
    }

    async fn catch_up(
        &self,
        organization_id: &str,
        table: &str,
        guess: &VectorSet,
        after_seq: i64,
        room: Room,
        fill: Option<i64>,
    ) -> Result<CatchUp, Fault> {
        let [pending, rows] = self.since(organization_id, table, guess, after_seq, room)?;
        let mut statements = vec![
            self.0
                .prepare(ACTIVE_SET_ROW)
                .bind(&[text(organization_id), text(table)])?,
            pending,
            rows,
        ];
        if let Some(after) = fill {
            statements.push(self.exact_chunk(organization_id, table, guess, after, FILL_CHUNK)?);
        }
        let texts = batch_rows(&self.0, statements).await?;
        let active: Vec<(String, String, i64)> = serde_json::from_slice(&texts[0])?;
        let pending: Vec<Pending> = serde_json::from_slice(&texts[1])?;
        Ok(CatchUp {
            active: active
                .into_iter()
                .next()
                .map(|(model, location, generation)| ActiveSet {
                    set: VectorSet { model, location },
                    generation,
                }),
            pending: pending.into_iter().next().unwrap_or_default(),
            rows: serde_json::from_slice(&texts[2])?,
            exact: match texts.get(3) {
                Some(exact) => serde_json::from_slice(exact)?,
                None => Vec::new(),
            },
        })
    }

    async fn exact_vectors(
        &self,
        organization_id: &str,
        table: &str,
        set: &VectorSet,
        record_ids: &[&str],
    ) -> Result<Vec<ExactRow>, Fault> {
        // The ids travel as one JSON parameter, each found through the primary key.
        Ok(self
            .0
            .prepare(
                "SELECT seq, record_id, hex(vector) AS vector_hex FROM embedding_vectors
                 WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
                   AND record_id IN (SELECT value FROM json_each(?5))",
            )
            .bind(&[
                text(organization_id),
                text(table),
                text(&set.model),
                text(&set.location),
                text(&serde_json::to_string(record_ids)?),
            ])?
            .all()
            .await?
            .results::<ExactRow>()?)
    }

    async fn live_records(
        &self,
        organization_id: &str,
        table: &str,
        location: &str,
        vector_ids: &[String],
    ) -> Result<HashMap<String, (String, Metadata)>, Fault> {
        #[derive(Deserialize)]
        struct Row {
            vector_id: String,
            record_id: String,
            metadata: String,
        }
        if vector_ids.is_empty() {
            return Ok(HashMap::new());
        }
        // The ids travel as one JSON parameter: any number within D1's 100 bound parameters.
        let rows = self
            .0
            .prepare(
                "SELECT vector_id, record_id, metadata FROM embedding_vectors
                 WHERE organization_id = ?1 AND table_name = ?2 AND location = ?3
                   AND vector IS NOT NULL AND vector_id IN (SELECT value FROM json_each(?4))",
            )
            .bind(&[
                text(organization_id),
                text(table),
                text(location),
                text(&serde_json::to_string(vector_ids)?),
            ])?
            .all()
            .await?
            .results::<Row>()?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let metadata = serde_json::from_str(&row.metadata).unwrap_or_default();
                (row.vector_id, (row.record_id, metadata))
            })
            .collect())
    }
}

#[derive(Debug)]
pub(crate) struct EnvQueue(pub Env);

/// An application's jobs are live work (`shared::lane`); the binding is looked up when
/// `enqueue` sends, so that a deployment without it still searches.
impl JobQueue for EnvQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        self.0.queue(Lane::Live.binding())?.send(job).await?;
        Ok(())
    }
}

/// The Vectorize indexes the config names, looked up by binding when used.
#[derive(Debug)]
pub(crate) struct EnvIndexes(Env);

impl VectorIndexes for EnvIndexes {
    async fn query(
        &self,
        binding: &str,
        vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault> {
        let matches = Vectorize::from_env(&self.0, binding)?
            .query(vector, options)
            .await?;
        Ok(matches
            .into_iter()
            .map(|m| QueryMatch {
                id: m.id,
                score: m.score,
                metadata: m.metadata,
            })
            .collect())
    }
}
