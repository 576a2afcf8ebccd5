//! A model-based checker: seeded random histories of ordinary operations against the real
//! stack, on each backend, then every invariant checked against an oracle the checker keeps.
//!
//! A history runs two tenants (Ann of `org_a`, Bob of `org_b`) over one small pool of record
//! ids that both use, so re-creates of a deleted id and the same id in two organizations happen
//! often. Its operations: create, change the embedded text, change only the metadata, delete,
//! enqueue a record's embedding by hand, replay a job (as its owner and as the other tenant),
//! deliver jobs of a record through the custom pipeline (its current text twice at once, and
//! one made from a text it does not have, in a random order), and backfill (with and without
//! `all`); local-ai fails a share of its calls meanwhile. Every answer is checked as it comes
//! (the status the oracle predicts; another tenant's id answers exactly as an id nobody used).
//! Once every job the history started is final, its dead jobs are replayed as their owners
//! would (`History::replay_dead`). Once those end too and the index has settled:
//!
//! - every job is final;
//! - every live record has its vector, equal (cosine >= 0.9999) to local-ai's embedding of its
//!   current text, in the record's column and in the store search reads (D1's row, or the
//!   Vectorize index), with its current metadata; a deleted record has none in either store;
//! - each tenant's search, gray-zone and vector-query answers are the brute-force ranking of
//!   the oracle's live records of that tenant (filtered to the history's stories, and to one
//!   story, which only a record's metadata as it is now passes), classified by the service's
//!   thresholds.
//!
//! The history then deletes what it left, and checks that both stores let it go, so that every
//! history starts from organizations of the same size. A failure names the seed;
//! `CHECKER_SEED=N` replays that history alone. `scripts/soak` runs histories for a while and
//! prints what it ran.
//!
//! [`model_changes_match_the_oracle`] runs the same histories on a stack of its own, with two
//! more operations: a deploy that changes every table's model (claims between bge-base and
//! bge-small in D1, evidence between bge-base in the 768-dimension Vectorize index and bge-small
//! in the 384-dimension one), once at a seeded point of each history and at random besides, so
//! that a deploy often lands while the last one's change is still under way, or being cleaned
//! up; and a search at any moment, which must answer. Its histories alternate backends. Once
//! its jobs are final, a history waits for its table's change to complete, then checks
//! everything above against the model and index configured last, and that no earlier set (in
//! D1, or in the index the table left) holds any of its records.
//!
//! The checker's parts: this module drives it (the tests, the plan of seeds, the tally);
//! `history` generates a history and keeps the oracle; `operations` applies each operation and
//! checks its answer against the oracle's prediction; `invariants` compares the settled state
//! with the oracle; `deploys` changes the models under a history.

mod deploys;
mod history;
mod invariants;
mod operations;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use e2e::{Options, Stack};

use crate::backends::{Backend, BACKENDS};
use crate::model_change::with_log_tail;
use crate::{expect, Ctx};
use crate::{json, Duration, Failed, Value};

use deploys::Deploys;
use history::History;

/// What one run of histories did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    pub histories: usize,
    pub operations: usize,
    pub checks: usize,
    /// Deploys that changed the models.
    pub deploys: usize,
    /// Model changes the history started (or resumed) with the one command.
    pub commands: usize,
    /// Dead jobs replayed as their owners would: out of retries, or of a record since deleted
    /// (which die again).
    pub replayed: usize,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.operations += other.operations;
        self.checks += other.checks;
        self.deploys += other.deploys;
        self.commands += other.commands;
        self.replayed += other.replayed;
    }
}

pub(crate) const TESTS: &[(&str, super::Test)] = &[(
    "checker_model_changes_match_the_oracle",
    model_changes_match_the_oracle,
)];

/// The checker as a test of the suite, on one backend. By default a few short histories from a
/// fresh seed; `CHECKER_SEED=N` replays one; `CHECKER_SECONDS=S` (what `scripts/soak` sets) runs
/// histories until S seconds have passed; `CHECKER_HISTORIES` and `CHECKER_OPERATIONS` size
/// the default run. What ran is printed either way.
pub(crate) fn random_histories_match_the_oracle(ctx: &Ctx, backend: Backend) -> Result<(), Failed> {
    let plan = Plan::from_env(3);
    let tally = run(ctx, |_| backend, None, &plan)?;
    report(backend.name, &plan, tally);
    Ok(())
}

