//! Small helpers for D1 statements, shared by the workers' stores.

use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::Fault;

/// The D1 database binding the three workers share.
pub const DB: &str = "DB";

/// A bound integer. D1 takes numbers as JS doubles; millisecond timestamps and counts fit exactly.
#[allow(clippy::cast_precision_loss)]
pub fn number(n: i64) -> JsValue {
    JsValue::from_f64(n as f64)
}

pub fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

/// A bound text, or SQL `NULL`.
pub fn optional(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

/// A table or column name quoted for SQL. Names reach SQL only from the validated config, which
/// holds them to plain identifiers; quoting keeps a name that is also an SQL keyword working.
pub fn ident(name: &str) -> String {
    format!("\"{name}\"")
}

/// `sql` with `values` bound, ready to run alone or in a batch.
pub fn statement(
    db: &D1Database,
    sql: &str,
    values: &[JsValue],
) -> Result<D1PreparedStatement, Fault> {
    Ok(db.prepare(sql).bind(values)?)
}

/// One round trip to D1: proof that the binding answers.
pub async fn ping(db: &D1Database) -> Result<(), Fault> {
    db.prepare("SELECT 1 AS one")
        .first::<serde_json::Value>(None)
        .await?;
    Ok(())
}
