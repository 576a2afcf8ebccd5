//! Keeps Vectorize indexes in line with D1, the truth, for the records a writer just changed.
//!
//! D1's `embedding_vectors` holds every embedded record's current vector in each vector set
//! (`shared::sets`), or a tombstone once the record is deleted, where the set is kept
//! (`location`), and a `seq` that grows with every change. Several writers change it
//! concurrently (consumer batches, the gateway's deletes and metadata edits), and each then has
//! to carry the change into Vectorize. Writing one's own vector straight to Vectorize is wrong:
//! two writers reach Vectorize in either order, so an older vector could land last, or a
//! deleted record's vector could come back after its delete.
//!
//! So a writer never writes what it *meant*; after its D1 commit it calls [`sync`], which writes
//! what D1 *holds*, then reads D1 again and repeats for any record whose `seq` moved meanwhile.
//! Vectorize applies mutations in the order it accepts them, so whichever writer's mutation is
//! accepted last, it was followed by a D1 read that found nothing newer than what it wrote: any
//! later D1 change has a writer of its own whose `sync` comes after it. The index ends as D1 is.
//!
//! Every Vectorize location a record has a row of a live set at is synced: a live row is
//! upserted, a tombstone deleted. A retiring set's rows are removed from their index, then from
//! D1, by the clean-up of a model change; nothing else removes a row.

use std::collections::{BTreeMap, HashMap};

use shared::sets::binding_of;
use shared::vector::decode_hex;
use worker::{D1Database, Env};

use crate::vector_rows::{self, IndexedRow};
use crate::vectorize::{IndexedVector, Vectorize};
use crate::Fault;

/// Most vectors one upsert from a Worker may carry (Vectorize's limit).
pub const MAX_UPSERT: usize = 1000;
/// Most ids one `deleteByIds` may name (Vectorize refuses more, code 40007).
pub const MAX_DELETE: usize = 100;
/// Upserts [`upsert_isolating`] may make beyond one per chunk to find the vectors the index
/// refuses: room for a few refused vectors among a thousand (each about two calls a halving,
/// and one more to be sure).
pub const MAX_ISOLATING_CALLS: usize = 64;
/// Rounds of "write what D1 holds, read again" before giving up on a record that keeps changing.
/// Only a writer racing others can get this far; the last writer's `sync` settles in two.
const MAX_ROUNDS: usize = 4;

/// A record whose vector may have changed, in one organization and table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordKey {
    pub organization_id: String,
    pub table: String,
    pub record_id: String,
}

/// What one [`sync`] wrote to the indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Synced {
    pub upserted: usize,
    pub deleted: usize,
    /// D1 statements run: each round reads the rows, then (if it wrote any) their versions.
    pub statements: usize,
    /// Records whose vector the index refused on its own while it took others (see
    /// [`upsert_isolating`]), with the index's error: their writer fails them, and only them.
    pub refused: Vec<(RecordKey, String)>,
}

/// Where a record's vector belongs, given D1's row.
#[derive(Debug, Clone, PartialEq)]
enum Change {
    Upsert(IndexedVector),
    Delete(String),
}

/// Brings every Vectorize index that D1 keeps a set of `records` in, in line with D1.
pub async fn sync(env: &Env, db: &D1Database, records: &[RecordKey]) -> Result<Synced, Fault> {
    let mut synced = Synced::default();
    let mut pending: Vec<RecordKey> = records.to_vec();
    pending.sort();
    pending.dedup();
    let mut rounds = 0;
    while !pending.is_empty() {
        if rounds == MAX_ROUNDS {
            return Err(Fault(format!(
                "{} records kept changing while they were written to Vectorize; their next \
                 writer brings them in line",
                pending.len()
            )));
        }
        rounds += 1;
        let rows = vector_rows::indexed_rows(db, &pending).await?;
        synced.statements += 1;
        if rows.is_empty() {
            break;
        }
        let written: HashMap<(RecordKey, String), i64> = rows
            .iter()
            .map(|row| ((row.key(), row.location.clone()), row.seq))
            .collect();
        let mut by_binding: BTreeMap<String, (Vec<IndexedVector>, Vec<String>)> = BTreeMap::new();
        let mut keys_of: HashMap<String, RecordKey> = HashMap::new();
        for row in rows {
            let Some(binding) = binding_of(&row.location).map(str::to_owned) else {
                continue;
            };
            keys_of.insert(row.vector_id.clone(), row.key());
            let (upserts, deletes) = by_binding.entry(binding).or_default();
            match change(row)? {
                Change::Upsert(vector) => upserts.push(vector),
                Change::Delete(id) => deletes.push(id),
            }
        }
        for (binding, (upserts, deletes)) in by_binding {
            let index = Vectorize::from_env(env, &binding)?;
            let refused = upsert_isolating(&upserts, |chunk| index.upsert(chunk)).await?;
            synced.upserted += upserts.len() - refused.len();
            for (vector_id, error) in refused {
                if let Some(key) = keys_of.get(&vector_id) {
                    synced.refused.push((key.clone(), error));
                }
            }
            for chunk in deletes.chunks(MAX_DELETE) {
                index.delete(chunk).await?;
            }
            synced.deleted += deletes.len();
        }
        // Whatever moved since the read is written again.
        let now = vector_rows::indexed_seqs(db, &pending).await?;
        synced.statements += 1;
        let mut moved: Vec<RecordKey> = now
            .into_iter()
            .filter(|(key, seq)| written.get(key) != Some(seq))
            .map(|((record, _), _)| record)
            .collect();
        moved.sort();
        moved.dedup();
        pending = moved;
    }
    Ok(synced)
}