/// The checker with deploys that change the models ([`Deploys`]), on a stack of its own (they
/// would change every later test's models); its histories alternate backends (by their seed's
/// parity), two on each by default. The environment sizes and replays it as it does the other.
pub(crate) fn model_changes_match_the_oracle(_: &Ctx) -> Result<(), Failed> {
    // Before starting anything: a missing build says how to make it.
    let deploys = Deploys::new()?;
    let stack = Arc::new(Stack::start(Options {
        pipeline: true,
        retry_base_delay_seconds: Some(1),
        vectorize_delay_ms: Some(400),
        ..Options::default()
    })?);
    let ctx = Ctx::new(&stack);
    let plan = Plan::from_env(4);
    // By the seed, so that a replay runs on the same backend.
    let tally = run(
        &ctx,
        |seed| BACKENDS[usize::from(seed % 2 == 1)],
        Some(&deploys),
        &plan,
    )
    .map_err(|e| with_log_tail(&stack, &e))?;
    report("both backends, with model changes", &plan, tally);
    Ok(())
}

/// Which histories to run, as the environment says.
struct Plan {
    first_seed: u64,
    /// How many; or, with `CHECKER_SECONDS`, until when.
    histories: u64,
    until: Option<Instant>,
    operations: usize,
    started: Instant,
}

impl Plan {
    fn from_env(histories: u64) -> Plan {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        let started = Instant::now();
        let replay = number("CHECKER_SEED");
        Plan {
            first_seed: replay.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_secs() % 1_000_000)
            }),
            histories: if replay.is_some() {
                1
            } else {
                number("CHECKER_HISTORIES").unwrap_or(histories)
            },
            until: number("CHECKER_SECONDS").map(|s| started + Duration::from_secs(s)),
            operations: number("CHECKER_OPERATIONS")
                .map_or(16, |n| usize::try_from(n).unwrap_or(16)),
            started,
        }
    }

    fn seeds(&self) -> impl Iterator<Item = u64> + '_ {
        let count = if self.until.is_some() {
            u64::MAX - self.first_seed
        } else {
            self.histories
        };
        (self.first_seed..self.first_seed + count)
            .take_while(|_| self.until.is_none_or(|until| Instant::now() < until))
    }
}

fn report(what: &str, plan: &Plan, tally: Tally) {
    let deploys = if tally.deploys > 0 {
        format!(
            " | {} deploys changing the models, {} changes started or resumed by the command",
            tally.deploys, tally.commands
        )
    } else {
        String::new()
    };
    eprintln!(
        "checker | {what} | seeds from {} | {} histories | {} operations{deploys} | {} dead jobs replayed | {} invariant checks | 0 violations | {:.0} s",
        plan.first_seed,
        tally.histories,
        tally.operations,
        tally.replayed,
        tally.checks,
        plan.started.elapsed().as_secs_f64()
    );
}

/// Runs a history for each seed of the plan, on `backend(seed)`, printing progress every 100.
fn run(
    ctx: &Ctx,
    backend: impl Fn(u64) -> Backend,
    deploys: Option<&Deploys>,
    plan: &Plan,
) -> Result<Tally, Failed> {
    let mut tally = Tally::default();
    let mut embeddings = HashMap::new();
    for seed in plan.seeds() {
        let backend = backend(seed);
        let mut history =
            History::new(ctx, backend, deploys, seed, std::mem::take(&mut embeddings));
        let outcome = history.run(plan.operations);
        set_faults(ctx, &json!({}))?;
        outcome.map_err(|e| {
            format!(
                "checker, {} backend, seed {seed} (replay with CHECKER_SEED={seed}): {}",
                backend.name,
                e.message().unwrap_or("failed")
            )
        })?;
        tally.histories += 1;
        tally.add(history.tally);
        embeddings = history.embeddings;
        if tally.histories % 100 == 0 {
            eprintln!(
                "checker | {} | {} histories so far, up to seed {seed}",
                backend.name, tally.histories
            );
        }
    }
    Ok(tally)
}

/// local-ai's faults while a history runs: a fifth of its calls fail, or the share
/// `CHECKER_FAIL_RATE` names (a high one makes jobs die out of retries often).
static FAULTS: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    let rate = std::env::var("CHECKER_FAIL_RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|rate| (0.0..=1.0).contains(rate))
        .unwrap_or(0.2);
    json!({"failRate": rate, "failStatuses": [500, 429]})
});

fn set_faults(ctx: &Ctx, plan: &Value) -> Result<(), Failed> {
    let reply = ctx.local_ai.put("/faults", &plan.to_string())?;
    expect(&reply, 200, "set local-ai faults")
}
