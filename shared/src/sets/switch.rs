//! What a switch step does next, from what it saw: the building set's coverage of the active
//! one, how long it has covered it, and where it is kept. The consumer runs the step
//! (`consumer_worker::migration`); the decision is here.

use super::{Step, VectorSet};

/// How long a Vectorize set waits, once it covers the active set, before it is switched to:
/// Vectorize shows a write seconds after it accepts it, and the last backfilled records must
/// be found by the first searches of the new set.
pub const VECTORIZE_SETTLE_MS: i64 = 10_000;

/// Looks at an incomplete set before its backfill runs again from the start (about half a
/// minute of looking, by [`switch_delay_seconds`]): a record the backfill could not list then
/// (its first vector landed since, or its job died) is listed now.
pub const RESTART_AFTER: u32 = 8;

/// Seconds until a switch that found the building set incomplete looks again: soon at first
/// (the last jobs are usually moments away), then less often, at most once a minute.
pub fn switch_delay_seconds(attempt: u32) -> u32 {
    (1u32 << (attempt / 2).min(6)).min(60)
}

/// What a switch step does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchNext {
    /// Sends `step` (the switch looking again, or the backfill from its first page) after
    /// `delay_seconds`; the chain goes on with it.
    Send { step: Step, delay_seconds: u32 },
    /// Switches now.
    Switch,
}

impl SwitchNext {
    /// After a switch that found a record changed between its count and its statement: look
    /// again soon, as the next attempt.
    pub fn raced(attempt: u32) -> SwitchNext {
        SwitchNext::Send {
            step: Step::Switch {
                attempt: attempt + 1,
                covered_at: None,
            },
            delay_seconds: switch_delay_seconds(0),
        }
    }
}

/// What the switch step `attempt`, which first saw coverage at `covered_at`, does for `set`
/// covering `covered` of the active set's `of` records at `now_ms`: looks again (sooner,
/// then later) while coverage is incomplete, backfills again after [`RESTART_AFTER`] looks,
/// waits [`VECTORIZE_SETTLE_MS`] after coverage for a Vectorize set, and otherwise switches.
///
/// Only a worker whose config names the set (`configured`) switches to it: one of another
/// config (a rolling deploy, or a rollback while the change still runs) looks again later,
/// until a worker of the set's config switches, or its lease lapses and the change is given up
/// (`shared::sets::table`), which drops the step.
pub fn switch_next(
    set: &VectorSet,
    configured: bool,
    attempt: u32,
    covered_at: Option<i64>,
    (covered, of): (u64, u64),
    now_ms: i64,
) -> SwitchNext {
    if covered < of {
        if attempt + 1 >= RESTART_AFTER {
            return SwitchNext::Send {
                step: Step::Backfill { after: None },
                delay_seconds: 0,
            };
        }
        return SwitchNext::Send {
            step: Step::Switch {
                attempt: attempt + 1,
                covered_at: None,
            },
            delay_seconds: switch_delay_seconds(attempt),
        };
    }
    if !configured {
        return SwitchNext::Send {
            step: Step::Switch {
                attempt: attempt + 1,
                covered_at,
            },
            delay_seconds: switch_delay_seconds(attempt),
        };
    }
    let settle_ms = if set.binding().is_some() {
        VECTORIZE_SETTLE_MS
    } else {
        0
    };
    let since = covered_at.unwrap_or(now_ms);
    let left_ms = settle_ms - (now_ms - since);
    if left_ms > 0 {
        return SwitchNext::Send {
            step: Step::Switch {
                attempt: attempt + 1,
                covered_at: Some(since),
            },
            delay_seconds: u32::try_from((left_ms + 999) / 1000).unwrap_or(10),
        };
    }
    SwitchNext::Switch
}

#[cfg(test)]
#[path = "switch_tests.rs"]
mod tests;
