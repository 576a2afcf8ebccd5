//! Vector sets: a table's vectors of one model, kept in one place, and the model change that
//! moves a table from one set to another without a moment in which its search is incomplete.
//!
//! Each organization's table has one **active** set, which its searches read whole. When the
//! config names another model or index for the table (a deploy), a **building** set is started:
//! from then on every write of a record goes to both sets, and a tracked backfill (a chain of
//! [`MigrationStep`] messages on `embeddings-queue`) enqueues a job for every record the
//! building set lacks. The switch makes the building set active, in one D1 transaction, once
//! it **covers** the active one: every live record of the active set has a live vector in the
//! building set, written by a job at least as new. The old set is then **retiring**: nothing
//! writes to it, and its rows (and Vectorize vectors) are removed in chunks.
//!
//! The invariants, and what keeps each:
//! - a search reads exactly one set, the active one (its model embeds the query);
//! - no write is lost by the switch: a job that started before the building set existed wrote
//!   only the active set, but the backfill's job for its record was made after the building
//!   set was, so it is newer and carries the record's text at least as recent;
//! - a write never lands in a retiring set: the store's insert joins the set's role.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::TableConfig;
use crate::message::MESSAGE_VERSION;

/// Where a set's vectors are kept, for D1 (`shared::config::VectorIndex::location`).
pub const D1_LOCATION: &str = "d1";

/// One model's vectors of a table, kept in one place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VectorSet {
    pub model: String,
    /// `d1`, or `vectorize:` and the binding of the index.
    pub location: String,
}

impl VectorSet {
    /// The set the config names for `table`: where its vectors go once any change is done.
    pub fn configured(table: &TableConfig) -> Self {
        VectorSet {
            model: table.embeddings.model.clone(),
            location: table.embeddings.vector_index.location(),
        }
    }

    /// The Vectorize binding the set is kept behind, if it is not in D1.
    pub fn binding(&self) -> Option<&str> {
        binding_of(&self.location)
    }
}

/// The Vectorize binding of a location, if it is one.
pub fn binding_of(location: &str) -> Option<&str> {
    location.strip_prefix("vectorize:")
}

/// A set's part in its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SetRole {
    Active,
    Building,
    Retiring,
}

impl SetRole {
    pub fn as_str(self) -> &'static str {
        match self {
            SetRole::Active => "active",
            SetRole::Building => "building",
            SetRole::Retiring => "retiring",
        }
    }

    pub fn parse(role: &str) -> Option<Self> {
        match role {
            "active" => Some(SetRole::Active),
            "building" => Some(SetRole::Building),
            "retiring" => Some(SetRole::Retiring),
            _ => None,
        }
    }
}

/// Why a configured set cannot be built beside the active one, if it cannot: one Vectorize
/// index holds vectors of one dimension and one id per record, so two models cannot share it.
pub fn blocked(active: &VectorSet, configured: &VectorSet) -> Option<String> {
    (active.model != configured.model
        && active.location == configured.location
        && active.binding().is_some())
    .then(|| {
        format!(
            "`{}` and `{}` cannot share the Vectorize index behind `{}`: bind the new model's \
             index under another name in embeddings.toml",
            active.model,
            configured.model,
            active.binding().unwrap_or_default()
        )
    })
}

