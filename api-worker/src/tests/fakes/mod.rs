//! In-memory fakes of the gateway's ports: one [`FakeStore`] holds D1's rows, and each of its
//! ports is implemented in its own module ([`auth`], [`records`], [`jobs`], [`sets`]); the
//! bindings' fakes are in [`bindings`].

mod auth;
mod bindings;
mod jobs;
mod records;
mod sets;

use std::cell::RefCell;

use shared::record::Record;
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use crate::ports::{ApiKeyRow, Database, JobRow, Ports, SessionRow};

pub(super) use bindings::{FakeIndexes, FakeLimits, FakeQueue, FakeSearch};

#[derive(Default)]
pub(in crate::tests) struct FakeStore {
    pub(in crate::tests) sessions: Vec<(String, SessionRow)>,
    pub(in crate::tests) keys: RefCell<Vec<(String, ApiKeyRow)>>,
    /// (table, record with its organization column)
    pub(in crate::tests) records: RefCell<Vec<(String, Record)>>,
    /// (organization, table, record id, content hash) of stored vectors
    pub(in crate::tests) vectors: Vec<(String, String, String, String)>,
    pub(in crate::tests) jobs: RefCell<Vec<JobRow>>,
    /// (organization, table, record id) of each metadata refresh
    pub(in crate::tests) refreshed: RefCell<Vec<(String, String, String)>>,
    /// What a separate read of a record answers when another write has since overtaken it.
    pub(in crate::tests) stale_read: RefCell<Option<Record>>,
    /// The vector sets of each organization's table.
    pub(in crate::tests) sets: RefCell<Vec<SetRow>>,
    pub(in crate::tests) down: bool,
}

impl FakeStore {
    /// What a D1 call answers while D1 is down.
    fn reachable(&self) -> Result<(), Fault> {
        if self.down {
            Err(Fault("D1 down".into()))
        } else {
            Ok(())
        }
    }
}

/// Whether `(table, record)` as [`FakeStore::records`] keeps it is a record of `table` in the
/// organization.
fn in_table(stored: &(String, Record), table: &str, organization_id: &str) -> bool {
    stored.0 == table && stored.1["organization_id"] == organization_id
}

/// Whether `(table, record)` is the record `id` of `table` in the organization.
fn is_record(stored: &(String, Record), table: &str, organization_id: &str, id: &str) -> bool {
    in_table(stored, table, organization_id) && stored.1["id"] == id
}

impl Database for FakeStore {
    /// An in-memory store prepares no D1 statements.
    fn statements(&self) -> usize {
        0
    }
    async fn ping(&self) -> Result<(), Fault> {
        self.reachable()
    }
}

pub(in crate::tests) struct Fakes;

impl Ports for Fakes {
    type Store = FakeStore;
    type Queue = FakeQueue;
    type Limits = FakeLimits;
    type Search = FakeSearch;
    type Indexes = FakeIndexes;
}