/// Upserts `vectors` in chunks Vectorize takes, so that one vector it refuses fails only its
/// own record: a refused chunk is split in halves and each tried again, down to single
/// vectors; a single vector refused twice in a row is answered refused with the index's error
/// (about `2r log n` calls for `r` refused of `n`). The index's own faults (unreachable,
/// overloaded) must not pass for a record's: when it took nothing at all, or when isolating
/// takes more than [`MAX_ISOLATING_CALLS`] calls, every vector not yet written fails together,
/// `Err`, to be retried.
pub async fn upsert_isolating<'v, F, Fut>(
    vectors: &'v [IndexedVector],
    mut upsert: F,
) -> Result<Vec<(String, String)>, Fault>
where
    F: FnMut(&'v [IndexedVector]) -> Fut,
    Fut: std::future::Future<Output = Result<(), Fault>>,
{
    // Each chunk to try, and whether it is a single vector refused once already.
    let mut pending: Vec<(&'v [IndexedVector], bool)> = vectors
        .chunks(MAX_UPSERT)
        .rev()
        .map(|chunk| (chunk, false))
        .collect();
    let (mut accepted, mut refused, mut calls) = (0, Vec::new(), 0);
    while let Some((chunk, refused_once)) = pending.pop() {
        calls += 1;
        if calls > MAX_ISOLATING_CALLS + vectors.len().div_ceil(MAX_UPSERT) {
            return Err(Fault(format!(
                "the index kept refusing while {} vectors were being isolated; all are tried again",
                pending.len() + 1
            )));
        }
        match upsert(chunk).await {
            Ok(()) => accepted += chunk.len(),
            Err(fault) if chunk.len() == 1 && refused_once => {
                refused.push((chunk[0].id.clone(), fault.0));
            }
            Err(_) if chunk.len() == 1 => pending.push((chunk, true)),
            Err(_) => {
                let (first, second) = chunk.split_at(chunk.len() / 2);
                pending.extend([(second, false), (first, false)]);
            }
        }
    }
    match refused.first() {
        Some((_, error)) if accepted == 0 => Err(Fault(error.clone())),
        _ => Ok(refused),
    }
}

/// A live row goes into its index; a tombstone must not be there.
fn change(row: IndexedRow) -> Result<Change, Fault> {
    let live = row.vector_hex.as_deref().is_some_and(|h| !h.is_empty());
    if !live {
        return Ok(Change::Delete(row.vector_id));
    }
    let values = decode_hex(row.vector_hex.as_deref().unwrap_or_default())
        .map_err(|e| Fault(format!("record `{}`: {e}", row.record_id)))?;
    let metadata: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.metadata).unwrap_or_default();
    Ok(Change::Upsert(indexed_vector(
        &row.organization_id,
        &row.table_name,
        &row.record_id,
        row.vector_id,
        values,
        metadata,
    )))
}

/// A record's vector as Vectorize keeps it: namespace = organization; metadata = the configured
/// fields plus the table, the record id and the organization (what searches filter on).
pub fn indexed_vector(
    organization_id: &str,
    table: &str,
    record_id: &str,
    vector_id: String,
    values: Vec<f32>,
    mut metadata: serde_json::Map<String, serde_json::Value>,
) -> IndexedVector {
    metadata.insert("table".into(), table.into());
    metadata.insert("recordId".into(), record_id.into());
    metadata.insert("organizationId".into(), organization_id.into());
    IndexedVector {
        id: vector_id,
        values,
        namespace: organization_id.to_owned(),
        metadata,
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    fn row(location: &str, vector_hex: Option<&str>) -> IndexedRow {
        IndexedRow {
            organization_id: "org_a".into(),
            table_name: "evidence".into(),
            record_id: "ev_1".into(),
            vector_id: "org_a:evidence:ev_1".into(),
            seq: 3,
            location: location.into(),
            vector_hex: vector_hex.map(str::to_owned),
            metadata: r#"{"story_id":"s1"}"#.into(),
        }
    }

    const HERE: &str = "vectorize:VECTORIZE_768";
    // 1.0 and -0.5 as little-endian f32s.
    const HEX: &str = "0000803F000000BF";

    #[wasm_bindgen_test]
    fn a_live_row_kept_here_is_upserted_with_its_metadata_and_namespace() {
        let Change::Upsert(vector) = change(row(HERE, Some(HEX))).unwrap() else {
            panic!("a live row is upserted");
        };
        assert_eq!(vector.id, "org_a:evidence:ev_1");
        assert_eq!(vector.values, vec![1.0, -0.5]);
        assert_eq!(vector.namespace, "org_a");
        assert_eq!(vector.metadata["story_id"], "s1");
        assert_eq!(vector.metadata["table"], "evidence");
        assert_eq!(vector.metadata["recordId"], "ev_1");
        assert_eq!(vector.metadata["organizationId"], "org_a");
    }

    #[wasm_bindgen_test]
    fn a_tombstone_is_deleted() {
        let gone = Change::Delete("org_a:evidence:ev_1".into());
        assert_eq!(change(row(HERE, None)).unwrap(), gone);
        assert_eq!(change(row(HERE, Some(""))).unwrap(), gone);
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod isolating_tests {
    use std::cell::RefCell;
    use std::future::{ready, Future};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use super::{upsert_isolating, IndexedVector, MAX_ISOLATING_CALLS, MAX_UPSERT};
    use crate::Fault;

    /// Runs a future whose every await is ready at once, as the fakes' are.
    fn now<T>(future: impl Future<Output = T>) -> T {
        match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(value) => value,
            Poll::Pending => panic!("the fake index never waits"),
        }
    }

    fn vectors(n: usize) -> Vec<IndexedVector> {
        (0..n)
            .map(|i| IndexedVector {
                id: format!("v{i}"),
                values: vec![1.0],
                namespace: format!("org_{}", i % 3),
                metadata: serde_json::Map::new(),
            })
            .collect()
    }

    /// An index that refuses any upsert carrying one of `poisoned`, as Vectorize refuses a
    /// whole call for one vector's metadata; it keeps what it took, and counts its calls.
    fn index<'a>(
        poisoned: &'a [&'a str],
        taken: &'a RefCell<Vec<String>>,
        calls: &'a RefCell<usize>,
    ) -> impl FnMut(&[IndexedVector]) -> std::future::Ready<Result<(), Fault>> + 'a {
        move |chunk| {
            *calls.borrow_mut() += 1;
            assert!(chunk.len() <= MAX_UPSERT);
            if let Some(v) = chunk.iter().find(|v| poisoned.contains(&v.id.as_str())) {
                return ready(Err(Fault(format!("metadata too large: {}", v.id))));
            }
            taken
                .borrow_mut()
                .extend(chunk.iter().map(|v| v.id.clone()));
            ready(Ok(()))
        }
    }

    #[test]
    fn one_refused_vector_fails_alone_and_every_other_is_taken() {
        let all = vectors(2_500);
        let (taken, calls) = (RefCell::new(Vec::new()), RefCell::new(0));
        let poisoned = ["v7", "v1999"];
        let refused = now(upsert_isolating(&all, index(&poisoned, &taken, &calls))).unwrap();
        let refused_ids: Vec<&str> = refused.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(refused_ids, poisoned);
        assert!(
            refused[0].1.contains("metadata too large: v7"),
            "{refused:?}"
        );
        let mut taken = taken.into_inner();
        taken.sort();
        let mut expected: Vec<String> = all
            .iter()
            .map(|v| v.id.clone())
            .filter(|id| !poisoned.contains(&id.as_str()))
            .collect();
        expected.sort();
        assert_eq!(taken, expected);
        // Three chunks, two halvings down to one vector for each refusal in a chunk of a
        // thousand, and each refused vector once more: far from one call per vector.
        assert!(calls.into_inner() <= 3 + 2 * 2 * 10 + 2, "too many calls");
    }

    #[test]
    fn an_index_that_refuses_too_much_to_isolate_fails_every_vector_together() {
        let all = vectors(1_000);
        let (taken, calls) = (RefCell::new(Vec::new()), RefCell::new(0));
        let ids: Vec<String> = (0..1_000).step_by(10).map(|i| format!("v{i}")).collect();
        let poisoned: Vec<&str> = ids.iter().map(String::as_str).collect();
        let fault = now(upsert_isolating(&all, index(&poisoned, &taken, &calls))).unwrap_err();
        assert!(fault.0.contains("all are tried again"), "{fault:?}");
        assert!(calls.into_inner() <= MAX_ISOLATING_CALLS + 1);
    }

    #[test]
    fn an_index_that_takes_nothing_fails_every_vector_together() {
        let all = vectors(4);
        let (taken, calls) = (RefCell::new(Vec::new()), RefCell::new(0));
        let poisoned = ["v0", "v1", "v2", "v3"];
        let fault = now(upsert_isolating(&all, index(&poisoned, &taken, &calls))).unwrap_err();
        assert!(fault.0.contains("metadata too large"), "{fault:?}");
        assert!(taken.into_inner().is_empty());
        // Nothing refused: one call.
        let (taken, calls) = (RefCell::new(Vec::new()), RefCell::new(0));
        assert_eq!(
            now(upsert_isolating(&all, index(&[], &taken, &calls))).unwrap(),
            vec![]
        );
        assert_eq!(calls.into_inner(), 1);
    }
}
