//! Vector sets: a table's vectors of one model, kept in one place, and the model change that
//! moves a table from one set to another without a moment in which its search is incomplete.
//!
//! Each organization's table has one **active** set, which its searches read whole. When the config
//! names another model or index for the table (a deploy), a **building** set is started: from then
//! on every write of a record goes to both sets, and a tracked backfill (a chain of
//! [`MigrationStep`] messages on the bulk lane's queue, `crate::lane`) enqueues a job for every
//! record the building set lacks. The switch makes the building set active, in one D1 transaction,
//! once it **covers** the active one: every live record of the active set has a live vector in the
//! building set, written by a job at least as new. The old set is then **retiring**: nothing writes
//! to it, and its rows (and Vectorize vectors) are removed in chunks.
//!
//! The invariants, and what keeps each:
//! - a search reads exactly one set, the active one (its model embeds the query);
//! - no write is lost by the switch: a job that started before the building set existed wrote
//!   only the active set, but the backfill's job for its record was made after the building
//!   set was, so it is newer and carries the record's text at least as recent;
//! - a write never lands in a retiring set: the store's insert joins the set's role;
//! - a record's embedding column holds the vector of its live row in the building set, if it
//!   has one, else the active set's: a job offers the column each set's vector, and the store
//!   applies the one the sets' roles name as the batch commits, never by the writing worker's
//!   config (a rolling deploy runs two configs at once). So a building set that covers the
//!   active one holds every record's column already, and the switch writes no column; a change
//!   given up leaves its clean-up to put the active set's vectors back first.
//!
//! ## One chain per set
//!
//! A set's steps (its backfill pages and switch while it is building, its clean-up while it is
//! retiring) form one chain, however often a change is started or resumed and however often a
//! step is delivered. The set's row keeps a fencing counter, `step_seq`; every step carries the
//! `seq` it was issued for ([`Migration::seq`]). A step runs only once it has **claimed** its
//! set: one D1 statement moves `step_seq` from `seq` to `seq + 1` where the set still has the
//! role the step works on ([`Step::works_on`]); a step whose claim finds another value, or
//! another role, is dropped ([`Claim`]). Only a step that ran sends the next one, and that
//! carries the value it claimed.
//!
//! The invariant: **each value of a set's `step_seq` is claimed at most once**, by the SQL
//! guard; so of all the messages ever issued for one value, at most one runs, and only it can
//! issue a message for the next value. A set therefore has one line of steps that run,
//! whatever else is on the queue. What starts or resumes a chain (the migration command, the
//! sweep, a batch that starts a change, the end of a clean-up, a step that reached the
//! dead-letter queue) issues its first step for the row's *current* `step_seq`: if a chain is
//! live, its next message carries that value too (or an older one, about to be dropped), and
//! exactly one of the two runs. Two steps may overlap briefly (a starter's step can claim the
//! value a running step has just claimed, before that one ends): each step is idempotent (at
//! worst one page is enqueued twice), and the overlapped one's successor is dropped.
//!
//! A step that fails after its claim sends itself again for the new value, after a delay
//! ([`FAILED_STEP_DELAY_SECONDS`]), rather than leaving the message to the runtime, whose
//! redelivery would carry a value already claimed. A backfill page enqueues no job for a
//! record whose job of the same change is still open ([`needs_job`]), so a chain restarted
//! from its first page (by a starter that won, or by the switch) does not enqueue again what
//! is on its way.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::TableConfig;
use crate::message::{content_hash, MESSAGE_VERSION};

mod switch;
mod table;
pub use switch::{
    switch_delay_seconds, switch_next, SwitchNext, RESTART_AFTER, VECTORIZE_SETTLE_MS,
};
pub use table::{plan, Plan, SeenSet, Starter, CONFIG_LEASE_MS, VOUCH_EVERY_MS};

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

    /// Whether its place holds one model's vectors only: a Vectorize index has one dimension and
    /// one id per record; D1 keeps each model's rows apart.
    pub fn holds_one_model(&self) -> bool {
        self.binding().is_some()
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
        && active.holds_one_model())
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

/// A step of a model change, on the bulk queue (`crate::lane`):
///
/// ```json
/// { "version": 1, "migration": { "organizationId": "org_1", "table": "notes",
///   "model": "@cf/baai/bge-base-en-v1.5", "location": "d1", "migrationId": "…uuid…",
///   "seq": 3, "step": { "kind": "backfill", "after": "note_0420" } } }
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
    /// The set's `step_seq` this step was issued for: it runs only if it claims the set at this
    /// value (the module's "One chain per set"). A step sent before the counter existed has
    /// none, and reads as 0, which is where every set's counter started.
    #[serde(default)]
    pub seq: u32,
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
    /// Remove a chunk of the retiring set's vectors; then the next chunk.
    Cleanup,
}

impl Step {
    /// The role the step's set must have for the step to run: a backfill page or a switch
    /// works on the set being built, a clean-up on a set being removed.
    pub fn works_on(&self) -> SetRole {
        match self {
            Step::Backfill { .. } | Step::Switch { .. } => SetRole::Building,
            Step::Cleanup => SetRole::Retiring,
        }
    }

    /// The step that starts or resumes the chain of a set in `role`: a building set's from its
    /// first backfill page (pages enqueue only what the set lacks), a retiring set's clean-up;
    /// none for the active set, which has no chain.
    pub fn resuming(role: SetRole) -> Option<Step> {
        match role {
            SetRole::Building => Some(Step::Backfill { after: None }),
            SetRole::Retiring => Some(Step::Cleanup),
            SetRole::Active => None,
        }
    }

