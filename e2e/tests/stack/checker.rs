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

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use e2e::{Options, Stack, Variant};

use super::backends::{select, settle, stored_vectors_of, Backend, BACKENDS, CHANGED};
use super::model_change::with_log_tail;
use super::search::classify;
use super::{check, cosine, embed_with, expect, wait_final_as, Ctx};
use super::{json, Duration, Failed, Value};
use shared::message::EmbeddingJob;

const TEXTS: [&str; 8] = [
    "The council approved the harbour budget on Monday",
    "Councillors voted for the new harbour budget",
    "Heavy snow closed every mountain road",
    "Police arrested three suspects after the robbery",
    "Three people were arrested following the bank robbery",
    "The museum reopened its east wing after repairs",
    "A new tram line will link the airport to the centre",
    "Floods cut the railway line to the coast",
];
const STORIES: [&str; 3] = ["s-a", "s-b", "s-c"];
const POOL: usize = 4;

/// What one run of histories did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Tally {
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

/// The deploys of [`model_changes_match_the_oracle`]'s histories: its stack starts on the
/// suite's workers, and each deploy restarts it with the workers of the other of two variants
/// of the config: `model-change`, then `models-back`, then `model-change` again, and so on.
pub(crate) struct Deploys {
    /// `model-change` and `models-back`.
    variants: [Variant; 2],
    /// The one running now; none (the suite's workers) before the first deploy.
    running: Cell<Option<usize>>,
}

impl Deploys {
    fn new() -> Result<Deploys, Failed> {
        Ok(Deploys {
            variants: [Variant::model_change()?, Variant::models_back()?],
            running: Cell::new(None),
        })
    }

    /// Restarts the stack's workers with the other variant's.
    fn next(&self, stack: &Stack) -> Result<(), Failed> {
        let next = usize::from(self.running.get() == Some(0));
        stack.restart_workers(&self.variants[next])?;
        self.running.set(Some(next));
        Ok(())
    }

    /// Where `backend`'s table is kept, and with which model, by the workers running now.
    fn place(&self, backend: Backend) -> Backend {
        let at = BACKENDS
            .iter()
            .position(|b| b.name == backend.name)
            .expect("a backend of the suite's");
        if self.running.get() == Some(0) {
            CHANGED[at]
        } else {
            BACKENDS[at]
        }
    }
}

pub(crate) const TESTS: &[(&str, super::Test)] = &[(
    "checker_model_changes_match_the_oracle",
    model_changes_match_the_oracle,
)];

/// A seeded generator (splitmix64), so that a seed replays its history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n")
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A record as the oracle knows it; its story is an index into the history's stories.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Live {
    content: &'static str,
    story: usize,
}

struct Tenant {
    cookie: String,
    organization_id: &'static str,
}

struct History<'a> {
    ctx: &'a Ctx,
    /// Where the table is kept now, and with which model.
    backend: Backend,
    /// Where it was kept before, in this history.
    former: Vec<Backend>,
    deploys: Option<&'a Deploys>,
    /// Whether a deploy of this history restarted the workers while the table's change was
    /// under way: the local queue lives in `wrangler dev`'s memory, so that change's steps are
    /// gone, and it is resumed with the one command, as the sweep would after 15 minutes.
    steps_lost: bool,
    seed: u64,
    tenants: [Tenant; 2],
    ids: Vec<String>,
    /// The history's own story values, so that its searches filter to its own records.
    stories: Vec<String>,
    oracle: BTreeMap<(usize, String), Live>,
    /// Jobs the history started, by tenant.
    jobs: Vec<(usize, String)>,
    tally: Tally,
    /// local-ai's embeddings, by model and text.
    embeddings: Embeddings,
}

type Embeddings = HashMap<(&'static str, &'static str), Vec<f32>>;

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

impl<'a> History<'a> {
    fn new(
        ctx: &'a Ctx,
        backend: Backend,
        deploys: Option<&'a Deploys>,
        seed: u64,
        embeddings: Embeddings,
    ) -> Self {
        let run = std::process::id();
        History {
            ctx,
            backend: deploys.map_or(backend, |d| d.place(backend)),
            former: Vec::new(),
            deploys,
            steps_lost: false,
            seed,
            tenants: [
                Tenant {
                    cookie: ctx.ann.clone(),
                    organization_id: "org_a",
                },
                Tenant {
                    cookie: ctx.bob.clone(),
                    organization_id: "org_b",
                },
            ],
            ids: (0..POOL).map(|n| format!("h{run}-{seed}-{n}")).collect(),
            stories: STORIES
                .iter()
                .map(|story| format!("h{run}-{seed}-{story}"))
                .collect(),
            oracle: BTreeMap::new(),
            jobs: Vec::new(),
            tally: Tally::default(),
            embeddings,
        }
    }

