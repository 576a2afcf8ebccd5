//! [`VectorCache`]: every organization's snapshots this isolate has searched, within one byte
//! budget across the tenants. Past it the least recently searched table goes (it is read again
//! from D1 when next searched); the table being searched is never evicted for its own sake, and
//! one past its own bound goes at once, evicting no other. An organization is shown only what
//! its own tables take ([`VectorCacheUsage`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use super::exact::EXACT_RESIDENT_BYTES;
use super::least_recent;
use super::snapshot::{row_cost, Snapshot, DEFAULT_TABLE_BOUND};
use crate::answers::{Nearest, Question};
use crate::ports::{Room, PAGE_BYTES};

/// The vector cache's budget when `SEARCH_VECTOR_CACHE_MB` does not say.
pub(crate) const DEFAULT_VECTOR_BUDGET: usize = 64 << 20;

/// Every organization's tables this isolate has searched, within a byte budget.
#[derive(Debug)]
pub(crate) struct VectorCache {
    /// Each snapshot with the tick of its last search.
    tables: RefCell<HashMap<(String, String), (Snapshot, u64)>>,
    tick: Cell<u64>,
    budget: Cell<usize>,
    evictions: Cell<u64>,
    answered: Cell<u64>,
    resident_bytes: Cell<usize>,
    table_bound: Cell<usize>,
    page_bytes: Cell<usize>,
}

impl Default for VectorCache {
    fn default() -> Self {
        VectorCache {
            tables: RefCell::default(),
            tick: Cell::new(0),
            budget: Cell::new(DEFAULT_VECTOR_BUDGET),
            evictions: Cell::new(0),
            answered: Cell::new(0),
            resident_bytes: Cell::new(EXACT_RESIDENT_BYTES),
            table_bound: Cell::new(DEFAULT_TABLE_BOUND),
            page_bytes: Cell::new(PAGE_BYTES),
        }
    }
}

/// What the vector cache holds across the isolate, every organization's tables together: for
/// the tests, never for a caller (it would show one tenant the others' searches).
#[cfg(test)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VectorCacheStats {
    pub tables: usize,
    pub vectors: usize,
    pub bytes: usize,
    pub budget: usize,
    pub evictions: u64,
    /// Searches answered from a snapshot's kept answers (`crate::answers`).
    pub answered: u64,
}

/// What one organization's tables take in the vector cache, against the isolate's budget: its
/// `/health`. Nothing in it moves with another organization's searches but for evictions.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VectorCacheUsage {
    pub tables: usize,
    pub vectors: usize,
    pub bytes: usize,
    pub budget_bytes: usize,
}

impl VectorCache {
    pub(crate) fn set_budget(&self, bytes: usize) {
        self.budget.set(bytes);
    }

    /// The most one table may take ([`DEFAULT_TABLE_BOUND`] unless set).
    pub(crate) fn set_table_bound(&self, bytes: usize) {
        self.table_bound.set(bytes);
    }

    pub(crate) fn table_bound(&self) -> usize {
        self.table_bound.get()
    }

    /// The rows one read brings in at most, once a table's rows take more
    /// ([`crate::ports::PAGE_BYTES`] unless set).
    #[cfg(test)]
    pub(crate) fn set_page_bytes(&self, bytes: usize) {
        self.page_bytes.set(bytes);
    }

    /// What a read of the snapshot's new rows may bring in: the room left below the table's
    /// bound (all of it for a snapshot not made yet), counted at `dims` dimensions, in pages
    /// when `paged`.
    pub(crate) fn room(
        &self,
        organization_id: &str,
        table: &str,
        dims: usize,
        paged: bool,
    ) -> Room {
        let bound = self.table_bound.get();
        let held = self
            .tables
            .borrow()
            .get(&(organization_id.to_owned(), table.to_owned()))
            .map_or(0, |(snapshot, _)| snapshot.table_bytes());
        Room {
            bytes: bound.saturating_sub(held),
            page: self.page_bytes.get(),
            row_cost: row_cost(dims),
            paged,
        }
    }

    /// How large a table's exact vectors may be for its snapshot to hold them all, for
    /// snapshots made from now on.
    #[cfg(test)]
    pub(crate) fn set_resident_bytes(&self, bytes: usize) {
        self.resident_bytes.set(bytes);
    }

