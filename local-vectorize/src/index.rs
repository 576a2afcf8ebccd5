//! One index: its configuration, the state its applied mutations built, and the mutations it
//! accepted that are not visible yet.
//!
//! A mutation becomes visible `visibility_delay` after it was accepted (Vectorize: "typically a
//! few seconds"), in acceptance order. Visible mutations are applied lazily by whoever reads
//! next, and by a background ticker so that logs and `/stats` stay current. A std `RwLock`, not
//! tokio's: no lock is held across an await, and queries scan on blocking threads.

use std::collections::VecDeque;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::clock::{iso8601, now_ms};
use crate::config::IndexRecord;
use crate::error::{Error, Kind, Result};
use crate::limits::MAX_METADATA_INDEXES;
use crate::metadata::{IndexType, MetadataIndex};
use crate::mutation::{Change, Mutation};
use crate::persist::{Applied, Journal};
use crate::store::Store;

#[derive(Debug)]
pub struct Index {
    pub record: IndexRecord,
    delay: Duration,
    state: RwLock<State>,
}

/// What an index holds: read it through [`Index::read`].
#[derive(Debug)]
pub struct State {
    pub store: Store,
    pending: VecDeque<Pending>,
    next_seq: u64,
    last_accepted: Option<String>,
    applied: Applied,
    journal: Option<Journal>,
}

#[derive(Debug)]
struct Pending {
    mutation: Mutation,
    visible_at: Instant,
}

impl Index {
    pub fn new(
        record: IndexRecord,
        store: Store,
        applied: Applied,
        journal: Option<Journal>,
        delay: Duration,
    ) -> Self {
        let state = State {
            store,
            pending: VecDeque::new(),
            next_seq: applied.seq + 1,
            last_accepted: applied.mutation.clone(),
            applied,
            journal,
        };
        Index {
            record,
            delay,
            state: RwLock::new(state),
        }
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// Accepts a change: checks what depends on the index, logs it to the data directory, and
    /// queues it. Returns its mutation id.
    pub fn accept(&self, change: Change) -> Result<String> {
        let mut state = self.write();
        state.check(&change)?;
        let mutation = Mutation {
            seq: state.next_seq,
            id: uuid::Uuid::new_v4().to_string(),
            accepted_ms: now_ms(),
            change,
        };
        if let Some(journal) = &mut state.journal {
            journal
                .append(&mutation)
                .map_err(|e| Error::internal(format!("writing the mutation log: {e}")))?;
        }
        tracing::info!(
            index = self.name(),
            kind = mutation.change.kind(),
            count = mutation.change.count(),
            mutation = %mutation.id,
            "mutation accepted"
        );
        let id = mutation.id.clone();
        state.next_seq += 1;
        state.last_accepted = Some(id.clone());
        state.pending.push_back(Pending {
            mutation,
            visible_at: Instant::now() + self.delay,
        });
        self.apply_due(&mut state, Instant::now());
        Ok(id)
    }

    /// The state with every mutation visible by now applied.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.catch_up();
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies every mutation visible by now.
    pub fn catch_up(&self) {
        let now = Instant::now();
        let due = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pending
            .front()
            .is_some_and(|p| p.visible_at <= now);
        if due {
            self.apply_due(&mut self.write(), now);
        }
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        // A stand-in that panicked once keeps answering with what it holds, rather than failing
        // every later request of the test run on a poisoned lock.
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn apply_due(&self, state: &mut State, now: Instant) {
        while state.pending.front().is_some_and(|p| p.visible_at <= now) {
            let Pending { mutation, .. } = state.pending.pop_front().expect("a due mutation");
            mutation.change.apply(&mut state.store);
            tracing::info!(
                index = self.name(),
                kind = mutation.change.kind(),
                count = mutation.change.count(),
                mutation = %mutation.id,
                "mutation applied"
            );
            // When it became visible, whenever a reader came to apply it.
            let delay_ms = u64::try_from(self.delay.as_millis()).unwrap_or(u64::MAX);
            state.applied = Applied {
                seq: mutation.seq,
                at_ms: Some(mutation.accepted_ms.saturating_add(delay_ms)),
                mutation: Some(mutation.id),
            };
        }
    }
}

impl State {
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    pub fn last_accepted(&self) -> Option<&str> {
        self.last_accepted.as_deref()
    }

    pub fn processed_up_to_mutation(&self) -> Option<&str> {
        self.applied.mutation.as_deref()
    }

    pub fn processed_up_to_datetime(&self) -> Option<String> {
        self.applied.at_ms.map(iso8601)
    }

    /// The metadata indexes as they will be once every accepted mutation is applied.
    fn metadata_indexes_to_be(&self) -> Vec<MetadataIndex> {
        let mut indexes = self.store.metadata_indexes().to_vec();
        for pending in &self.pending {
            match &pending.mutation.change {
                Change::CreateMetadataIndex(index) => {
                    indexes.retain(|i| i.property_name != index.property_name);
                    indexes.push(index.clone());
                }
                Change::DeleteMetadataIndex(property) => {
                    indexes.retain(|i| &i.property_name != property);
                }
                _ => {}
            }
        }
        indexes
    }

    /// The rules a change must pass against what the index holds or will hold: at most 10
    /// metadata indexes ("limits"), one type per property, and no deleting what is not there.
    fn check(&self, change: &Change) -> Result<()> {
        let refuse = |message: String| Err(Error::new(Kind::InvalidMetadataIndex, message));
        match change {
            Change::CreateMetadataIndex(index) => {
                let to_be = self.metadata_indexes_to_be();
                match to_be
                    .iter()
                    .find(|i| i.property_name == index.property_name)
                {
                    Some(existing) if existing.index_type != index.index_type => refuse(format!(
                        "a metadata index for `{}` already exists, of type {}",
                        index.property_name,
                        type_name(existing.index_type)
                    )),
                    None if to_be.len() >= MAX_METADATA_INDEXES => refuse(format!(
                        "too many metadata indexes; max is {MAX_METADATA_INDEXES} per index"
                    )),
                    // The same again is accepted and changes nothing.
                    Some(_) | None => Ok(()),
                }
            }
            Change::DeleteMetadataIndex(property) => {
                if self
                    .metadata_indexes_to_be()
                    .iter()
                    .any(|i| &i.property_name == property)
                {
                    Ok(())
                } else {
                    refuse(format!("no metadata index for property `{property}`"))
                }
            }
            _ => Ok(()),
        }
    }
}

fn type_name(index_type: IndexType) -> &'static str {
    match index_type {
        IndexType::String => "string",
        IndexType::Number => "number",
        IndexType::Boolean => "boolean",
    }
}