    fn check(&mut self, condition: bool, message: impl FnOnce() -> String) -> Result<(), Failed> {
        self.tally.checks += 1;
        check(condition, message)
    }

    fn run(&mut self, operations: usize) -> Result<(), Failed> {
        let mut rng = Rng(self.seed);
        set_faults(self.ctx, &FAULTS)?;
        let trace = std::env::var_os("CHECKER_TRACE").is_some();
        let mut at = Instant::now();
        let mut lap = |what: &str| {
            if trace {
                eprintln!("checker trace | {what} | {} ms", at.elapsed().as_millis());
            }
            at = Instant::now();
        };
        // With deploys: one at a seeded point, and two more kinds of operation.
        let (kinds, deploy_at) = match self.deploys {
            Some(_) => (16, Some(rng.below(operations.max(1)))),
            None => (14, None),
        };
        for at in 0..operations {
            if deploy_at == Some(at) {
                self.deploy(&mut rng)?;
            }
            let tenant = rng.below(2);
            let id = rng
                .pick(&self.ids.iter().map(String::as_str).collect::<Vec<_>>())
                .to_owned();
            match rng.below(kinds) {
                0..=2 => self.create(tenant, &id, rng.pick(&TEXTS), rng.below(STORIES.len()))?,
                3 | 4 => self.edit_text(tenant, &id, rng.pick(&TEXTS))?,
                5 | 6 => self.edit_story(tenant, &id, rng.below(STORIES.len()))?,
                7 => self.delete(tenant, &id)?,
                8 => self.redeliver(tenant, &id, rng.pick(&TEXTS), rng.below(2) == 0)?,
                9 => self.backfill(tenant, false)?,
                10 => self.backfill(tenant, true)?,
                11 => self.enqueue(tenant, &id)?,
                12 | 13 => {
                    let as_owner = rng.below(2) == 0;
                    if !self.jobs.is_empty() {
                        let job = self.jobs[rng.below(self.jobs.len())].clone();
                        self.replay(as_owner, job)?;
                    }
                }
                14 => self.deploy(&mut rng)?,
                _ => self.search_now(tenant, rng.pick(&TEXTS))?,
            }
            self.tally.operations += 1;
            lap("operation");
        }
        let dead = self.drain()?;
        lap("drain");
        set_faults(self.ctx, &json!({}))?;
        self.replay_dead(&dead)?;
        lap("dead jobs replayed");
        for tenant in 0..2 {
            self.complete_change(tenant)?;
        }
        lap("model change");
        settle(self.ctx, self.backend)?;
        for tenant in 0..2 {
            let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
            let mut stored = stored_vectors_of(
                self.ctx,
                self.backend,
                self.tenants[tenant].organization_id,
                &ids,
            )?;
            for id in self.ids.clone() {
                let vector = stored.remove(&id);
                self.check_record(tenant, &id, vector)?;
            }
            self.check_search(tenant, rng.pick(&TEXTS), rng.below(STORIES.len()))?;
            self.check_former_sets_gone(tenant)?;
        }
        lap("checks");
        self.clean_up()?;
        lap("clean-up");
        Ok(())
    }

    /// Deletes what the history left, and checks that neither store keeps any of it.
    fn clean_up(&mut self) -> Result<(), Failed> {
        for (tenant, id) in self.oracle.keys().cloned().collect::<Vec<_>>() {
            self.delete(tenant, &id)?;
        }
        settle(self.ctx, self.backend)?;
        for tenant in 0..2 {
            let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
            let organization_id = self.tenants[tenant].organization_id;
            let stored = stored_vectors_of(self.ctx, self.backend, organization_id, &ids)?;
            self.check(stored.is_empty(), || {
                format!("{organization_id} deleted every record of the history, yet the store holds {:?}", stored.keys())
            })?;
        }
        Ok(())
    }