    /// The snapshot of `(organization, table)`, creating an empty one of `dims`; `f` runs with it
    /// borrowed. Past the budget, the least recently searched other snapshots go afterwards;
    /// a snapshot `f` took past its table's bound goes instead, and no other with it.
    pub(crate) fn with<R>(
        &self,
        organization_id: &str,
        table: &str,
        dims: usize,
        f: impl FnOnce(&mut Snapshot) -> R,
    ) -> R {
        let key = (organization_id.to_owned(), table.to_owned());
        let tick = self.tick.get() + 1;
        self.tick.set(tick);
        let mut tables = self.tables.borrow_mut();
        let (snapshot, last_used) = tables.entry(key.clone()).or_insert_with(|| {
            (
                Snapshot {
                    dims,
                    resident_bytes: self.resident_bytes.get(),
                    ..Snapshot::default()
                },
                tick,
            )
        });
        *last_used = tick;
        snapshot.bound = self.table_bound.get();
        let result = f(snapshot);
        if snapshot.past_bound() {
            // Refused (`Snapshot::apply` stopped at the row that passed the bound): the tenant
            // whose table it is pays for it, not the others whose tables the budget would evict.
            let (bytes, bound) = (snapshot.table_bytes(), snapshot.bound);
            tables.remove(&key);
            tracing::warn!(
                organization_id,
                table,
                bytes,
                bound,
                "table past its bound: its snapshot dropped, no other evicted"
            );
            return result;
        }
        let mut total: usize = tables.values().map(|(s, _)| s.bytes()).sum();
        while total > self.budget.get() {
            let Some(oldest) = least_recent(&tables, &key) else {
                break;
            };
            if let Some((evicted, _)) = tables.remove(&oldest) {
                total -= evicted.bytes();
                self.evictions.set(self.evictions.get() + 1);
                tracing::info!(
                    organization_id = %oldest.0,
                    table = %oldest.1,
                    bytes = evicted.bytes(),
                    "vector cache over budget: least recently searched table evicted"
                );
            }
        }
        result
    }

    /// Keeps `answer` to `question`, computed at `at`, in the snapshot of `(organization,
    /// table)` if it is still there and has not moved since ([`Answers::put`]).
    pub(crate) fn keep_answer(
        &self,
        organization_id: &str,
        table: &str,
        question: Question,
        at: i64,
        answer: Vec<Nearest>,
    ) {
        let key = (organization_id.to_owned(), table.to_owned());
        if let Some((snapshot, _)) = self.tables.borrow_mut().get_mut(&key) {
            let now = snapshot.max_seq;
            snapshot.answers.put(question, at, now, answer);
        }
    }

    /// Counts a search answered from a snapshot's kept answers.
    pub(crate) fn note_answered(&self) {
        self.answered.set(self.answered.get() + 1);
    }

    /// Drops one snapshot.
    pub(crate) fn forget(&self, organization_id: &str, table: &str) {
        self.tables
            .borrow_mut()
            .remove(&(organization_id.to_owned(), table.to_owned()));
    }

    /// Where the snapshot's next chunk of exact vectors starts ([`Snapshot::fill_from`]).
    pub(crate) fn fill_from(&self, organization_id: &str, table: &str) -> Option<i64> {
        self.tables
            .borrow()
            .get(&(organization_id.to_owned(), table.to_owned()))
            .and_then(|(snapshot, _)| snapshot.fill_from())
    }

    /// The newest `seq` the snapshot holds; 0 for a snapshot not made yet, which this does not
    /// make (a search may find its guess of the active set wrong, and read another).
    pub(crate) fn max_seq(&self, organization_id: &str, table: &str) -> i64 {
        self.tables
            .borrow()
            .get(&(organization_id.to_owned(), table.to_owned()))
            .map_or(0, |(snapshot, _)| snapshot.max_seq)
    }

    /// What `organization_id`'s tables take, and the budget: nothing of another's.
    pub(crate) fn usage(&self, organization_id: &str) -> VectorCacheUsage {
        let tables = self.tables.borrow();
        let own = || {
            tables
                .iter()
                .filter(|((org, _), _)| org == organization_id)
                .map(|(_, (snapshot, _))| snapshot)
        };
        VectorCacheUsage {
            tables: own().count(),
            vectors: own().map(Snapshot::len).sum(),
            bytes: own().map(Snapshot::bytes).sum(),
            budget_bytes: self.budget.get(),
        }
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> VectorCacheStats {
        let tables = self.tables.borrow();
        VectorCacheStats {
            tables: tables.len(),
            vectors: tables.values().map(|(s, _)| s.len()).sum(),
            bytes: tables.values().map(|(s, _)| s.bytes()).sum(),
            budget: self.budget.get(),
            evictions: self.evictions.get(),
            answered: self.answered.get(),
        }
    }
}
