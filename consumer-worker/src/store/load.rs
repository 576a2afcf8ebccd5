//! The read round trip of a batch: each job's delivery recorded, its table's configured sets
//! made sure of, its record read and what each live set holds for it, and all of it assembled
//! into what deciding needs ([`LoadedBatch`]).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::TableConfig;
use shared::freshness::{RecordState, StoredVersion};
use shared::message::EmbeddingJob;
use shared::sets::{MigrationStep, SetRole, Starter, VectorSet};
use shared::vector::decode_hex;
use worker::D1PreparedStatement;
use worker_kit::d1::ident;
use worker_kit::sets::{self, SetRow};
use worker_kit::vector_rows;
use worker_kit::Fault;

use super::jobs::Delivered;
use super::D1Store;
use crate::ports::{KeptCopy, LiveSet, Loaded, LoadedBatch};

/// What one set holds for a job's record.
#[derive(Deserialize)]
struct StoredRow {
    /// The job's place in the batch.
    job: usize,
    model: String,
    location: String,
    content_hash: String,
    job_id: String,
    job_created_at: i64,
    /// The vector, read only when another live set of the same model may need a copy of it.
    copy_hex: Option<String>,
}

/// A batch's jobs bound to records, by table: each with its place in the batch.
type TableJobs<'a> = BTreeMap<&'a str, (&'a TableConfig, Vec<(usize, &'a EmbeddingJob)>)>;

/// A bound job with its place in the batch and its table.
type BoundJob<'a> = (usize, &'a EmbeddingJob, &'a TableConfig);

