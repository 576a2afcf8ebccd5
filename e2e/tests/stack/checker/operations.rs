//! The operations of a history, each applied through the gateway (or the custom pipeline) and
//! its answer checked against what the oracle predicts, the oracle then updated.

use shared::message::EmbeddingJob;

use crate::{json, Failed, Value};

use super::history::{History, Live, TEXTS};

impl History<'_> {
    /// A 404 for a record the tenant does not have must read exactly as one nobody ever had.
    pub(super) fn check_absent(
        &mut self,
        what: &str,
        reply: &e2e::Reply,
        id: &str,
    ) -> Result<(), Failed> {
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

    pub(super) fn track_job(&mut self, tenant: usize, reply: &e2e::Reply) {
        if let Some(job) = reply.body["job"]["jobId"].as_str() {
            self.jobs.push((tenant, job.to_owned()));
        }
    }

    pub(super) fn create(
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

    pub(super) fn edit_text(
        &mut self,
        tenant: usize,
        id: &str,
        content: &'static str,
    ) -> Result<(), Failed> {
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

    pub(super) fn edit_story(
        &mut self,
        tenant: usize,
        id: &str,
        story: usize,
    ) -> Result<(), Failed> {
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

    pub(super) fn delete(&mut self, tenant: usize, id: &str) -> Result<(), Failed> {
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
    pub(super) fn redeliver(
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
    pub(super) fn enqueue(&mut self, tenant: usize, id: &str) -> Result<(), Failed> {
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
    pub(super) fn replay(
        &mut self,
        as_owner: bool,
        (tenant, job): (usize, String),
    ) -> Result<(), Failed> {
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

    pub(super) fn backfill(&mut self, tenant: usize, all: bool) -> Result<(), Failed> {
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
}
