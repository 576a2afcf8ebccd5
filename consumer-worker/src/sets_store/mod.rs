//! The [`MigrationStore`] over D1: the sets of a model change and their coverage. Table and
//! column names come only from the validated config; everything else is a bound parameter.
//! Role and status names come from their enums, and every statement on `embedding_vectors`
//! from `worker_kit::vector_rows`.
//!
//! - [`sets`]: the sets themselves: a step's claim, the chains that stopped, the tables a
//!   deploy changed, the sets a worker makes sure of, those changing;
//! - [`backfill`]: the backfill's page of records, its jobs, and the coverage it reaches;
//! - [`switch`]: the switch to the built set, and the clean-up of the retired one.

mod backfill;
mod sets;
mod switch;

use shared::config::TableConfig;
use shared::message::EmbeddingJob;
use shared::sets::{Migration, VectorSet};
use worker::wasm_bindgen::JsValue;
use worker_kit::d1::{self, text};
use worker_kit::sets::{Applied, SetRow};
use worker_kit::Fault;

use crate::migration::{Coverage, Page, RetiringRow, Switched};
use crate::ports::MigrationStore;
use crate::store::D1Store;

impl D1Store {
    /// `sql` over the migration's organization and table (`?1`, `?2`), `rest` following.
    fn table_statement(
        &self,
        sql: &str,
        m: &Migration,
        rest: &[JsValue],
    ) -> Result<worker::D1PreparedStatement, Fault> {
        self.count(1);
        let mut values = vec![text(&m.organization_id), text(&m.table)];
        values.extend(rest.iter().cloned());
        d1::statement(&self.db, sql, &values)
    }

    /// `sql` over the building set (`?1` to `?4`: organization, table, model, location), `rest`
    /// following.
    fn statement_with(
        &self,
        sql: &str,
        m: &Migration,
        rest: &[JsValue],
    ) -> Result<worker::D1PreparedStatement, Fault> {
        let set = [text(&m.model), text(&m.location)];
        let values: Vec<JsValue> = set.into_iter().chain(rest.iter().cloned()).collect();
        self.table_statement(sql, m, &values)
    }
}

impl MigrationStore for D1Store {
    async fn claim(&self, m: &Migration, now_ms: i64) -> Result<Option<u32>, Fault> {
        self.claim_set(m, now_ms).await
    }

    async fn stalled(&self, unmoved_since: i64, limit: u32) -> Result<Vec<SetRow>, Fault> {
        self.stalled_sets(unmoved_since, limit).await
    }

    async fn unconfigured(
        &self,
        configured: &[(&TableConfig, VectorSet)],
        limit: u32,
    ) -> Result<Vec<(String, String)>, Fault> {
        self.unconfigured_tables(configured, limit).await
    }

    async fn ensure(&self, tables: &[(String, String)], now_ms: i64) -> Result<Applied, Fault> {
        self.ensure_sets(tables, now_ms).await
    }

    async fn changing_sets(&self, tables: &[(String, String)]) -> Result<Vec<SetRow>, Fault> {
        self.changing_sets_of(tables).await
    }

    async fn uncovered(
        &self,
        table: &TableConfig,
        m: &Migration,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Page, Fault> {
        self.backfill_page(table, m, after, limit).await
    }

    async fn queue_jobs(
        &self,
        jobs: &[EmbeddingJob],
        backfill_id: &str,
        created_at: i64,
    ) -> Result<(), Fault> {
        self.queue_backfill_jobs(jobs, backfill_id, created_at)
            .await
    }

    async fn coverage(&self, table: &TableConfig, m: &Migration) -> Result<Coverage, Fault> {
        self.count_coverage(table, m).await
    }

    async fn switch(
        &self,
        table: &TableConfig,
        m: &Migration,
        now_ms: i64,
    ) -> Result<Switched, Fault> {
        self.switch_sets(table, m, now_ms).await
    }

    async fn retiring_rows(&self, m: &Migration, limit: u32) -> Result<Vec<RetiringRow>, Fault> {
        self.rows_of_retiring(m, limit).await
    }

    async fn restore_columns(
        &self,
        table: &TableConfig,
        m: &Migration,
        records: &[&str],
    ) -> Result<usize, Fault> {
        self.restore_from_active(table, m, records).await
    }

    async fn remove_rows(
        &self,
        m: &Migration,
        rows: &[RetiringRow],
        _now_ms: i64,
    ) -> Result<(), Fault> {
        self.remove_retiring_rows(m, rows).await
    }

    async fn drop_retired(&self, m: &Migration, _now_ms: i64) -> Result<usize, Fault> {
        self.drop_emptied_set(m).await
    }
}
