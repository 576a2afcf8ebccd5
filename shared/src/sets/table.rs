//! What one organization's table's sets become: the decision every starter of a model change
//! takes (a batch of jobs, the sweep, the end of a clean-up, `POST .../migration`), from what
//! it saw of the table's sets and what its config names. D1 applies the decision under guards
//! that only keep it safe against a racing writer (`worker_kit::sets`); the rule is here.
//!
//! The rules, in order:
//! 1. The configured set is building: nothing changes, but the set is **vouched for** (see
//!    below) if it has not been lately.
//! 2. Another set is building: the config changed again, or was rolled back. It is **given up**
//!    (it retires, and its clean-up starts) only once no worker configured for it has vouched
//!    for it within [`CONFIG_LEASE_MS`], or at once by the command. Until then nothing changes.
//! 3. The configured set is active: nothing changes.
//! 4. Otherwise the configured set is made: active if the table has none, else building (a
//!    model change starts); unless it cannot share the active set's Vectorize index
//!    ([`blocked`]), or a retiring set is still being removed from where it would go (the same
//!    set, or the Vectorize index whose ids it would share: the clean-up would delete what the
//!    new set writes). Such a change starts once the clean-up is done.
//!
//! ## Rolling deploys
//!
//! While a deploy rolls out, workers of the old config and the new run side by side, each
//! sure its config is the one to follow. Were rule 2 unconditional, an old worker would give up
//! the new change with each of its batches, and a new one start it again with each of its own.
//! So a worker configured for the building set vouches for it (at most every
//! [`VOUCH_EVERY_MS`]), and a worker configured otherwise gives it up only when nobody has
//! vouched for [`CONFIG_LEASE_MS`]: all workers now follow another config. The cost is that a
//! change the config abandons outright waits that long before the next starts, unless an admin
//! sends the command, which speaks for the config at once.

use super::{blocked, SetRole, VectorSet};

/// How long a building set is kept, for a config that no longer names it, after the last
/// worker configured for it vouched for it: longer than any pause between two batches of a
/// change's backfill, whose jobs go to the workers of either config.
pub const CONFIG_LEASE_MS: i64 = 60_000;
/// How often a worker configured for a building set vouches for it: a write of D1 at most this
/// often, well within [`CONFIG_LEASE_MS`].
pub const VOUCH_EVERY_MS: i64 = 10_000;

/// A set of the table as the deciding worker saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSet {
    pub set: VectorSet,
    pub role: SetRole,
    /// When a worker configured for it last vouched for it (a building set; see the module).
    pub vouched_at: i64,
}

/// Who decides: a worker on its own (a batch, the sweep, a clean-up's end) or an admin's
/// `POST .../migration`, which speaks for its config at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starter {
    Worker,
    Command,
}

/// What becomes of the table's sets; the default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The building set given up: it retires, and its clean-up starts.
    pub give_up: Option<VectorSet>,
    /// The configured set is made, in this role.
    pub create: Option<SetRole>,
    /// The configured set, building, is vouched for.
    pub vouch: bool,
}

impl Plan {
    /// Whether the plan writes anything.
    pub fn is_empty(&self) -> bool {
        self.give_up.is_none() && self.create.is_none() && !self.vouch
    }

    /// The table's sets once the set given up retires, before the configured set is made,
    /// ordered by set: what the guard of the creation finds in D1 if nothing raced the decision.
    pub fn applied(&self, seen: &[SeenSet]) -> Vec<SeenSet> {
        let mut after: Vec<SeenSet> = seen
            .iter()
            .map(|s| SeenSet {
                role: if self.give_up.as_ref() == Some(&s.set) {
                    SetRole::Retiring
                } else {
                    s.role
                },
                ..s.clone()
            })
            .collect();
        after.sort_by(|a, b| a.set.cmp(&b.set));
        after
    }
}

/// The decision of the module's rules for a table whose sets are `seen`, configured for
/// `configured`, taken by `by` at `now_ms`.
pub fn plan(seen: &[SeenSet], configured: &VectorSet, by: Starter, now_ms: i64) -> Plan {
    let of = |role: SetRole| seen.iter().find(|s| s.role == role);
    let mut plan = Plan::default();
    match of(SetRole::Building) {
        Some(building) if building.set == *configured => {
            plan.vouch = now_ms - building.vouched_at >= VOUCH_EVERY_MS;
            return plan;
        }
        Some(building) => {
            let lapsed = now_ms - building.vouched_at >= CONFIG_LEASE_MS;
            if by == Starter::Worker && !lapsed {
                return plan;
            }
            plan.give_up = Some(building.set.clone());
        }
        None => {}
    }
    let active = of(SetRole::Active);
    if active.is_some_and(|a| a.set == *configured) {
        return plan;
    }
    if active.is_some_and(|a| blocked(&a.set, configured).is_some()) {
        return plan;
    }
    let in_the_way = seen.iter().any(|s| {
        let retiring = s.role == SetRole::Retiring || plan.give_up.as_ref() == Some(&s.set);
        retiring
            && s.set.location == configured.location
            && (s.set.model == configured.model || s.set.binding().is_some())
    });
    if !in_the_way {
        plan.create = Some(if active.is_some() {
            SetRole::Building
        } else {
            SetRole::Active
        });
    }
    plan
}

#[cfg(test)]
#[path = "table_tests.rs"]
mod tests;
