//! The consumer's [`JobStore`] over D1: jobs, records and the D1 vector store. Two round trips
//! a batch: one to record the deliveries and read what deciding needs, one to write every
//! result. Each is a handful of statements whatever the batch's size: D1 counts every statement
//! of a `batch()` as a query (50 an invocation on the Free plan), so rows travel as JSON
//! parameters read with `json_each`, never one statement a job. Request data reaches SQL only as
//! bound parameters; table and column names only from the validated config.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{json, Value};
use shared::config::{Config, TableConfig};
use shared::freshness::{RecordState, StoredVersion};
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::quantized::Quantized;
use shared::sets::{SetRole, VectorSet, D1_LOCATION};
use shared::topk::normalized;
use shared::vector::{decode_hex, encode, vector_id};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};
use worker_kit::d1::{self, ident, number, text};
use worker_kit::sets::{self, SetRow};
use worker_kit::Fault;

use crate::ports::{
    DeadJob, Destination, Embedded, JobStore, KeptCopy, LiveSet, Loaded, LoadedBatch, SetVector,
    Write,
};

/// Jobs, records and the D1 vector store.
#[derive(Debug)]
pub(crate) struct D1Store {
    pub db: D1Database,
    pub config: &'static Config,
    /// Statements run so far, for the batch's log line.
    pub statements: Cell<usize>,
}

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

/// Writes records' embedding column: `?1` a JSON array of `{org, record, job, created,
/// vector}` (the vector as JSON text), `?2` the table, `?3` and `?4` the configured set's model
/// and location. A column is left as it is where the set holds a vector of the record written
/// by a newer job (which wrote the column too).
pub(crate) fn column_update(table: &TableConfig) -> String {
    format!(
        "UPDATE {t} SET {column} = w.vector
         FROM (SELECT value ->> 'org' AS org, value ->> 'record' AS record,
                   value ->> 'job' AS job, value ->> 'created' AS created,
                   value ->> 'vector' AS vector FROM json_each(?1)) AS w
         WHERE {t}.{id} = w.record AND {t}.{org} = w.org
           AND NOT EXISTS (SELECT 1 FROM embedding_vectors v
               WHERE v.organization_id = w.org AND v.table_name = ?2 AND v.model = ?3
                 AND v.location = ?4 AND v.record_id = w.record
                 AND (v.job_created_at, v.job_id) > (w.created, w.job))",
        t = ident(&table.name),
        column = ident(&table.embeddings.embedding_column),
        id = ident(&table.id_column),
        org = ident(&table.organization_column),
    )
}

/// Job statuses a delivery may still change.
const OPEN: &str = "status IN ('queued', 'processing')";

/// Dead jobs as the JSON items their update statement reads.
fn dead_items(jobs: &[DeadJob]) -> Vec<Value> {
    jobs.iter()
        .map(|job| json!({ "job": job.job_id, "org": job.organization_id, "reason": job.reason }))
        .collect()
}

/// A delivered job's id and the `created_at` of its row, as the delivery statement
/// `RETURNING`s them.
#[derive(Deserialize)]
struct Delivered {
    id: String,
    created_at: i64,
}

/// A batch's jobs bound to records, by table: each with its place in the batch.
type TableJobs<'a> = BTreeMap<&'a str, (&'a TableConfig, Vec<(usize, &'a EmbeddingJob)>)>;

/// A bound job with its place in the batch and its table.
type BoundJob<'a> = (usize, &'a EmbeddingJob, &'a TableConfig);

