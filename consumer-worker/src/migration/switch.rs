//! The switch: once the building set covers the active one (`shared::sets::switch_next`
//! decides when), one D1 transaction makes it active and the old set retiring, whose clean-up
//! the chain goes on with.

use shared::sets::{switch_next, Migration, MigrationStep, SwitchNext, VectorSet};
use worker_kit::sets::SetRow;
use worker_kit::Fault;

use super::Steps;
use crate::ports::{MigrationStore, Requeue, VectorIndexes};

impl<S: MigrationStore, R: Requeue, V: VectorIndexes> Steps<'_, S, R, V> {
    pub(super) async fn switch(
        &self,
        step: &MigrationStep,
        seq: u32,
        attempt: u32,
        covered_at: Option<i64>,
        now_ms: i64,
    ) -> Result<(), Fault> {
        let m = &step.migration;
        let Some(table) = self.config.table(&m.table) else {
            return Ok(());
        };
        let coverage = self.store.coverage(table, m).await?;
        let set = step.set();
        let next = switch_next(
            &set,
            VectorSet::configured(table) == set,
            attempt,
            covered_at,
            (coverage.covered, coverage.of),
            now_ms,
        );
        if coverage.covered < coverage.of {
            tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, covered = coverage.covered, of = coverage.of, attempt, "model change: the new set is not complete yet");
        }
        if let SwitchNext::Send {
            step: next,
            delay_seconds,
        } = next
        {
            return self
                .requeue
                .steps(&[(step.then(seq, next), delay_seconds)])
                .await;
        }
        let Switched::Done { retired } = self.store.switch(table, m, now_ms).await? else {
            let SwitchNext::Send {
                step: next,
                delay_seconds,
            } = SwitchNext::raced(attempt)
            else {
                return Ok(());
            };
            return self
                .requeue
                .steps(&[(step.then(seq, next), delay_seconds)])
                .await;
        };
        tracing::info!(organization_id = %m.organization_id, table = %m.table, migration_id = %m.migration_id, model = %m.model, location = %m.location, records = coverage.of, "model change switched: searches now read the new set; the old one is being removed");
        // The chain goes on as the retired set's: its clean-up, issued for that set's seq.
        let Some(cleanup) = retired.as_ref().and_then(SetRow::cleanup_step) else {
            return Ok(());
        };
        let cleanup = MigrationStep::new(Migration {
            migration_id: m.migration_id,
            ..cleanup.migration
        });
        self.requeue.steps(&[(cleanup, 0)]).await
    }
}

/// How much of the active set the building set covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub covered: u64,
    pub of: u64,
}

/// What a switch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Switched {
    /// The building set did not cover the active one then: nothing changed.
    NotYet,
    /// The building set is active; the set that was active is retiring (none if the table had
    /// no active set, which a building set is never started beside).
    Done { retired: Option<SetRow> },
}
