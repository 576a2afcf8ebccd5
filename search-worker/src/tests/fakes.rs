//! The fakes the tests run search-worker's methods with: a D1 store that answers each
//! statement as D1 would (and can be told to go down, or to change a row while a search
//! reads), an embedder, a Vectorize index and a queue.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use serde_json::{json, Value};
use shared::ai::{EmbeddingResult, FailureKind};
use shared::message::EmbeddingJob;
use shared::models::ModelSpec;
use shared::quantized::Quantized;
use shared::search::QueryMatch;
use shared::sets::VectorSet;
use shared::topk::normalized;
use worker_kit::embedder::{EmbedError, Embedder};
use worker_kit::vectorize::QueryOptions;
use worker_kit::Fault;

use crate::ports::{
    ActiveSet, CatchUp, ExactRow, JobQueue, KeywordQuery, KeywordRow, Metadata, Pending, Room,
    Store, VectorIndexes, VectorRow, FILL_CHUNK,
};

/// A row of the fake's vector store: its organization, table, set (`None`: whichever set is
/// asked for) and the row.
pub(super) type FakeRow = (String, String, Option<VectorSet>, VectorRow);

/// A record's new vector: its organization, table, id and vector.
pub(super) type FakeWrite = (String, String, String, Vec<f32>);

/// The D1 vector store: rows by organization and table, each with its seq. A row holds its codes
/// and its exact vector both, as D1's does; the catch-up reads the exact vector only of a row
/// without codes.
#[derive(Default)]
pub(super) struct FakeStore {
    pub(super) down: bool,
    pub(super) rows: RefCell<Vec<FakeRow>>,
    /// Each table's active set, when a test sets one (else the table has none yet).
    pub(super) active: RefCell<HashMap<(String, String), ActiveSet>>,
    pub(super) reads: Cell<usize>,
    /// The exact vectors asked for, one list a read.
    pub(super) exact_reads: RefCell<Vec<Vec<String>>>,
    /// Chunks of exact vectors read beside catch-ups, not counting empty ones.
    pub(super) filled: Cell<usize>,
    /// Written (organization, table, id, vector) just before the next exact read answers: a
    /// write that lands while a search runs.
    pub(super) write_before_exact: RefCell<Option<FakeWrite>>,
    /// Rows put from now on have no codes, as rows written before codes were.
    pub(super) without_codes: Cell<bool>,
    /// Made active just before the next exact read answers, the rows of the set active until
    /// then deleted: a switch and its clean-up, while a search runs.
    pub(super) switch_before_exact: RefCell<Option<(String, String, ActiveSet)>>,
    /// The rows each catch-up handed over, by organization, and the bytes they take as D1
    /// counts them: one entry a catch-up.
    pub(super) handed: RefCell<Vec<(String, usize, usize)>>,
    /// What the keyword index finds, whatever the query: (organization, table, record, BM25
    /// score), best first. Each is answered with its record's current row, if live.
    pub(super) keyword_hits: RefCell<Vec<(String, String, String, f32)>>,
    /// The FTS5 queries the keyword index was asked, with the limit and whether the vectors
    /// were asked for too.
    pub(super) keyword_queries: RefCell<Vec<(String, usize, bool)>>,
}

impl FakeStore {
    pub(super) fn put(
        &self,
        org: &str,
        table: &str,
        id: &str,
        vector: Option<&[f32]>,
        metadata: &Value,
    ) {
        self.put_in(None, org, table, id, vector, metadata);
    }

    pub(super) fn put_in(
        &self,
        set: Option<VectorSet>,
        org: &str,
        table: &str,
        id: &str,
        vector: Option<&[f32]>,
        metadata: &Value,
    ) {
        let mut rows = self.rows.borrow_mut();
        let seq = i64::try_from(rows.len()).unwrap() + 1;
        rows.push((
            org.into(),
            table.into(),
            set,
            VectorRow {
                seq,
                record_id: id.into(),
                codes: vector
                    .filter(|_| !self.without_codes.get())
                    .map(|v| Quantized::of(&normalized(v))),
                vector_hex: vector.map(|v| shared::hex(&shared::vector::encode(v)).to_uppercase()),
                metadata: metadata.as_object().cloned().unwrap_or_default(),
            },
        ));
    }
}

/// What a catch-up's row takes as D1 counts it (`bindings::row_bytes!`): its codes and
/// overhead, its id and its metadata's text; a tombstone nothing.
fn d1_bytes(row: &VectorRow, room: Room) -> usize {
    if row.codes.is_none() && row.metadata.is_empty() {
        return 0;
    }
    room.row_cost + row.record_id.len() + Value::Object(row.metadata.clone()).to_string().len()
}

