//! [`Records`] over D1: the embedding tables' rows, as the config names them. A write that
//! changes a record's vector row runs with it, in the same batch, a statement of
//! [`super::vectors`].

use shared::config::TableConfig;
use shared::record::{Record, CREATED_AT, UPDATED_AT};
use worker::wasm_bindgen::JsValue;
use worker_kit::d1::{ident, number, optional, text};
use worker_kit::Fault;

use super::D1Store;
use crate::ports::{BackfillCandidate, RecordWrite, Records};

/// A JSON value of a record body as a bound parameter (numbers as doubles, booleans as 0/1).
fn bound(value: &serde_json::Value) -> JsValue {
    match value {
        serde_json::Value::String(s) => text(s),
        serde_json::Value::Number(n) => n.as_f64().map_or(JsValue::NULL, JsValue::from_f64),
        serde_json::Value::Bool(b) => JsValue::from_f64(f64::from(u8::from(*b))),
        _ => JsValue::NULL,
    }
}

fn columns(table: &TableConfig) -> String {
    table
        .columns
        .iter()
        .map(|c| ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `SELECT` of one record's columns, its id `?1` and organization `?2`.
fn select_one(table: &TableConfig) -> String {
    format!(
        "SELECT {} FROM {} WHERE {} = ?1 AND {} = ?2",
        columns(table),
        ident(&table.name),
        ident(&table.id_column),
        ident(&table.organization_column)
    )
}

/// A write the table refused by one of its constraints is the caller's to fix, not a fault.
fn refused(error: worker::Error) -> Result<RecordWrite, Fault> {
    let message = error.to_string();
    match message.find("constraint failed") {
        Some(at) => {
            let start = message[..at].rfind(':').map_or(0, |i| i + 1);
            let reason = message[start..]
                .split(": SQLITE")
                .next()
                .unwrap_or_default();
            Ok(RecordWrite::Refused(reason.trim().to_owned()))
        }
        None => Err(Fault::from(error)),
    }
}

impl D1Store {
    /// Runs a record write that `RETURNING`s the row: the row as stored, `none` when the
    /// statement wrote nothing, or the constraint that refused it.
    async fn write_record(
        &self,
        sql: &str,
        params: &[JsValue],
        none: RecordWrite,
    ) -> Result<RecordWrite, Fault> {
        match self.statement(sql, params)?.all().await {
            Ok(result) => Ok(result
                .results::<Record>()?
                .into_iter()
                .next()
                .map_or(none, RecordWrite::Written)),
            Err(e) => refused(e),
        }
    }
}

impl Records for D1Store {
    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault> {
        let row = self
            .statement(&select_one(table), &[text(id), text(organization_id)])?
            .first::<Record>(None)
            .await?;
        Ok(row)
    }

    async fn records(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Fault> {
        let id = ident(&table.id_column);
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1 AND (?2 IS NULL OR {id} > ?2) ORDER BY {id} LIMIT ?3",
            columns(table),
            ident(&table.name),
            ident(&table.organization_column),
        );
        let rows = self
            .statement(
                &sql,
                &[
                    text(organization_id),
                    optional(after),
                    number(i64::from(limit)),
                ],
            )?
            .all()
            .await?
            .results::<Record>()?;
        Ok(rows)
    }

    async fn insert_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        now_ms: i64,
    ) -> Result<RecordWrite, Fault> {
        let mut names = vec![ident(&table.id_column), ident(&table.organization_column)];
        let mut params = vec![text(id), text(organization_id)];
        for (name, value) in values {
            names.push(ident(name));
            params.push(bound(value));
        }
        for stamp in [CREATED_AT, UPDATED_AT] {
            if table.columns.iter().any(|c| c == stamp) {
                names.push(ident(stamp));
                params.push(number(now_ms));
            }
        }
        let placeholders: Vec<String> = (1..=params.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING RETURNING {}",
            ident(&table.name),
            names.join(", "),
            placeholders.join(", "),
            columns(table)
        );
        self.write_record(&sql, &params, RecordWrite::IdTaken).await
    }

    async fn update_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        now_ms: i64,
    ) -> Result<(Option<Record>, RecordWrite), Fault> {
        let mut sets = Vec::new();
        let mut params = vec![text(id), text(organization_id)];
        for (name, value) in values {
            params.push(bound(value));
            sets.push(format!("{} = ?{}", ident(name), params.len()));
        }
        if table.columns.iter().any(|c| c == UPDATED_AT) {
            params.push(number(now_ms));
            sets.push(format!("{} = ?{}", ident(UPDATED_AT), params.len()));
        }
        let before = self.statement(&select_one(table), &[text(id), text(organization_id)])?;
        let update = self.statement(
            &format!(
                "UPDATE {} SET {} WHERE {} = ?1 AND {} = ?2 RETURNING {}",
                ident(&table.name),
                sets.join(", "),
                ident(&table.id_column),
                ident(&table.organization_column),
                columns(table)
            ),
            &params,
        )?;
        // One batch is one transaction: no other write lands between the read and the update.
        let results = match self.db.batch(vec![before, update]).await {
            Ok(results) => results,
            Err(e) => return refused(e).map(|write| (None, write)),
        };
        let mut rows = results.into_iter().map(|result| {
            result
                .results::<Record>()
                .map(|rows| rows.into_iter().next())
        });
        let before = rows.next().transpose()?.flatten();
        let after = rows.next().transpose()?.flatten();
        Ok((
            before,
            after.map_or(RecordWrite::Missing, RecordWrite::Written),
        ))
    }

    async fn refresh_vector_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let result = self
            .refresh_metadata(table, organization_id, id)?
            .run()
            .await?;
        Ok(Self::changes(&result)? > 0)
    }

    async fn delete_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let record = self.statement(
            &format!(
                "DELETE FROM {} WHERE {} = ?1 AND {} = ?2",
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column)
            ),
            &[text(id), text(organization_id)],
        )?;
        let vector = self.tombstone(table, organization_id, id)?;
        let results = self.db.batch(vec![record, vector]).await?;
        Ok(results
            .first()
            .map(Self::changes)
            .transpose()?
            .unwrap_or_default()
            > 0)
    }

    async fn backfill_candidates(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BackfillCandidate>, Fault> {
        let rows = self
            .with_stored_hashes(table, organization_id, after, limit)?
            .all()
            .await?
            .results::<Record>()?;
        Ok(rows
            .into_iter()
            .map(|mut record| {
                let stored_hash = record
                    .remove("stored_hash")
                    .and_then(|h| h.as_str().map(str::to_owned));
                BackfillCandidate {
                    record,
                    stored_hash,
                }
            })
            .collect())
    }
}
