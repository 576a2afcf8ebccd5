//! A history: its tenants, its pool of record ids and stories, the oracle of what each record
//! should be, and the run of seeded random operations, then the drain, the checks and the
//! clean-up that end it.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use crate::backends::{settle, stored_vectors_of, Backend};
use crate::rng::Rng;
use crate::{check, wait_final_as, Ctx};
use crate::{json, Duration, Failed, Value};

use super::deploys::Deploys;
use super::{set_faults, Tally, FAULTS};

/// The texts a history gives its records: pairs of paraphrases among unrelated ones.
pub(super) const TEXTS: [&str; 8] = [
    "The council approved the harbour budget on Monday",
    "Councillors voted for the new harbour budget",
    "Heavy snow closed every mountain road",
    "Police arrested three suspects after the robbery",
    "Three people were arrested following the bank robbery",
    "The museum reopened its east wing after repairs",
    "A new tram line will link the airport to the centre",
    "Floods cut the railway line to the coast",
];
/// The stories a record may belong to (its metadata), made the history's own by its seed.
pub(super) const STORIES: [&str; 3] = ["s-a", "s-b", "s-c"];
/// Record ids in the pool both tenants draw from.
pub(super) const POOL: usize = 4;

/// A record as the oracle knows it; its story is an index into the history's stories.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Live {
    pub(super) content: &'static str,
    pub(super) story: usize,
}

pub(super) struct Tenant {
    pub(super) cookie: String,
    pub(super) organization_id: &'static str,
}

pub(super) struct History<'a> {
    pub(super) ctx: &'a Ctx,
    /// Where the table is kept now, and with which model.
    pub(super) backend: Backend,
    /// Where it was kept before, in this history.
    pub(super) former: Vec<Backend>,
    pub(super) deploys: Option<&'a Deploys>,
    /// Whether a deploy of this history restarted the workers while the table's change was
    /// under way: the local queue lives in `wrangler dev`'s memory, so that change's steps are
    /// gone, and it is resumed with the one command, as the sweep would after 15 minutes.
    pub(super) steps_lost: bool,
    pub(super) seed: u64,
    pub(super) tenants: [Tenant; 2],
    pub(super) ids: Vec<String>,
    /// The history's own story values, so that its searches filter to its own records.
    pub(super) stories: Vec<String>,
    pub(super) oracle: BTreeMap<(usize, String), Live>,
    /// Jobs the history started, by tenant.
    pub(super) jobs: Vec<(usize, String)>,
    pub(super) tally: Tally,
    /// local-ai's embeddings, by model and text.
    pub(super) embeddings: Embeddings,
}

pub(super) type Embeddings = HashMap<(&'static str, &'static str), Vec<f32>>;

impl<'a> History<'a> {
    pub(super) fn new(
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

    pub(super) fn check(
        &mut self,
        condition: bool,
        message: impl FnOnce() -> String,
    ) -> Result<(), Failed> {
        self.tally.checks += 1;
        check(condition, message)
    }

    pub(super) fn run(&mut self, operations: usize) -> Result<(), Failed> {
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
            self.check_keywords(tenant, rng.pick(&TEXTS))?;
            self.check_former_sets_gone(tenant)?;
        }
        lap("checks");
        self.clean_up()?;
        lap("clean-up");
        Ok(())
    }

    /// Deletes what the history left, and checks that neither store keeps any of it.
    pub(super) fn clean_up(&mut self) -> Result<(), Failed> {
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

    pub(super) fn path(&self, id: &str) -> String {
        format!("/api/v1/{}/{id}", self.backend.table)
    }

    pub(super) fn call(
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

    /// Waits for every job the history started to be final, and answers those that ended dead.
    pub(super) fn drain(&mut self) -> Result<Vec<(usize, String)>, Failed> {
        self.drain_jobs(&self.jobs.clone())
    }

    /// Waits for `jobs` to be final (a pipeline job has no row until the consumer first sees
    /// it), and answers those that ended dead.
    pub(super) fn drain_jobs(
        &mut self,
        jobs: &[(usize, String)],
    ) -> Result<Vec<(usize, String)>, Failed> {
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
    pub(super) fn replay_dead(&mut self, dead: &[(usize, String)]) -> Result<(), Failed> {
        for job in dead {
            self.replay(true, job.clone())?;
        }
        self.drain_jobs(dead)?;
        self.tally.replayed += dead.len();
        Ok(())
    }
}