/// The batch's jobs bound to a configured table: by table, all of them, and each organization's
/// table once, as [`sets::pair`]s.
fn bound_jobs<'a>(
    jobs: &[&'a EmbeddingJob],
    tables: &[Option<&'a TableConfig>],
) -> (TableJobs<'a>, Vec<BoundJob<'a>>, Vec<Value>) {
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
    let pairs = pairs
        .into_iter()
        .map(|((org, _), table)| sets::pair(org, table))
        .collect();
    (by_table, bound, pairs)
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

impl D1Store {
    /// Adds `n` to the statements this store has run.
    pub(crate) fn count(&self, n: usize) {
        self.statements.set(self.statements.get() + n);
    }

    /// Runs `statements` in one transaction (none: no round trip), counting them.
    pub(crate) async fn run_batch(
        &self,
        statements: Vec<D1PreparedStatement>,
    ) -> Result<(), Fault> {
        self.count(statements.len());
        d1::run_batch(&self.db, statements).await
    }

    /// `sql` once per chunk of `items` ([`d1::over_chunks`]).
    pub(crate) fn over_chunks(
        &self,
        items: &[Value],
        sql: &str,
        rest: &[JsValue],
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        d1::over_chunks(&self.db, items, sql, rest)
    }

    /// Every job's row, created for a custom pipeline's job, moved to `processing`; it returns
    /// each job's place and `created_at`, except for a job that is final or belongs to another
    /// organization.
    fn record_deliveries(
        &self,
        jobs: &[&EmbeddingJob],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let items: Vec<Value> = jobs
            .iter()
            .map(|job| {
                json!({ "id": job.job_id.to_string(), "org": job.organization_id,
                        "table": job.table, "record": job.id, "model": job.model,
                        "content": job.content, "hash": job.content_hash })
            })
            .collect();
        // `WHERE true` keeps SQLite from reading `ON CONFLICT` as a join's `ON`.
        self.over_chunks(
            &items,
            &format!(
                "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model,
                     content, content_hash, status, attempts, created_at, updated_at)
                 SELECT value ->> 'id', value ->> 'org', value ->> 'table', value ->> 'record',
                     value ->> 'model', value ->> 'content', value ->> 'hash', 'processing', 1,
                     ?2, ?2
                 FROM json_each(?1) WHERE true
                 ON CONFLICT (id) DO UPDATE SET status = 'processing', attempts = attempts + 1,
                     updated_at = excluded.updated_at
                 WHERE embedding_jobs.{OPEN}
                   AND embedding_jobs.organization_id = excluded.organization_id
                 RETURNING id, created_at"
            ),
            &[number(now_ms)],
        )
    }

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
            .map(|(i, job)| json!([i, job.id, job.organization_id]))
            .collect();
        self.over_chunks(
            &items,
            &format!(
                "SELECT j.value ->> 0 AS \"__job\", {} FROM json_each(?1) j
                 JOIN {} r ON r.{} = j.value ->> 1 AND r.{} = j.value ->> 2",
                columns.join(", "),
                ident(&table.name),
                ident(&table.id_column),
                ident(&table.organization_column)
            ),
            &[],
        )
    }

    /// What every set holds for the records `jobs` are for, each row with its job's place. A
    /// row's vector comes along only when another live set of its model lacks it at the same
    /// content: the table is moving, and the copy saves an AI call.
    fn read_stored(&self, jobs: &[BoundJob<'_>]) -> Result<Vec<D1PreparedStatement>, Fault> {
        let items: Vec<Value> = jobs
            .iter()
            .map(|(i, job, table)| json!([i, job.organization_id, table.name, job.id]))
            .collect();
        self.over_chunks(
            &items,
            "SELECT j.value ->> 0 AS job, v.model, v.location, v.content_hash, v.job_id,
                 v.job_created_at,
                 CASE WHEN v.vector IS NOT NULL AND EXISTS (SELECT 1 FROM embedding_sets s
                     WHERE s.organization_id = v.organization_id AND s.table_name = v.table_name
                       AND s.model = v.model AND s.location != v.location
                       AND s.role IN ('active', 'building')) THEN hex(v.vector) END AS copy_hex
             FROM json_each(?1) j
             JOIN embedding_vectors v ON v.organization_id = j.value ->> 1
                 AND v.table_name = j.value ->> 2 AND v.record_id = j.value ->> 3",
            &[],
        )
    }

    /// The statements that store the embedded records of one table, in order: each record's
    /// embedding column (with the vector of the set the config names), then each set's row.
    /// Only the newest write of a record in the batch takes part, each is guarded so that it
    /// loses to a newer job that committed first, and a row goes only to a set that is still
    /// live: a set that retired while the batch ran takes nothing more.
    fn store_record_vectors(
        &self,
        table: &TableConfig,
        embedded: &[&Embedded<'_>],
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let newest = newest_per_record(embedded);
        let configured = VectorSet::configured(table);
        let mut columns = Vec::with_capacity(newest.len());
        let mut vectors = Vec::with_capacity(newest.len());
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
                if **set == configured {
                    columns.push(json!({
                        "org": job.organization_id, "record": record, "job": job_id,
                        "created": write.created_at, "vector": serde_json::to_string(vector)?,
                    }));
                }
                vectors.push(json!({
                    "n": vectors.len() + 1, "org": job.organization_id, "record": record,
                    "job": job_id, "created": write.created_at, "model": set.model,
                    "location": set.location, "hash": content_hash,
                    "vector_id": vector_id(&job.organization_id, &table.name, record),
                    "hex": shared::hex(&encode(vector)),
                    "codes": (set.location == D1_LOCATION)
                        .then(|| Quantized::of(&normalized(vector)).to_text()),
                }));
            }
        }
        let mut statements = self.over_chunks(
            &columns,
            &column_update(table),
            &[
                text(&table.name),
                text(&configured.model),
                text(&configured.location),
            ],
        )?;
        // Kept for Vectorize sets too: D1's copy is what the index is brought in line with,
        // and what a move to another backend copies without embedding again. Each row's `seq`
        // is past every other of its organization's table, in the batch's order.
        statements.extend(self.over_chunks(
            &vectors,
            &format!(
                "INSERT INTO embedding_vectors (organization_id, table_name, record_id, vector_id,
                     model, content_hash, vector, codes, metadata, job_id, job_created_at, seq,
                     updated_at, location)
                 SELECT w.org, ?2, w.record, w.vector_id, w.model, w.hash, unhex(w.hex), w.codes,
                     {metadata},
                     w.job, w.created,
                     (SELECT COALESCE(MAX(seq), 0) FROM embedding_vectors
                      WHERE organization_id = w.org AND table_name = ?2) + w.n, ?3, w.location
                 FROM (SELECT value ->> 'n' AS n, value ->> 'org' AS org,
                           value ->> 'record' AS record, value ->> 'job' AS job,
                           value ->> 'created' AS created, value ->> 'model' AS model,
                           value ->> 'location' AS location, value ->> 'hash' AS hash,
                           value ->> 'vector_id' AS vector_id, value ->> 'hex' AS hex,
                           value ->> 'codes' AS codes
                       FROM json_each(?1)) AS w
                 JOIN {t} r ON r.{id} = w.record AND r.{org} = w.org
                 JOIN embedding_sets s ON s.organization_id = w.org AND s.table_name = ?2
                     AND s.model = w.model AND s.location = w.location
                     AND s.role IN ('active', 'building')
                 WHERE true
                 ON CONFLICT (organization_id, table_name, model, location, record_id)
                 DO UPDATE SET
                     vector_id = excluded.vector_id, content_hash = excluded.content_hash,
                     vector = excluded.vector, codes = excluded.codes,
                     metadata = excluded.metadata,
                     job_id = excluded.job_id, job_created_at = excluded.job_created_at,
                     seq = excluded.seq, updated_at = excluded.updated_at
                 WHERE (excluded.job_created_at, excluded.job_id)
                     > (embedding_vectors.job_created_at, embedding_vectors.job_id)",
                // The metadata is the record's as it is now, not as the job read it.
                metadata = table.metadata_sql("r"),
                t = ident(&table.name),
                id = ident(&table.id_column),
                org = ident(&table.organization_column),
            ),
            &[text(&table.name), number(now_ms)],
        )?);
        Ok(statements)
    }

    /// One `UPDATE embedding_jobs … FROM` per chunk of `items`: `fields` names what each item
    /// carries (besides `job` and `org`), `set` is the SET clause over them (`w.<field>`), and
    /// only open jobs of the item's organization change.
    fn update_jobs(
        &self,
        items: &[Value],
        fields: &[&str],
        set: &str,
        now_ms: i64,
    ) -> Result<Vec<D1PreparedStatement>, Fault> {
        let columns: Vec<String> = ["job", "org"]
            .iter()
            .chain(fields)
            .map(|f| format!("value ->> '{f}' AS {f}"))
            .collect();
        self.over_chunks(
            items,
            &format!(
                "UPDATE embedding_jobs SET {set}
                 FROM (SELECT {} FROM json_each(?1)) AS w
                 WHERE embedding_jobs.id = w.job AND embedding_jobs.organization_id = w.org
                   AND embedding_jobs.{OPEN}",
                columns.join(", ")
            ),
            &[number(now_ms)],
        )
    }
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

