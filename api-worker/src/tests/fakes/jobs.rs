//! [`Jobs`] of the [`FakeStore`]: rows in memory, moved as `shared::job` decides.

use shared::job::JobStatus;
use shared::message::EmbeddingJob;
use uuid::Uuid;
use worker_kit::Fault;

use super::FakeStore;
use crate::ports::{JobFilter, JobRow, Jobs};

impl Jobs for FakeStore {
    async fn insert_jobs(&self, jobs: &[JobRow]) -> Result<(), Fault> {
        self.jobs.borrow_mut().extend(jobs.iter().cloned());
        Ok(())
    }
    async fn mark_jobs_failed(
        &self,
        organization_id: &str,
        job_ids: &[Uuid],
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault> {
        for job in self.jobs.borrow_mut().iter_mut() {
            if job.organization_id == organization_id
                && job_ids.iter().any(|id| id.to_string() == job.id)
            {
                job.status = JobStatus::Failed.as_str().into();
                job.last_error = Some(error.into());
                job.completed_at = Some(now_ms);
            }
        }
        Ok(())
    }
    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault> {
        Ok(self
            .jobs
            .borrow()
            .iter()
            .find(|j| j.id == job_id.to_string() && j.organization_id == organization_id)
            .cloned())
    }
    async fn jobs(&self, organization_id: &str, filter: &JobFilter) -> Result<Vec<JobRow>, Fault> {
        let mut rows: Vec<JobRow> = self
            .jobs
            .borrow()
            .iter()
            .filter(|j| j.organization_id == organization_id)
            .filter(|j| filter.status.is_none_or(|s| j.status == s.as_str()))
            .filter(|j| filter.backfill_id.is_none() || j.backfill_id == filter.backfill_id)
            .filter(|j| filter.table.is_none() || j.table_name == filter.table)
            .filter(|j| {
                filter
                    .before
                    .as_ref()
                    .is_none_or(|(at, id)| (j.created_at, &j.id) < (*at, id))
            })
            .cloned()
            .collect();
        rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        rows.truncate(filter.limit as usize);
        Ok(rows)
    }
    async fn requeue_job(&self, replay: &EmbeddingJob, now_ms: i64) -> Result<bool, Fault> {
        let mut jobs = self.jobs.borrow_mut();
        let job = jobs.iter_mut().find(|j| {
            j.id == replay.job_id.to_string()
                && j.organization_id == replay.organization_id
                && JobStatus::parse(&j.status)
                    .is_some_and(|status| status.can_replay(j.updated_at, now_ms))
        });
        Ok(job.is_some_and(|job| {
            job.status = JobStatus::Queued.as_str().into();
            job.content.clone_from(&replay.content);
            job.content_hash.clone_from(&replay.content_hash);
            job.updated_at = now_ms;
            job.completed_at = None;
            true
        }))
    }
}
