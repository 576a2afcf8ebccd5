//! Every statement on `embedding_vectors`, built from the named fragments below: the one place
//! that knows the table's columns and the rules its rows keep.
//!
//! A row is one record's current vector in one vector set (`shared::sets`): its model, where
//! the set is kept (`location`), the job that wrote it, and a `seq` that grows with every
//! change of the organization's table, which is how search-worker's cache and [`crate::index_sync`]
//! see that a row moved. A tombstone (a deleted record) keeps its row with no vector.
//!
//! Decisions are made in Rust, from plain inputs (`shared::freshness` decides whether a job
//! writes a set's vector at all); the SQL here only guards a decision against what another
//! writer committed since it was read. Each guard is one fragment, and its doc says which rule
//! it guards. One rule is the SQL's own, [`column_follows`]: which set a record's embedding
//! column follows depends on the sets' roles as the batch commits, which no batch knows when it
//! reads. Role names come from [`SetRole`] and job statuses from [`JobStatus`], never from
//! literals.
//!
//! The statements take their rows as one JSON parameter read with `json_each` (D1 counts every
//! statement of a batch as a query), so each statement's doc names the fields of its items.
//! They are grouped by who runs them:
//!
//! - `writes`: the consumer's batch ([`upsert`], [`column_update`], [`rename_current`], and the
//!   reads that come before them).
//! - `gateway`: the gateway's own ([`tombstone`], [`refresh_metadata`], [`stored_hashes`],
//!   [`embedded_count`]).
//! - `model_change`: a model change's backfill page, coverage, switch and clean-up.
//! - `index`: what [`crate::index_sync`] reads to bring a Vectorize index in line.
//!
//! Callers bind the parameters each statement's doc names.

use shared::config::TableConfig;
use shared::job::JobStatus;
use shared::sets::SetRole;

use crate::d1::ident;

mod gateway;
mod index;
mod model_change;
mod writes;

pub use gateway::{embedded_count, refresh_metadata, stored_hashes, tombstone};
pub use index::{indexed_rows, indexed_seqs, IndexedRow};
pub use model_change::{
    active_rows, active_vectors, backfill_page, drop_emptied, remove_retiring, retiring_rows,
    UNCOVERED,
};
pub use writes::{column_update, rename_current, stored_for_records, upsert, KEPT_JOBS_VECTOR};

/// The columns a row is written with, in the order [`upsert`] gives them.
pub const COLUMNS: &str = "organization_id, table_name, record_id, vector_id, model, \
     content_hash, vector, codes, metadata, job_id, job_created_at, seq, updated_at, location";

/// The job an item of a write carries, as a row value of its `created` and `job` fields: the
/// same order as [`job_order`].
pub const WRITE_ORDER: &str = "(w.created, w.job)";

/// Where the job that wrote the row `alias` stands among its record's jobs, as a row value:
/// by creation time, then by job id, as `shared::freshness` orders them.
pub fn job_order(alias: &str) -> String {
    format!("({alias}.job_created_at, {alias}.job_id)")
}

/// "The newer job wins": true where the job at `newer` comes after the one at `older` (each a
/// row value as [`job_order`] or [`WRITE_ORDER`] make it). It guards `shared::freshness`'s
/// third rule, that an older job never overwrites a newer vector, against the race that
/// `freshness::assess` cannot see: a newer job of the same record that committed after this
/// batch read what the set held.
pub fn newer_job(newer: &str, older: &str) -> String {
    format!("{newer} > {older}")
}

/// The `seq` of a row written now: past every row of the organization's table (`org` and
/// `table` are SQL expressions), plus `step` (`1` for a single row; the n-th row of a batch
/// takes `n`, so that a batch's rows keep its order). An empty table counts from 0; an update's
/// rows are the table's own, so there `MAX(seq)` is never null.
pub fn next_seq(org: &str, table: &str, step: &str) -> String {
    format!(
        "(SELECT COALESCE(MAX(seq), 0) FROM embedding_vectors
          WHERE organization_id = {org} AND table_name = {table}) + {step}"
    )
}

/// A set's role as an SQL string, named by [`SetRole`].
pub fn role(role: SetRole) -> String {
    format!("'{}'", role.as_str())
}

/// The roles of the sets that still take writes, as an SQL list: the active set and the one
/// being built. A retiring set takes nothing more.
pub fn live_roles() -> String {
    format!("({}, {})", role(SetRole::Active), role(SetRole::Building))
}

/// The statuses of a job that is still to write its record's vector (queued, or being
/// processed), as an SQL list named by [`JobStatus`].
pub fn open_statuses() -> String {
    format!(
        "('{}', '{}')",
        JobStatus::Queued.as_str(),
        JobStatus::Processing.as_str()
    )
}

/// The rows `v` of the set `s` (an `embedding_sets` row): the join of a row to its set.
pub fn of_set(v: &str, s: &str) -> String {
    format!(
        "{v}.organization_id = {s}.organization_id AND {v}.table_name = {s}.table_name
         AND {v}.model = {s}.model AND {v}.location = {s}.location"
    )
}

/// The rows `v` of the set of model `model` kept at `location` of the organization `org`'s
/// table `table` (each an SQL expression).
pub fn in_set(v: &str, org: &str, table: &str, model: &str, location: &str) -> String {
    format!(
        "{v}.organization_id = {org} AND {v}.table_name = {table} AND {v}.model = {model}
         AND {v}.location = {location}"
    )
}

/// Whether the set `s` (an `embedding_sets` row of the organization `org`'s table `table`) is
/// the one the embedding column of the record `record` follows (each an SQL expression): the
/// set being built, or the active set where no set being built holds a live vector of the
/// record. So while a model change runs, "the building set covers the record" means its column
/// holds the new model's vector already, and the switch writes no column; a change given up
/// leaves the column to its clean-up, which puts the active set's vectors back
/// (`shared::sets`, the invariants).
///
/// The rule reads the sets' roles as the statement finds them, never the writing worker's
/// config: during a rolling deploy workers of two configs write side by side (one configured
/// for the active set writes the building set too), and a set's role may change between a
/// batch's read and its write (a switch, a give-up).
pub fn column_follows(s: &str, org: &str, table: &str, record: &str) -> String {
    format!(
        "({s}.role = {building} OR ({s}.role = {active} AND NOT EXISTS (SELECT 1
             FROM embedding_sets b JOIN embedding_vectors vb ON {vb_of_b}
             WHERE b.organization_id = {org} AND b.table_name = {table}
               AND b.role = {building} AND vb.record_id = {record}
               AND vb.vector IS NOT NULL)))",
        building = role(SetRole::Building),
        active = role(SetRole::Active),
        vb_of_b = of_set("vb", "b"),
    )
}

/// The columns a record of `table` (the row `r`) is embedded from, its id first, as a select
/// list.
fn record_columns(table: &TableConfig) -> String {
    let columns: Vec<String> = table
        .embedding_columns()
        .into_iter()
        .map(|c| format!("r.{}", ident(c)))
        .collect();
    columns.join(", ")
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