impl FakeStore {
    /// The rows of one set written after `after`, as the catch-up's statement reads them: each
    /// record's current row only, as D1 holds one row a record.
    fn vectors_since(
        &self,
        org: &str,
        table: &str,
        set: &VectorSet,
        after: i64,
    ) -> Result<Vec<VectorRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        self.reads.set(self.reads.get() + 1);
        let rows = self.rows.borrow();
        let of_set: Vec<&VectorRow> = rows
            .iter()
            .filter(|(o, t, s, _)| o == org && t == table && s.as_ref().is_none_or(|s| s == set))
            .map(|(_, _, _, r)| r)
            .collect();
        let current: HashMap<&str, i64> = of_set
            .iter()
            .map(|r| (r.record_id.as_str(), r.seq))
            .collect();
        Ok(of_set
            .into_iter()
            .filter(|r| r.seq > after && current[r.record_id.as_str()] == r.seq)
            .map(|r| VectorRow {
                vector_hex: r.vector_hex.clone().filter(|_| r.codes.is_none()),
                ..r.clone()
            })
            .collect())
    }

    /// A chunk of exact vectors after `after`, as the catch-up's fourth statement reads it.
    fn exact_since(
        &self,
        org: &str,
        table: &str,
        set: &VectorSet,
        after: i64,
        limit: usize,
    ) -> Result<Vec<ExactRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        let chunk: Vec<ExactRow> = self
            .rows
            .borrow()
            .iter()
            .filter(|(o, t, s, r)| {
                o == org && t == table && s.as_ref().is_none_or(|s| s == set) && r.seq > after
            })
            .take(limit)
            .map(|(_, _, _, r)| ExactRow {
                seq: r.seq,
                record_id: r.record_id.clone(),
                vector_hex: r.vector_hex.clone(),
            })
            .collect();
        if !chunk.is_empty() {
            self.filled.set(self.filled.get() + 1);
        }
        Ok(chunk)
    }
}

impl Store for FakeStore {
    async fn ping(&self) -> Result<(), Fault> {
        if self.down {
            Err(Fault("D1 down".into()))
        } else {
            Ok(())
        }
    }
    async fn active_set(&self, org: &str, table: &str) -> Result<Option<ActiveSet>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        Ok(self
            .active
            .borrow()
            .get(&(org.to_owned(), table.to_owned()))
            .cloned())
    }

    async fn catch_up(
        &self,
        org: &str,
        table: &str,
        guess: &VectorSet,
        after: i64,
        room: Room,
        fill: Option<i64>,
    ) -> Result<CatchUp, Fault> {
        // Four reads where D1 makes one round trip: each as its statement would answer.
        let active = self.active_set(org, table).await?;
        let since = self.vectors_since(org, table, guess, after)?;
        let sizes: Vec<usize> = since.iter().map(|row| d1_bytes(row, room)).collect();
        let pending = Pending {
            rows: since.len(),
            bytes: sizes.iter().sum(),
        };
        let limit = if room.paged {
            room.bytes
        } else {
            room.bytes.min(room.page)
        };
        let mut rows = Vec::new();
        if pending.bytes <= limit {
            let mut before = 0;
            for (row, bytes) in since.into_iter().zip(sizes) {
                if room.paged && before >= room.page {
                    break;
                }
                before += bytes;
                rows.push(row);
            }
        }
        let handed: usize = rows.iter().map(|row| d1_bytes(row, room)).sum();
        self.handed
            .borrow_mut()
            .push((org.to_owned(), rows.len(), handed));
        let exact = match fill {
            Some(from) => self.exact_since(org, table, guess, from, FILL_CHUNK)?,
            None => Vec::new(),
        };
        Ok(CatchUp {
            active,
            pending,
            rows,
            exact,
        })
    }

    async fn exact_vectors(
        &self,
        org: &str,
        table: &str,
        set: &VectorSet,
        record_ids: &[&str],
    ) -> Result<Vec<ExactRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        if let Some((o, t, id, vector)) = self.write_before_exact.borrow_mut().take() {
            self.put(&o, &t, &id, Some(&vector), &json!({}));
        }
        if let Some((o, t, next)) = self.switch_before_exact.borrow_mut().take() {
            let key = (o.clone(), t.clone());
            if let Some(before) = self.active.borrow_mut().insert(key, next) {
                self.rows.borrow_mut().retain(|(ro, rt, rs, _)| {
                    !(*ro == o && *rt == t && rs.as_ref() == Some(&before.set))
                });
            }
        }
        self.exact_reads
            .borrow_mut()
            .push(record_ids.iter().map(|id| (*id).to_owned()).collect());
        // The last row of each record is its current one.
        let mut current: HashMap<&str, ExactRow> = HashMap::new();
        let rows = self.rows.borrow();
        for (_, _, _, row) in rows.iter().filter(|(o, t, s, r)| {
            o == org
                && t == table
                && s.as_ref().is_none_or(|s| s == set)
                && record_ids.contains(&r.record_id.as_str())
        }) {
            current.insert(
                &row.record_id,
                ExactRow {
                    seq: row.seq,
                    record_id: row.record_id.clone(),
                    vector_hex: row.vector_hex.clone(),
                },
            );
        }
        Ok(current.into_values().collect())
    }

    async fn keyword_matches(&self, asked: &KeywordQuery<'_>) -> Result<Vec<KeywordRow>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        let KeywordQuery {
            organization_id: org,
            table,
            set,
            query,
            limit,
            with_vectors,
        } = *asked;
        self.keyword_queries
            .borrow_mut()
            .push((query.to_owned(), limit, with_vectors));
        let rows = self.rows.borrow();
        let current = |id: &str| {
            rows.iter()
                .rev()
                .find(|(o, t, s, r)| {
                    o == org
                        && *t == table.name
                        && s.as_ref().is_none_or(|s| s == set)
                        && r.record_id == id
                })
                .map(|(_, _, _, row)| row)
        };
        Ok(self
            .keyword_hits
            .borrow()
            .iter()
            .filter(|(o, t, _, _)| o == org && *t == table.name)
            .filter_map(|(_, _, id, score)| {
                let row = current(id)?;
                let vector_hex = row.vector_hex.clone()?;
                Some(KeywordRow {
                    record_id: id.clone(),
                    keyword_score: *score,
                    vector_hex: with_vectors.then_some(vector_hex),
                    metadata: row.metadata.clone(),
                })
            })
            .take(limit)
            .collect())
    }

    async fn live_records(
        &self,
        org: &str,
        table: &str,
        _location: &str,
        vector_ids: &[String],
    ) -> Result<HashMap<String, (String, Metadata)>, Fault> {
        if self.down {
            return Err(Fault("D1 down".into()));
        }
        // The last row of each record is its current state.
        let mut current: HashMap<String, Option<(String, Metadata)>> = HashMap::new();
        for (_, _, _, row) in self
            .rows
            .borrow()
            .iter()
            .filter(|(o, t, _, _)| o == org && t == table)
        {
            let vector_id = shared::vector::vector_id(org, table, &row.record_id);
            if !vector_ids.contains(&vector_id) {
                continue;
            }
            let live = row
                .vector_hex
                .as_ref()
                .map(|_| (row.record_id.clone(), row.metadata.clone()));
            current.insert(vector_id, live);
        }
        Ok(current
            .into_iter()
            .filter_map(|(id, live)| Some((id, live?)))
            .collect())
    }
}