impl JobStore for D1Store {
    async fn load(&self, jobs: &[&EmbeddingJob], now_ms: i64) -> Result<LoadedBatch, Fault> {
        let tables: Vec<Option<&TableConfig>> = jobs
            .iter()
            .map(|job| job.table.as_deref().and_then(|t| self.config.table(t)))
            .collect();
        let (by_table, bound, pairs) = bound_jobs(jobs, &tables);
        let deliveries = self.record_deliveries(jobs, now_ms)?;
        let (delivery_count, mut statements) = (deliveries.len(), deliveries);
        // A batch has at most 100 tables: their pairs are one small parameter.
        let ensured = !pairs.is_empty();
        if ensured {
            statements.extend(sets::ensure(
                &self.db,
                &serde_json::to_string(&pairs)?,
                now_ms,
            )?);
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
        let (mut new_sets, mut set_rows) = (Vec::new(), Vec::new());
        let mut retired = Vec::new();
        if ensured {
            retired = next()?.results::<SetRow>()?;
            new_sets = next()?.results::<SetRow>()?;
            set_rows = next()?.results::<SetRow>()?;
        }
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
            started: new_sets
                .iter()
                .filter_map(SetRow::first_step)
                .chain(retired.iter().filter_map(SetRow::cleanup_step))
                .collect(),
        })
    }

    async fn commit(&self, writes: &[Write<'_>], now_ms: i64) -> Result<(), Fault> {
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
            "UPDATE embedding_vectors SET job_id = w.job, job_created_at = w.created,
                 updated_at = ?2
             FROM (SELECT value ->> 'org' AS org, value ->> 'tbl' AS tbl,
                       value ->> 'record' AS record, value ->> 'model' AS model,
                       value ->> 'location' AS location, value ->> 'hash' AS hash,
                       value ->> 'job' AS job, value ->> 'created' AS created
                   FROM json_each(?1)) AS w
             WHERE embedding_vectors.organization_id = w.org
               AND embedding_vectors.table_name = w.tbl AND embedding_vectors.model = w.model
               AND embedding_vectors.location = w.location
               AND embedding_vectors.record_id = w.record
               AND embedding_vectors.content_hash = w.hash
               AND embedding_vectors.vector IS NOT NULL
               AND (embedding_vectors.job_created_at, embedding_vectors.job_id)
                   < (w.created, w.job)",
            &[number(now_ms)],
        )?);
        // After the vectors: a job whose vector the store did not keep lost to a newer one.
        statements.extend(self.update_jobs(
            &finishes,
            &["tbl", "record", "truncated"],
            "status = CASE WHEN EXISTS (SELECT 1 FROM embedding_vectors v
                 WHERE v.organization_id = w.org AND v.table_name = w.tbl
                   AND v.record_id = w.record AND v.job_id = w.job)
               THEN 'done' ELSE 'stale' END,
             truncated = w.truncated, updated_at = ?2, completed_at = ?2",
            now_ms,
        )?);
        statements.extend(self.update_jobs(
            &unbound,
            &["hex", "truncated"],
            "status = 'done', vector = unhex(w.hex), truncated = w.truncated, updated_at = ?2,
             completed_at = ?2",
            now_ms,
        )?);
        statements.extend(self.update_jobs(
            &statuses,
            &["status", "reason"],
            "status = w.status, last_error = COALESCE(w.reason, last_error), updated_at = ?2,
             completed_at = ?2",
            now_ms,
        )?);
        statements.extend(self.over_chunks(
            &rejected,
            &format!(
                "INSERT INTO embedding_jobs (id, organization_id, model, content, content_hash,
                     status, attempts, last_error, created_at, updated_at, completed_at)
                 SELECT value ->> 'job', value ->> 'org', value ->> 'model', value ->> 'content',
                     '', 'dead', 1, value ->> 'reason', ?2, ?2, ?2
                 FROM json_each(?1) WHERE true
                 ON CONFLICT (id) DO UPDATE SET status = 'dead', attempts = attempts + 1,
                     last_error = excluded.last_error, updated_at = excluded.updated_at,
                     completed_at = excluded.completed_at
                 WHERE embedding_jobs.{OPEN}
                   AND embedding_jobs.organization_id = excluded.organization_id"
            ),
            &[number(now_ms)],
        )?);
        statements.extend(self.update_jobs(
            &failed,
            &["error"],
            "last_error = w.error, updated_at = ?2",
            now_ms,
        )?);
        self.run_batch(statements).await
    }

    async fn mark_dead(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault> {
        let items = dead_items(jobs);
        let statements = self.update_jobs(
            &items,
            &["reason"],
            "status = 'dead',
             last_error = CASE WHEN last_error IS NULL THEN w.reason
                               ELSE w.reason || ': ' || last_error END,
             updated_at = ?2, completed_at = ?2",
            now_ms,
        )?;
        self.run_batch(statements).await
    }

    async fn mark_unindexed(&self, jobs: &[DeadJob], now_ms: i64) -> Result<(), Fault> {
        let items = dead_items(jobs);
        let statements = self.over_chunks(
            &items,
            "UPDATE embedding_jobs SET status = 'dead', last_error = w.reason,
                 updated_at = ?2, completed_at = ?2
             FROM (SELECT value ->> 'job' AS job, value ->> 'org' AS org,
                     value ->> 'reason' AS reason FROM json_each(?1)) AS w
             WHERE embedding_jobs.id = w.job AND embedding_jobs.organization_id = w.org
               AND embedding_jobs.status = 'done'",
            &[number(now_ms)],
        )?;
        self.run_batch(statements).await
    }

    fn statements(&self) -> usize {
        self.statements.get()
    }

    async fn stuck_jobs(
        &self,
        unmoved_since: i64,
        limit: u32,
    ) -> Result<Vec<(EmbeddingJob, Lane)>, Fault> {
        #[derive(Deserialize)]
        struct StuckRow {
            id: String,
            organization_id: String,
            table_name: Option<String>,
            record_id: Option<String>,
            model: String,
            content: String,
            backfill_id: Option<String>,
        }
        self.count(1);
        let rows = d1::statement(
            &self.db,
            &format!(
                "SELECT id, organization_id, table_name, record_id, model, content, backfill_id
                     FROM embedding_jobs WHERE {OPEN} AND updated_at <= ?1
                     ORDER BY updated_at LIMIT ?2"
            ),
            &[number(unmoved_since), number(i64::from(limit))],
        )?
        .all()
        .await?
        .results::<StuckRow>()?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                let job_id = uuid::Uuid::parse_str(&row.id).ok()?;
                let lane = Lane::of_job(row.backfill_id.as_deref());
                let job = EmbeddingJob::new(
                    job_id,
                    row.organization_id,
                    row.model,
                    row.content,
                    row.table_name.zip(row.record_id),
                );
                Some((job, lane))
            })
            .collect())
    }

    async fn touch(&self, jobs: &[EmbeddingJob], now_ms: i64) -> Result<(), Fault> {
        let ids: Vec<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
        self.count(1);
        d1::statement(
            &self.db,
            &format!(
                "UPDATE embedding_jobs SET updated_at = ?1
                 WHERE {OPEN} AND id IN (SELECT value FROM json_each(?2))"
            ),
            &[number(now_ms), text(&serde_json::to_string(&ids)?)],
        )?
        .run()
        .await?;
        Ok(())
    }
}
