//! The real implementations of the ports, over the worker's bindings. Binding names live here.

use serde::Deserialize;
use shared::config::TableConfig;
use shared::message::EmbeddingJob;
use uuid::Uuid;
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, Env, Fetcher, Method, Queue, RequestInit};
use worker_kit::d1::{self, ident, number, optional, text, DB};
use worker_kit::Fault;

use crate::error::Error;
use crate::ports::{App, JobQueue, JobRow, Record, SearchService, SessionRow, Store};

/// Producer binding of `embeddings-queue`.
pub(crate) const EMBEDDINGS_QUEUE: &str = "EMBEDDINGS_QUEUE";
/// Service binding to search-worker.
pub(crate) const SEARCH: &str = "SEARCH";
/// The better-auth signing secret (a secret, never in config files).
pub(crate) const BETTER_AUTH_SECRET: &str = "BETTER_AUTH_SECRET";

pub(crate) type RealApp = App<D1Store, QueueProducer, SearchBinding>;

/// Turns the environment into typed handles; a missing binding is one clear error.
pub(crate) fn app(env: &Env) -> Result<RealApp, Error> {
    let binding = |name: &str, e: worker::Error| Fault(format!("binding `{name}` is missing: {e}"));
    Ok(App {
        store: D1Store(env.d1(DB).map_err(|e| binding(DB, e))?),
        queue: QueueProducer(
            env.queue(EMBEDDINGS_QUEUE)
                .map_err(|e| binding(EMBEDDINGS_QUEUE, e))?,
        ),
        search: SearchBinding(env.service(SEARCH).map_err(|e| binding(SEARCH, e))?),
        auth_secret: env.secret(BETTER_AUTH_SECRET).ok().map(|s| s.to_string()),
        config: worker_kit::config::config(),
        now_ms: worker_kit::now_ms(),
    })
}

#[derive(Debug)]
pub(crate) struct D1Store(D1Database);

impl Store for D1Store {
    async fn ping(&self) -> Result<(), Fault> {
        d1::ping(&self.0).await
    }

    async fn session(&self, token: &str) -> Result<Option<SessionRow>, Fault> {
        let row = self
            .0
            .prepare(
                r#"SELECT "userId" AS user_id, "activeOrganizationId" AS active_organization_id,
                          CAST("expiresAt" AS TEXT) AS expires_at
                   FROM "session" WHERE "token" = ?1"#,
            )
            .bind(&[text(token)])?
            .first::<SessionRow>(None)
            .await?;
        Ok(row)
    }

    async fn member_role(
        &self,
        organization_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, Fault> {
        #[derive(Deserialize)]
        struct Role {
            role: String,
        }
        let row = self
            .0
            .prepare(r#"SELECT "role" AS role FROM "member" WHERE "organizationId" = ?1 AND "userId" = ?2"#)
            .bind(&[text(organization_id), text(user_id)])?
            .first::<Role>(None)
            .await?;
        Ok(row.map(|r| r.role))
    }

    async fn record(
        &self,
        table: &TableConfig,
        organization_id: &str,
        id: &str,
    ) -> Result<Option<Record>, Fault> {
        // Table and column names come from the validated config, never from the request.
        let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
        let sql = format!(
            "SELECT {} FROM {} WHERE {} = ?1 AND {} = ?2",
            columns.join(", "),
            ident(&table.name),
            ident(&table.id_column),
            ident(&table.organization_column)
        );
        let row = self
            .0
            .prepare(sql)
            .bind(&[text(id), text(organization_id)])?
            .first::<Record>(None)
            .await?;
        Ok(row)
    }

    async fn insert_job(&self, job: &JobRow) -> Result<(), Fault> {
        self.0
            .prepare(
                "INSERT INTO embedding_jobs (id, organization_id, table_name, record_id, model, content,
                     content_hash, status, attempts, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )
            .bind(&[
                text(&job.id),
                text(&job.organization_id),
                optional(job.table_name.as_deref()),
                optional(job.record_id.as_deref()),
                text(&job.model),
                text(&job.content),
                text(&job.content_hash),
                text(&job.status),
                number(i64::from(job.attempts)),
                number(job.created_at),
            ])?
            .run()
            .await?;
        Ok(())
    }

    async fn mark_job_failed(
        &self,
        organization_id: &str,
        job_id: Uuid,
        error: &str,
        now_ms: i64,
    ) -> Result<(), Fault> {
        self.0
            .prepare(
                "UPDATE embedding_jobs SET status = 'failed', last_error = ?3, updated_at = ?4, completed_at = ?4
                 WHERE id = ?1 AND organization_id = ?2",
            )
            .bind(&[
                text(&job_id.to_string()),
                text(organization_id),
                text(error),
                number(now_ms),
            ])?
            .run()
            .await?;
        Ok(())
    }

    async fn job(&self, organization_id: &str, job_id: Uuid) -> Result<Option<JobRow>, Fault> {
        let row = self
            .0
            .prepare(
                "SELECT id, organization_id, table_name, record_id, model, content, content_hash, status,
                        attempts, last_error, truncated, hex(vector) AS vector_hex, created_at,
                        updated_at, completed_at
                 FROM embedding_jobs WHERE id = ?1 AND organization_id = ?2",
            )
            .bind(&[text(&job_id.to_string()), text(organization_id)])?
            .first::<JobRow>(None)
            .await?;
        Ok(row)
    }

    async fn requeue_job(
        &self,
        organization_id: &str,
        job_id: Uuid,
        now_ms: i64,
    ) -> Result<bool, Fault> {
        let result = self
            .0
            .prepare(
                "UPDATE embedding_jobs SET status = 'queued', updated_at = ?3, completed_at = NULL
                 WHERE id = ?1 AND organization_id = ?2 AND status IN ('dead', 'failed')",
            )
            .bind(&[
                text(&job_id.to_string()),
                text(organization_id),
                number(now_ms),
            ])?
            .run()
            .await?;
        let changed = result
            .meta()?
            .and_then(|meta| meta.changes)
            .unwrap_or_default();
        Ok(changed > 0)
    }
}

#[derive(Debug)]
pub(crate) struct QueueProducer(Queue);

impl JobQueue for QueueProducer {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        self.0.send(job).await?;
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct SearchBinding(Fetcher);

impl SearchService for SearchBinding {
    async fn call(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<(u16, serde_json::Value), Fault> {
        // The host is ignored by a service binding; the path is what search-worker routes on.
        let url = format!("https://search-worker{path}");
        let init = body.map(|body| {
            let mut init = RequestInit::new();
            init.with_method(Method::Post)
                .with_body(Some(JsValue::from_str(&body.to_string())));
            init
        });
        let mut response = self.0.fetch(url, init).await?;
        let status = response.status_code();
        let body = response.json::<serde_json::Value>().await?;
        Ok((status, body))
    }
}
