//! The account's indexes: created, listed, found and deleted at once (only what happens inside an
//! index is asynchronous), and read back from the data directory at start-up.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::clock::{iso8601, now_ms};
use crate::config::{IndexConfig, IndexName, IndexRecord};
use crate::error::{Error, Kind, Result};
use crate::index::Index;
use crate::persist::{self, Applied};
use crate::store::Store;

/// How the stand-in runs.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Where indexes are kept across restarts; `None` keeps them in memory only.
    pub data_dir: Option<PathBuf>,
    /// How long after it is accepted a mutation becomes visible.
    pub visibility_delay: Duration,
}

#[derive(Debug)]
pub struct Catalog {
    settings: Settings,
    indexes: RwLock<BTreeMap<String, Arc<Index>>>,
}

impl Catalog {
    /// Opens the data directory, if any: every index in it is read back with every mutation it
    /// had accepted applied, visible or not ("pending mutations are applied at once after a
    /// restart").
    pub fn open(settings: Settings) -> io::Result<Self> {
        let mut indexes = BTreeMap::new();
        if let Some(root) = &settings.data_dir {
            for dir in persist::index_dirs(root)? {
                let delay_ms =
                    u64::try_from(settings.visibility_delay.as_millis()).unwrap_or(u64::MAX);
                let loaded = persist::load(&dir, delay_ms, now_ms())
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
                tracing::info!(
                    index = loaded.record.name,
                    vectors = loaded.store.len(),
                    "index loaded"
                );
                let index = Index::new(
                    loaded.record,
                    loaded.store,
                    loaded.applied,
                    Some(loaded.journal),
                    settings.visibility_delay,
                );
                indexes.insert(index.name().to_owned(), Arc::new(index));
            }
        }
        Ok(Catalog {
            settings,
            indexes: RwLock::new(indexes),
        })
    }

    pub fn create(
        &self,
        name: &IndexName,
        description: String,
        config: IndexConfig,
    ) -> Result<IndexRecord> {
        let mut indexes = self.indexes.write().unwrap_or_else(PoisonError::into_inner);
        if indexes.contains_key(name.as_str()) {
            return Err(Error::new(
                Kind::DuplicateIndex,
                format!(
                    "vectorize.index.duplicate_name - Index name \"{}\"",
                    name.as_str()
                ),
            ));
        }
        let now = iso8601(now_ms());
        let record = IndexRecord {
            name: name.as_str().to_owned(),
            description,
            config,
            created_on: now.clone(),
            modified_on: now,
        };
        let journal = match &self.settings.data_dir {
            Some(root) => Some(
                persist::create(&persist::index_dir(root, name.as_str()), &record)
                    .map_err(|e| Error::internal(format!("creating the index directory: {e}")))?,
            ),
            None => None,
        };
        let index = Index::new(
            record.clone(),
            Store::new(config.dimensions),
            Applied::default(),
            journal,
            self.settings.visibility_delay,
        );
        indexes.insert(record.name.clone(), Arc::new(index));
        tracing::info!(index = record.name, dimensions = config.dimensions, metric = ?config.metric, "index created");
        Ok(record)
    }

    pub fn get(&self, name: &str) -> Result<Arc<Index>> {
        self.indexes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::index_not_found(name))
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        let mut indexes = self.indexes.write().unwrap_or_else(PoisonError::into_inner);
        if indexes.remove(name).is_none() {
            return Err(Error::index_not_found(name));
        }
        if let Some(root) = &self.settings.data_dir {
            persist::remove(&persist::index_dir(root, name))
                .map_err(|e| Error::internal(format!("removing the index directory: {e}")))?;
        }
        tracing::info!(index = name, "index deleted");
        Ok(())
    }

    /// Every index, in name order.
    pub fn all(&self) -> Vec<Arc<Index>> {
        self.indexes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Applies every mutation visible by now, in every index.
    pub fn catch_up(&self) {
        for index in self.all() {
            index.catch_up();
        }
    }
}