/// Answers known texts with their vector, padded to the model's dimension; any other text with
/// a vector whose first value is its length.
#[derive(Default)]
pub(super) struct FakeEmbedder {
    pub(super) fails: Option<FailureKind>,
    pub(super) dimensions: Option<usize>,
    pub(super) known: HashMap<String, Vec<f32>>,
    pub(super) calls: Cell<usize>,
}

impl Embedder for FakeEmbedder {
    async fn embed_call(
        &self,
        model: &ModelSpec,
        texts: &[String],
    ) -> Result<EmbeddingResult, EmbedError> {
        self.calls.set(self.calls.get() + 1);
        if let Some(kind) = self.fails {
            return Err(EmbedError {
                kind,
                message: "fake failure".into(),
            });
        }
        let dimensions = self.dimensions.unwrap_or(model.dimensions);
        #[allow(clippy::cast_precision_loss)]
        let data = texts
            .iter()
            .map(|t| {
                let mut v = vec![0.0; dimensions];
                match self.known.get(t) {
                    Some(known) => v[..known.len()].copy_from_slice(known),
                    None => v[0] = t.len() as f32,
                }
                v
            })
            .collect();
        Ok(EmbeddingResult {
            shape: vec![texts.len(), dimensions],
            data,
            pooling: None,
        })
    }
}

#[derive(Default)]
pub(super) struct FakeIndexes {
    pub(super) queries: RefCell<Vec<(String, QueryOptions)>>,
}

impl VectorIndexes for FakeIndexes {
    async fn query(
        &self,
        binding: &str,
        _vector: &[f32],
        options: &QueryOptions,
    ) -> Result<Vec<QueryMatch>, Fault> {
        self.queries
            .borrow_mut()
            .push((binding.into(), options.clone()));
        Ok(vec![QueryMatch {
            id: "org_a:notes:n1".into(),
            score: 0.95,
            metadata:
                json!({"table": "notes", "recordId": "n1", "organizationId": "org_a", "topic": "t"})
                    .as_object()
                    .cloned(),
        }])
    }
}

/// The queue `enqueue` sends on: records each job, or refuses when down.
#[derive(Default)]
pub(super) struct FakeQueue {
    pub(super) down: bool,
    pub(super) sent: RefCell<Vec<EmbeddingJob>>,
}

impl JobQueue for FakeQueue {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        if self.down {
            return Err(Fault("queue down".into()));
        }
        self.sent.borrow_mut().push(job.clone());
        Ok(())
    }
}
