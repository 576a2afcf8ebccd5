//! The write round trip of a batch: its writes sorted by the statements that carry them, each
//! record's newest write stored (each set's row, then its embedding column), then every job's
//! end, in one transaction.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::quantized::Quantized;
use shared::sets::D1_LOCATION;
use shared::topk::normalized;
use shared::vector::{encode, vector_id};
use worker::D1PreparedStatement;
use worker_kit::d1::{number, text};
use worker_kit::vector_rows;
use worker_kit::Fault;

use super::D1Store;
use crate::ports::{Destination, Embedded, SetVector, Write};

/// The newest of several writes of one record in a batch: the one whose vector is kept. The
/// others end `stale`, as they would had the newest committed first.
fn newest_per_record<'a>(embedded: &[&'a Embedded<'a>]) -> Vec<&'a Embedded<'a>> {
    let mut newest: BTreeMap<(&str, &str), &Embedded<'_>> = BTreeMap::new();
    for write in embedded {
        let key = (
            write.job.organization_id.as_str(),
            write.job.id.as_deref().unwrap_or_default(),
        );
        let order = |w: &Embedded<'_>| (w.created_at, w.job.job_id.to_string());
        match newest.get(&key) {
            Some(kept) if order(kept) >= order(write) => {}
            _ => {
                newest.insert(key, write);
            }
        }
    }
    newest.into_values().collect()
}

/// A batch's writes, sorted into the statements that carry them: the embedded records by table,
/// and the rows (as JSON) of each other kind of job update.
#[derive(Default)]
struct Sorted<'a> {
    by_table: BTreeMap<&'a str, (&'a TableConfig, Vec<&'a Embedded<'a>>)>,
    /// Every embedded record's job, to end `done` or `stale`.
    finishes: Vec<Value>,
    /// Jobs without a record, whose vector goes on the job row.
    unbound: Vec<Value>,
    /// Final statuses without a vector.
    statuses: Vec<Value>,
    /// Sets whose current vector takes a newer job's name.
    touches: Vec<Value>,
    rejected: Vec<Value>,
    failed: Vec<Value>,
}

impl<'a> Sorted<'a> {
    fn of(writes: &'a [Write<'a>]) -> Self {
        let mut sorted = Sorted::default();
        for write in writes {
            match write {
                Write::Embedded(
                    embedded @ Embedded {
                        to: Destination::Sets(table, _),
                        job,
                        ..
                    },
                ) => {
                    sorted
                        .by_table
                        .entry(table.name.as_str())
                        .or_insert_with(|| (*table, Vec::new()))
                        .1
                        .push(embedded);
                    sorted.finishes.push(json!({
                        "job": job.job_id.to_string(), "org": job.organization_id,
                        "tbl": table.name, "record": job.id,
                        "truncated": i64::from(embedded.truncated),
                    }));
                }
                Write::Embedded(Embedded {
                    job,
                    to: Destination::JobRow(vector),
                    truncated,
                    ..
                }) => sorted.unbound.push(json!({
                    "job": job.job_id.to_string(), "org": job.organization_id,
                    "hex": shared::hex(&encode(vector)), "truncated": i64::from(*truncated),
                })),
                Write::Finished {
                    job_id,
                    organization_id,
                    status,
                    reason,
                } => sorted.statuses.push(json!({
                    "job": job_id, "org": organization_id, "status": status.as_str(),
                    "reason": reason,
                })),
                Write::Touched {
                    job,
                    created_at,
                    table,
                    sets,
                } => {
                    for set in sets {
                        sorted.touches.push(json!({
                            "job": job.job_id.to_string(), "org": job.organization_id,
                            "tbl": table.name, "record": job.id, "created": created_at,
                            "model": set.set.model, "location": set.set.location,
                            "hash": set.content_hash,
                        }));
                    }
                }
                Write::Rejected { job, reason } => sorted.rejected.push(json!({
                    "job": job.job_id, "org": job.organization_id, "model": job.model,
                    "content": job.content, "reason": reason,
                })),
                Write::Failed {
                    job_id,
                    organization_id,
                    error,
                } => sorted
                    .failed
                    .push(json!({ "job": job_id, "org": organization_id, "error": error })),
            }
        }
        sorted
    }
}

