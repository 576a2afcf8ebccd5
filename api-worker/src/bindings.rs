//! The real implementations of the ports over the worker's bindings (D1 is in
//! [`crate::store`]). Binding names live here.

use std::cell::RefCell;
use std::rc::Rc;

use shared::expiring::Expiring;
use shared::lane::Lane;
use shared::message::EmbeddingJob;
use shared::rate::RouteClass;
use shared::sets::MigrationStep;
use worker::{D1Database, Env, Queue};
use worker_kit::d1::DB;
use worker_kit::index_sync::{self, RecordKey, Synced};
use worker_kit::search_client::{SearchClient, ServiceBinding};
use worker_kit::Fault;

use crate::auth::{SESSION_CACHE_ENTRIES, SESSION_TRUST_MS};
use crate::error::Error;
use crate::ports::{App, JobQueue, Ports, RateLimits, SessionRow, VectorIndexes};
use crate::store::D1Store;

/// Service binding to search-worker, called over RPC.
pub(crate) const SEARCH: &str = "SEARCH";
/// The better-auth signing secret (a secret, never in config files).
pub(crate) const BETTER_AUTH_SECRET: &str = "BETTER_AUTH_SECRET";

/// The bindings, as the app's ports.
#[derive(Debug)]
pub(crate) struct Bindings;

impl Ports for Bindings {
    type Store = D1Store;
    type Queue = QueueProducer;
    type Limits = EnvLimits;
    type Search = ServiceBinding;
    type Indexes = EnvIndexes;
}

thread_local! {
    /// One isolate, one thread: the sessions it read, kept as long as the isolate.
    static SESSIONS: Rc<RefCell<Expiring<SessionRow>>> =
        Rc::new(RefCell::new(Expiring::new(SESSION_TRUST_MS, SESSION_CACHE_ENTRIES)));
}

/// Turns the environment into typed handles; a missing binding is one clear error.
pub(crate) fn app(env: &Env) -> Result<App<Bindings>, Error> {
    let binding = |name: &str, e: worker::Error| Fault(format!("binding `{name}` is missing: {e}"));
    Ok(App {
        store: D1Store::new(env.d1(DB).map_err(|e| binding(DB, e))?),
        queue: QueueProducer {
            live: env
                .queue(Lane::Live.binding())
                .map_err(|e| binding(Lane::Live.binding(), e))?,
            bulk: env
                .queue(Lane::Bulk.binding())
                .map_err(|e| binding(Lane::Bulk.binding(), e))?,
        },
        limits: EnvLimits(env.clone()),
        search: SearchClient::new(ServiceBinding::from_env(env, SEARCH)?),
        indexes: EnvIndexes {
            env: env.clone(),
            db: env.d1(DB).map_err(|e| binding(DB, e))?,
        },
        auth_secret: env.secret(BETTER_AUTH_SECRET).ok().map(|s| s.to_string()),
        sessions: SESSIONS.with(Rc::clone),
        config: worker_kit::config::config(),
        now_ms: worker_kit::now_ms(),
    })
}

/// The producers of both lanes' queues (`shared::lane`).
#[derive(Debug)]
pub(crate) struct QueueProducer {
    live: Queue,
    bulk: Queue,
}

impl JobQueue for QueueProducer {
    async fn send(&self, job: &EmbeddingJob) -> Result<(), Fault> {
        self.live.send(job).await?;
        Ok(())
    }

    async fn send_bulk(&self, jobs: &[EmbeddingJob]) -> Result<(), Fault> {
        self.bulk.send_batch(jobs.to_vec()).await?;
        Ok(())
    }

    async fn send_step(&self, step: &MigrationStep) -> Result<(), Fault> {
        self.bulk.send(step).await?;
        Ok(())
    }
}

/// The Rate Limiting bindings of `wrangler/api-worker.toml`, one per route class, looked up
/// when a request of the class comes.
#[derive(Debug)]
pub(crate) struct EnvLimits(Env);

impl RateLimits for EnvLimits {
    async fn allow(&self, class: RouteClass, key: &str) -> Result<bool, Fault> {
        let limiter = self
            .0
            .rate_limiter(class.binding())
            .map_err(|e| Fault(format!("binding `{}` is missing: {e}", class.binding())))?;
        Ok(limiter.limit(key.to_owned()).await?.success)
    }
}

/// The Vectorize indexes the config names, looked up by binding when used, and the D1
/// database they are brought in line with.
#[derive(Debug)]
pub(crate) struct EnvIndexes {
    env: Env,
    db: D1Database,
}

impl VectorIndexes for EnvIndexes {
    async fn sync(&self, records: &[RecordKey]) -> Result<Synced, Fault> {
        index_sync::sync(&self.env, &self.db, records).await
    }
}