/// A step of a model change, on `embeddings-queue`:
///
/// ```json
/// { "version": 1, "migration": { "organizationId": "org_1", "table": "notes",
///   "model": "@cf/baai/bge-base-en-v1.5", "location": "d1", "migrationId": "…uuid…",
///   "step": { "kind": "backfill", "after": "note_0420" } } }
/// ```
///
/// Nothing in it is flattened: the queue binding takes a message as serde-wasm-bindgen makes
/// it, and a flattened struct would become a JS `Map`, which the consumer cannot read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MigrationStep {
    pub version: u32,
    pub migration: Migration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Migration {
    pub organization_id: String,
    pub table: String,
    /// The building set.
    pub model: String,
    pub location: String,
    pub migration_id: Uuid,
    pub step: Step,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Step {
    /// Enqueue a job for each record after `after` (in id order) that the building set lacks,
    /// a page at a time; then the next page, or the switch.
    Backfill {
        #[serde(default)]
        after: Option<String>,
    },
    /// Switch once the building set covers the active one; until then, look again later.
    /// `covered_at` is when coverage was first seen (a Vectorize set waits for its index to
    /// show the last writes).
    Switch {
        #[serde(default)]
        attempt: u32,
        #[serde(default, rename = "coveredAt", skip_serializing_if = "Option::is_none")]
        covered_at: Option<i64>,
    },
    /// Remove a chunk of the retiring sets' vectors; then the next chunk.
    Cleanup,
}

impl MigrationStep {
    pub fn new(migration: Migration) -> Self {
        MigrationStep {
            version: MESSAGE_VERSION,
            migration,
        }
    }

    /// Whether a queue message is a migration step rather than a job.
    pub fn is_step(body: &serde_json::Value) -> bool {
        body.get("migration").is_some()
    }

    pub fn decode(body: serde_json::Value) -> Result<Self, String> {
        let step: MigrationStep = serde_json::from_value(body).map_err(|e| e.to_string())?;
        if step.version != MESSAGE_VERSION {
            return Err(format!(
                "migration step version {} is not supported (this consumer reads {MESSAGE_VERSION})",
                step.version
            ));
        }
        Ok(step)
    }

    /// The same migration at another step.
    #[must_use]
    pub fn then(&self, step: Step) -> Self {
        MigrationStep::new(Migration {
            step,
            ..self.migration.clone()
        })
    }

    /// The building set this step works on.
    pub fn set(&self) -> VectorSet {
        self.migration.set()
    }
}

impl Migration {
    /// The building set.
    pub fn set(&self) -> VectorSet {
        VectorSet {
            model: self.model.clone(),
            location: self.location.clone(),
        }
    }
}

/// Records one backfill step looks at: a page of jobs sent in a few `sendBatch` calls.
pub const BACKFILL_PAGE: u32 = 500;
/// Vector rows one clean-up step removes.
pub const CLEANUP_CHUNK: u32 = 500;
/// How long a Vectorize set waits, once it covers the active set, before it is switched to:
/// Vectorize shows a write seconds after it accepts it, and the last backfilled records must
/// be found by the first searches of the new set.
pub const VECTORIZE_SETTLE_MS: i64 = 10_000;

/// Seconds until a switch that found the building set incomplete looks again: soon at first
/// (the last jobs are usually moments away), then less often, at most once a minute.
pub fn switch_delay_seconds(attempt: u32) -> u32 {
    (1u32 << (attempt / 2).min(6)).min(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(step: Step) -> MigrationStep {
        MigrationStep::new(Migration {
            organization_id: "org_a".into(),
            table: "notes".into(),
            model: "@cf/baai/bge-base-en-v1.5".into(),
            location: "d1".into(),
            migration_id: Uuid::nil(),
            step,
        })
    }

    #[test]
    fn a_step_round_trips_as_the_documented_json() {
        let page = step(Step::Backfill {
            after: Some("note_0420".into()),
        });
        let json = serde_json::to_value(&page).unwrap();
        assert_eq!(json["migration"]["step"]["kind"], "backfill");
        assert_eq!(json["migration"]["step"]["after"], "note_0420");
        assert_eq!(json["migration"]["organizationId"], "org_a");
        assert!(MigrationStep::is_step(&json));
        assert_eq!(MigrationStep::decode(json).unwrap(), page);
        let switch = step(Step::Switch {
            attempt: 3,
            covered_at: Some(7),
        });
        let back = MigrationStep::decode(serde_json::to_value(&switch).unwrap()).unwrap();
        assert_eq!(back, switch);
        let cleanup = serde_json::to_value(step(Step::Cleanup)).unwrap();
        assert_eq!(cleanup["migration"]["step"]["kind"], "cleanup");
    }

    #[test]
    fn a_job_is_not_a_step_and_an_unknown_version_is_refused() {
        assert!(!MigrationStep::is_step(
            &serde_json::json!({"version": 1, "jobId": "x"})
        ));
        let mut json = serde_json::to_value(step(Step::Cleanup)).unwrap();
        json["version"] = 2.into();
        assert!(MigrationStep::decode(json)
            .unwrap_err()
            .contains("version 2"));
    }

    #[test]
    fn two_models_cannot_share_one_vectorize_index() {
        let set = |model: &str, location: &str| VectorSet {
            model: model.into(),
            location: location.into(),
        };
        let base = "@cf/baai/bge-base-en-v1.5";
        let small = "@cf/baai/bge-small-en-v1.5";
        assert!(blocked(&set(base, "vectorize:V"), &set(small, "vectorize:V")).is_some());
        // Another index, D1, or the same model elsewhere: all fine.
        assert!(blocked(&set(base, "vectorize:V"), &set(small, "vectorize:W")).is_none());
        assert!(blocked(&set(base, "d1"), &set(small, "d1")).is_none());
        assert!(blocked(&set(base, "vectorize:V"), &set(base, "d1")).is_none());
    }

    #[test]
    fn the_switch_looks_again_soon_then_at_most_once_a_minute() {
        let delays: Vec<u32> = (0..20).map(switch_delay_seconds).collect();
        assert_eq!(&delays[..6], &[1, 1, 2, 2, 4, 4]);
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delays[19], 60);
    }
}
