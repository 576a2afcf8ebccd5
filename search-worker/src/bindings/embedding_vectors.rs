//! Every statement search-worker runs on `embedding_vectors`, the consumer's vector rows, which
//! it only ever reads: the catch-up's (what one set holds after a `seq`, and as many of its rows
//! as the isolate has room for), the chunk of a snapshot's exact layer, a shortlist's exact
//! vectors, the live records Vectorize's matches are checked against, and the records the
//! keyword index finds, with their vectors. Each is built here and bound; `super::d1` runs it.

use shared::keywords;
use shared::sets::VectorSet;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};
use worker_kit::d1::{number, text};
use worker_kit::Fault;

use crate::ports::{KeywordQuery, Room};

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
/// [`Pending`](crate::ports::Pending) as one JSON text.
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

/// What one set holds after `after_seq` ([`PENDING`]), and as many of its rows as `room` lets
/// in ([`ROWS_WHOLE`], [`ROWS_PAGE`]): the codes, and the exact vector only where a row has
/// none (a row without either is a tombstone: a delete clears both, and codes are only ever
/// written with their vector). `hex()`: D1 hands a worker text far faster than a blob (an
/// array of numbers). Each row is one JSON text (`super::d1::batch_rows`), its metadata
/// embedded as an object (`json()`), not as a text the module would parse twice. The scans
/// read only the catch-up index (migration 0014), never a row beside its vector; a row without
/// codes is looked up by its key.
pub(super) fn since(
    db: &D1Database,
    organization_id: &str,
    table: &str,
    set: &VectorSet,
    after_seq: i64,
    room: Room,
) -> Result<[D1PreparedStatement; 2], Fault> {
    let head = [
        &set_rows(organization_id, table, set, after_seq)[..],
        &[count(room.row_cost)],
    ]
    .concat();
    let pending = db.prepare(PENDING).bind(&head)?;
    let rows = if room.paged {
        db.prepare(ROWS_PAGE)
            .bind(&[&head[..], &[count(room.bytes), count(room.page)]].concat())?
    } else {
        db.prepare(ROWS_WHOLE)
            .bind(&[&head[..], &[count(room.bytes.min(room.page))]].concat())?
    };
    Ok([pending, rows])
}

/// Up to `limit` of one set's rows after `after_seq`, in order, with their exact vectors: each
/// one JSON text, an [`ExactRow`](crate::ports::ExactRow) in its fields' order.
pub(super) fn exact_chunk(
    db: &D1Database,
    organization_id: &str,
    table: &str,
    set: &VectorSet,
    after_seq: i64,
    limit: usize,
) -> Result<D1PreparedStatement, Fault> {
    Ok(db
        .prepare(
            "SELECT json_array(seq, record_id, hex(vector)) AS row FROM embedding_vectors
             WHERE organization_id = ?1 AND table_name = ?2 AND model = ?3 AND location = ?4
               AND seq > ?5 ORDER BY seq LIMIT ?6",
        )
        .bind(
            &[
                &set_rows(organization_id, table, set, after_seq)[..],
                &[count(limit)],
            ]
            .concat(),
        )?)
}

/// The current rows of `record_ids` in one set, with their exact vectors, as [`ExactRow`](crate::ports::ExactRow)s. The
/// ids travel as one JSON parameter, each found through the primary key.
pub(super) fn exact_vectors(
    db: &D1Database,
    organization_id: &str,
    table: &str,
    set: &VectorSet,
    record_ids: &[&str],
) -> Result<D1PreparedStatement, Fault> {
    Ok(db
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
        ])?)
}

/// The record and metadata of each of `vector_ids` that holds a live vector at `location`. The
/// ids travel as one JSON parameter: any number within D1's 100 bound parameters.
pub(super) fn live_records(
    db: &D1Database,
    organization_id: &str,
    table: &str,
    location: &str,
    vector_ids: &[String],
) -> Result<D1PreparedStatement, Fault> {
    Ok(db
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
        ])?)
}

/// The records of an organization's `table` its keyword index (`shared::keywords`) finds for
/// `query`, best first, that have a live vector in `set`: each with its BM25 score (negated:
/// FTS5's `bm25()` is lower for a better match), its metadata and, `with_vectors`, its exact
/// vector (else null: a filtered search reads the vectors of the few that pass). The index
/// holds every organization's rows; each hit is joined to its row of the table, and only the
/// caller's are kept, the organization read from the row itself. The vector row is found
/// through its primary key.
pub(super) fn keyword_matches(
    db: &D1Database,
    asked: &KeywordQuery<'_>,
) -> Result<D1PreparedStatement, Fault> {
    let table = asked.table;
    let index = keywords::index_name(table);
    let vector = if asked.with_vectors {
        "hex(v.vector)"
    } else {
        "NULL"
    };
    let (name, id, organization) = (&table.name, &table.id_column, &table.organization_column);
    let sql = format!(
        "SELECT t.\"{id}\" AS record_id, -bm25(\"{index}\") AS keyword_score,
                {vector} AS vector_hex, v.metadata AS metadata
         FROM \"{index}\" JOIN \"{name}\" t ON t.rowid = \"{index}\".rowid
         JOIN embedding_vectors v ON v.organization_id = ?1 AND v.table_name = ?2
           AND v.model = ?3 AND v.location = ?4 AND v.record_id = t.\"{id}\"
         WHERE \"{index}\" MATCH ?5 AND t.\"{organization}\" = ?1 AND v.vector IS NOT NULL
         ORDER BY bm25(\"{index}\") LIMIT ?6"
    );
    Ok(db.prepare(sql).bind(&[
        text(asked.organization_id),
        text(name),
        text(&asked.set.model),
        text(&asked.set.location),
        text(asked.query),
        count(asked.limit),
    ])?)
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

/// A count of rows or bytes as a bound parameter.
fn count(n: usize) -> JsValue {
    number(i64::try_from(n).unwrap_or(i64::MAX))
}
