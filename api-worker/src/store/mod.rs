//! The gateway's D1 ports ([`crate::ports::Store`]) over one [`D1Store`], one module per port:
//! [`auth`] (sessions and API keys), [`records`] (the embedding tables' records), [`jobs`]
//! (the jobs' rows), and [`vectors`], which binds the statements on `embedding_vectors` that
//! `worker_kit::vector_rows` owns.
//! A table's sets and health are read in [`crate::sets_store`].
//!
//! Every query is scoped to the caller's organization; request data reaches SQL only as bound
//! parameters, and table and column names only from the validated config (quoted).

mod auth;
mod jobs;
mod records;
mod vectors;

use std::cell::Cell;

use shared::config::TableConfig;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};
use worker_kit::d1;
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use crate::ports::{Database, Sets, TableHealth};

/// D1, and the statements this request has prepared on it: every one of a `batch()` counts
/// against the invocation's queries (50 on Workers Free, 1,000 on Paid).
#[derive(Debug)]
pub(crate) struct D1Store {
    pub(crate) db: D1Database,
    statements: Cell<usize>,
}

impl D1Store {
    pub(crate) fn new(db: D1Database) -> Self {
        D1Store {
            db,
            statements: Cell::new(0),
        }
    }

    /// Counts `n` statements prepared elsewhere (`worker_kit`'s builders) against this request.
    pub(crate) fn count(&self, n: usize) {
        self.statements.set(self.statements.get() + n);
    }

    /// One statement with its bound values, counted.
    pub(crate) fn statement(
        &self,
        sql: &str,
        values: &[JsValue],
    ) -> Result<D1PreparedStatement, Fault> {
        self.count(1);
        d1::statement(&self.db, sql, values)
    }

    /// `sql` over `items` bound as JSON (`?1`) in as few statements as D1's limits allow, counted.
    fn over_chunks(
        &self,
        items: &[serde_json::Value],
        sql: &str,
        rest: &[JsValue],
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let statements = d1::over_chunks(&self.db, items, sql, rest)?;
        self.count(statements.len());
        Ok(statements)
    }

    /// How many rows a write changed.
    fn changes(result: &worker::D1Result) -> Result<usize, Fault> {
        Ok(result
            .meta()?
            .and_then(|meta| meta.changes)
            .unwrap_or_default())
    }
}

impl Database for D1Store {
    fn statements(&self) -> usize {
        self.statements.get()
    }

    async fn ping(&self) -> Result<(), Fault> {
        d1::ping(&self.db).await
    }
}

impl Sets for D1Store {
    async fn table_health(
        &self,
        table: &TableConfig,
        organization_id: &str,
        _now_ms: i64,
    ) -> Result<TableHealth, Fault> {
        self.read_table_health(table, organization_id).await
    }

    async fn ensure_sets(
        &self,
        table: &TableConfig,
        organization_id: &str,
        now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<SetRow>), Fault> {
        self.make_sure_of_sets(table, organization_id, now_ms).await
    }
}