    fn path(&self, id: &str) -> String {
        format!("/api/v1/{}/{id}", self.backend.table)
    }

    fn call(
        &self,
        tenant: usize,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<e2e::Reply, Failed> {
        let body = body.map(Value::to_string);
        Ok(self.ctx.client.call(
            method,
            path,
            &[("cookie", &self.tenants[tenant].cookie)],
            body.as_deref(),
        )?)
    }

    /// A 404 for a record the tenant does not have must read exactly as one nobody ever had.
    fn check_absent(&mut self, what: &str, reply: &e2e::Reply, id: &str) -> Result<(), Failed> {
        let expected = format!("no record `{id}` in `{}`", self.backend.table);
        self.check(
            reply.status == 404 && reply.body["error"]["message"] == expected.as_str(),
            || {
                format!(
                    "{what} of an absent `{id}`: expected 404 {expected:?}, got {} {}",
                    reply.status, reply.body
                )
            },
        )
    }

    fn track_job(&mut self, tenant: usize, reply: &e2e::Reply) {
        if let Some(job) = reply.body["job"]["jobId"].as_str() {
            self.jobs.push((tenant, job.to_owned()));
        }
    }

    fn create(
        &mut self,
        tenant: usize,
        id: &str,
        content: &'static str,
        story: usize,
    ) -> Result<(), Failed> {
        let body = json!({"id": id, "content": content, "story_id": self.stories[story]});
        let reply = self.call(
            tenant,
            "POST",
            &format!("/api/v1/{}", self.backend.table),
            Some(&body),
        )?;
        let key = (tenant, id.to_owned());
        if self.oracle.contains_key(&key) {
            return self.check(reply.status == 409, || {
                format!(
                    "create of an existing `{id}`: {} {}",
                    reply.status, reply.body
                )
            });
        }
        self.check(reply.status == 201, || {
            format!(
                "create of `{id}`, which this organization does not have: {} {}",
                reply.status, reply.body
            )
        })?;
        self.track_job(tenant, &reply);
        self.oracle.insert(key, Live { content, story });
        Ok(())
    }

    fn edit_text(&mut self, tenant: usize, id: &str, content: &'static str) -> Result<(), Failed> {
        let reply = self.call(
            tenant,
            "PATCH",
            &self.path(id),
            Some(&json!({"content": content})),
        )?;
        let Some(live) = self.oracle.get(&(tenant, id.to_owned())).copied() else {
            return self.check_absent("PATCH", &reply, id);
        };
        self.check(reply.status == 200, || {
            format!("PATCH `{id}`: {} {}", reply.status, reply.body)
        })?;
        let changed = live.content != content;
        self.check(reply.body["job"].is_null() != changed, || {
            format!(
                "a job exactly when the text changes ({changed}): {}",
                reply.body
            )
        })?;
        self.track_job(tenant, &reply);
        self.oracle
            .insert((tenant, id.to_owned()), Live { content, ..live });
        Ok(())
    }

    fn edit_story(&mut self, tenant: usize, id: &str, story: usize) -> Result<(), Failed> {
        let body = json!({"story_id": self.stories[story]});
        let reply = self.call(tenant, "PATCH", &self.path(id), Some(&body))?;
        let Some(live) = self.oracle.get(&(tenant, id.to_owned())).copied() else {
            return self.check_absent("PATCH", &reply, id);
        };
        self.check(reply.status == 200 && reply.body["job"].is_null(), || {
            format!(
                "a metadata edit of `{id}` makes no job: {} {}",
                reply.status, reply.body
            )
        })?;
        self.oracle
            .insert((tenant, id.to_owned()), Live { story, ..live });
        Ok(())
    }

    fn delete(&mut self, tenant: usize, id: &str) -> Result<(), Failed> {
        let reply = self.call(tenant, "DELETE", &self.path(id), None)?;
        if self.oracle.remove(&(tenant, id.to_owned())).is_none() {
            return self.check_absent("DELETE", &reply, id);
        }
        self.check(reply.status == 204, || {
            format!("DELETE `{id}`: {} {}", reply.status, reply.body)
        })
    }

    /// A custom pipeline's job for the record's current text, delivered twice at once, with one
    /// made from `other` (a text the record may not have: stale unless it has it) before or
    /// after them.
    fn redeliver(
        &mut self,
        tenant: usize,
        id: &str,
        other: &'static str,
        other_first: bool,
    ) -> Result<(), Failed> {
        let Some(live) = self.oracle.get(&(tenant, id.to_owned())).copied() else {
            return Ok(());
        };
        let job = |text: &str| {
            EmbeddingJob::new(
                uuid::Uuid::new_v4(),
                self.tenants[tenant].organization_id,
                self.backend.model,
                text,
                Some((self.backend.table.into(), id.into())),
            )
            .with_record_text(text)
        };
        let (current, elsewhere) = (job(live.content), job(other));
        let message = serde_json::to_value(&current)?;
        let mut batch = vec![message.clone(), message];
        let stale = serde_json::to_value(&elsewhere)?;
        if other_first {
            batch.insert(0, stale);
        } else {
            batch.push(stale);
        }
        let reply =
            self.ctx
                .client
                .post("/__pipeline/send", None, &Value::from(batch).to_string())?;
        self.check(reply.status == 202, || {
            format!("pipeline send: {}", reply.body)
        })?;
        for job in [current, elsewhere] {
            self.jobs.push((tenant, job.job_id.to_string()));
        }
        Ok(())
    }

    /// `POST /embeddings` for a record, with its current text: 202, or the 404 of an absent id.
    fn enqueue(&mut self, tenant: usize, id: &str) -> Result<(), Failed> {
        let content = self
            .oracle
            .get(&(tenant, id.to_owned()))
            .map_or(TEXTS[0], |live| live.content);
        let body = json!({"content": content, "table": self.backend.table, "id": id});
        let reply = self.call(tenant, "POST", "/api/v1/embeddings", Some(&body))?;
        if !self.oracle.contains_key(&(tenant, id.to_owned())) {
            return self.check_absent("enqueue", &reply, id);
        }
        self.check(reply.status == 202, || {
            format!("enqueue `{id}`: {} {}", reply.status, reply.body)
        })?;
        if let Some(job) = reply.body["jobId"].as_str() {
            self.jobs.push((tenant, job.to_owned()));
        }
        Ok(())
    }

    /// `POST /jobs/{id}/retry`: as the job's owner, 202 for a dead or failed job and 409 for a
    /// done, skipped or stale one (an open one may die meanwhile: either); as the other tenant,
    /// the 404 of a job nobody made.
    fn replay(&mut self, as_owner: bool, (tenant, job): (usize, String)) -> Result<(), Failed> {
        let caller = if as_owner { tenant } else { 1 - tenant };
        let path = format!("/api/v1/embeddings/jobs/{job}");
        let before = self.call(tenant, "GET", &path, None)?;
        let reply = self.call(caller, "POST", &format!("{path}/retry"), None)?;
        if caller != tenant {
            let expected = format!("no job `{job}`");
            return self.check(
                reply.status == 404 && reply.body["error"]["message"] == expected.as_str(),
                || {
                    format!(
                        "replay of another organization's job: {} {}",
                        reply.status, reply.body
                    )
                },
            );
        }
        if before.status == 404 {
            // A pipeline job the consumer has not seen yet: no row to replay, or one by now.
            return self.check(matches!(reply.status, 404 | 409 | 202), || {
                format!(
                    "replay of a job not yet recorded: {} {}",
                    reply.status, reply.body
                )
            });
        }
        let status = before.body["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let expected: &[u16] = match status.as_str() {
            "dead" | "failed" => &[202],
            "done" | "skipped" | "stale" => &[409],
            _ => &[202, 409],
        };
        self.check(expected.contains(&reply.status), || {
            format!("replay of a {status} job: {} {}", reply.status, reply.body)
        })
    }

    fn backfill(&mut self, tenant: usize, all: bool) -> Result<(), Failed> {
        let reply = self.call(
            tenant,
            "POST",
            "/api/v1/embeddings/backfill",
            Some(&json!({"table": self.backend.table, "all": all})),
        )?;
        self.check(reply.status == 202, || {
            format!("backfill: {} {}", reply.status, reply.body)
        })?;
        let Some(backfill) = reply.body["backfillId"].as_str() else {
            return Ok(());
        };
        let jobs = self.call(
            tenant,
            "GET",
            &format!("/api/v1/embeddings/jobs?backfillId={backfill}&limit=100"),
            None,
        )?;
        for job in jobs.body["jobs"].as_array().into_iter().flatten() {
            if let Some(job) = job["jobId"].as_str() {
                self.jobs.push((tenant, job.to_owned()));
            }
        }
        Ok(())
    }

    /// Waits for every job the history started to be final, and answers those that ended dead.
    fn drain(&mut self) -> Result<Vec<(usize, String)>, Failed> {
        self.drain_jobs(&self.jobs.clone())
    }

    /// Waits for `jobs` to be final (a pipeline job has no row until the consumer first sees
    /// it), and answers those that ended dead.
    fn drain_jobs(&mut self, jobs: &[(usize, String)]) -> Result<Vec<(usize, String)>, Failed> {
        let deadline = Instant::now() + Duration::from_mins(2);
        let mut dead = Vec::new();
        for (tenant, job) in jobs.iter().cloned() {
            let cookie = self.tenants[tenant].cookie.clone();
            let path = format!("/api/v1/embeddings/jobs/{job}");
            while self.ctx.client.get(&path, Some(&cookie))?.status == 404 {
                check(Instant::now() < deadline, || {
                    format!("job {job} never recorded")
                })?;
                std::thread::sleep(Duration::from_millis(100));
            }
            let ended = wait_final_as(
                self.ctx,
                &cookie,
                &job,
                deadline.saturating_duration_since(Instant::now()),
            )?;
            let status = ended["status"].as_str().unwrap_or_default();
            self.check(
                matches!(status, "done" | "skipped" | "stale" | "dead"),
                || format!("job {job} ended {status}: {ended}"),
            )?;
            if status == "dead" {
                dead.push((tenant, job));
            }
        }
        Ok(dead)
    }

    /// Replays `dead` jobs of the history as their owners, and waits for the replays to end. A
    /// job dies when local-ai fails all six of its deliveries, which a model change makes
    /// likelier: its jobs need both models, so one of two calls failing fails them. The product
    /// keeps such a record as it was, and shows the job dead and replayable; it does not redo
    /// the job. The checker does what the job's owner would do, with local-ai's faults off. A
    /// job also dies for a reason that stays, such as its record deleted: its replay dies again.
    fn replay_dead(&mut self, dead: &[(usize, String)]) -> Result<(), Failed> {
        for job in dead {
            self.replay(true, job.clone())?;
        }
        self.drain_jobs(dead)?;
        self.tally.replayed += dead.len();
        Ok(())
    }

    /// local-ai's embedding of `text` with the table's model now.
    fn embedding(&mut self, text: &'static str) -> Result<Vec<f32>, Failed> {
        let key = (self.backend.model, text);
        if let Some(vector) = self.embeddings.get(&key) {
            return Ok(vector.clone());
        }
        let vector = embed_with(self.ctx, self.backend.model, text)?;
        self.embeddings.insert(key, vector.clone());
        Ok(vector)
    }

    /// Checks a record against the oracle, `stored` being what the search store holds for it.
    fn check_record(
        &mut self,
        tenant: usize,
        id: &str,
        stored: Option<Vec<f32>>,
    ) -> Result<(), Failed> {
        let organization_id = self.tenants[tenant].organization_id;
        let reply = self.call(
            tenant,
            "GET",
            &format!("{}?include=embedding", self.path(id)),
            None,
        )?;
        let backend = self.backend.name;
        let Some(live) = self.oracle.get(&(tenant, id.to_owned())).copied() else {
            self.check_absent("GET", &reply, id)?;
            return self.check(stored.is_none(), || {
                format!("`{id}` of {organization_id} is deleted, yet {backend} holds a vector")
            });
        };
        self.check(
            reply.status == 200
                && reply.body["content"] == live.content
                && reply.body["story_id"] == self.stories[live.story].as_str(),
            || {
                format!(
                    "`{id}` of {organization_id} reads back as the oracle has it: {}",
                    reply.body
                )
            },
        )?;
        let expected = self.embedding(live.content)?;
        let column: Vec<f32> =
            serde_json::from_value(reply.body["embedding"].clone()).unwrap_or_default();
        let stored = stored.unwrap_or_default();
        let (in_column, in_store) = (cosine(&column, &expected), cosine(&stored, &expected));
        // The lengths too: a vector of another model could point the same way.
        let (model, lengths) = (self.backend.model, [column.len(), stored.len()]);
        self.check(
            in_column > 0.9999 && in_store > 0.9999 && lengths == [expected.len(); 2],
            || {
                format!(
                    "`{id}` of {organization_id} ({:?}): cosine to its text's embedding by {model} {in_column} in its column, {in_store} in {backend}; {lengths:?} dimensions of {}",
                    live.content,
                    expected.len()
                )
            },
        )
    }

    /// Search, gray zone and vector query as one tenant, each against the brute-force ranking
    /// of the oracle's live records of that tenant: over the history's stories (the tenant's
    /// other records stay out), and over one story, which only metadata as it is now can pass.
    fn check_search(
        &mut self,
        tenant: usize,
        text: &'static str,
        story: usize,
    ) -> Result<(), Failed> {
        let query = self.embedding(text)?;
        let mut ranked: Vec<(String, usize, f32)> = Vec::new();
        for ((owner, id), live) in self.oracle.clone() {
            if owner == tenant {
                let score = cosine(&query, &self.embedding(live.content)?);
                ranked.push((id, live.story, score));
            }
        }
        ranked.sort_by(|a, b| b.2.total_cmp(&a.2));
        let all: Vec<(String, f32)> = ranked.iter().map(|(id, _, s)| (id.clone(), *s)).collect();
        let one: Vec<(String, f32)> = ranked
            .iter()
            .filter(|r| r.1 == story)
            .map(|(id, _, s)| (id.clone(), *s))
            .collect();
        let (stories, one_story) = (json!({"$in": self.stories}), self.stories[story].clone());
        let service = self.backend.service;
        let search = format!("/api/v1/embeddings/search/{service}");
        for (what, filter, expected) in [
            ("search", &stories, &all),
            ("search of one story", &json!(one_story), &one),
        ] {
            let body = json!({"text": text, "limit": 10, "filters": {"story_id": filter}});
            let answer = self.post_ok(tenant, &search, &body)?;
            self.check_ranking(tenant, what, &answer, expected, true)?;
        }

        let (min, max) = (0.3, 0.7);
        let zone = self.post_ok(
            tenant,
            &format!("/api/v1/embeddings/gray-zone/{service}"),
            &json!({"text": text, "min": min, "max": max, "limit": 10, "filters": {"story_id": stories}}),
        )?;
        let high: Vec<(String, f32)> = all.iter().filter(|m| m.1 >= max).cloned().collect();
        let gray: Vec<(String, f32)> = all
            .iter()
            .filter(|m| (min..max).contains(&m.1))
            .cloned()
            .collect();
        self.check_ranking(
            tenant,
            "gray zone, high confidence",
            &zone["high_confidence"],
            &high,
            true,
        )?;
        self.check_ranking(tenant, "gray zone", &zone["gray_zone"], &gray, true)?;

        let body = json!({"vector": query, "topK": 10, "table": self.backend.table,
                          "filter": {"story_id": one_story}});
        let answer = self.post_ok(tenant, "/api/v1/embeddings/query", &body)?;
        self.check_ranking(
            tenant,
            "vector query of one story",
            &answer["matches"],
            &one,
            false,
        )?;
        let carried = answer["matches"].as_array().is_some_and(|m| {
            m.iter()
                .all(|m| m["metadata"]["story_id"] == one_story.as_str())
        });
        self.check(carried, || {
            format!("a vector query's matches carry their metadata as it is now: {answer}")
        })
    }

    /// A deploy of the other config: every table changes its model (and evidence its index).
    /// The local queue lives in `wrangler dev`'s memory and a restart loses what it holds (a
    /// deploy to Cloudflare loses nothing), so the history's jobs are made final, and the
    /// tenants' queued ones done, first. Then, as often as not, one tenant starts its change
    /// with the command; otherwise its next write does.
    fn deploy(&mut self, rng: &mut Rng) -> Result<(), Failed> {
        let Some(deploys) = self.deploys else {
            return Ok(());
        };
        self.drain()?;
        for tenant in 0..2 {
            let status = self.quiet(tenant)?;
            self.steps_lost |= !self.settled(&status);
        }
        deploys.next(&self.ctx.stack)?;
        self.former.push(self.backend);
        self.backend = deploys.place(self.backend);
        self.tally.deploys += 1;
        if rng.below(2) == 0 {
            self.command(rng.below(2))?;
        }
        Ok(())
    }

    /// The table's status as `tenant` sees it once none of its jobs is queued or processing,
    /// twice a second and a half apart, and its change (if one runs) has every record it needs
    /// backfilled: a backfill page that a step about to run would enqueue, a restart would leave
    /// queued for the sweep (15 minutes).
    fn quiet(&mut self, tenant: usize) -> Result<Value, Failed> {
        let started = Instant::now();
        let mut quiet_since: Option<Instant> = None;
        loop {
            let status = self.status(tenant)?;
            let migration = &status["migration"];
            let quiet = status["jobs"]["pending"] == 0
                && (migration.is_null() || migration["covered"] == migration["of"]);
            if !quiet {
                quiet_since = None;
            } else if quiet_since.get_or_insert_with(Instant::now).elapsed()
                >= Duration::from_millis(1500)
            {
                return Ok(status);
            }
            check(started.elapsed() < Duration::from_mins(2), || {
                format!("the table is not quiet after 2 min: {status}")
            })?;
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn status(&self, tenant: usize) -> Result<Value, Failed> {
        let path = format!("/api/v1/embeddings/status/{}", self.backend.table);
        let reply = self.call(tenant, "GET", &path, None)?;
        check(reply.status == 200, || {
            format!("{path}: {} {}", reply.status, reply.body)
        })?;
        Ok(reply.body)
    }

    /// Whether a status shows the table searched with its configured set, no change running
    /// and no earlier set left to remove.
    fn settled(&self, status: &Value) -> bool {
        let (active, configured) = (&status["active"], &status["configured"]);
        status["migration"].is_null()
            && status["removing"].as_array().is_some_and(Vec::is_empty)
            && (active.is_null() || active == configured)
            && configured["model"] == self.backend.model
    }

    /// The model-change command, as `tenant`: 202 while a change runs, waits for the last one's
    /// clean-up or that clean-up runs, 200 when the table is settled on its configured set.
    fn command(&mut self, tenant: usize) -> Result<(), Failed> {
        let path = format!("/api/v1/embeddings/tables/{}/migration", self.backend.table);
        let reply = self.call(tenant, "POST", &path, None)?;
        let settled = self.settled(&reply.body);
        let to = &reply.body["migration"]["to"];
        self.check(
            (reply.status == 200 && settled)
                || (reply.status == 202
                    && !settled
                    && (to.is_null() || to == &reply.body["configured"])),
            || format!("the model-change command: {} {}", reply.status, reply.body),
        )?;
        self.tally.commands += usize::from(reply.status == 202);
        Ok(())
    }

    /// Waits until the table's change (if any) is complete for `tenant`: searches read its
    /// configured set, and the sets before it are gone. A change nothing has started (no write
    /// since the deploy) is started with the command; one that stopped moving (its backfill,
    /// switch or clean-up) is resumed with it only when a restart lost its steps, and is a
    /// violation otherwise.
    fn complete_change(&mut self, tenant: usize) -> Result<(), Failed> {
        let started = Instant::now();
        let (mut last, mut since) = (Value::Null, Instant::now());
        loop {
            let status = self.status(tenant)?;
            if self.settled(&status) {
                return Ok(());
            }
            let organization_id = self.tenants[tenant].organization_id;
            check(started.elapsed() < Duration::from_mins(3), || {
                format!("{organization_id}'s model change is not complete after 3 min: {status}")
            })?;
            let progress = json!([status["active"], status["migration"], status["removing"]]);
            if progress != last {
                (last, since) = (progress, Instant::now());
            }
            let unstarted = status["migration"].is_null()
                && status["removing"].as_array().is_some_and(Vec::is_empty);
            // A Vectorize switch waits 10 s after coverage, and looks every few seconds.
            let stopped = since.elapsed() > Duration::from_secs(30);
            check(!stopped || unstarted || self.steps_lost, || {
                format!("{organization_id}'s model change stopped moving, though no restart lost its steps: {status}")
            })?;
            if (unstarted && since.elapsed() > Duration::from_secs(2)) || stopped {
                self.command(tenant)?;
                since = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// A search at any moment of the history (a model change may be under way): it answers,
    /// with matches of the history's records only. local-ai's faults pause for it (a failed
    /// query embedding is a 503 the suite tests elsewhere).
    fn search_now(&mut self, tenant: usize, text: &'static str) -> Result<(), Failed> {
        let path = format!("/api/v1/embeddings/search/{}", self.backend.service);
        let body =
            json!({"text": text, "limit": 10, "filters": {"story_id": {"$in": self.stories}}});
        set_faults(self.ctx, &json!({}))?;
        let reply = self.call(tenant, "POST", &path, Some(&body));
        set_faults(self.ctx, &FAULTS)?;
        let reply = reply?;
        let ours = reply.body.as_array().is_some_and(|matches| {
            matches
                .iter()
                .all(|m| self.ids.iter().any(|id| m["id"] == id.as_str()))
        });
        self.check(reply.status == 200 && ours, || {
            format!("a search mid-history: {} {}", reply.status, reply.body)
        })
    }

    /// No set the table used earlier in the history keeps any of `tenant`'s records (once its
    /// clean-up has run): no row in D1 of another set than the one configured now, and nothing
    /// in a Vectorize index the table left.
    fn check_former_sets_gone(&mut self, tenant: usize) -> Result<(), Failed> {
        let organization_id = self.tenants[tenant].organization_id;
        let ids: Vec<&str> = self.ids.iter().map(String::as_str).collect();
        let now = self.backend;
        let list: Vec<String> = ids.iter().map(|id| format!("'{id}'")).collect();
        let rows = format!(
            "SELECT record_id, model, location FROM embedding_vectors
             WHERE organization_id = '{organization_id}' AND table_name = '{}'
               AND record_id IN ({}) AND NOT (model = '{}' AND location = '{}')",
            now.table,
            list.join(", "),
            now.model,
            now.location
        );
        let mut left_indexes: Vec<Backend> = self.former.clone();
        left_indexes.retain(|b| b.index.is_some() && b.index != now.index);
        left_indexes.sort_by_key(|b| b.index);
        left_indexes.dedup_by_key(|b| b.index);
        let started = Instant::now();
        loop {
            let mut left: Vec<String> = select(self.ctx, &rows)?
                .iter()
                .map(|r| format!("{} in {} of {}", r["record_id"], r["location"], r["model"]))
                .collect();
            for place in &left_indexes {
                settle(self.ctx, *place)?;
                for id in stored_vectors_of(self.ctx, *place, organization_id, &ids)?.keys() {
                    left.push(format!("{id} in {}", place.index.unwrap_or_default()));
                }
            }
            if left.is_empty() {
                self.tally.checks += 1;
                return Ok(());
            }
            check(started.elapsed() < Duration::from_mins(1), || {
                format!(
                    "{organization_id}'s {} keeps records in sets it left a minute ago: {left:?}",
                    now.table
                )
            })?;
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn post_ok(&self, tenant: usize, path: &str, body: &Value) -> Result<Value, Failed> {
        let reply = self.call(tenant, "POST", path, Some(body))?;
        check(reply.status == 200, || {
            format!("{path}: {} {}", reply.status, reply.body)
        })?;
        Ok(reply.body)
    }

    /// Whether `answer` (matches, best first) is `expected` (id and score): the same scores to
    /// float rounding, the same ids except where two scores tie, and, when `classified`, each
    /// match classified by the service's thresholds.
    fn check_ranking(
        &mut self,
        tenant: usize,
        what: &str,
        answer: &Value,
        expected: &[(String, f32)],
        classified: bool,
    ) -> Result<(), Failed> {
        let ours: Vec<(String, f64, String)> = answer
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                (
                    m["id"].as_str().unwrap_or_default().to_owned(),
                    m["score"].as_f64().unwrap_or(f64::NAN),
                    m["classification"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        let same = ours.len() == expected.len()
            && ours
                .iter()
                .zip(expected)
                .all(|((id, score, class), (want, want_score))| {
                    (*score - f64::from(*want_score)).abs() < 1e-3
                        && (id == want || (*score - f64::from(*want_score)).abs() < 1e-4)
                        && (!classified || class == classify(*score))
                });
        let organization_id = self.tenants[tenant].organization_id;
        self.check(same, || {
            format!(
                "{what} as {organization_id}: {ours:?}, brute force over the oracle: {expected:?}"
            )
        })
    }
}
