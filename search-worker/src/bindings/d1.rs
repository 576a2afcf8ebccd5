//! [`D1Store`]: the store port over the `DB` binding. Each catch-up is one D1 batch whose rows
//! cross into the module as JSON text ([`batch_rows`]); the statements on the vector rows are
//! [`super::embedding_vectors`]'s, those on the sets here.

use std::collections::HashMap;

use js_sys::Array;
use serde::Deserialize;
use shared::sets::VectorSet;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsCast;
use worker::wasm_bindgen::JsValue;
use worker::D1Database;
use worker_kit::d1::{self, text};
use worker_kit::Fault;

use super::embedding_vectors;
use crate::ports::{
    ActiveSet, CatchUp, ExactRow, KeywordQuery, KeywordRow, Metadata, Pending, Room, Store,
    FILL_CHUNK,
};

/// D1, as search-worker reads it.
#[derive(Debug)]
pub(crate) struct D1Store(pub(super) D1Database);

/// The active set of `?1`'s table `?2`.
const ACTIVE_SET: &str = "SELECT model, location, created_at FROM embedding_sets
     WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active'";

/// [`ACTIVE_SET`] as one JSON text, for [`batch_rows`].
const ACTIVE_SET_ROW: &str = "SELECT json_array(model, location, created_at) AS row
     FROM embedding_sets WHERE organization_id = ?1 AND table_name = ?2 AND role = 'active'";

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
        let [pending, rows] =
            embedding_vectors::since(&self.0, organization_id, table, guess, after_seq, room)?;
        let mut statements = vec![
            self.0
                .prepare(ACTIVE_SET_ROW)
                .bind(&[text(organization_id), text(table)])?,
            pending,
            rows,
        ];
        if let Some(after) = fill {
            statements.push(embedding_vectors::exact_chunk(
                &self.0,
                organization_id,
                table,
                guess,
                after,
                FILL_CHUNK,
            )?);
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
        Ok(
            embedding_vectors::exact_vectors(&self.0, organization_id, table, set, record_ids)?
                .all()
                .await?
                .results::<ExactRow>()?,
        )
    }

    async fn keyword_matches(&self, asked: &KeywordQuery<'_>) -> Result<Vec<KeywordRow>, Fault> {
        #[derive(Deserialize)]
        struct Row {
            record_id: String,
            keyword_score: f64,
            vector_hex: Option<String>,
            metadata: String,
        }
        let rows = embedding_vectors::keyword_matches(&self.0, asked)?
            .all()
            .await?
            .results::<Row>()?;
        // BM25 is an f64 in SQL; a match carries its scores as f32, as it does its cosine.
        #[allow(clippy::cast_possible_truncation)]
        Ok(rows
            .into_iter()
            .map(|row| KeywordRow {
                record_id: row.record_id,
                keyword_score: row.keyword_score as f32,
                vector_hex: row.vector_hex,
                metadata: serde_json::from_str(&row.metadata).unwrap_or_default(),
            })
            .collect())
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
        let rows =
            embedding_vectors::live_records(&self.0, organization_id, table, location, vector_ids)?
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
