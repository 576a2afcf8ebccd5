//! The active-set memo: the set each organization's table was last found searched in, which a
//! search guesses (and embeds its text for) while D1 says what the set is now, and the key
//! that keeps each set's snapshot apart.

use shared::config::TableConfig;

use super::Caches;
use crate::ports::ActiveSet;

impl Caches {
    /// The set `table` was last searched in, or the configured one.
    pub(crate) fn active_guess(&self, organization_id: &str, table: &TableConfig) -> ActiveSet {
        self.active
            .borrow()
            .get(&(organization_id.to_owned(), table.name.clone()))
            .cloned()
            .unwrap_or_else(|| ActiveSet::configured(table))
    }

    /// Remembers the set `table` is searched in; when it changed (a model change switched), the
    /// old set's snapshot goes: no search reads it again.
    pub(crate) fn remember_active(&self, organization_id: &str, table: &str, active: &ActiveSet) {
        let before = self.active.borrow_mut().insert(
            (organization_id.to_owned(), table.to_owned()),
            active.clone(),
        );
        if let Some(before) = before.filter(|b| b != active) {
            self.vectors
                .forget(organization_id, &snapshot_key(table, &before));
        }
    }
}

/// The key of a set's snapshot in the [`VectorCache`]: its table, model and generation, so
/// that a search after a model change never reads the other set's copy.
pub(crate) fn snapshot_key(table: &str, active: &ActiveSet) -> String {
    format!("{table}@{}#{}", active.set.model, active.generation)
}