/// The batch's jobs bound to a configured table: by table, all of them, and each organization's
/// table once, as [`sets::ensure`] wants them.
fn bound_jobs<'a>(
    jobs: &[&'a EmbeddingJob],
    tables: &[Option<&'a TableConfig>],
) -> (
    TableJobs<'a>,
    Vec<BoundJob<'a>>,
    Vec<(&'a str, &'a TableConfig)>,
) {
    let mut by_table: TableJobs<'_> = BTreeMap::new();
    let mut bound = Vec::new();
    let mut pairs: BTreeMap<(&str, &str), &TableConfig> = BTreeMap::new();
    for (i, (job, table)) in jobs.iter().zip(tables).enumerate() {
        if let Some(table) = table {
            by_table
                .entry(table.name.as_str())
                .or_insert_with(|| (*table, Vec::new()))
                .1
                .push((i, *job));
            bound.push((i, *job, *table));
            pairs.insert((job.organization_id.as_str(), table.name.as_str()), table);
        }
    }
    let wanted = pairs
        .into_iter()
        .map(|((org, _), table)| (org, table))
        .collect();
    (by_table, bound, wanted)
}

/// What `load` answers for one job: nothing when its delivery was not recorded (`created_at`
/// is `None`: the job is final, or another organization's), else its record, its table's live
/// sets with what each holds for the record, and the copies a set may take from another.
fn loaded(
    job: &EmbeddingJob,
    table: Option<&TableConfig>,
    created_at: Option<i64>,
    record: Option<serde_json::Map<String, Value>>,
    sets: &[SetOf],
    stored: &[StoredRow],
) -> Option<Loaded> {
    let record = match table {
        Some(table) => match record {
            Some(row) => {
                // Written to D1 past the gateway: the value stays out of the vector's metadata
                // (`TableConfig::metadata_sql`), and the record is embedded as any other.
                if let Err(too_large) = shared::metadata::check(table, &row) {
                    tracing::warn!(job_id = %job.job_id, organization_id = %job.organization_id, record_id = job.id.as_deref(), reason = %too_large, "metadata value over its bound left out of the vector's metadata");
                }
                RecordState::Present {
                    text: table.embedding_text(&row),
                }
            }
            None => RecordState::Missing,
        },
        // A job of a table the config no longer has is treated as unbound: it still gets its
        // vector, on the job row.
        None if job.table.is_some() => RecordState::Missing,
        None => RecordState::Unbound,
    };
    // A copy that does not decode counts as none: the job is embedded again.
    let copies = stored
        .iter()
        .filter_map(|row| {
            let vector = decode_hex(row.copy_hex.as_deref()?).ok()?;
            (!vector.is_empty()).then(|| KeptCopy {
                model: row.model.clone(),
                content_hash: row.content_hash.clone(),
                vector,
            })
        })
        .collect();
    let sets = sets
        .iter()
        .map(|(set, role)| LiveSet {
            set: set.clone(),
            role: *role,
            stored: stored
                .iter()
                .find(|row| row.model == set.model && row.location == set.location)
                .map(|row| StoredVersion {
                    content_hash: row.content_hash.clone(),
                    job_id: row.job_id.clone(),
                    job_created_at: row.job_created_at,
                }),
        })
        .collect();
    Some(Loaded {
        created_at: created_at?,
        record,
        sets,
        copies,
    })
}

/// A live set and its role.
type SetOf = (VectorSet, SetRole);

/// The live sets of each organization's table that `rows` name, the active one first.
fn live_sets(rows: Vec<SetRow>) -> BTreeMap<(String, String), Vec<SetOf>> {
    let mut sets: BTreeMap<(String, String), Vec<SetOf>> = BTreeMap::new();
    for row in rows {
        let Some(role) = row.role() else {
            continue;
        };
        sets.entry((row.organization_id.clone(), row.table_name.clone()))
            .or_default()
            .push((row.set(), role));
    }
    for list in sets.values_mut() {
        list.sort_by_key(|(_, role)| *role != SetRole::Active);
    }
    sets
}

impl D1Store {
    /// The records of one table that `jobs` (their places in the batch) are for, each row with
    /// its job's place as `__job`.
    fn read_records(
        &self,
        table: &TableConfig,
        jobs: &[(usize, &EmbeddingJob)],
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        // Names come from the validated config, never from a message.
        let columns: Vec<String> = table
            .embedding_columns()
            .into_iter()
            .map(|c| format!("r.{}", ident(c)))
            .collect();
        let items: Vec<Value> = jobs
            .iter()
            .map(|(i, job)| json!({ "job": i, "record": job.id, "org": job.organization_id }))
            .collect();
        self.over_chunks(
            &items,
            &format!(
                "SELECT j.value ->> 'job' AS \"__job\", {} FROM json_each(?1) j
                 JOIN {} r ON r.{} = j.value ->> 'record' AND r.{} = j.value ->> 'org'",
                columns.join(", "),
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column)
            ),
            &[],
        )
    }

    /// What every set holds for the records `jobs` are for, each row with its job's place
    /// ([`vector_rows::stored_for_records`]).
    fn read_stored(&self, jobs: &[BoundJob<'_>]) -> Result<Vec<D1PreparedStatement>, Fault> {
        let items: Vec<Value> = jobs
            .iter()
            .map(|(i, job, table)| {
                json!({ "job": i, "org": job.organization_id, "table": table.name, "record": job.id })
            })
            .collect();
        self.over_chunks(&items, &vector_rows::stored_for_records(), &[])
    }

    /// Applies what this worker's config wants of the batch's tables' sets, `read`
    /// (`shared::sets::plan`), in a round trip of its own only when that writes (a change
    /// starts, is given up or is vouched for): the live sets, and the steps to send.
    async fn want_sets(
        &self,
        read: &worker::D1Result,
        wanted: &[(&str, &TableConfig)],
        now_ms: i64,
    ) -> Result<(Vec<SetRow>, Vec<MigrationStep>), Fault> {
        let decided = sets::decide(read, wanted, Starter::Worker, now_ms)?;
        let applied = sets::apply(&self.db, &decided, read.results::<SetRow>()?, now_ms).await?;
        self.count(applied.statements);
        let steps = applied.steps();
        Ok((applied.live, steps))
    }

    /// [`crate::ports::JobStore::load`]: records the deliveries, reads the batch's tables'
    /// sets, the records and what each set holds for them, in one round trip; then applies what
    /// the config wants of the sets, in a second only when that writes.
    pub(super) async fn load_batch(
        &self,
        jobs: &[&EmbeddingJob],
        now_ms: i64,
    ) -> Result<LoadedBatch, Fault> {
        let tables: Vec<Option<&TableConfig>> = jobs
            .iter()
            .map(|job| job.table.as_deref().and_then(|t| self.config.table(t)))
            .collect();
        let (by_table, bound, wanted) = bound_jobs(jobs, &tables);
        let deliveries = self.record_deliveries(jobs, now_ms)?;
        let (delivery_count, mut statements) = (deliveries.len(), deliveries);
        // The batch's tables' sets, read after its jobs are marked processing: a set made
        // later waits for them (`worker_kit::sets::earlier_batches`).
        let keys: Vec<(&str, &str)> = wanted
            .iter()
            .map(|(org, table)| (*org, table.name.as_str()))
            .collect();
        let read_sets = !keys.is_empty();
        if read_sets {
            statements.push(sets::read(&self.db, &keys)?);
        }
        let mut record_counts = Vec::with_capacity(by_table.len());
        for (table, table_jobs) in by_table.values() {
            let reads = self.read_records(table, table_jobs)?;
            record_counts.push(reads.len());
            statements.extend(reads);
        }
        statements.extend(self.read_stored(&bound)?);
        self.count(statements.len());
        let mut results = self.db.batch(statements).await?.into_iter();

        let mut created: Vec<Option<i64>> = vec![None; jobs.len()];
        let mut records: Vec<Option<serde_json::Map<String, Value>>> = vec![None; jobs.len()];
        let mut stored: Vec<Vec<StoredRow>> = (0..jobs.len()).map(|_| Vec::new()).collect();
        let mut next = || {
            results
                .next()
                .ok_or_else(|| Fault("D1 returned fewer results than statements".into()))
        };
        // Job ids are distinct within a batch (`deliveries` keeps one entry a job).
        let place: HashMap<String, usize> = jobs
            .iter()
            .enumerate()
            .map(|(i, job)| (job.job_id.to_string(), i))
            .collect();
        for _ in 0..delivery_count {
            for row in next()?.results::<Delivered>()? {
                if let Some(&i) = place.get(&row.id) {
                    created[i] = Some(row.created_at);
                }
            }
        }
        let (set_rows, started) = if read_sets {
            self.want_sets(&next()?, &wanted, now_ms).await?
        } else {
            (Vec::new(), Vec::new())
        };
        for count in record_counts {
            for _ in 0..count {
                for mut row in next()?.results::<serde_json::Map<String, Value>>()? {
                    let place = row.remove("__job").and_then(|v| v.as_u64());
                    if let Some(slot) =
                        place.and_then(|i| records.get_mut(usize::try_from(i).ok()?))
                    {
                        *slot = Some(row);
                    }
                }
            }
        }
        for result in results {
            for row in result.results::<StoredRow>()? {
                if let Some(slot) = stored.get_mut(row.job) {
                    slot.push(row);
                }
            }
        }

        let sets = live_sets(set_rows);
        let loaded = jobs
            .iter()
            .zip(tables)
            .enumerate()
            .map(|(i, (job, table))| {
                let table_sets = table
                    .and_then(|t| sets.get(&(job.organization_id.clone(), t.name.clone())))
                    .map_or(&[][..], Vec::as_slice);
                loaded(
                    job,
                    table,
                    created[i],
                    records[i].take(),
                    table_sets,
                    &stored[i],
                )
            })
            .collect();
        Ok(LoadedBatch {
            jobs: loaded,
            // A building set the config no longer names is cleaned up at once.
            started,
        })
    }
}