/// The items that store a table's embedded records: each set's row ([`vector_rows::upsert`])
/// and, for every set a job writes, its vector for the record's embedding column
/// ([`vector_rows::column_update`], which applies the one of the set the column follows).
#[derive(Debug, Default)]
pub(crate) struct RecordItems {
    pub rows: Vec<Value>,
    pub columns: Vec<Value>,
}

impl RecordItems {
    /// The items of `embedded`, all of one table: only the newest write of a record takes part.
    pub(crate) fn of(table: &TableConfig, embedded: &[&Embedded<'_>]) -> Result<Self, Fault> {
        let newest = newest_per_record(embedded);
        let mut items = RecordItems::default();
        for write in &newest {
            let job = write.job;
            let record = job.id.as_deref().unwrap_or_default();
            let job_id = job.job_id.to_string();
            let Destination::Sets(_, set_vectors) = &write.to else {
                continue;
            };
            for SetVector {
                set,
                content_hash,
                vector,
            } in set_vectors
            {
                // Every set's, not the configured one's: which set the column follows is
                // decided by the sets' roles when the batch commits, whatever this worker's
                // config names (a rolling deploy runs two configs at once).
                items.columns.push(json!({
                    "org": job.organization_id, "record": record, "job": job_id,
                    "model": set.model, "location": set.location,
                    "vector": serde_json::to_string(vector)?,
                }));
                items.rows.push(json!({
                    "n": items.rows.len() + 1, "org": job.organization_id, "record": record,
                    "job": job_id, "created": write.created_at, "model": set.model,
                    "location": set.location, "hash": content_hash,
                    "vector_id": vector_id(&job.organization_id, &table.name, record),
                    "hex": shared::hex(&encode(vector)),
                    "codes": (set.location == D1_LOCATION)
                        .then(|| Quantized::of(&normalized(vector)).to_text()),
                }));
            }
        }
        Ok(items)
    }
}

impl D1Store {
    /// The statements that store the embedded records of one table, in order: each set's row,
    /// then each record's embedding column from the row its set kept. Each row is guarded so
    /// that it loses to a newer job that committed first, and goes only to a set that is still
    /// live: a set that retired while the batch ran takes nothing more.
    fn store_record_vectors(
        &self,
        table: &TableConfig,
        embedded: &[&Embedded<'_>],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let RecordItems { rows, columns } = RecordItems::of(table, embedded)?;
        // Kept for Vectorize sets too: D1's copy is what the index is brought in line with,
        // and what a move to another backend copies without embedding again. Each row's `seq`
        // is past every other of its organization's table, in the batch's order.
        let mut statements = self.over_chunks(
            &rows,
            &vector_rows::upsert(table),
            &[text(&table.name), number(now_ms)],
        )?;
        // After the rows: the column takes a set's vector only where the set kept this job's
        // row, and follows the building set once this batch wrote its row there.
        statements.extend(self.over_chunks(
            &columns,
            &vector_rows::column_update(table),
            &[text(&table.name)],
        )?);
        Ok(statements)
    }

    /// [`crate::ports::JobStore::commit`]: every write of the batch in one transaction, the
    /// vectors first, then the jobs they end.
    pub(super) async fn commit_batch(
        &self,
        writes: &[Write<'_>],
        now_ms: i64,
    ) -> Result<(), Fault> {
        let Sorted {
            by_table,
            finishes,
            unbound,
            statuses,
            touches,
            rejected,
            failed,
        } = Sorted::of(writes);
        let mut statements = Vec::new();
        for (table, embedded) in by_table.values() {
            statements.extend(self.store_record_vectors(table, embedded, now_ms)?);
        }
        statements.extend(self.over_chunks(
            &touches,
            &vector_rows::rename_current(),
            &[number(now_ms)],
        )?);
        // After the vectors: a job whose vector the store did not keep lost to a newer one.
        statements.extend(self.finish_embedded(&finishes, now_ms)?);
        statements.extend(self.finish_unbound(&unbound, now_ms)?);
        statements.extend(self.finish_without_vector(&statuses, now_ms)?);
        statements.extend(self.reject(&rejected, now_ms)?);
        statements.extend(self.record_failures(&failed, now_ms)?);
        self.run_batch(statements).await
    }
}
