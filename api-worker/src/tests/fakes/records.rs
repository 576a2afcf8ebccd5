//! [`Records`] of the [`FakeStore`]: the seeded records, the vectors a test stores, and the
//! metadata refreshes a write asks for.

use shared::config::TableConfig;
use shared::record::Record;
use worker_kit::Fault;

use super::{in_table, is_record, FakeStore};
use crate::ports::{BackfillCandidate, RecordWrite, Records};

impl Records for FakeStore {
    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault> {
        if let Some(stale) = self.stale_read.borrow().clone() {
            return Ok(Some(stale));
        }
        Ok(self
            .records
            .borrow()
            .iter()
            .find(|stored| is_record(stored, &table.name, organization_id, id))
            .map(|(_, r)| r.clone()))
    }
    async fn records(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Record>, Fault> {
        let mut rows: Vec<Record> = self
            .records
            .borrow()
            .iter()
            .filter(|stored| in_table(stored, &table.name, organization_id))
            .filter(|(_, r)| after.is_none_or(|a| r["id"].as_str().unwrap() > a))
            .map(|(_, r)| r.clone())
            .collect();
        rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        rows.truncate(limit as usize);
        Ok(rows)
    }
    async fn insert_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        _now_ms: i64,
    ) -> Result<RecordWrite, Fault> {
        if !values.contains_key("content") {
            return Ok(RecordWrite::Refused(format!(
                "NOT NULL constraint failed: {}.content",
                table.name
            )));
        }
        let taken = self
            .records
            .borrow()
            .iter()
            .any(|stored| is_record(stored, &table.name, organization_id, id));
        // Ids are unique within an organization (the tables' key is (organization, id)).
        if taken {
            return Ok(RecordWrite::IdTaken);
        }
        let mut record = values.clone();
        record.insert("id".into(), id.into());
        record.insert("organization_id".into(), organization_id.into());
        self.records
            .borrow_mut()
            .push((table.name.clone(), record.clone()));
        Ok(RecordWrite::Written(record))
    }
    async fn update_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
        values: &Record,
        _now_ms: i64,
    ) -> Result<(Option<Record>, RecordWrite), Fault> {
        let mut records = self.records.borrow_mut();
        let Some((_, record)) = records
            .iter_mut()
            .find(|stored| is_record(stored, &table.name, organization_id, id))
        else {
            return Ok((None, RecordWrite::Missing));
        };
        let before = record.clone();
        record.extend(values.clone());
        Ok((Some(before), RecordWrite::Written(record.clone())))
    }
    async fn refresh_vector_metadata(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let key = (
            organization_id.to_owned(),
            table.name.clone(),
            id.to_owned(),
        );
        let stored = self
            .vectors
            .iter()
            .any(|(o, t, r, _)| (o, t, r) == (&key.0, &key.1, &key.2));
        self.refreshed.borrow_mut().push(key);
        Ok(stored)
    }
    async fn delete_record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<bool, Fault> {
        let mut records = self.records.borrow_mut();
        let before = records.len();
        records.retain(|stored| !is_record(stored, &table.name, organization_id, id));
        Ok(records.len() < before)
    }
    async fn backfill_candidates(
        &self,
        table: &TableConfig,
        organization_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BackfillCandidate>, Fault> {
        let records = self.records(table, organization_id, after, limit).await?;
        Ok(records
            .into_iter()
            .map(|record| {
                let stored_hash = self
                    .vectors
                    .iter()
                    .find(|(o, t, i, _)| {
                        o == organization_id && *t == table.name && record["id"] == i.as_str()
                    })
                    .map(|(.., hash)| hash.clone());
                BackfillCandidate {
                    record,
                    stored_hash,
                }
            })
            .collect())
    }
}
