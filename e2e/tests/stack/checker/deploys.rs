//! Model changes under a history: the deploys that swap the workers for another config's, and
//! the waits and checks until a table's change is complete and its former sets are gone.

use std::cell::Cell;
use std::time::Instant;

use e2e::{Stack, Variant};

use crate::backends::{select, settle, stored_vectors_of, Backend, BACKENDS, CHANGED};
use crate::check;
use crate::rng::Rng;
use crate::{json, Duration, Failed, Value};

use super::history::History;
use super::{set_faults, FAULTS};

/// The deploys of the histories of
/// [`model_changes_match_the_oracle`](super::model_changes_match_the_oracle): its stack starts
/// on the suite's workers, and each deploy restarts it with the workers of the other of two
/// variants of the config: `model-change`, then `models-back`, then `model-change` again, and
/// so on.
pub(super) struct Deploys {
    /// `model-change` and `models-back`.
    variants: [Variant; 2],
    /// The one running now; none (the suite's workers) before the first deploy.
    running: Cell<Option<usize>>,
}

impl Deploys {
    pub(super) fn new() -> Result<Deploys, Failed> {
        Ok(Deploys {
            variants: [Variant::model_change()?, Variant::models_back()?],
            running: Cell::new(None),
        })
    }

    /// Restarts the stack's workers with the other variant's.
    pub(super) fn next(&self, stack: &Stack) -> Result<(), Failed> {
        let next = usize::from(self.running.get() == Some(0));
        stack.restart_workers(&self.variants[next])?;
        self.running.set(Some(next));
        Ok(())
    }

    /// Where `backend`'s table is kept, and with which model, by the workers running now.
    pub(super) fn place(&self, backend: Backend) -> Backend {
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

impl History<'_> {
    /// A deploy of the other config: every table changes its model (and evidence its index).
    /// The local queue lives in `wrangler dev`'s memory and a restart loses what it holds (a
    /// deploy to Cloudflare loses nothing), so the history's jobs are made final, and the
    /// tenants' queued ones done, first. Then, as often as not, one tenant starts its change
    /// with the command; otherwise its next write does.
    pub(super) fn deploy(&mut self, rng: &mut Rng) -> Result<(), Failed> {
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
    pub(super) fn quiet(&mut self, tenant: usize) -> Result<Value, Failed> {
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

    pub(super) fn status(&self, tenant: usize) -> Result<Value, Failed> {
        let path = format!("/api/v1/embeddings/status/{}", self.backend.table);
        let reply = self.call(tenant, "GET", &path, None)?;
        check(reply.status == 200, || {
            format!("{path}: {} {}", reply.status, reply.body)
        })?;
        Ok(reply.body)
    }

    /// Whether a status shows the table searched with its configured set, no change running
    /// and no earlier set left to remove.
    pub(super) fn settled(&self, status: &Value) -> bool {
        let (active, configured) = (&status["active"], &status["configured"]);
        status["migration"].is_null()
            && status["removing"].as_array().is_some_and(Vec::is_empty)
            && (active.is_null() || active == configured)
            && configured["model"] == self.backend.model
    }

    /// The model-change command, as `tenant`: 202 while a change runs, waits for the last one's
    /// clean-up or that clean-up runs, 200 when the table is settled on its configured set.
    pub(super) fn command(&mut self, tenant: usize) -> Result<(), Failed> {
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
    pub(super) fn complete_change(&mut self, tenant: usize) -> Result<(), Failed> {
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
    pub(super) fn search_now(&mut self, tenant: usize, text: &'static str) -> Result<(), Failed> {
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
    pub(super) fn check_former_sets_gone(&mut self, tenant: usize) -> Result<(), Failed> {
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
}