    /// What follows a backfill page that listed `listed` records, the last of them `last`:
    /// the next page after it if the page was full, else the switch.
    pub fn after_page(listed: usize, last: Option<&str>) -> Step {
        match last {
            Some(last) if listed >= BACKFILL_PAGE as usize => Step::Backfill {
                after: Some(last.to_owned()),
            },
            _ => Step::Switch {
                attempt: 0,
                covered_at: None,
            },
        }
    }
}

/// What a step's claim of its set came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The step claimed its set at its `seq`: it runs, and the step it sends carries `seq`.
    Run { seq: u32 },
    /// Another step claimed the set at that value first (a duplicate delivery, or a starter
    /// that merged with a live chain), or the set no longer has the step's role: dropped.
    Drop,
}

impl Claim {
    /// The claim of a step issued for `asked`, from the set's `step_seq` the claim's update
    /// returned (`None` when its guard matched no row). Only the value the guard moves to
    /// counts as won: the decision is here, the statement only guards it against a racing
    /// claim.
    pub fn of(asked: u32, claimed: Option<u32>) -> Claim {
        match (asked.checked_add(1), claimed) {
            (Some(next), Some(seq)) if seq == next => Claim::Run { seq },
            _ => Claim::Drop,
        }
    }
}

/// Whether a backfill page enqueues a job for a record it listed: not for one without text
/// (`text` is none when it has nothing to embed, `TableConfig::has_text`: the coverage the
/// switch waits for leaves such a record out by the same rule), nor one the building set covers
/// with the record's current content (`stored_hash`, the set's vector's content hash), nor one
/// a job of the same change is still open for (`queued`): that job will write the set, and if
/// it ends without doing so, the switch lists the record again once it is no longer open.
pub fn needs_job(
    model: &str,
    text: Option<&str>,
    covered: bool,
    stored_hash: Option<&str>,
    queued: bool,
) -> bool {
    text.is_some_and(|text| {
        !queued && (!covered || stored_hash != Some(content_hash(model, text).as_str()))
    })
}

/// Orders what the sweep resumes fairly across organizations: each organization's oldest
/// (by `key`'s time) comes before any organization's second, and so on, the oldest first
/// within each turn. D1 orders the same way (`ROW_NUMBER() OVER (PARTITION BY organization_id
/// ORDER BY updated_at)`, then that turn and the time), so that a limit leaves no organization
/// waiting behind another's many.
pub fn fair_order<T, F>(mut items: Vec<T>, key: F) -> Vec<T>
where
    F: Fn(&T) -> (&str, i64),
{
    items.sort_by(|a, b| {
        let ((org_a, at_a), (org_b, at_b)) = (key(a), key(b));
        org_a.cmp(org_b).then(at_a.cmp(&at_b))
    });
    let mut turns: Vec<(usize, T)> = Vec::with_capacity(items.len());
    let mut previous: Option<String> = None;
    let mut turn = 0;
    for item in items {
        let org = key(&item).0.to_owned();
        turn = if previous.as_deref() == Some(org.as_str()) {
            turn + 1
        } else {
            0
        };
        previous = Some(org);
        turns.push((turn, item));
    }
    turns.sort_by(|(turn_a, a), (turn_b, b)| turn_a.cmp(turn_b).then(key(a).1.cmp(&key(b).1)));
    turns.into_iter().map(|(_, item)| item).collect()
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

    /// The same migration at another step, issued for `seq`: the value this step claimed.
    #[must_use]
    pub fn then(&self, seq: u32, step: Step) -> Self {
        MigrationStep::new(Migration {
            seq,
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

/// How long a chain may go without a step before `POST .../migration` takes it for stopped and
/// resumes it: past the longest wait between two steps of a moving chain (a switch looks again
/// at most once a minute). A command sent while the chain moves only answers where it stands: a
/// step of its own would restart the chain from its first page, and win the claim against the
/// live chain's delayed next step (a Vectorize switch waiting for its index), so that a command
/// sent every few seconds would keep a change from ever switching.
pub const COMMAND_RESUMES_AFTER_MS: i64 = 2 * 60 * 1000;

/// Whether `POST .../migration` sends a step for a set: the set it just made, or a set whose
/// chain last took a step at `updated_at` and has stopped since.
pub fn command_resumes(just_made: bool, updated_at: i64, now_ms: i64) -> bool {
    just_made || now_ms - updated_at >= COMMAND_RESUMES_AFTER_MS
}

/// Records one backfill step looks at: a page of jobs sent in a few `sendBatch` calls.
pub const BACKFILL_PAGE: u32 = 500;
/// Seconds until a step that failed after its claim runs again (it sends itself again).
pub const FAILED_STEP_DELAY_SECONDS: u32 = 10;
/// Seconds until a step a batch had no room for runs (it is sent again, not retried: a retry
/// spends the queue's `max_retries`, and its last goes to the dead-letter queue).
pub const DEFERRED_STEP_DELAY_SECONDS: u32 = 1;
/// Seconds until the chain of a step that reached the dead-letter queue is resumed: long
/// enough that whatever made it fail (D1, the queue) may have passed.
pub const DEAD_LETTER_RESUME_DELAY_SECONDS: u32 = 60;
/// Vector rows one clean-up step removes.
pub const CLEANUP_CHUNK: u32 = 500;

#[cfg(test)]
#[path = "sets_tests.rs"]
mod tests;
