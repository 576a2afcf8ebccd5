//! Small helpers for D1 statements, shared by the workers' stores.

use serde_json::Value;
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

/// The most bytes of JSON one bound parameter carries: half of D1's 2,000,000-byte limit on a
/// string, so that many rows travel in as few statements as D1 allows, with room to spare.
pub const MAX_PARAMETER_BYTES: usize = 1 << 20;

/// `items` as JSON arrays of at most [`MAX_PARAMETER_BYTES`] each (an item larger than that
/// alone goes alone): one bound parameter, and one statement, per array.
pub fn json_chunks(items: &[Value]) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut chunk = String::from("[");
    for item in items {
        let text = item.to_string();
        if chunk.len() > 1 && chunk.len() + text.len() + 1 > MAX_PARAMETER_BYTES {
            chunk.push(']');
            chunks.push(std::mem::replace(&mut chunk, String::from("[")));
        }
        if chunk.len() > 1 {
            chunk.push(',');
        }
        chunk.push_str(&text);
    }
    if chunk.len() > 1 {
        chunk.push(']');
        chunks.push(chunk);
    }
    chunks
}

/// `sql` once per chunk of `items` ([`json_chunks`]): the chunk is `?1`, `rest` follow it. Rows
/// of any number go to D1 in a statement or two (`FROM json_each(?1)`), not one each: D1 counts
/// every statement of a batch against an invocation's queries.
pub fn over_chunks(
    db: &D1Database,
    items: &[Value],
    sql: &str,
    rest: &[JsValue],
) -> Result<Vec<D1PreparedStatement>, Fault> {
    json_chunks(items)
        .iter()
        .map(|chunk| {
            let values: Vec<JsValue> = std::iter::once(text(chunk))
                .chain(rest.iter().cloned())
                .collect();
            statement(db, sql, &values)
        })
        .collect()
}

/// Runs `statements` in one transaction; for none, no round trip (D1 refuses an empty batch).
pub async fn run_batch(db: &D1Database, statements: Vec<D1PreparedStatement>) -> Result<(), Fault> {
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

/// One round trip to D1: proof that the binding answers.
pub async fn ping(db: &D1Database) -> Result<(), Fault> {
    db.prepare("SELECT 1 AS one")
        .first::<serde_json::Value>(None)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn items_travel_in_as_few_arrays_as_the_parameter_bound_allows() {
        let small: Vec<Value> = (0..500).map(|i| json!({ "id": i })).collect();
        let chunks = json_chunks(&small);
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            serde_json::from_str::<Vec<Value>>(&chunks[0]).unwrap(),
            small
        );

        // Three items of 0.4 MB: two fit one parameter, the third starts the next.
        let large: Vec<Value> = (0..3).map(|_| json!("x".repeat(400_000))).collect();
        let chunks = json_chunks(&large);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| c.len() <= MAX_PARAMETER_BYTES));
        let back: Vec<Value> = chunks
            .iter()
            .flat_map(|c| serde_json::from_str::<Vec<Value>>(c).unwrap())
            .collect();
        assert_eq!(back, large);

        // An item over the bound goes alone; no items, no statement.
        let huge = vec![json!(1), json!("y".repeat(MAX_PARAMETER_BYTES)), json!(2)];
        assert_eq!(json_chunks(&huge).len(), 3);
        assert!(json_chunks(&[]).is_empty());
    }
}
