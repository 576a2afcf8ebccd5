//! Small helpers for D1 statements, shared by the workers' stores.

use worker::wasm_bindgen::JsValue;
use worker::D1Database;

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

/// One round trip to D1: proof that the binding answers.
pub async fn ping(db: &D1Database) -> Result<(), Fault> {
    db.prepare("SELECT 1 AS one")
        .first::<serde_json::Value>(None)
        .await?;
    Ok(())
}
